"""The daily rollup the dashboard and quick reports read, kept up to date at ingest and reprice.

One row per day x team x user x model x provider x project x api key x service tier with requests,
tokens and cost per class. Refreshing recomputes only the days an ingest touched, inside the
ingest's own transaction, so the rollup never disagrees with the events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS, COST_COLUMNS, TOKEN_COLUMNS

__all__ = ["ROLLUP_DIMENSIONS", "ROLLUP_TABLE", "create_rollup", "refresh_rollups", "rollup_select"]

ROLLUP_TABLE = "rollup_daily"
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "team",
    "user",
    "model",
    "provider",
    "project",
    "api_key",
    "service_tier",
)

_MEASURES = (
    "sum(requests)::BIGINT AS requests",
    *(f'sum("{c}")::BIGINT AS "{c}"' for c in TOKEN_COLUMNS),
    *(f'sum(coalesce("{c}", 0)) AS "{c}"' for c in COST_COLUMNS),
    "sum(coalesce(cost_usd, 0)) AS cost_usd",
    "sum(coalesce(list_cost_usd, 0)) AS list_cost_usd",
    "sum(CASE WHEN priced THEN 0 ELSE "
    + " + ".join(f'"{c}"' for c in BILLED_TOKEN_COLUMNS)
    + " END)::BIGINT AS unpriced_tokens",
    "count(*)::BIGINT AS events",
)


def _select(where: str) -> str:
    dims = ", ".join(f'"{d}"' for d in ROLLUP_DIMENSIONS)
    return f"SELECT CAST(ts AS DATE) AS day, {dims}, {', '.join(_MEASURES)} FROM events {where} GROUP BY ALL"


def rollup_select(where: str = "") -> str:
    """The SELECT that computes rollup rows from ``events`` (optionally filtered by ``where``)."""
    return _select(where)


def create_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup table (empty) when it is missing."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {ROLLUP_TABLE} AS {_select('WHERE false')}")


def refresh_rollups(con: duckdb.DuckDBPyConnection, days: Sequence[dt.date] | None = None) -> None:
    """Recompute the rollup for ``days`` (the days an ingest touched), or all of it."""
    create_rollup(con)
    if days is None:
        con.execute(f"DELETE FROM {ROLLUP_TABLE}")
        con.execute(f"INSERT INTO {ROLLUP_TABLE} {_select('')}")
        return
    if not days:
        return
    listed = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(days))
    lo, hi = min(days), max(days) + dt.timedelta(days=1)
    # Literal bounds on ts let DuckDB skip row groups outside the touched days (zone maps).
    where = (
        f"WHERE ts >= TIMESTAMP '{lo.isoformat()}' AND ts < TIMESTAMP '{hi.isoformat()}' "
        f"AND CAST(ts AS DATE) IN ({listed})"
    )
    con.execute(f"DELETE FROM {ROLLUP_TABLE} WHERE day IN ({listed})")
    con.execute(f"INSERT INTO {ROLLUP_TABLE} {_select(where)}")
