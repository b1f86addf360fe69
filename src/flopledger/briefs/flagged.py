"""Newly flagged accounts and clusters, from the integrity scan run as of two dates.

The scan (:func:`flopledger.integrity.scan.scan`) is run on the ledger as it stood at the end of
the brief's date and as it stood just before the period began; an account flagged now and not then
is *newly* flagged. Linked accounts (one cluster) make one insight; unlinked accounts of the same
kind make one. The impact is what the accounts spent in the period, at a monthly rate: tokens
burnt, or outputs served to a distillation network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from flopledger.briefs.figures import plain, usd
from flopledger.briefs.model import BriefWindow, Insight
from flopledger.integrity.scan import Finding, scan
from flopledger.ledger.forecast import daily_spend
from flopledger.ledger.spark import Engine, events_table

__all__ = ["FlaggedView", "flagged_view"]

_KIND_WORDS = {"token_burn": "token burn", "distillation": "distillation"}
_ACTIONS = {
    "token_burn": (
        "Engineering managers of these accounts: check whether they are bots run to climb the token "
        "leaderboard, stop them, and judge usage by outcomes (`flopledger integrity leaderboard`)."
    ),
    "distillation": (
        "Trust and safety: review the evidence, rate-limit or suspend the accounts, and share the "
        "indicators with partner labs (`flopledger integrity export-stix`)."
    ),
}


@dataclass(frozen=True)
class FlaggedView:
    flagged_accounts: int
    newly_flagged_accounts: int
    insights: tuple[Insight, ...]


@contextmanager
def _as_of(con: duckdb.DuckDBPyConnection, before: dt.datetime, latest: dt.datetime | None) -> Iterator[None]:
    """Let ``events`` mean the events before ``before`` (a temporary table shadows the real one)."""
    if latest is not None and latest < before:
        yield  # nothing after the cut: the ledger as it is
        return
    con.execute("CREATE OR REPLACE TEMP TABLE events AS SELECT * FROM main.events WHERE ts < ?", [before])
    try:
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS temp.events")


def _scan_before(con: duckdb.DuckDBPyConnection, before: dt.datetime) -> list[Finding]:
    row = con.execute("SELECT max(ts) FROM main.events").fetchone()
    latest = row[0] if row else None
    with _as_of(con, before, latest):
        return scan(con)


def _period_spend(engine: Engine, window: BriefWindow) -> dict[str, float]:
    """Spend per account (user, else API key) in the brief's period."""
    rows = engine.rows(daily_spend(events_table(engine), ("user", "api_key"), until=window.date))
    out: dict[str, float] = {}
    for r in rows:
        account = r["user"] if r["user"] is not None else r["api_key"]
        if account is not None and r["day"] >= window.start:
            out[str(account)] = out.get(str(account), 0.0) + float(r["cost_usd"] or 0.0)
    return out


def _names(accounts: Sequence[str]) -> str:
    shown = ", ".join(accounts[:3])
    return shown if len(accounts) <= 3 else f"{shown} and {len(accounts) - 3} more"


def _insight(
    cluster: str | None,
    group: Sequence[Finding],
    size: int,
    spend: Mapping[str, float],
    window: BriefWindow,
) -> Insight:
    accounts = sorted({f.account for f in group})
    kinds = sorted({f.kind for f in group})
    top = max(group, key=lambda f: (f.score, f.kind, f.account))
    cost = sum(spend.get(a, 0.0) for a in accounts)
    monthly = cost * window.per_month
    word = " and ".join(_KIND_WORDS.get(k, k.replace("_", " ")) for k in kinds)
    n = len(accounts)
    noun, verb = ("account", "was") if n == 1 else ("accounts", "were")
    if cluster is not None:
        title = f"{word.capitalize()}: {n} linked {noun} newly flagged ({_names(accounts)})"
        first = f"{n} {noun} of a linked group of {size} {verb} newly flagged for {word} {window.during}."
    else:
        title = f"{word.capitalize()}: {n} {noun} newly flagged ({_names(accounts)})"
        first = f"{n} {noun} not linked to others {verb} newly flagged for {word} {window.during}."
    evidence = "; ".join(
        f"{e.feature} {plain(e.value)} against a baseline of {plain(e.baseline)}" for e in top.evidence
    )
    numbers: dict[str, float] = {"accounts": float(n), "cost_usd": cost, "impact_usd_per_month": monthly}
    if cluster is not None:
        numbers["linked_accounts"] = float(size)
    for e in top.evidence:
        numbers[f"evidence.{e.feature}"] = e.value
        numbers[f"baseline.{e.feature}"] = e.baseline
    body = (
        f"{first} The strongest evidence ({top.account}, {_KIND_WORDS.get(top.kind, top.kind)}): {evidence}."
    )
    body += f" They spent {usd(cost)} {window.during}, {usd(monthly)} a month at that rate."
    anchor = accounts[0] if cluster is not None else "unlinked"
    # Who was flagged is part of the insight: another set of accounts is news whatever it costs.
    members = hashlib.blake2b("\n".join(sorted(accounts)).encode(), digest_size=4).hexdigest()
    return Insight(
        key=f"integrity:{'+'.join(kinds)}:{anchor}:{members}",
        layer="integrity",
        title=title,
        body=body,
        impact_usd_per_month=monthly,
        action=" ".join(_ACTIONS[k] for k in kinds if k in _ACTIONS)
        or "Trust and safety: review the evidence and decide.",
        link="/integrity",
        numbers=numbers,
        chart=tuple(
            (a, spend.get(a, 0.0)) for a in sorted(accounts, key=lambda a: (-spend.get(a, 0.0), a))[:8]
        ),
    )


def flagged_view(con: duckdb.DuckDBPyConnection, engine: Engine, window: BriefWindow) -> FlaggedView:
    """Accounts flagged as of the brief's date, and one candidate per newly flagged group."""
    end = dt.datetime.combine(window.date + dt.timedelta(days=1), dt.time())
    start = dt.datetime.combine(window.start, dt.time())
    scored = _scan_before(con, end)
    now = [f for f in scored if f.flagged]
    before = {(f.account, f.kind) for f in _scan_before(con, start) if f.flagged}
    members: dict[str, set[str]] = {}
    for f in scored:
        if f.cluster is not None:
            members.setdefault(f.cluster, set()).add(f.account)
    groups: dict[tuple[str, str | None], list[Finding]] = {}
    for f in now:
        if (f.account, f.kind) not in before:
            # a cluster is one insight whatever it was flagged for; unlinked accounts group by kind
            groups.setdefault(("", f.cluster) if f.cluster else (f.kind, None), []).append(f)
    spend = _period_spend(engine, window) if groups else {}
    insights = tuple(
        _insight(cluster, group, len(members.get(cluster or "", ())) or len(group), spend, window)
        for (_kind, cluster), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    )
    newly = {f.account for g in groups.values() for f in g}
    return FlaggedView(len({f.account for f in now}), len(newly), insights)
