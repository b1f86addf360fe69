"""Ingest: usage logs in, validated, deduplicated, fingerprinted, priced and stored in one transaction.

Every run reconciles: ``rows_read = rows_stored + rows_quarantined + rows_duplicate``. A bad row never
stops a good file and is never lost (it goes to ``quarantine`` with file, line, field and reason); a
re-run never double counts (stable event ids); a run killed half way leaves the ledger as it was
before the run, because everything after staging is one DuckDB transaction.

>>> from flopledger.ledger.store import open_ledger
>>> con = open_ledger(":memory:")
>>> # result = ingest_files(con, ["usage.jsonl"])
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from flopledger.catalog.overrides import PriceOverrides
from flopledger.errors import InputError
from flopledger.ledger.fingerprints import FINGERPRINT_COLUMNS, fingerprint_prompts
from flopledger.ledger.formats import STAGE_COLUMNS, InputFormat, detect_format, get_format
from flopledger.ledger.formats.base import RecordFormat, StagedRow
from flopledger.ledger.formats.tabular import TableFormat, sql_literal
from flopledger.ledger.price_table import ensure_prices, priced_sql
from flopledger.ledger.rollups import refresh_rollups
from flopledger.ledger.schema import EVENT_COLUMNS
from flopledger.ledger.validate import checked_sql, event_id_sql

__all__ = ["IngestResult", "Progress", "ingest_files", "mark_interrupted"]

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as files are read."""

_BATCH_ROWS = 50_000
_RAW_LIMIT = 4_000
_MAX_STRICT_ERRORS = 5


@dataclass(frozen=True)
class IngestResult:
    """What one ingest run did; the counts reconcile."""

    ingest_id: str
    files: tuple[str, ...]
    rows_read: int
    rows_stored: int
    rows_quarantined: int
    rows_duplicate: int
    price_version: str
    unpriced_rows: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_stored + self.rows_quarantined + self.rows_duplicate

    def as_row(self) -> dict[str, object]:
        return {
            "ingest_id": self.ingest_id,
            "files": len(self.files),
            "rows_read": self.rows_read,
            "rows_stored": self.rows_stored,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
            "unpriced_rows": self.unpriced_rows,
            "reconciles": self.reconciles,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _stage_schema() -> pa.Schema:
    fields = [pa.field(c, pa.string()) for c in STAGE_COLUMNS]
    fields += [
        pa.field("_line", pa.int64()),
        pa.field("_raw", pa.string()),
        pa.field("_source_id", pa.string()),
        pa.field("_error", pa.string()),
        pa.field("_error_field", pa.string()),
        pa.field("_file", pa.string()),
        pa.field("_format", pa.string()),
        pa.field("_incl_cache", pa.bool_()),
    ]
    return pa.schema(fields)


_ARROW_TO_SQL = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}
_STAGE_DDL = ", ".join(f'"{f.name}" {_ARROW_TO_SQL[f.type]}' for f in _stage_schema())


def _text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is int or type(value) is float:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _batch(rows: list[StagedRow], file: str, fmt: str, fixed: Mapping[str, str]) -> pa.Table:
    data: dict[str, list[object]] = {}
    for c in STAGE_COLUMNS:
        if c in fixed:
            data[c] = [fixed[c]] * len(rows)
        else:
            data[c] = [_text(r.values.get(c)) for r in rows]
    data["_line"] = [r.line for r in rows]
    data["_raw"] = [r.raw[:_RAW_LIMIT] for r in rows]
    data["_source_id"] = [r.source_id for r in rows]
    data["_error"] = [r.error for r in rows]
    data["_error_field"] = [r.error_field for r in rows]
    data["_file"] = [file] * len(rows)
    data["_format"] = [fmt] * len(rows)
    data["_incl_cache"] = [False] * len(rows)
    return pa.Table.from_pydict(data, schema=_stage_schema())


def _stage_records(
    con: duckdb.DuckDBPyConnection,
    fmt: RecordFormat,
    path: Path,
    fixed: Mapping[str, str],
    tick: Callable[[int], None],
) -> None:
    pending: list[StagedRow] = []

    def flush() -> None:
        _from_arrow(con, "INSERT INTO _stage SELECT * FROM {}", _batch(pending, str(path), fmt.name, fixed))
        tick(sum(len(r.raw) for r in pending))
        pending.clear()

    for row in fmt.rows(path):
        pending.append(row)
        if len(pending) >= _BATCH_ROWS:
            flush()
    if pending:
        flush()


