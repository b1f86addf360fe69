"""What was already sent, kept in the ledger file, and the rule that stops repeats.

Table ``brief_sent``: one row per insight sent (its key, the brief's period and date, its impact
and a digest of its numbers). The rule: a candidate whose key was sent for the same period within
the last ``LOOKBACK_DAYS`` days is held back unless its impact moved by more than
``MATERIAL_CHANGE`` (25%) of the impact last sent. Rows of the brief's own date are ignored, so
running a day's brief again (a cron retry) gives the same brief, and recording it again replaces them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

import duckdb

from flopledger.briefs.model import BriefWindow, Insight, Suppressed
from flopledger.ledger.transaction import transaction

__all__ = [
    "LOOKBACK_DAYS",
    "MATERIAL_CHANGE",
    "create_history",
    "digest",
    "is_material",
    "last_sent",
    "record_sent",
    "split_repeats",
]

LOOKBACK_DAYS = 30
MATERIAL_CHANGE = 0.25
TABLE = "brief_sent"


def create_history(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (insight_key VARCHAR, period VARCHAR, brief_date DATE, "
        "impact_usd_per_month DOUBLE, numbers_digest VARCHAR, title VARCHAR, sent_at TIMESTAMP)"
    )


def digest(insight: Insight) -> str:
    """A short hash of the insight's numbers, rounded to cents, for the audit trail."""
    rounded = {k: round(v, 2) for k, v in sorted(insight.numbers.items())}
    return hashlib.sha256(json.dumps(rounded, sort_keys=True).encode()).hexdigest()[:16]


def is_material(impact: float, last_impact: float) -> bool:
    """Has the impact moved by more than 25% of what was last sent?

    >>> is_material(130.0, 100.0), is_material(120.0, 100.0), is_material(5.0, 0.0)
    (True, False, True)
    """
    if last_impact == 0:
        return impact != 0
    return abs(impact - last_impact) > MATERIAL_CHANGE * abs(last_impact)


def last_sent(con: duckdb.DuckDBPyConnection, window: BriefWindow) -> dict[str, tuple[dt.date, float]]:
    """The latest earlier sending of each key for this period: key -> (date, impact)."""
    create_history(con)
    rows = con.execute(
        f"SELECT insight_key, max(brief_date), arg_max(impact_usd_per_month, brief_date) "
        f"FROM {TABLE} WHERE period = ? AND brief_date < ? AND brief_date >= ? GROUP BY insight_key",
        [window.period, window.date, window.date - dt.timedelta(days=LOOKBACK_DAYS)],
    ).fetchall()
    return {str(k): (d, float(v)) for k, d, v in rows}


def split_repeats(
    candidates: Sequence[Insight], sent: dict[str, tuple[dt.date, float]]
) -> tuple[list[Insight], list[Suppressed]]:
    """Candidates to show, and those held back as immaterial repeats."""
    keep: list[Insight] = []
    held: list[Suppressed] = []
    for c in candidates:
        before = sent.get(c.key)
        if before is None or is_material(c.impact_usd_per_month, before[1]):
            keep.append(c)
        else:
            held.append(Suppressed(c.key, c.impact_usd_per_month, before[0], before[1]))
    return keep, held


def record_sent(con: duckdb.DuckDBPyConnection, window: BriefWindow, insights: Sequence[Insight]) -> None:
    """Record the insights of a delivered brief, replacing any earlier record of the same date."""
    create_history(con)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        (i.key, window.period, window.date, i.impact_usd_per_month, digest(i), i.title, now) for i in insights
    ]
    with transaction(con):
        con.execute(f"DELETE FROM {TABLE} WHERE period = ? AND brief_date = ?", [window.period, window.date])
        if rows:
            con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
