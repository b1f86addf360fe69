"""Indicator exchange between labs: a STIX 2.1 bundle of flagged campaigns, and matching a partner's.

What leaves the lab is only keyed hashes under a *consortium key* the partners share: the campaigns'
dominant template hashes and LSH band keys, and account attributes (payment, network, device
fingerprints). Never prompt text, never an account name, org or key id. Partners can match because
they fingerprint prompts under the same ``fingerprint_key`` and hash under the same consortium key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import stix2  # type: ignore[import-untyped]  # stix2 ships no type information

from flopledger.errors import InputError
from flopledger.integrity.clustering import ATTRIBUTE_TAGS
from flopledger.integrity.detectors import Thresholds
from flopledger.integrity.features import ACCOUNT_SQL
from flopledger.integrity.scan import scan

__all__ = ["IndicatorMatch", "export_stix", "match_indicators"]

_PER_CAMPAIGN = 8
_TLP = {"white": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER, "red": stix2.TLP_RED}
_COMPARISON = re.compile(r"x-flopledger-(\w+):(\w+)_hmac = '([0-9a-f]{32})'")


def _hmac(consortium_key: bytes, kind: str, value: str) -> str:
    return hmac.new(consortium_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _local_values(con: duckdb.DuckDBPyConnection, accounts: list[str]) -> dict[str, dict[str, int]]:
    """Per fingerprint kind, each value's request count over ``accounts``."""
    con.execute("CREATE OR REPLACE TEMP TABLE stix_accounts (account VARCHAR)")
    con.executemany("INSERT INTO stix_accounts VALUES (?)", [(a,) for a in accounts])
    e = f"(SELECT * FROM events WHERE {ACCOUNT_SQL} IN (SELECT account FROM stix_accounts))"
    attrs = " UNION ALL ".join(
        f"SELECT '{t}' AS kind, json_extract_string(tags, '$.{t}') AS v FROM {e}" for t in ATTRIBUTE_TAGS
    )
    rows = con.execute(
        f"""
        SELECT 'template' AS kind, fp_template_hash::VARCHAR AS v, count(*) FROM {e}
            WHERE fp_template_hash IS NOT NULL GROUP BY ALL
        UNION ALL SELECT 'lsh', k::VARCHAR, count(*)
            FROM (SELECT unnest(fp_lsh_keys) AS k FROM {e}) GROUP BY ALL
        UNION ALL SELECT kind, v, count(*) FROM ({attrs}) WHERE v IS NOT NULL GROUP BY ALL
        """
    ).fetchall()
    con.execute("DROP TABLE stix_accounts")
    out: dict[str, dict[str, int]] = {}
    for kind, value, count in rows:
        out.setdefault(str(kind), {})[str(value)] = int(count)
    return out


