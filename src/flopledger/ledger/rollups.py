"""The daily rollup the dashboard and quick reports read, kept up to date at ingest and reprice.

Rows of day x team x user x model x provider x project x api key x service tier (and the catalog
model the events were priced as, their forecast price segment) with requests, tokens and cost per
class, per-request fees included. An ingest adds its batch to the days it touched, inside its own
transaction, so the rollup never disagrees with the events; a reprice recomputes it whole.

A group may have more than one row, so readers always sum. An ingest into days the rollup already
has appends its batch's rows (``compacted`` false) rather than rewriting those days, until a day's
appended rows outnumber its compacted ones; then that day is summed into one row per group again.
Each appended row is compacted once and a day holds at most about twice its groups, so an ingest
costs in proportion to its batch, not to the days it touches: a stream of small OpenTelemetry batches
into today, or a usage export pulled again over the last days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from flopledger.ledger.columns import table_columns
from flopledger.ledger.measures import sql_measures
from flopledger.ledger.schema import DIMENSIONS
from flopledger.ledger.transaction import transaction

__all__ = [
    "ROLLUP_DIMENSIONS",
    "ROLLUP_KEYS",
    "ROLLUP_TABLE",
    "add_to_rollups",
    "create_rollup",
    "refresh_rollups",
    "rollup_is_current",
    "rollup_select",
    "rollup_state",
    "upgrade_rollup",
]

ROLLUP_TABLE = "rollup_daily"
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    *(d for d in DIMENSIONS if d not in ("org", "day", "hour")),
    "service_tier",
)
"""The report dimensions a rollup row keeps (its ``day`` is the row's own), plus the service tier;
``org`` and ``hour`` are read from the events."""

_GROUPED = (*ROLLUP_DIMENSIONS, "price_model", "priced")
"""What a rollup row is grouped by besides its day: the dimensions, the catalog model the events
were priced as (one per logged provider and model in a price version) and whether they were priced
at all: the forecast's price segments, at no extra rows but where a model is priced on some days only."""

ROLLUP_KEYS: tuple[str, ...] = ("day", *_GROUPED)
"""What a rollup row is a sum of events by; every other column but ``compacted`` is a measure to sum."""

_MEASURES = tuple(sql_measures())


def _measure_name(measure: str) -> str:
    return measure.rsplit(" AS ", 1)[1]


def _select(where: str, table: str = "events") -> str:
    dims = ", ".join(f'"{d}"' for d in _GROUPED)
    return f"SELECT CAST(ts AS DATE) AS day, {dims}, {', '.join(_MEASURES)} FROM {table} {where} GROUP BY ALL"


def rollup_select(where: str = "") -> str:
    """The SELECT that computes rollup rows from ``events`` (optionally filtered by ``where``)."""
    return _select(where)


def rollup_state(con: duckdb.DuckDBPyConnection) -> str:
    """``current``, ``outdated`` (made by an older flopledger, without this version's columns) or
    ``missing``. A rollup that only lacks ``compacted`` is current: readers never read that column."""
    return _state(_present_columns(con))


def _state(present: set[str]) -> str:
    """:func:`rollup_state` of a rollup with the columns ``present``."""
    if not present:
        return "missing"
    return "current" if set(_columns()) - {"compacted"} <= present else "outdated"


def rollup_is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ledger has a rollup table with every column this version reads."""
    return rollup_state(con) == "current"


def upgrade_rollup(con: duckdb.DuckDBPyConnection) -> bool:
    """Bring a rollup an older flopledger made up to this version; whether there was one to upgrade.

    One made before appended rows only gains its ``compacted`` column; one without this version's
    other columns is rebuilt from the events, in one transaction. Called when a ledger is opened for
    writing, so readers do not sum the events until the next ingest.
    """
    present = _present_columns(con)
    state = _state(present)
    if state == "current":
        return _add_compacted(con, present)
    if state != "outdated":
        return False
    with transaction(con):
        create_rollup(con)
    return True


def _add_compacted(con: duckdb.DuckDBPyConnection, present: set[str]) -> bool:
    """Give a current rollup (of columns ``present``) made before appended rows its ``compacted``
    column; whether it lacked it. Such a rollup was always summed into one row per group: every row
    is compacted.
    """
    if "compacted" in present:
        return False
    con.execute(f"ALTER TABLE {ROLLUP_TABLE} ADD COLUMN compacted BOOLEAN DEFAULT true")
    return True


def _present_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return table_columns(con, ROLLUP_TABLE)


def _columns() -> list[str]:
    return ["day", *_GROUPED, *(_measure_name(m).strip('"') for m in _MEASURES), "compacted"]


def create_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup table when it is missing; one an older flopledger made is rebuilt from the events."""
    present = _present_columns(con)
    if _state(present) == "current":
        _add_compacted(con, present)
        return
    con.execute(f"DROP TABLE IF EXISTS {ROLLUP_TABLE}")
    con.execute(f"CREATE TABLE {ROLLUP_TABLE} AS SELECT *, true AS compacted FROM ({_select('')})")


def refresh_rollups(con: duckdb.DuckDBPyConnection, days: Sequence[dt.date] | None = None) -> None:
    """Recompute the rollup from the events: all of it (after a reprice), or only ``days`` (after
    events of those days were replaced); ingest adds to it instead."""
    if days is not None and not days:
        return
    present = _present_columns(con)
    if _state(present) != "current":
        create_rollup(con)  # built from the events
        return
    _add_compacted(con, present)
    on = f"day IN {days_sql(days)}" if days is not None else "true"
    where = f"WHERE {events_on_days(days)}" if days is not None else ""
    con.execute(f"DELETE FROM {ROLLUP_TABLE} WHERE {on}")
    con.execute(f"INSERT INTO {ROLLUP_TABLE} BY NAME SELECT *, true AS compacted FROM ({_select(where)})")


def days_sql(days: Sequence[dt.date]) -> str:
    """``days`` as a SQL list of DATE literals: they let DuckDB skip other days' rollup row groups
    (zone maps on ``day``)."""
    return "(" + ", ".join(f"DATE '{d.isoformat()}'" for d in days) + ")"


def events_on_days(days: Sequence[dt.date]) -> str:
    """A filter on ``events`` for ``days``: the span of them on ``ts`` itself, which lets DuckDB skip
    other days' row groups (a cast of ``ts`` would not), then the days themselves."""
    lo, hi = min(days), max(days) + dt.timedelta(days=1)
    return f"ts >= TIMESTAMP '{lo}' AND ts < TIMESTAMP '{hi}' AND CAST(ts AS DATE) IN {days_sql(days)}"


def add_to_rollups(con: duckdb.DuckDBPyConnection, rows: str, times: str | None = None) -> None:
    """Add a batch of priced events (table ``rows``), before they are stored, to the rollup.

    The events are not read. A day the rollup does not have yet gets the batch's sums, compacted;
    a day it has gets them appended, or, once its appended rows (these included, counted as the
    batch's events there) would outnumber its compacted ones, is summed again from its rollup rows
    and the batch. Summed by group, the result equals :func:`refresh_rollups` of those days.

    ``times``: the same rows' ``ts`` from a table cheaper to read than ``rows`` (a view that prices
    them as it is read); the batch's days are counted there.
    """
    create_rollup(con)
    batch = dict(con.execute(f"SELECT CAST(ts AS DATE), count(*) FROM {times or rows} GROUP BY 1").fetchall())
    if not batch:
        return
    kept = {
        day: (compacted, appended)
        for day, compacted, appended in con.execute(
            f"SELECT day, count(*) FILTER (compacted), count(*) FILTER (NOT compacted) FROM {ROLLUP_TABLE} "
            f"WHERE day IN {days_sql(sorted(batch))} GROUP BY day"
        ).fetchall()
    }
    new = sorted(set(batch) - set(kept))
    merge = sorted(d for d, (compacted, appended) in kept.items() if appended + batch[d] > compacted)
    append = sorted(set(kept) - set(merge))
    if new or append:
        where = f"WHERE CAST(ts AS DATE) IN {days_sql([*new, *append])}" if merge else ""
        compacted = f"day NOT IN {days_sql(append)}" if append else "true"
        summed = _select(where, rows)
        con.execute(f"INSERT INTO {ROLLUP_TABLE} BY NAME SELECT *, {compacted} AS compacted FROM ({summed})")
    if merge:
        _compact(con, rows, merge)


def _compact(con: duckdb.DuckDBPyConnection, rows: str, days: Sequence[dt.date]) -> None:
    """Sum ``days`` of the rollup and the batch ``rows`` into one compacted row per group."""
    dims = ", ".join(f'"{d}"' for d in _GROUPED)
    kinds = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ROLLUP_TABLE})").fetchall())
    names = [_measure_name(m) for m in _MEASURES]
    sums = ", ".join(f"CAST(sum({c}) AS {kinds[c.strip(chr(34))]}) AS {c}" for c in names)
    on = days_sql(days)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _rollup_sum AS
                SELECT day, {dims}, {sums}, true AS compacted FROM (
                    SELECT * EXCLUDE (compacted) FROM {ROLLUP_TABLE} WHERE day IN {on}
                    UNION ALL BY NAME {_select(f"WHERE CAST(ts AS DATE) IN {on}", rows)}
                ) GROUP BY ALL"""
        )
        con.execute(f"DELETE FROM {ROLLUP_TABLE} WHERE day IN {on}")
        con.execute(f"INSERT INTO {ROLLUP_TABLE} BY NAME SELECT * FROM _rollup_sum")
    finally:
        con.execute("DROP TABLE IF EXISTS _rollup_sum")
