"""The ledger's DuckDB file: tables, opening, and schema upgrades.

One file holds the ledger. Opening it creates missing tables and adds missing columns, so a file
written by an older flopledger keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.columns import columns_by_table
from flopledger.ledger.fingerprints import FINGERPRINT_COLUMNS
from flopledger.ledger.formats.otel import REMOTE_AGENT_TAG
from flopledger.ledger.rollups import upgrade_rollup
from flopledger.ledger.schema import EVENT_COLUMNS, PRICED_COLUMNS, Column
from flopledger.ledger.transaction import transaction
from flopledger.ledger.validate import searches_in_tags

__all__ = [
    "EVENTS_TABLE_COLUMNS",
    "NEW_LEDGER_CONFIG",
    "REMOTE_AGENTS",
    "count_of",
    "create_schema",
    "index_agent_spans",
    "open_ledger",
]

EVENTS_TABLE_COLUMNS: tuple[Column, ...] = (*EVENT_COLUMNS, *FINGERPRINT_COLUMNS, *PRICED_COLUMNS)

_TABLES: dict[str, tuple[Column, ...]] = {
    "events": EVENTS_TABLE_COLUMNS,
    "quarantine": (
        Column("ingest_id", "VARCHAR", "The ingest run."),
        Column("source_format", "VARCHAR", "Input format."),
        Column("source_file", "VARCHAR", "File the bad row came from."),
        Column("source_line", "BIGINT", "Line or record number in that file."),
        Column("field", "VARCHAR", "The field at fault, when one is."),
        Column("reason", "VARCHAR", "What is wrong, and what to do."),
        Column("raw", "VARCHAR", "The row as read, so nothing is lost."),
        Column(
            "row_key",
            "VARCHAR",
            "Hash of file, raw text and which of the file's rows of that text it is (not its line: a row "
            "that moves in its file is the same row): re-ingesting never duplicates it.",
        ),
        Column("quarantined_at", "TIMESTAMP", "When it was quarantined, UTC."),
        Column(
            "file_key",
            "VARCHAR",
            "The file whatever way its path was typed (its resolved path; a named source as named).",
        ),
        Column("last_seen_at", "TIMESTAMP", "When a run last read this bad row (first or again), UTC."),
        Column(
            "content_key",
            "VARCHAR",
            "Hash of its raw text and which of its file's rows of that text it is, not of the file: a "
            "file renamed or moved keeps its bad rows.",
        ),
    ),
    "ingests": (
        Column("ingest_id", "VARCHAR", "Id of the run."),
        Column("started_at", "TIMESTAMP", "UTC."),
        Column("finished_at", "TIMESTAMP", "UTC; NULL while running or after a crash."),
        Column("status", "VARCHAR", "running, committed, failed, interrupted or undone."),
        Column("source_format", "VARCHAR", "Format(s) read."),
        Column("files", "VARCHAR", "JSON list of files."),
        Column("file_keys", "VARCHAR", "JSON list of the files as quarantine.file_key names them."),
        Column("rows_read", "BIGINT", "Rows read."),
        Column("rows_stored", "BIGINT", "New events stored."),
        Column("rows_quarantined", "BIGINT", "Rows sent to quarantine."),
        Column(
            "rows_duplicate", "BIGINT", "Rows skipped as already in the ledger (or repeated in the input)."
        ),
        Column(
            "rows_restated",
            "BIGINT",
            "Of the rows stored, those that replaced a stored row: a usage-report bucket pulled before, or a "
            "request stored without the web searches its row now says.",
        ),
        Column(
            "rows_superseded",
            "BIGINT",
            "Stored remote agents' spans this run removed: their model calls, which they summed, came in it.",
        ),
        Column(
            "rows_overlapping",
            "BIGINT",
            "Usage-report rows read that overlap another pull of their window, of another bucket width or "
            "grouping: the same usage may count twice.",
        ),
        Column("price_version", "VARCHAR", "Price table version used."),
        Column("message", "VARCHAR", "Error message of a failed run."),
    ),
    "prices": (
        Column("price_version", "VARCHAR", "Catalog version, mapping rules and overrides hash."),
        Column("provider_id", "VARCHAR", "Catalog provider."),
        Column("model_id", "VARCHAR", "Catalog model."),
        Column("variant", "VARCHAR", "Service tier the row applies to: standard, batch, priority, flex."),
        Column("valid_from", "TIMESTAMP", "First instant the price applies (UTC), inclusive."),
        Column("valid_to", "TIMESTAMP", "First instant it no longer applies, exclusive."),
        Column("tod_from_s", "INTEGER", "Time-of-day window start, seconds after UTC midnight, inclusive."),
        Column("tod_to_s", "INTEGER", "Time-of-day window end, exclusive (86400 = midnight)."),
        Column("tier_above_tokens", "BIGINT", "The row applies when total input exceeds this (-1 = base)."),
        Column("tier_upto_tokens", "BIGINT", "... and is at most this."),
        Column("input_usd_per_mtok", "DOUBLE", "Uncached input."),
        Column("cache_read_usd_per_mtok", "DOUBLE", "Cache reads."),
        Column("cache_write_5m_usd_per_mtok", "DOUBLE", "Cache writes, 5-minute TTL."),
        Column("cache_write_1h_usd_per_mtok", "DOUBLE", "Cache writes, 1-hour TTL."),
        Column("output_usd_per_mtok", "DOUBLE", "Output (reasoning included, unless priced apart)."),
        Column("usd_per_request", "DOUBLE", "Per-request fee."),
        Column("usd_per_web_search", "DOUBLE", "Per server-side web search."),
        Column("discount_pct", "DOUBLE", "Negotiated discount from the overrides file, percent."),
        Column("source", "VARCHAR", "Where the price comes from."),
        Column(
            "output_reasoning_usd_per_mtok",
            "DOUBLE",
            "Reasoning output, where the model prices it apart from the rest (NULL: as output).",
        ),
    ),
    "model_map": (
        Column("price_version", "VARCHAR", "Price table version the mapping was made with."),
        Column("provider", "VARCHAR", "Provider as logged."),
        Column("model", "VARCHAR", "Model as logged."),
        Column("provider_id", "VARCHAR", "Catalog provider it maps to (NULL = unknown)."),
        Column("model_id", "VARCHAR", "Catalog model it maps to (NULL = unknown)."),
    ),
    "agent_spans": (
        Column("trace_id", "VARCHAR", "Trace of a remote agent's span stored for want of its model calls."),
        Column(
            "event_id", "VARCHAR", "That span's event, which model calls of the trace arriving later replace."
        ),
        Column("ts", "TIMESTAMP", "Its start, UTC."),
    ),
    "quarantine_reads": (
        Column("row_key", "VARCHAR", "A quarantined row (quarantine.row_key)."),
        Column("ingest_id", "VARCHAR", "A run that read it: the one that quarantined it, or a later one."),
    ),
    "meta": (
        Column("key", "VARCHAR", "Setting name."),
        Column("value", "VARCHAR", "Setting value."),
    ),
}


def _ddl(name: str, columns: Iterable[Column]) -> str:
    cols = ", ".join(f'"{c.name}" {c.duckdb_type}' for c in columns)
    return f'CREATE TABLE IF NOT EXISTS "{name}" ({cols})'


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger's tables in ``con`` and add any column a newer flopledger declares."""
    existing = columns_by_table(con)  # one lookup for every table
    for name, columns in _TABLES.items():
        if name not in existing:
            if "events" in existing and name in _TABLE_BACKFILLS:
                _add_table(con, name, columns)
            else:
                con.execute(_ddl(name, columns))
            continue
        for c in columns:
            if c.name not in existing[name]:
                _add_column(con, name, c)