def export_stix(
    con: duckdb.DuckDBPyConnection,
    out_path: str | Path,
    *,
    consortium_key: bytes,
    lab_name: str,
    tlp: str = "amber",
    thresholds: Thresholds | None = None,
) -> int:
    """Write a STIX 2.1 bundle of indicators for flagged distillation campaigns; returns indicator count."""
    if not consortium_key:
        raise InputError("a consortium key is required to export indicators", field="consortium_key")
    marking = _TLP.get(tlp.lower())
    if marking is None:
        raise InputError(f"unknown TLP level {tlp!r}; use white, green, amber or red", field="tlp")
    folder = Path(out_path).parent
    if not folder.is_dir():  # said before the scan, not after it
        raise InputError(
            "no such folder for the bundle; create it or choose another path", path=str(out_path)
        )
    lab = stix2.Identity(name=lab_name, identity_class="organization", object_marking_refs=[marking])
    campaigns: dict[str, list[str]] = {}
    for finding in scan(con, thresholds, flagged_only=True):
        if finding.kind == "distillation":
            campaigns.setdefault(finding.cluster or finding.account, []).append(finding.account)
    objects: list[object] = [lab]
    for number, accounts in enumerate(sorted(campaigns.values(), key=len, reverse=True), start=1):
        values = _local_values(con, accounts)
        total = sum(values.get("template", {}).values()) or 1
        terms: list[str] = []
        for kind, per_value in sorted(values.items()):
            top = sorted(per_value.items(), key=lambda kv: -kv[1])[:_PER_CAMPAIGN]
            for value, count in top:
                if kind in ("template", "lsh") and count < max(3, 0.05 * total):
                    continue  # only fingerprints the campaign reuses; one-off prompts identify no one
                obj = "prompt" if kind in ("template", "lsh") else "account"
                terms.append(f"[x-flopledger-{obj}:{kind}_hmac = '{_hmac(consortium_key, kind, value)}']")
        if not terms:
            continue
        indicator = stix2.Indicator(
            name=f"distillation campaign {number}",
            description="Accounts harvesting model outputs with reused prompt templates (keyed hashes).",
            indicator_types=["anomalous-activity"],
            pattern=" OR ".join(terms),
            pattern_type="stix",
            created_by_ref=lab.id,
            object_marking_refs=[marking],
            allow_custom=True,
            x_flopledger_accounts=len(accounts),
            x_flopledger_requests=total,
        )
        sighting = stix2.Sighting(
            sighting_of_ref=indicator.id,
            count=len(accounts),
            where_sighted_refs=[lab.id],
            created_by_ref=lab.id,
            object_marking_refs=[marking],
        )
        objects += [indicator, sighting]
    bundle = stix2.Bundle(objects=objects, allow_custom=True)
    try:
        Path(out_path).write_text(bundle.serialize(pretty=True), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the bundle: {exc.strerror}", path=str(out_path)) from exc
    return (len(objects) - 1) // 2


@dataclass(frozen=True)
class IndicatorMatch:
    account: str
    indicator: str
    indicator_name: str
    matched_on: str
    matched_values: int
    matched_requests: int


def match_indicators(
    con: duckdb.DuckDBPyConnection, partner_path: str | Path, *, consortium_key: bytes
) -> list[IndicatorMatch]:
    """Local accounts whose fingerprints or attributes match a partner's indicators, and how."""
    path = Path(partner_path)
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the STIX bundle: {exc}", path=str(path)) from exc
    objects = bundle.get("objects", []) if isinstance(bundle, dict) else None
    if not isinstance(objects, list):
        raise InputError(
            "not a STIX 2.1 bundle: expected an object with an 'objects' list",
            path=str(path),
            field="objects",
        )
    indicators = [o for o in objects if isinstance(o, dict) and o.get("type") == "indicator"]
    unnamed = next(
        (i for i, o in enumerate(indicators) if not isinstance(o.get("id"), str) or not o["id"]), None
    )
    if unnamed is not None:
        raise InputError(f"not a STIX 2.1 bundle: indicator {unnamed} has no id", path=str(path), field="id")
    if not indicators:
        return []
    wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ind in indicators:
        for _, kind, digest in _COMPARISON.findall(str(ind.get("pattern", ""))):
            wanted.setdefault((kind, digest), []).append((str(ind["id"]), str(ind.get("name", ""))))
    accounts = [
        str(r[0]) for r in con.execute(f"SELECT DISTINCT {ACCOUNT_SQL} FROM events").fetchall() if r[0]
    ]
    hits: dict[tuple[str, str, str], tuple[set[str], int]] = {}
    for account in accounts:
        for kind, per_value in _local_values(con, [account]).items():
            for value, count in per_value.items():
                for indicator_id, name in wanted.get((kind, _hmac(consortium_key, kind, value)), []):
                    kinds, requests = hits.get((account, indicator_id, name), (set(), 0))
                    kinds.add(kind)
                    hits[(account, indicator_id, name)] = (kinds, max(requests, count))
    return sorted(
        (
            IndicatorMatch(account, ind, name, ",".join(sorted(kinds)), len(kinds), requests)
            for (account, ind, name), (kinds, requests) in hits.items()
        ),
        key=lambda m: (-m.matched_values, -m.matched_requests, m.account),
    )
