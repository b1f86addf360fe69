"""The dashboard's reads: daily rollups per team, user and model, always filtered by the caller's scope.

Every function takes a :class:`Scope`; a viewer's scope names its team and every query adds
``team = ?``, so another team's rows are never read, let alone returned. Reads go to the
``rollup_daily`` table kept up to date at ingest; a ledger without it is aggregated from ``events``
on the fly (correct, but slower on a large ledger).

>>> from flopledger.ledger.store import open_ledger
>>> spend_by(open_ledger(":memory:"), Scope(None), "team")
[]
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from flopledger.ledger.measures import EFFECTIVE_COSTS, SUMMED_COUNTS
from flopledger.ledger.repricing import REPRICED_AT
from flopledger.ledger.rollups import ROLLUP_DIMENSIONS, ROLLUP_TABLE, rollup_is_current, rollup_select
from flopledger.ledger.schema import BILLED_CLASSES, BILLED_TOKEN_COLUMNS

__all__ = [
    "GROUPABLE",
    "OVERVIEW_FRAME",
    "Scope",
    "daily_by_token_class",
    "daily_usage_rows",
    "model_prices",
    "overview_frame_sql",
    "rollup_as_events",
    "rollup_source",
    "spend_by",
    "team_exists",
    "totals",
    "user_exists",
]

GROUPABLE: tuple[str, ...] = ROLLUP_DIMENSIONS


@dataclass(frozen=True)
class Scope:
    """What the caller may see: ``team`` None is every team (admin), else that team only."""

    team: str | None
    since: dt.date | None = None
    until: dt.date | None = None

    def narrowed(self, **filters: str) -> tuple[str, list[Any]]:
        """A WHERE clause (with parameters) of the scope plus equality ``filters``."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.team is not None:
            clauses.append('"team" = ?')
            params.append(self.team)
        for column, value in filters.items():
            if column not in GROUPABLE:
                raise ValueError(f"not a rollup dimension: {column}")
            clauses.append(f'"{column}" = ?')
            params.append(value)
        if self.since is not None:
            clauses.append("day >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("day <= ?")
            params.append(self.until)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def rollup_source(con: duckdb.DuckDBPyConnection) -> str:
    """``rollup_daily``, or the same rows aggregated from ``events`` when the ledger has no current rollup."""
    return ROLLUP_TABLE if rollup_is_current(con) else f"({rollup_select()})"


SEGMENT = ("price_model", "service_tier", "priced")
"""The price segment of a rollup row, as the forecast reads it, and whether it was priced."""

OVERVIEW_FRAME = "web_overview_frame"
"""Name under which the overview's compact day x team x model frame is registered on a cursor."""


def overview_frame_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The rollup summed to day x team x model and price segment: everything the overview reads
    (the forecast re-prices by segment), a few thousand rows."""
    counts = [f'sum("{c}")::BIGINT AS "{c}"' for c in SUMMED_COUNTS]
    costs = [f'sum("{c}")::DOUBLE AS "{c}"' for c in EFFECTIVE_COSTS]
    sums = ", ".join([*counts, *costs])
    return (
        f"SELECT day, team, model, {', '.join(SEGMENT)}, {sums}, "
        f"sum(unpriced_tokens)::BIGINT AS unpriced_tokens FROM {rollup_source(con)} GROUP BY ALL"
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _sum_columns() -> str:
    cols = [f'coalesce(sum("{c}"), 0) AS "{c}"' for c in (*SUMMED_COUNTS, *EFFECTIVE_COSTS)]
    cols.append("coalesce(sum(unpriced_tokens), 0) AS unpriced_tokens")
    return ", ".join(cols)


def totals(
    con: duckdb.DuckDBPyConnection, scope: Scope, *, source: str | None = None, **filters: str
) -> dict[str, Any]:
    """Requests, tokens and cost per token class over the scope, with the first and last day."""
    where, params = scope.narrowed(**filters)
    sql = (
        f"SELECT {_sum_columns()}, min(day) AS first_day, max(day) AS last_day "
        f"FROM {source or rollup_source(con)} {where}"
    )
    return _rows(con, sql, params)[0]


def last_priced_day(con: duckdb.DuckDBPyConnection, *, source: str | None = None) -> dt.date | None:
    """The ledger's latest day with priced spend (every scope's), as the budget check reads it."""
    row = con.execute(f"SELECT max(day) FROM {source or rollup_source(con)} WHERE priced").fetchone()
    return row[0] if row else None


def spend_by(
    con: duckdb.DuckDBPyConnection,
    scope: Scope,
    dimension: str,
    *,
    limit: int | None = None,
    source: str | None = None,
    **filters: str,
) -> list[dict[str, Any]]:
    """Spend per value of ``dimension`` (largest first), with its tokens (and distinct users, when the
    source has users)."""
    if dimension not in GROUPABLE:
        raise ValueError(f"cannot group by {dimension}")
    where, params = scope.narrowed(**filters)
    users = ', count(DISTINCT "user") AS users' if source is None else ""
    sql = (
        f'SELECT "{dimension}" AS name, {_sum_columns()}{users} '
        f"FROM {source or rollup_source(con)} {where} GROUP BY 1 ORDER BY cost_usd DESC, name NULLS LAST"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return _rows(con, sql, params)


def daily_by_token_class(
    con: duckdb.DuckDBPyConnection, scope: Scope, *, source: str | None = None, **filters: str
) -> list[dict[str, Any]]:
    """Per day: cost of each billed token class, web searches, per-request fees (the rest of
    ``cost_usd``) and total."""
    where, params = scope.narrowed(**filters)
    classes = ", ".join(
        f'coalesce(sum("{c}_cost_usd"), 0) AS "{c}_cost_usd"' for c in (*BILLED_TOKEN_COLUMNS, "web_search")
    )
    sql = (  # the fees as stored, not the total less the classes (which leaves -4e-14 where there are none)
        f"SELECT day, {classes}, coalesce(sum(request_cost_usd), 0) AS request_fees_usd, "
        f"coalesce(sum(cost_usd), 0) AS cost_usd FROM {source or rollup_source(con)} {where} "
        "GROUP BY day ORDER BY day"
    )
    return _rows(con, sql, params)


def daily_usage_rows(
    con: duckdb.DuckDBPyConnection, scope: Scope, by: tuple[str, ...], *, source: str | None = None
) -> pa.Table:
    """Priced usage per ``by`` group, day and price segment, as an Arrow table: the ledger's own
    :func:`~flopledger.ledger.forecast_prices.daily_usage`, run over the scope's rollup rows."""
    where, params = scope.narrowed()
    scoped = f"SELECT * FROM ({rollup_as_events(source or rollup_source(con))}) {where}"
    sql = f"WITH {_SCOPED} AS ({scoped}) {_daily_usage_sql(by)}"
    return con.execute(sql, params).to_arrow_table()