def _add_table(con: duckdb.DuckDBPyConnection, name: str, columns: Iterable[Column]) -> None:
    """Add a table a newer flopledger declares to a ledger that has events, filled from them in the
    same transaction."""
    with transaction(con):
        con.execute(_ddl(name, columns))
        _TABLE_BACKFILLS[name](con)


def _add_column(con: duckdb.DuckDBPyConnection, table: str, column: Column) -> None:
    """Add a column a newer flopledger declares, with what the stored rows already tell of it,
    in one transaction (a column added but not filled in would never be filled in)."""
    backfill = _BACKFILLS.get((table, column.name))
    if backfill is None:
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {column.duckdb_type}')
        return
    with transaction(con):
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {column.duckdb_type}')
        backfill(con)


def _bound_anthropic_requests(con: duckdb.DuckDBPyConnection) -> None:
    """Give Anthropic report rows stored before the upper bound existed the bound of their context
    window (kept in their tags); ``flopledger reprice`` then prices a 0-200k row below the tier."""
    from flopledger.ledger.formats.anthropic import CONTEXT_BOUNDS

    bounded = {window: upper for window, (_, upper) in CONTEXT_BOUNDS.items() if upper is not None}
    window = "json_extract_string(tags, '$.context_window')"
    cases = " ".join(f"WHEN '{w}' THEN {upper}" for w, upper in bounded.items())
    con.execute(
        f"""UPDATE events SET max_request_input_tokens = CASE {window} {cases} END
            WHERE source_format = 'anthropic' AND json_valid(tags)
              AND {window} IN ({", ".join(f"'{w}'" for w in bounded)})"""
    )


def _searches_from_tags(con: duckdb.DuckDBPyConnection) -> None:
    """Give events stored before web searches had a column the searches their tags kept (Anthropic
    report rows, and any row whose tags said them); ``flopledger reprice`` then prices them."""
    con.execute(
        f"UPDATE events SET web_search_requests = {searches_in_tags()} WHERE {searches_in_tags()} IS NOT NULL"
    )


