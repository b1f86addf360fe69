"""Usage-report pulls that overlap: one window's usage pulled twice, under another bucket width or grouping.

A usage report (Anthropic, OpenAI) is pulled with a bucket width (a minute, an hour, a day) and a
grouping (by model; by model and api key; ...), and its rows say neither. Two pulls of one window
under different widths or groupings give the same usage rows of different ids, so both are stored
and it counts twice. Their ids tell them apart: a row's source id (stored as its ``request_id``)
names its bucket's start and end, its model and its group values, NULL for a dimension the pull was
not grouped by.

Rows of one provider, organisation and model overlap when

* their buckets intersect without being the same bucket (a daily pull and an hourly one), or
* they are of one bucket, from different pulls, whose rows of that bucket name different dimensions
  (by model, then by model and api key).

A pull's dimensions of a bucket are those any of its rows of that bucket names: a pull grouped by
user may have a row of no user (usage without one), so one row alone does not tell. A pull is a
file of the batch; the ledger's stored rows count as one pull.

This cannot be told from one pull's files, so the ingest stores both and says so, naming the runs
that stored the other pull; which pull to keep is the user's (``flopledger ingests undo``). Two pulls
of one window under different filters (one workspace's usage, then another's) overlap in the same
way and are said to as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from flopledger.ledger.formats.tabular import sql_literal
from flopledger.ledger.schema import REPORT_ID_PREFIXES
from flopledger.ledger.validate import WHITESPACE_SQL

__all__ = ["PULLS_TABLE", "org_key", "overlapping_pulls"]

PULLS_TABLE = "_pulls"
"""The temp table :func:`overlapping_pulls` fills (the caller drops it)."""

_WIDEST_BUCKET = dt.timedelta(days=1)
"""The widest bucket the vendors' usage APIs give: a stored bucket that starts this long before the
batch's first one may still reach into it."""

_MAX_PARTS = 16
"""More parts than any report's source id has (Anthropic's: start, end, model and eight groups)."""


def org_key(alias: str) -> str:
    """A row's organisation as matched: trimmed and lower case (``Acme`` and ``acme `` are one; a
    ledger an older flopledger wrote may hold names with spaces), NULL when none."""
    return f"nullif(lower(trim({alias}.org, {WHITESPACE_SQL})), '')"


def _is_report(column: str) -> str:
    return " OR ".join(f"starts_with({column}, {sql_literal(p)})" for p in REPORT_ID_PREFIXES.values())


def _seconds(part: str) -> str:
    """A bucket bound as Unix seconds: OpenAI's are numbers, Anthropic's ISO 8601 text."""
    return (
        f"CASE WHEN json_type({part}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({part} AS DOUBLE) "
        f"ELSE epoch(TRY_CAST(json_extract_string({part}, '$') AS TIMESTAMPTZ)) END"
    )


def _pulls_sql(source: str) -> str:
    """The pulls table's columns over ``source``, a relation of ``src``, ``run``, ``event_id``,
    ``provider``, ``okey``, ``model`` and ``request_id``: each row's bucket bounds and, as bits, the
    dimensions it names (its source id's parts after start, end and model)."""
    dims = " + ".join(
        f"CASE WHEN json_type(parts[{i}]) <> 'NULL' THEN {1 << i} ELSE 0 END"
        for i in range(4, _MAX_PARTS + 1)
    )
    return f"""SELECT src, run, event_id, provider, okey, model, {_seconds("parts[1]")} AS s,
                      {_seconds("parts[2]")} AS e, CAST({dims} AS BIGINT) AS dims
               FROM (SELECT *, TRY_CAST(substr(request_id, strpos(request_id, ':') + 1) AS JSON[]) AS parts
                     FROM ({source}))
               WHERE parts IS NOT NULL"""