def rollup_as_events(source: str) -> str:
    """Rollup rows (of table ``source``) as the ledger's functions read events: a ``ts`` at the start
    of the row's day, and no cost where the row was not priced (as an unpriced event has none)."""
    return (
        f"SELECT CAST(day AS TIMESTAMP) AS ts, * REPLACE (CASE WHEN priced THEN cost_usd END AS cost_usd) "
        f"FROM {source}"
    )


_SCOPED = "_web_scoped_rollup"


@functools.lru_cache(maxsize=16)
def _daily_usage_sql(by: tuple[str, ...]) -> str:
    """``daily_usage`` compiled once per grouping, over the scoped rows named :data:`_SCOPED`."""
    import ibis

    from flopledger.ledger.forecast_prices import daily_usage

    schema = {"ts": "timestamp", **dict.fromkeys(by, "string"), "price_model": "string"}
    schema |= {"service_tier": "string", "cost_usd": "float64"}
    for quantity, cost in BILLED_CLASSES:
        schema |= {quantity: "int64", cost: "float64"}
    return str(ibis.to_sql(daily_usage(ibis.table(schema, name=_SCOPED), by), dialect="duckdb"))


def team_exists(con: duckdb.DuckDBPyConnection, scope: Scope, team: str) -> bool:
    """Whether ``team`` has usage the scope may see (a viewer's other teams never do)."""
    if scope.team is not None and scope.team != team:
        return False
    row = con.execute(f"SELECT 1 FROM {rollup_source(con)} WHERE team = ? LIMIT 1", [team]).fetchone()
    return row is not None


def user_exists(con: duckdb.DuckDBPyConnection, scope: Scope, team: str, user: str) -> bool:
    if not team_exists(con, scope, team):
        return False
    sql = f'SELECT 1 FROM {rollup_source(con)} WHERE team = ? AND "user" = ? LIMIT 1'
    return con.execute(sql, [team, user]).fetchone() is not None


def model_prices(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[dict[str, Any]]:
    """Current standard-tier base price per model the scope used (USD per million tokens)."""
    where, params = Scope(scope.team).narrowed()
    sql = f"""
        WITH used AS (SELECT DISTINCT provider, model FROM {rollup_source(con)} {where}),
        -- When each price version last priced events: an ingest, or a reprice of all history.
        used_at AS (SELECT price_version AS v, max(finished_at) AS last_at FROM ingests
                    WHERE status = 'committed' AND price_version IS NOT NULL GROUP BY 1
                    UNION ALL
                    SELECT substr(key, {len(REPRICED_AT) + 1}), TRY_CAST(value AS TIMESTAMP) FROM meta
                    WHERE starts_with(key, '{REPRICED_AT}')),
        version_at AS (SELECT v, max(last_at) AS last_at FROM used_at GROUP BY 1),
        -- Each model's mapping in the version that priced it last (an ingest of other models under
        -- another version leaves it as it was).
        -- (a model the last version left unpriced has no price here: not an older version's)
        mapped AS (SELECT * FROM (
                       SELECT u.provider, u.model, m.provider_id, m.model_id, m.price_version FROM used u
                       JOIN model_map m ON m.provider = coalesce(u.provider, '') AND m.model = u.model
                       LEFT JOIN version_at va ON va.v = m.price_version
                       QUALIFY row_number() OVER (
                           PARTITION BY u.provider, u.model
                           ORDER BY va.last_at DESC NULLS LAST, m.price_version DESC) = 1)
                   WHERE provider_id IS NOT NULL),
        ranked AS (SELECT mp.provider, mp.model, p.*, row_number() OVER (
                       PARTITION BY mp.provider, mp.model ORDER BY p.valid_from DESC NULLS LAST) AS rk
                   FROM mapped mp JOIN prices p ON p.provider_id = mp.provider_id AND p.model_id = mp.model_id
                   WHERE p.price_version = mp.price_version AND p.variant = 'standard'
                     AND p.tier_above_tokens = -1)
        SELECT provider, model, provider_id || '/' || model_id AS price_model,
               input_usd_per_mtok, cache_read_usd_per_mtok, cache_write_5m_usd_per_mtok,
               cache_write_1h_usd_per_mtok, output_usd_per_mtok, usd_per_request, discount_pct, source
        FROM ranked WHERE rk = 1 ORDER BY provider, model
    """
    return _rows(con, sql, params)
