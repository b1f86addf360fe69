"""Usage-report pulls that overlap: one window's usage pulled twice, under another bucket width or grouping.

A usage report (Anthropic, OpenAI) is pulled with a bucket width (a minute, an hour, a day) and a
grouping (by model; by model and api key; ...), and its rows say neither. Two pulls of one window
under different widths or groupings give the same usage rows of different ids, so both are stored
and it counts twice. A row's source id (stored as its ``request_id``) names its bucket's start and
end, its model and its group values, which is what tells the pulls apart.

A source is a file of the batch (a pull of each bucket width it holds: pulls put in one file), or
the ledger's stored rows, of a report format or a table format (an export of events holds the report
rows it was filled from); requests (OpenTelemetry spans, LiteLLM logs) are never pulls.

A source's pull of an organisation is its rows of that organisation and those of none (a row
without one is taken for each organisation's, as the ingest takes it): so the same pull ingested
once with ``--set org`` and once without is one pull. A source of no organisation's rows is one pull
of none. Of one provider and model, a pull of the batch overlaps another source's pull of its
organisation (or of none) when

* a bucket of one intersects a bucket of the other without being the same bucket (daily and hourly
  pulls), or
* their rows of one bucket are not the same groups, and cannot be one grouping pulled at two
  times. A bucket's counts only grow until it closes, and a group once in it stays, so of one
  grouping, the later pull has every group of the earlier one, each as large or larger. So: each
  pull has a group the other lacks (by api key, then by workspace), or the pull with more groups
  has a smaller count of a group both have (by model, then by model and api key: the row of no
  api key, Console usage, is the by-model row's group and smaller), or the pull with fewer groups a
  larger one (the other way round), or of the same groups some are larger and some smaller.

A group of a NULL value (usage of no api key) that later gains valued groups is one grouping pulled
twice, and a pull older than the stored one is too: neither is said. Pulls filtered to part of the
usage (one workspace each) cannot be told from these: grouped alike they are one row, grouped by
what they are filtered by they are said to overlap.

A pull of none is any organisation's: it overlaps a source only when it differs from every one of
the source's pulls it meets (of one it agrees with, it is that one's: acme's pull again, without
``--set org``, beside globex's).

Buckets no vendor gives (empty, wider than a day, or starting after the year 9999: bounds in
milliseconds) are left out.

The runs named are those that hold rows of the other pull that stay, for the pull judged: not rows
the batch restates (they leave), nor rows the pull has again, as large or larger (its own, earlier).

This cannot be told from one pull's files, so the ingest stores both and says so, naming the runs
that stored the other pull; which pull to keep is the user's (``flopledger ingests undo``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from flopledger.ledger.formats.base import FORMATS
from flopledger.ledger.formats.tabular import sql_literal
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS, REPORT_ID_PREFIXES, USAGE_REPORT_FORMATS
from flopledger.ledger.validate import WHITESPACE_SQL

__all__ = [
    "PULLS_TABLE",
    "Overlap",
    "is_report",
    "org_key",
    "overlapping_pulls",
    "pulled_searches",
    "pulled_totals",
    "pulling_formats",
]

PULLS_TABLE = "_pulls"
"""The temp table :func:`overlapping_pulls` fills (the caller drops it)."""

_WIDEST_BUCKET = dt.timedelta(days=1)
"""The widest bucket the vendors' usage APIs give: a stored bucket that starts this long before the
batch's first one may still reach into it."""


_WIDTHS = 1_000
"""A batch's pulls are numbered file x bucket width: as many widths as a file may hold."""

_LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z in Unix seconds: a bucket that starts later (a bound in milliseconds) is none."""


def org_key(alias: str) -> str:
    """A row's organisation as matched: trimmed and lower case (``Acme`` and ``acme `` are one; a
    ledger an older flopledger wrote may hold names with spaces), NULL when none."""
    return f"nullif(lower(trim({alias}.org, {WHITESPACE_SQL})), '')"


def pulled_totals(alias: str) -> dict[str, str]:
    """A usage-report row's totals as the vendor reports them: requests, all input (its uncached
    part shrinks when more of the input was read from the cache), output. A bucket pulled again
    restates its row when none of them is smaller and one is larger, or its searches
    (:func:`pulled_searches`) are."""

    def col(name: str) -> str:
        return f'coalesce({alias}."{name}", 0)'

    all_input = " + ".join(col(c) for c in BILLED_TOKEN_COLUMNS[:4])  # every input class
    return {"requests": col("requests"), "input": f"({all_input})", "output": col("output_tokens")}


def pulled_searches(alias: str) -> str:
    """A usage-report row's web searches: a bucket pulled again whose searches grew while its
    totals did not restates its row; fewer searches alone never stop a restatement."""
    return f'coalesce({alias}."web_search_requests", 0)'


def is_report(column: str) -> str:
    """Whether a row's source id (``column``, its ``request_id``) is a usage-report row's."""
    return " OR ".join(f"starts_with({column}, {sql_literal(p)})" for p in REPORT_ID_PREFIXES.values())


def _seconds(part: str) -> str:
    """A bucket bound as Unix seconds: OpenAI's are numbers (or their text), Anthropic's ISO 8601 text."""
    return (
        f"CASE WHEN json_type({part}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({part} AS DOUBLE) "
        f"ELSE coalesce(TRY_CAST(json_extract_string({part}, '$') AS DOUBLE), "
        f"epoch(TRY_CAST(json_extract_string({part}, '$') AS TIMESTAMPTZ))) END"
    )


def _rows_sql(src: str, run: str, table: str, where: str) -> str:
    """The pulls table's rows of ``table`` (alias ``c``) that ``where`` keeps and whose id is a
    usage report's: each with its pull (``src``, ``run``), organisation (``''`` for none, so that
    it joins as a value), bucket bounds and totals. A bucket no vendor gives (empty, or wider than
    :data:`_WIDEST_BUCKET`: its end in milliseconds, say) is left out."""
    totals = pulled_totals("c")
    return f"""SELECT src, run, event_id, provider, okey, model, {_seconds("parts[1]")} AS s,
                      {_seconds("parts[2]")} AS e, req, inp, outp
               FROM (SELECT {src} AS src, {run} AS run, event_id, provider,
                            coalesce({org_key("c")}, '') AS okey, model,
                            {totals["requests"]} AS req, {totals["input"]} AS inp, {totals["output"]} AS outp,
                            TRY_CAST(substr(request_id, strpos(request_id, ':') + 1) AS JSON[]) AS parts
                     FROM {table} AS c WHERE ({where}) AND ({is_report("request_id")}))
               WHERE parts IS NOT NULL AND s >= 0 AND s < {_LAST_SECOND} AND e > s
                 AND e - s <= {_WIDEST_BUCKET.total_seconds()}"""


_ONE_ORG = "(a.{k} = b.{k} OR a.{k} = '' OR b.{k} = '')"
"""Whether ``a`` and ``b`` can be of one organisation, by their column ``{k}`` ('' for none: any)."""

_BUCKET = ("provider", "model", "s", "e")


def _same_bucket(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in _BUCKET)


def _no_smaller(a: str, b: str) -> str:
    """Whether row ``a`` counts as much as row ``b`` or more, in every total."""
    return f"{a}.req >= {b}.req AND {a}.inp >= {b}.inp AND {a}.outp >= {b}.outp"


_ORDER = "PARTITION BY provider, model ORDER BY s, e, src, org, run"
"""Buckets in time order, ties broken by pull: each window over them sees one order."""

_OVERLAPS = f"""
WITH labelled AS (  -- the organisations each source holds rows of; the stored rows, the batch's too
    SELECT DISTINCT src, okey AS org FROM {PULLS_TABLE} WHERE okey <> ''
    UNION
    SELECT -1, okey FROM {PULLS_TABLE} WHERE src >= 0 AND okey <> ''
), pull_orgs AS (  -- the pulls: a source as each organisation's it holds, or of none when it holds none
    SELECT src, org FROM labelled
    UNION
    SELECT DISTINCT src, '' FROM {PULLS_TABLE} WHERE src NOT IN (SELECT src FROM labelled)
), members AS (  -- a pull's rows: its organisation's and those of none (taken for each one's)
    SELECT o.src, o.org, p.run, p.event_id, p.okey, p.provider, p.model, p.s, p.e, p.req, p.inp, p.outp
    FROM pull_orgs AS o JOIN {PULLS_TABLE} AS p ON p.src = o.src AND (p.okey = o.org OR p.okey = '')
), spans AS (  -- each pull's buckets (the stored pull's, of each run), once
    SELECT DISTINCT src, org, run, provider, model, s, e FROM members
), reached AS (  -- how far the buckets before each one reach
    SELECT *, max(e) OVER ({_ORDER} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM spans
), chained AS (  -- intersecting buckets, chained: a bucket no earlier one reaches starts a chain
    SELECT *, sum(CASE WHEN reach IS NULL OR s >= reach THEN 1 ELSE 0 END)
                  OVER ({_ORDER} ROWS UNBOUNDED PRECEDING) AS chain
    FROM reached
), touching AS (  -- a batch's bucket, and another source's pull's that intersects it, of one organisation
    SELECT a.src, a.org, provider, model, a.s, a.e, b.src AS b_src, b.org AS b_org, b.run AS b_run,
        b.s AS b_s, b.e AS b_e
    FROM chained AS a JOIN chained AS b USING (provider, model, chain)
    WHERE a.src >= 0 AND a.src <> b.src AND {_ONE_ORG.format(k="org")} AND a.s < b.e AND b.s < a.e
), grouped AS (  -- each pull's rows of a bucket, by id (a row in a pull twice: its largest)
    SELECT src, org, provider, model, s, e, event_id, max(req) AS req, max(inp) AS inp, max(outp) AS outp
    FROM members GROUP BY ALL
), pairs AS (  -- the same bucket in two pulls
    SELECT DISTINCT src, org, b_src, b_org, provider, model, s, e FROM touching WHERE b_s = s AND b_e = e
), compared AS (  -- their groups: each one's own, and how the counts of the groups both have differ
    SELECT src, org, b_src, b_org, provider, model, s, e,
        count(*) FILTER (y.event_id IS NULL) AS only_a, count(*) FILTER (x.event_id IS NULL) AS only_b,
        coalesce(bool_or(x.req > y.req OR x.inp > y.inp OR x.outp > y.outp), false) AS grew,
        coalesce(bool_or(x.req < y.req OR x.inp < y.inp OR x.outp < y.outp), false) AS shrank
    FROM (SELECT p.*, g.event_id, g.req, g.inp, g.outp FROM pairs AS p JOIN grouped AS g
            ON g.src = p.src AND g.org = p.org AND {_same_bucket("g", "p")}) AS x
    FULL JOIN (SELECT p.*, g.event_id, g.req, g.inp, g.outp FROM pairs AS p JOIN grouped AS g
            ON g.src = p.b_src AND g.org = p.b_org AND {_same_bucket("g", "p")}) AS y
      USING (src, org, b_src, b_org, provider, model, s, e, event_id)
    GROUP BY ALL
), verdicts AS (  -- whether the other pull cannot be one width and grouping pulled at another time
    SELECT src, org, provider, model, s, e, b_src, b_org, bool_or(differs) AS differs
    FROM (
        SELECT src, org, provider, model, s, e, b_src, b_org, true AS differs FROM touching
        WHERE b_s <> s OR b_e <> e
        UNION ALL
        SELECT src, org, provider, model, s, e, b_src, b_org,
            (only_a > 0 AND only_b > 0) OR (only_a > 0 AND shrank) OR (only_b > 0 AND grew)
            OR (grew AND shrank)
        FROM compared)
    GROUP BY ALL
), judged AS (  -- of a batch's bucket, whether another source's pulls overlap it: a pull of an
    -- organisation meets one pull of the source (that organisation's); a pull of none is any
    -- organisation's, and overlaps only when it differs from every one's it meets (of one it agrees
    -- with, it is that one's)
    SELECT src, org, provider, model, s, e, b_src, bool_and(differs) AS overlaps
    FROM verdicts GROUP BY src, org, provider, model, s, e, b_src
), blamed AS (  -- the other pulls behind each overlapping bucket
    SELECT v.* FROM verdicts AS v JOIN judged AS j USING (src, org, provider, model, s, e, b_src)
    WHERE j.overlaps AND v.differs
), restated AS (  -- stored rows this batch restates, as the ingest judged: they leave
    SELECT DISTINCT event_id, coalesce({org_key("r")}, '') AS okey FROM {{restated}} AS r
), kept AS (  -- of each batch pull, a stored run's rows of a bucket that stay and that it does not
    -- have again as large or larger (those are its own pull's, earlier)
    SELECT DISTINCT p.src, p.org, m.run, m.org AS b_org, m.provider, m.model, m.s, m.e
    FROM (SELECT DISTINCT src, org FROM members WHERE src >= 0) AS p JOIN members AS m ON m.src < 0
    WHERE NOT EXISTS (SELECT 1 FROM restated AS r WHERE r.event_id = m.event_id AND r.okey = m.okey)
      AND NOT EXISTS (SELECT 1 FROM members AS a WHERE a.src = p.src AND a.org = p.org
                      AND a.event_id = m.event_id AND {_no_smaller("a", "m")})
)
SELECT
    (SELECT count(DISTINCT event_id) FROM members
     WHERE src >= 0
       AND (src, org, provider, model, s, e) IN (SELECT (src, org, provider, model, s, e) FROM blamed)),
    (SELECT list(DISTINCT t.b_run ORDER BY t.b_run) FROM touching AS t
     JOIN blamed USING (src, org, provider, model, s, e, b_src, b_org)
     JOIN kept AS k ON k.src = t.src AND k.org = t.org AND k.run = t.b_run AND k.b_org = t.b_org
                   AND k.provider = t.provider AND k.model = t.model AND k.s = t.b_s AND k.e = t.b_e
     WHERE t.b_src < 0),
    (SELECT count(*) > 0 FROM blamed WHERE b_src >= 0)
"""


@dataclass(frozen=True)
class Overlap:
    """What :func:`overlapping_pulls` found."""

    rows: int = 0
    """Good usage-report rows of the batch that overlap another pull of their window."""
    runs: tuple[str, ...] = ()
    """The stored runs that hold rows of the other pulls (rows that stay)."""
    within_run: bool = False
    """Whether files of the batch overlap each other too."""


def pulling_formats() -> tuple[str, ...]:
    """The input formats whose rows may be usage-report rows: the reports', and the tables' (an
    export of events holds the rows of the reports it was filled from). Requests never are."""
    tables = (name for name, fmt in FORMATS.items() if fmt.kind == "table")
    return (*USAGE_REPORT_FORMATS, *sorted(tables))


def overlapping_pulls(
    con: duckdb.DuckDBPyConnection, checked: str, files: Sequence[int], restated: str
) -> Overlap:
    """What good usage-report rows in table ``checked``, of its files ``files`` (indexes; of a
    :func:`pulling_formats` format), overlap another pull of their window, of this batch or stored,
    and the runs that stored the others.

    ``restated`` holds the ``event_id`` and ``org`` of the stored rows the batch restates (they
    leave, so no run is named for them).
    """
    if not files:
        return Overlap()
    ours = f"error IS NULL AND _fidx IN ({', '.join(str(int(i)) for i in files)})"
    batch = _rows_sql("_fidx", "CAST(NULL AS VARCHAR)", checked, ours)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PULLS_TABLE} AS {batch}")
    # A file of pulls of more than one bucket width (pulls put together, as `jq -s` does) is a pull
    # of each width: they overlap one another as two files would. (A vendor gives one width a pull.)
    con.execute(
        f"""UPDATE {PULLS_TABLE} SET src = w.src * {_WIDTHS} + w.k
            FROM (SELECT src, width, CAST(row_number() OVER (PARTITION BY src ORDER BY width) - 1 AS INTEGER)
                         AS k
                  FROM (SELECT DISTINCT src, e - s AS width FROM {PULLS_TABLE})) AS w
            WHERE {PULLS_TABLE}.src = w.src AND {PULLS_TABLE}.e - {PULLS_TABLE}.s = w.width"""
    )
    lo, hi = con.execute(f"SELECT min(s), max(e) FROM {PULLS_TABLE}").fetchone() or (None, None)
    if lo is None or hi is None:
        return Overlap()
    try:
        first = dt.datetime.fromtimestamp(lo, dt.UTC).replace(tzinfo=None) - _WIDEST_BUCKET
        last = dt.datetime.fromtimestamp(hi, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):  # bounds beyond what a timestamp holds: nothing to match
        return Overlap()
    formats = ", ".join(sql_literal(f) for f in pulling_formats())
    stored = _rows_sql("-1", "ingest_id", "events", f"ts >= ? AND ts < ? AND source_format IN ({formats})")
    con.execute(f"INSERT INTO {PULLS_TABLE} {stored}", [first, last])
    row = con.execute(_OVERLAPS.format(restated=restated)).fetchone()
    if row is None or not row[0]:
        return Overlap()
    return Overlap(int(row[0]), tuple(str(r) for r in row[1] or () if r is not None), bool(row[2]))