def _stage_table(
    con: duckdb.DuckDBPyConnection,
    fmt: TableFormat,
    path: Path,
    mapping: Mapping[str, str],
    fixed: Mapping[str, str],
    input_includes_cache: bool,
) -> None:
    source = fmt.source(con, path, mapping, fixed)
    try:
        con.execute(
            f"INSERT INTO _stage SELECT *, {sql_literal(str(path))}, {sql_literal(fmt.name)}, "
            f"{'true' if input_includes_cache else 'false'} FROM ({source.sql})"
        )
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"cannot read as {fmt.name}: {first}; check --format and --map", path=str(path)
        ) from exc


def _check_names(mapping: Mapping[str, str], fixed: Mapping[str, str]) -> None:
    known = set(STAGE_COLUMNS)
    for flag, names in (("--map", mapping), ("--set", fixed)):
        for name in names:
            if name not in known:
                from flopledger.errors import UnknownNameError

                raise UnknownNameError(f"canonical column in {flag}", name, sorted(known))


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Mark runs left 'running' by a killed process as 'interrupted' (their rows were never stored)."""
    n = con.execute("SELECT count(*) FROM ingests WHERE status = 'running'").fetchone()
    con.execute(
        "UPDATE ingests SET status = 'interrupted', message = 'the process stopped before it committed; "
        "nothing of this run was stored; re-run the ingest' WHERE status = 'running'"
    )
    return int(n[0]) if n else 0


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    fixed: Mapping[str, str] | None = None,
    strict: bool = False,
    keep_prompts: bool = False,
    input_includes_cache: bool = False,
    overrides: PriceOverrides | None = None,
    fingerprint_key: bytes | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest usage files into the ledger behind ``con``; returns the run's reconciliation.

    ``format`` forces one input format (else each file's is detected); ``mapping`` maps canonical
    columns to source columns and ``fixed`` sets a canonical value for every row. With ``strict`` any
    bad row fails the whole run and nothing is stored.
    """
    mapping = dict(mapping or {})
    fixed = dict(fixed or {})
    _check_names(mapping, fixed)
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no input files given")
    for f in files:
        if not f.is_file():
            raise InputError("no such file (or it is a folder); check the path", path=str(f))
    formats: list[InputFormat] = [get_format(format) if format else detect_format(f) for f in files]
    for f, fmt in zip(files, formats, strict=True):
        if mapping and not isinstance(fmt, TableFormat):
            raise InputError(
                f"--map applies to csv, jsonl and parquet files; this file is read as {fmt.name}", path=str(f)
            )
    overrides = overrides or PriceOverrides.empty()
    key = fingerprint_key or b""
    ingest_id = uuid.uuid4().hex[:16]
    total_bytes = sum(f.stat().st_size for f in files)
    done = [0]

    def tick(n: int) -> None:
        done[0] = min(total_bytes, done[0] + n)
        if progress is not None:
            progress(done[0], total_bytes)

    mark_interrupted(con)
    con.execute(
        "INSERT INTO ingests (ingest_id, started_at, status, source_format, files) "
        "VALUES (?, ?, 'running', ?, ?)",
        [ingest_id, _now(), ",".join(sorted({f.name for f in formats})), json.dumps([str(f) for f in files])],
    )
    con.execute("BEGIN TRANSACTION")
    try:
        result = _run(
            con,
            ingest_id,
            files,
            formats,
            mapping,
            fixed,
            strict,
            keep_prompts,
            input_includes_cache,
            overrides,
            key,
            tick,
        )
        con.execute(
            """UPDATE ingests SET finished_at = ?, status = 'committed', rows_read = ?, rows_stored = ?,
               rows_quarantined = ?, rows_duplicate = ?, price_version = ? WHERE ingest_id = ?""",
            [
                _now(),
                result.rows_read,
                result.rows_stored,
                result.rows_quarantined,
                result.rows_duplicate,
                result.price_version,
                ingest_id,
            ],
        )
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        con.execute(
            "UPDATE ingests SET finished_at = ?, status = 'failed', message = ? WHERE ingest_id = ?",
            [_now(), str(exc)[:2000] or type(exc).__name__, ingest_id],
        )
        raise
    finally:
        for t in ("_stage", "_checked", "_good", "_new", "_fp", "_incoming", "_priced"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    if progress is not None:
        progress(total_bytes, total_bytes)
    return result


def _run(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    files: list[Path],
    formats: list[InputFormat],
    mapping: Mapping[str, str],
    fixed: Mapping[str, str],
    strict: bool,
    keep_prompts: bool,
    input_includes_cache: bool,
    overrides: PriceOverrides,
    key: bytes,
    tick: Callable[[int], None],
) -> IngestResult:
    # Declared with DDL, not created from an (empty) Arrow table: DuckDB 1.5 loses a large parallel
    # INSERT into a temp table that was created from an Arrow scan in the same transaction.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage ({_STAGE_DDL})")
    for path, fmt in zip(files, formats, strict=True):
        if isinstance(fmt, RecordFormat):
            _stage_records(con, fmt, path, fixed, tick)
        elif isinstance(fmt, TableFormat):
            _stage_table(con, fmt, path, mapping, fixed, input_includes_cache)
            tick(path.stat().st_size)
        else:  # pragma: no cover - every registered format is one of the two
            raise InputError(f"format {fmt.name} cannot be ingested", path=str(path))

    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {checked_sql('_stage')}")
    rows_read = _count(con, "SELECT count(*) FROM _checked")
    bad = _count(con, "SELECT count(*) FROM _checked WHERE error IS NOT NULL")
    if strict and bad:
        sample = con.execute(
            f"SELECT _file, _line, error_field, error FROM _checked WHERE error IS NOT NULL "
            f"ORDER BY _file, _line LIMIT {_MAX_STRICT_ERRORS}"
        ).fetchall()
        lines = "; ".join(f"{f}:{ln}: {msg} (field {fld!r})" for f, ln, fld, msg in sample)
        raise InputError(f"--strict: {bad} bad row(s), nothing stored. First: {lines}")
    _quarantine(con, ingest_id, keep_prompts)

    # Good rows, first occurrence of each event id, not already in the ledger. An id covers the
    # event's time, so only stored events inside this batch's time span can share it: literal
    # bounds let DuckDB skip the rest of a large ledger. Windows run only when repeats exist.
    lo, hi, repeated_content, repeated_source = con.execute(
        """SELECT min(_ts), max(_ts),
                  count(*) FILTER (_source_id IS NULL)
                    > count(DISTINCT (_content_hash, _file)) FILTER (_source_id IS NULL),
                  count(*) FILTER (_source_id IS NOT NULL)
                    > count(DISTINCT (_source_id, _ts)) FILTER (_source_id IS NOT NULL)
           FROM _checked WHERE error IS NULL"""
    ).fetchone() or (None, None, False, False)
    window = f"WHERE ts BETWEEN TIMESTAMP '{lo}' AND TIMESTAMP '{hi}'" if lo is not None else "WHERE false"
    ids = event_id_sql(repeated_content=bool(repeated_content))
    first = (
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _file, _line) = 1"
        if repeated_source
        else ""
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _good AS SELECT *, {ids} AS event_id FROM _checked WHERE error IS NULL"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new AS SELECT * FROM (SELECT * FROM _good {first})
           WHERE event_id NOT IN (SELECT event_id FROM events {window})"""
    )
    # Duplicates are counted as such, not as what is left over: repeats inside the input, and good
    # rows whose event is already stored. Stored rows are counted in the ledger after the insert.
    duplicates = _count(
        con,
        f"""SELECT count(*) - count(DISTINCT event_id)
                + count(DISTINCT event_id) FILTER (event_id IN (SELECT event_id FROM events {window}))
            FROM _good""",
    )
    _fingerprints(con, key)
    version = ensure_prices(
        con, overrides, "(SELECT lower(nullif(trim(provider), '')) AS provider, model FROM _new)"
    )
    unpriced = _store(con, ingest_id, version, keep_prompts)
    stored = _count(con, f"SELECT count(*) FROM events WHERE ingest_id = '{ingest_id}'")
    days = [r[0] for r in con.execute("SELECT DISTINCT CAST(_ts AS DATE) FROM _new").fetchall()]
    refresh_rollups(con, days)
    return IngestResult(
        ingest_id=ingest_id,
        files=tuple(str(f) for f in files),
        rows_read=rows_read,
        rows_stored=stored,
        rows_quarantined=bad,
        rows_duplicate=duplicates,
        price_version=version,
        unpriced_rows=unpriced,
    )


def _from_arrow(con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    """Run ``sql`` with ``{}`` standing for an Arrow table."""
    name = f"_arrow_{uuid.uuid4().hex[:8]}"
    con.register(name, table)
    try:
        con.execute(sql.format(name))
    finally:
        con.unregister(name)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _quarantine(con: duckdb.DuckDBPyConnection, ingest_id: str, keep_prompts: bool) -> None:
    # A bad row is kept whole so nothing is lost, except its prompt text (unless prompts are kept).
    raw = (
        "_raw"
        if keep_prompts
        else (
            "CASE WHEN prompt IS NULL OR prompt = '' THEN _raw "
            "ELSE replace(replace(_raw, prompt, '[prompt withheld]'), "
            "trim(CAST(to_json(prompt) AS VARCHAR), '\"'), '[prompt withheld]') END"
        )
    )
    con.execute(
        f"""INSERT INTO quarantine
           SELECT ?, _format, _file, _line, error_field, error, {raw}, row_key, ?
           FROM (SELECT c.*, s._raw, md5(c._file || '|' || c._line || '|' || coalesce(s._raw, '')) AS row_key
                 FROM _checked c JOIN _stage s ON s.rowid = c._sid WHERE c.error IS NOT NULL)
           WHERE row_key NOT IN (SELECT row_key FROM quarantine)""",
        [ingest_id, _now()],
    )


def _fingerprints(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    tables: list[pa.Table] = []
    reader = con.execute("SELECT event_id, prompt FROM _new WHERE prompt IS NOT NULL").to_arrow_reader(
        _BATCH_ROWS
    )
    for batch in reader:
        ids = batch.column(0).to_pylist()
        fp = fingerprint_prompts(batch.column(1).to_pylist(), key)
        tables.append(fp.append_column("event_id", pa.array(ids, type=pa.string())))
    if tables:
        _from_arrow(con, "CREATE OR REPLACE TEMP TABLE _fp AS SELECT * FROM {}", pa.concat_tables(tables))
    else:
        cols = ", ".join(f'CAST(NULL AS {c.duckdb_type}) AS "{c.name}"' for c in FINGERPRINT_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _fp AS SELECT {cols}, CAST(NULL AS VARCHAR) AS event_id LIMIT 0"
        )


def _store(con: duckdb.DuckDBPyConnection, ingest_id: str, version: str, keep_prompts: bool) -> int:
    typed = {
        "ts": "_ts",
        "service_tier": "_tier",
        "requests": "_requests",
        **{
            c: f"_{c}"
            for c in (
                "input_tokens",
                "cache_read_tokens",
                "cache_write_5m_tokens",
                "cache_write_1h_tokens",
                "output_tokens",
                "reasoning_tokens",
            )
        },
        "min_request_input_tokens": "TRY_CAST(min_request_input_tokens AS BIGINT)",
        "request_id": "coalesce(request_id, _source_id)",
        "provider": "lower(nullif(trim(provider), ''))",
        "prompt": "prompt" if keep_prompts else "CAST(NULL AS VARCHAR)",
        "source_format": "_format",
        "source_file": "_file",
        "source_line": "_line",
        "ingest_id": f"'{ingest_id}'",
    }
    select = []
    for c in EVENT_COLUMNS:
        expr = typed.get(
            c.name, f'n."{c.name}"' if c.name in STAGE_COLUMNS or c.name == "event_id" else "NULL"
        )
        select.append(f'CAST({expr} AS {c.duckdb_type}) AS "{c.name}"')
    select += [f'f."{c.name}"' for c in FINGERPRINT_COLUMNS]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _incoming AS SELECT "
        + ", ".join(select)
        + " FROM _new n LEFT JOIN _fp f USING (event_id)"
    )
    sql = priced_sql(con, "_incoming", version)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _priced AS {sql}")
    unpriced = _count(con, "SELECT count(*) FROM _priced WHERE NOT priced")
    con.execute("INSERT INTO events BY NAME SELECT * FROM _priced")
    return unpriced
