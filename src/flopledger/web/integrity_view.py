"""The integrity page: flagged accounts and clusters with their evidence, from the integrity scan.

The scan is the library's :func:`flopledger.integrity.scan.scan`; its result is kept until the ledger
changes (new events). Each account belongs to the team where it made most requests. A viewer sees
only its team's accounts; a cluster shows only the members in that team, and the cluster-size
evidence (which would count accounts elsewhere) is left out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flopledger.integrity.detectors import CLUSTER_SIZE
from flopledger.integrity.features import ACCOUNT_SQL
from flopledger.integrity.scan import Finding, findings_of, raw_scan
from flopledger.web.queries import Scope
from flopledger.web.state import ServerState

__all__ = ["integrity_page"]

_CACHE_KEY = "integrity"


def _ledger_version(state: ServerState) -> tuple[Any, ...]:
    with state.cursor() as cur:
        row = cur.execute("SELECT count(*), max(ingest_id), max(ts) FROM events").fetchone()
    return tuple(row or ())


@dataclasses.dataclass(frozen=True)
class _ScanView:
    version: tuple[Any, ...]
    findings: list[Finding]
    team_of: dict[str, str | None]
    members: dict[str, tuple[str, ...]]


def _scan(state: ServerState) -> _ScanView:
    version = _ledger_version(state)
    with state.cache_lock:
        cached = state.cache.get(_CACHE_KEY)
        if isinstance(cached, _ScanView) and cached.version == version:
            return cached
        with state.cursor() as cur:
            result = raw_scan(cur)  # one pass: findings and the clusters they were scored with
            findings = findings_of(result, flagged_only=True)
            members = dict(result.clusters.members)
            team_of = dict(
                cur.execute(
                    f"SELECT account, arg_max(team, n) FROM (SELECT {ACCOUNT_SQL} AS account, team, "
                    "count(*) AS n FROM events GROUP BY ALL) WHERE account IS NOT NULL GROUP BY account"
                ).fetchall()
            )
        view = _ScanView(version, findings, team_of, members)
        state.cache[_CACHE_KEY] = view
        return view


def _visible(account: str, scope: Scope, team_of: dict[str, str | None]) -> bool:
    return scope.team is None or team_of.get(account) == scope.team


def integrity_page(state: ServerState, scope: Scope) -> dict[str, Any]:
    """Flagged findings, highest score first, and the clusters they belong to (scoped)."""
    view = _scan(state)
    rows = []
    clusters: dict[str, dict[str, Any]] = {}
    for f in view.findings:
        if not _visible(f.account, scope, view.team_of):
            continue
        evidence = [
            dataclasses.asdict(e) for e in f.evidence if scope.team is None or e.feature != CLUSTER_SIZE
        ]
        rows.append(
            {
                "account": f.account,
                "team": view.team_of.get(f.account),
                "kind": f.kind,
                "score": f.score,
                "cluster": f.cluster,
                "evidence": evidence,
            }
        )
        if f.cluster is not None:
            clusters.setdefault(f.cluster, {"cluster": f.cluster, "kinds": set()})["kinds"].add(f.kind)
    for cid, c in clusters.items():
        c["members"] = sorted(a for a in view.members.get(cid, ()) if _visible(a, scope, view.team_of))
        c["kinds"] = sorted(c["kinds"])
        c["accounts"] = len(c["members"])
    return {
        "flagged": rows,
        "clusters": sorted(clusters.values(), key=lambda c: (-c["accounts"], c["cluster"])),
        "accounts_flagged": len({r["account"] for r in rows}),
    }