def overlapping_pulls(
    con: duckdb.DuckDBPyConnection, checked: str, reports: Sequence[int]
) -> tuple[int, tuple[str, ...]]:
    """How many good rows of the usage-report files ``reports`` (file indexes) in table ``checked``
    overlap rows of another pull, of this batch or stored, and the runs that stored the others.

    Rows of one pull, and the same pull ingested again, never overlap.
    """
    if not reports:
        return 0, ()
    files = ", ".join(str(i) for i in reports)
    okey = f"coalesce({org_key('c')}, '')"  # '' for none, so that it joins as a value
    batch = (
        f"SELECT _fidx AS src, CAST(NULL AS VARCHAR) AS run, event_id, provider, {okey} AS okey, model, "
        f"request_id FROM {checked} AS c "
        f"WHERE error IS NULL AND _fidx IN ({files}) AND ({_is_report('request_id')})"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PULLS_TABLE} AS {_pulls_sql(batch)}")
    lo, hi = con.execute(f"SELECT min(s), max(e) FROM {PULLS_TABLE}").fetchone() or (None, None)
    if lo is None or hi is None:
        return 0, ()
    first = dt.datetime.fromtimestamp(lo, dt.UTC).replace(tzinfo=None) - _WIDEST_BUCKET
    last = dt.datetime.fromtimestamp(hi, dt.UTC).replace(tzinfo=None)
    stored = (
        f"SELECT -1 AS src, ingest_id AS run, event_id, provider, {okey} AS okey, model, request_id "
        f"FROM events AS c WHERE ts >= ? AND ts < ? AND ({_is_report('request_id')})"
    )
    con.execute(f"INSERT INTO {PULLS_TABLE} {_pulls_sql(stored)}", [first, last])
    part = "PARTITION BY provider, okey, model ORDER BY s, e"
    row = con.execute(
        f"""WITH spans AS (  -- each pull's buckets, once
                SELECT DISTINCT src, run, provider, okey, model, s, e FROM {PULLS_TABLE}
            ), reached AS (  -- how far the buckets before each one reach
                SELECT *, max(e) OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
                FROM spans
            ), runs AS (  -- buckets that intersect, chained: a bucket no earlier one reaches starts a run
                SELECT *, sum(CASE WHEN reach IS NULL OR s >= reach THEN 1 ELSE 0 END)
                              OVER ({part} ROWS UNBOUNDED PRECEDING) AS chain
                FROM reached
            ), crossing AS (  -- a batch's bucket and another of other bounds it intersects, in one run
                SELECT a.src, provider, okey, model, a.s, a.e, b.src AS b_src, b.run AS b_run FROM runs AS a
                JOIN runs AS b USING (provider, okey, model, chain)
                WHERE a.src >= 0 AND a.s < b.e AND b.s < a.e AND (a.s <> b.s OR a.e <> b.e)
            ), pulled AS (  -- the dimensions each pull's rows of a bucket name
                SELECT src, provider, okey, model, s, e, bit_or(dims) AS dims FROM {PULLS_TABLE} GROUP BY ALL
            ), regrouped AS (  -- buckets pulled under two groupings, this batch's among them
                SELECT provider, okey, model, s, e FROM pulled GROUP BY ALL
                HAVING count(DISTINCT dims) > 1 AND bool_or(src >= 0)
            ), overlapped AS (  -- the batch's buckets that overlap, and the runs of the others
                SELECT DISTINCT src, provider, okey, model, s, e, NULL AS run FROM crossing
                UNION
                SELECT DISTINCT NULL, NULL, NULL, NULL, NULL, NULL, b_run FROM crossing WHERE b_src < 0
                UNION
                SELECT src, provider, okey, model, s, e, run FROM spans
                JOIN regrouped USING (provider, okey, model, s, e)
            )
            SELECT (SELECT count(DISTINCT event_id) FROM {PULLS_TABLE}
                    JOIN overlapped USING (src, provider, okey, model, s, e) WHERE src >= 0),
                   (SELECT list(DISTINCT run ORDER BY run) FROM overlapped WHERE run IS NOT NULL)"""
    ).fetchone()
    if row is None or not row[0]:
        return 0, ()
    return int(row[0]), tuple(str(r) for r in row[1] or ())