REMOTE_AGENTS = f"json_valid(tags) AND json_extract_string(tags, '$.{REMOTE_AGENT_TAG}') = 'true'"
"""Rows (good ones, of OpenTelemetry spans) that are a remote agent's span counted for its model calls."""


def index_agent_spans(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """Add the remote agents' spans among the events ``rows`` (a query) to ``agent_spans``: the
    index by trace that lets model calls arriving later find the span they replace without reading
    the tags of the events around them."""
    con.execute(
        f"""INSERT INTO agent_spans (trace_id, event_id, ts)
            SELECT json_extract_string(tags, '$.trace_id'), event_id, ts FROM ({rows})
            WHERE {REMOTE_AGENTS} AND json_extract_string(tags, '$.trace_id') IS NOT NULL"""
    )


def _reads_from_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    """Each quarantined row was read by the run that quarantined it (later reads went unrecorded)."""
    con.execute("INSERT INTO quarantine_reads SELECT row_key, ingest_id FROM quarantine")


_TABLE_BACKFILLS: dict[str, Callable[[duckdb.DuckDBPyConnection], None]] = {
    "agent_spans": lambda con: index_agent_spans(con, "SELECT * FROM events WHERE source_format = 'otel'"),
    "quarantine_reads": lambda con: _reads_from_quarantine(con),
}
"""Tables whose rows the stored events already tell: filled from them as the table is added."""


def _last_seen_from_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    """A bad row stored before runs said when they read it again was last seen when quarantined."""
    con.execute("UPDATE quarantine SET last_seen_at = quarantined_at")


_BACKFILLS: dict[tuple[str, str], Callable[[duckdb.DuckDBPyConnection], None]] = {
    ("quarantine", "last_seen_at"): _last_seen_from_quarantined,
    ("events", "max_request_input_tokens"): _bound_anthropic_requests,
    ("events", "web_search_requests"): _searches_from_tags,
}
"""Columns whose values older rows already hold elsewhere: filled in as the column is added."""


NEW_LEDGER_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "storage_compatibility_version": "v1.5.0"
}
"""How a new ledger file is written: DuckDB's 1.5 storage, whose string compression writes a
million-row ingest's events about a quarter faster than the 1.0 storage DuckDB writes by default (at
the same size). Such a file needs DuckDB 1.5 or newer to open; a ledger written before keeps its own."""


_DUCKDB_MAGIC = (8, b"DUCK")
"""Where a DuckDB database file says what it is, and what it says."""


def _is_duckdb_file(path: Path) -> bool:
    """Whether ``path`` is a DuckDB database file (or a folder, an empty file: DuckDB's own error)."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    offset, magic = _DUCKDB_MAGIC
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(len(magic)) == magic


def open_ledger(
    path: str | Path, *, read_only: bool = False, create: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed, unless ``create`` is false) the ledger file at ``path``.

    >>> con = open_ledger(":memory:")
    >>> con.execute("SELECT count(*) FROM events").fetchone()
    (0,)
    """
    target = str(path)
    fresh = target != ":memory:" and not Path(target).exists()
    if (read_only or not create) and fresh:
        raise InputError(f"no ledger at {target}; run `flopledger ingest` or `flopledger demo` first")
    if fresh and not Path(target).resolve().parent.is_dir():
        raise InputError(
            f"cannot create the ledger {target}: its folder {Path(target).parent} does not exist; "
            "create it first, or give --db a path in a folder that does"
        )
    if not fresh and target != ":memory:" and not _is_duckdb_file(Path(target)):
        # DuckDB would open it as an empty database in memory: what is stored would be lost
        raise InputError(
            f"{target} is not a DuckDB ledger (a data file to ingest?): give --db a ledger's path "
            "(e.g. flopledger.duckdb), and the files to ingest as arguments"
        )
    try:
        config = dict(NEW_LEDGER_CONFIG) if fresh else {}  # (the binding takes no None)
        con = duckdb.connect(target, read_only=read_only, config=config)
    except duckdb.IOException as exc:
        holder = re.search(r"PID (\d+)", str(exc))
        if "lock" in str(exc).lower():
            raise InputError(
                f"the ledger {target} is in use by another process"
                + (f" (PID {holder.group(1)})" if holder else "")
                + ": DuckDB lets one process write a ledger, and no other read it meanwhile. If it is "
                "another `flopledger ingest` (or reprice, demo), wait for it to finish and run this "
                "again; if it is `flopledger serve`, use the dashboard's API while it runs (POST "
                "/api/v1/tokens/ID/revoke, POST /v1/traces, the /api/v1 reports), or stop it first"
            ) from exc
        raise InputError(f"cannot open the ledger {target}: {exc}") from exc
    con.execute("SET enable_progress_bar = false")  # flopledger draws its own progress bars
    con.execute("SET TimeZone = 'UTC'")  # the ledger is UTC: a timestamp without an offset is UTC
    if not read_only:
        create_schema(con)
        upgrade_rollup(con)
    return con


def count_of(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The first column of the first row of ``sql`` as an int (a count), 0 when there is no row."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
