"""Ingest: usage logs in, validated, deduplicated, fingerprinted, priced and stored in one transaction.

Every run reconciles: ``rows_read = rows_stored + rows_quarantined + rows_duplicate``. A bad row never
stops a good file and is never lost (it goes to ``quarantine`` with file, line, field and reason); a
re-run never double counts (stable event ids); a run killed half way leaves the ledger as it was
before the run: the input is read and checked in temp tables, and storing it (quarantine, events
priced as they are stored, rollup, the run's record) is one DuckDB transaction.

>>> from flopledger.ledger.store import open_ledger
>>> con = open_ledger(":memory:")
>>> # result = ingest_files(con, ["usage.jsonl"])
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from flopledger.catalog.overrides import PriceOverrides
from flopledger.errors import InputError
from flopledger.ledger.fingerprints import FINGERPRINT_COLUMNS, fingerprint_prompts
from flopledger.ledger.formats import STAGE_COLUMNS, InputFormat, detect_format, get_format
from flopledger.ledger.formats.base import RecordFormat, StagedRow
from flopledger.ledger.formats.otel import AGGREGATE_OPERATIONS, OUTSIDE_AGENTS_TAG
from flopledger.ledger.formats.redact import prompt_key_pattern, redact_prompts
from flopledger.ledger.formats.tabular import TableFormat, TableSource, sql_literal
from flopledger.ledger.measures import SUMMED_COUNTS
from flopledger.ledger.price_table import ensure_prices, priced_sql
from flopledger.ledger.pulls import (
    PULLS_TABLE,
    Overlap,
    is_report,
    org_key,
    overlapping_pulls,
    pulled_searches,
    pulled_totals,
    pulling_formats,
)
from flopledger.ledger.rollups import add_to_rollups, days_sql, refresh_rollups
from flopledger.ledger.schema import EVENT_COLUMNS, USAGE_REPORT_FORMATS, WEB_SEARCH_CLASS
from flopledger.ledger.store import REMOTE_AGENTS, count_of, index_agent_spans
from flopledger.ledger.transaction import transaction
from flopledger.ledger.validate import (
    CHECKED_COLUMNS,
    CHECKED_DDL,
    checked_sql,
    repeat_id_sql,
    shown_value,
)

__all__ = ["IngestResult", "Progress", "ingest_files", "mark_interrupted"]

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as files are read."""

_BATCH_ROWS = 50_000
_TEMP_TABLES = (
    "_stage",
    "_checked",
    "_files",
    "_fp",
    "_bad_lines",
    "_withheld",
    "_restated",
    "_superseded",
    PULLS_TABLE,
)
"""The temp tables an ingest makes (besides each file's ``_src`` tables), dropped when it ends."""
_SOURCE_TABLES = ("", "_starts", "_rejects", "_scans", "_rejected")
"""The temp tables a file's ``_src{i}`` reader makes, by their suffix."""
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
    rows_restated: int = 0  # of the stored rows, those that replaced one stored (a bucket pulled before,
    # or a request that comes again saying its web searches)
    rows_superseded: int = 0  # stored remote agents' spans removed: their model calls came in this run
    # Usage-report rows of an organisation (--set org) taken for rows stored without one, and the
    # runs that stored those: another organisation's reports, if so, hide this one's (undo them).
    rows_matched_unlabelled: int = 0
    unlabelled_runs: tuple[str, ...] = ()
    # Usage-report rows that overlap another pull of their window, of another bucket width or
    # grouping (this run's or stored), and the runs that stored the others: the usage may count twice.
    rows_overlapping: int = 0
    overlapping_runs: tuple[str, ...] = ()
    overlaps_within_run: bool = False  # files of this run overlap each other too
    # Stored rows whose file an earlier run read held, at the same line, a stored event of the same
    # time, model and user with other counts, or of the same request at another time: the file was
    # rewritten with changed rows (both count now); the runs that stored the earlier versions.
    rows_changed_in_place: int = 0
    changed_runs: tuple[str, ...] = ()

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
            "rows_restated": self.rows_restated,
            "rows_superseded": self.rows_superseded,
            "rows_overlapping": self.rows_overlapping,
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
        pa.field("_fidx", pa.int32()),
    ]
    return pa.schema(fields)


_ARROW_TO_SQL = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int32(): "INTEGER"}
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


def _batch(rows: list[StagedRow], fidx: int, fixed: Mapping[str, str]) -> pa.Table:
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
    data["_fidx"] = [fidx] * len(rows)
    return pa.Table.from_pydict(data, schema=_stage_schema())


def _stage_records(
    con: duckdb.DuckDBPyConnection,
    fmt: RecordFormat,
    path: Path,
    fidx: int,
    fixed: Mapping[str, str],
    tick: Callable[[int], None],
) -> None:
    pending: list[StagedRow] = []

    def flush() -> None:
        batch = _batch(pending, fidx, fixed)
        _from_arrow(con, "INSERT INTO _stage SELECT * FROM {}", batch)
        tick(sum(len(r.raw) for r in pending))
        pending.clear()

    for row in fmt.rows(path):
        pending.append(row)
        if len(pending) >= _BATCH_ROWS:
            flush()
    if pending:
        flush()


def _read_tables(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path],
    formats: Sequence[InputFormat],
    mapping: Mapping[str, str],
    fixed: Mapping[str, str],
    tick: Callable[[int], None],
) -> dict[int, TableSource]:
    """Read every table file (CSV, JSONL, Parquet) and map its columns; by file index."""
    tables: dict[int, TableSource] = {}
    for fidx, (path, fmt) in enumerate(zip(files, formats, strict=True)):
        if not isinstance(fmt, TableFormat):
            continue
        try:
            tables[fidx] = fmt.source(con, path, mapping, fixed, f"_src{fidx}")
        except duckdb.Error as exc:
            raise _unreadable(fmt, path, exc) from exc
        tick(path.stat().st_size)
    return tables


def _unreadable(fmt: InputFormat, path: Path, exc: duckdb.Error) -> InputError:
    first = str(exc).splitlines()[0]
    return InputError(f"cannot read as {fmt.name}: {first}; check --format and --map", path=str(path))


def _check_table(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    fmt: InputFormat,
    path: Path,
    fidx: int,
    input_includes_cache: bool,
    output_excludes_reasoning: bool = False,
) -> None:
    """Parse and check one table file's rows straight into ``_checked``."""
    checked = checked_sql(
        source.sql,
        fidx=str(fidx),
        incl_cache="true" if input_includes_cache else "false",
        raw="CAST(NULL AS VARCHAR)",
        excl_reasoning="true" if output_excludes_reasoning else "false",
    )
    try:
        con.execute(f"INSERT INTO _checked {checked}")
    except duckdb.Error as exc:
        raise _unreadable(fmt, path, exc) from exc


_CANONICAL_OF: dict[str, str] = {
    "timestamp": "ts",
    "time": "ts",
    "date": "ts",
    "created_at": "ts",
    "start_time": "ts",
    "model_name": "model",
    "prompt_tokens": "input_tokens",
    "completion_tokens": "output_tokens",
    "cached_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_5m_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "workspace": "project",
    "key": "api_key",
}
"""Names a source often gives a canonical column under, and that column: what ``--map`` suggests."""


def _canonical_guess(name: str) -> str | None:
    """The canonical column a name that is none most likely means (``tokens_in``: input_tokens), or
    None: a name sources often use, then the token counts' words. A misspelt canonical name is said
    apart (did you mean), and a name whose words could mean a count flopledger does not price as a
    token class (audio, totals) or more than one class gets no guess, as a wrong one would misprice."""
    import difflib

    lower = name.strip().lower()
    if lower in _CANONICAL_OF:
        return _CANONICAL_OF[lower]
    if difflib.get_close_matches(lower, STAGE_COLUMNS, n=1, cutoff=0.85):
        return None
    words = set(lower.replace("-", "_").split("_"))
    if not words & {"token", "tokens", "tok", "toks"} or words & {"audio", "total", "image", "text"}:
        return None
    if words & {"reasoning", "thinking"}:
        return "reasoning_tokens"
    if words & {"miss", "misses", "uncached"}:
        return "input_tokens"
    if words & {"cache", "cached"}:
        if words & {"read", "hit", "hits"} or words == {"cached", "tokens"}:
            return "cache_read_tokens"
        if words & {"write", "creation", "created"}:
            return "cache_write_1h_tokens" if words & {"1h", "hour"} else "cache_write_5m_tokens"
        return None  # cache_tokens, cache_1h_tokens: reads or writes, unsaid
    guesses = {
        canonical
        for said, canonical in (
            ({"in", "input", "prompt", "inp"}, "input_tokens"),
            ({"out", "output", "completion", "gen", "generated"}, "output_tokens"),
        )
        if words & said
    }
    return guesses.pop() if len(guesses) == 1 else None


def _check_names(mapping: Mapping[str, str], fixed: Mapping[str, str]) -> None:
    known = set(STAGE_COLUMNS)
    if both := sorted(set(mapping) & set(fixed)):
        name = both[0]
        raise InputError(
            f"--map {name}={mapping[name]} and --set {name}={fixed[name]} both give {name}: keep the one "
            "you mean (--set gives every row the value, --map reads it from the file)"
        )
    for flag, names in (("--map", mapping), ("--set", fixed)):
        for name in names:
            if name in known:
                continue
            given = names[name]
            guess = _canonical_guess(name)
            # source=canonical, the two sides swapped: the right side is canonical, and the left
            # names no other canonical column (tokens_in=prompt means input_tokens, not prompt text)
            reversed_ = given in known and guess in (None, given)
            canonical = given if reversed_ else guess
            if canonical is not None:  # the source's name given for the canonical one
                right = "value" if flag == "--set" else "source"
                raise InputError(
                    f"{flag} {name}={given}: {name!r} is not a canonical column; {flag} takes "
                    f"canonical={right}, e.g. {flag} {canonical}={name if reversed_ else given}. "
                    f"Canonical columns: {', '.join(STAGE_COLUMNS)}"
                )
            from flopledger.errors import UnknownNameError

            raise UnknownNameError(f"canonical column in {flag}", name, sorted(known))


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Mark runs left 'running' by a killed process as 'interrupted'; how many.

    Such a run never committed, so it stored nothing. But a process killed while its commit was
    being written may leave the events of its bulk insert recovered without the rest of its
    transaction (DuckDB writes a large insert straight to the file; its crash recovery has kept such
    an insert alone): any event of the run is removed, and its rollup days are summed again, so the
    ledger is as before the run and a re-run stores it whole.
    """
    from flopledger.ledger.runs import remove_run_events

    runs = [
        str(r) for (r,) in con.execute("SELECT ingest_id FROM ingests WHERE status = 'running'").fetchall()
    ]
    for run in runs:
        with transaction(con):
            removed, _ = remove_run_events(con, run)
            said = (
                f"its commit was cut short: the {removed:,} event(s) it left were removed"
                if removed
                else "nothing of this run was stored"
            )
            con.execute(
                "UPDATE ingests SET status = 'interrupted', message = ? WHERE ingest_id = ?",
                [f"the process stopped before it committed; {said}; re-run the ingest", run],
            )
    return len(runs)


def _refuse_archives(path: Path) -> None:
    """A compressed file is one clear error before any reading (it would be read as text and every
    line quarantined, or its format not told), with the command that unpacks it."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        what, unpack = "a zip archive", f"unzip {path.name}"
    elif head.startswith(b"\x1f\x8b"):
        out = path.stem if path.suffix.lower() == ".gz" else f"{path.stem}.unpacked{path.suffix}"
        what, unpack = "gzip-compressed", f"gunzip -c {path.name} > {out}"
    else:
        return
    raise InputError(
        f"the file is {what}: unpack it first (`{unpack}`) and ingest what it holds", path=str(path)
    )


def file_keys(files: Sequence[Path], names: Sequence[str]) -> list[str]:
    """What names each file in quarantine row keys and in ``quarantine.file_key``, whatever way its
    path was typed: its resolved path, or a named source (a request) as named."""
    return [str(f.resolve()) if name == str(f) else name for f, name in zip(files, names, strict=True)]


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
    output_excludes_reasoning: bool = False,
    overrides: PriceOverrides | None = None,
    fingerprint_key: bytes | None = None,
    progress: Progress | None = None,
    source_names: Sequence[str] | None = None,
) -> IngestResult:
    """Ingest usage files into the ledger behind ``con``; returns the run's reconciliation.

    ``format`` forces one input format (else each file's is detected); ``mapping`` maps canonical
    columns to source columns and ``fixed`` sets a canonical value for every row. With ``strict`` any
    bad row fails the whole run and nothing is stored. ``input_includes_cache`` and
    ``output_excludes_reasoning``: a table's input counts the cache (subtracted), its output leaves
    the reasoning out (added). ``source_names``: what the events, the
    quarantine and the run's record call each file (default: its path), e.g. for a temporary file
    that stands for a request.
    """
    mapping = dict(mapping or {})
    fixed = dict(fixed or {})
    _check_names(mapping, fixed)
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no input files given")
    names = [str(f) for f in files] if source_names is None else [str(n) for n in source_names]
    if len(names) != len(files):
        raise InputError("source_names must name each input file once")
    for f in files:
        if not f.is_file():
            raise InputError("no such file (or it is a folder); check the path", path=str(f))
        _refuse_archives(f)
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

    # A timestamp without an offset is UTC, whatever the session says; the caller's zone is put back.
    (zone,) = con.execute("SELECT current_setting('TimeZone')").fetchone() or ("UTC",)
    con.execute("SET TimeZone = 'UTC'")
    try:  # whatever happens, the caller's zone is given back
        mark_interrupted(con)
        con.execute(
            "INSERT INTO ingests (ingest_id, started_at, status, source_format, files, file_keys) "
            "VALUES (?, ?, 'running', ?, ?, ?)",
            [
                ingest_id,
                _now(),
                ",".join(sorted({f.name for f in formats})),
                json.dumps(names),
                # files read from disk only (their keys are their resolved paths): a named source,
                # an OTLP request, is read once, never again
                json.dumps([str(f.resolve()) for f, n in zip(files, names, strict=True) if n == str(f)]),
            ],
        )
        try:
            # The input is read, checked and deduplicated in temp tables first, outside the
            # transaction: row ids number a file's committed rows in file order, and DuckDB scans
            # committed tables in parallel. Only storing (and so pricing) the batch is the transaction.
            tables = _read_tables(con, files, formats, mapping, fixed, tick)
            # From here rows carry their file and line, so no step depends on the order DuckDB keeps.
            con.execute("SET preserve_insertion_order = false")
            batch = _prepare(
                con,
                ingest_id,
                files,
                names,
                formats,
                tables,
                fixed,
                strict,
                keep_prompts,
                input_includes_cache,
                overrides,
                key,
                tick,
                output_excludes_reasoning,
            )
            with transaction(con):
                source = mapping.get("prompt")
                prompt_keys = (source, source.rsplit(".", 1)[-1]) if source else ()
                result = _commit(con, ingest_id, names, batch, keep_prompts, prompt_keys)
                con.execute(
                    """UPDATE ingests SET finished_at = ?, status = 'committed', rows_read = ?,
                       rows_stored = ?, rows_quarantined = ?, rows_duplicate = ?, rows_restated = ?,
                       rows_superseded = ?, rows_overlapping = ?, price_version = ? WHERE ingest_id = ?""",
                    [
                        _now(),
                        result.rows_read,
                        result.rows_stored,
                        result.rows_quarantined,
                        result.rows_duplicate,
                        result.rows_restated,
                        result.rows_superseded,
                        result.rows_overlapping,
                        result.price_version,
                        ingest_id,
                    ],
                )
        except BaseException as exc:
            # (an interrupt that came as the commit finished leaves the run committed, and says so)
            con.execute(
                "UPDATE ingests SET finished_at = ?, status = 'failed', message = ? "
                "WHERE ingest_id = ? AND status = 'running'",
                [_now(), str(exc)[:2000] or type(exc).__name__, ingest_id],
            )
            raise
        finally:
            con.execute("RESET preserve_insertion_order")
            for view in ("_priced", "_incoming", "_new"):
                con.execute(f"DROP VIEW IF EXISTS {view}")
            sources = [f"_src{i}{part}" for i in range(len(files)) for part in _SOURCE_TABLES]
            for t in (*_TEMP_TABLES, *sources):
                con.execute(f"DROP TABLE IF EXISTS {t}")
    finally:
        con.execute(f"SET TimeZone = {sql_literal(str(zone))}")
    if progress is not None:
        progress(total_bytes, total_bytes)
    return result


@dataclass(frozen=True)
class _Batch:
    """What the preparation found: counts, the batch's time span, and the price version used."""

    rows_read: int
    rows_quarantined: int
    rows_duplicate: int
    window: str
    version: str
    restated: int = 0  # rows in ``_restated``: stored usage-report rows this batch pulls again, changed
    superseded: int = 0  # rows in ``_superseded``: stored remote agents' spans its model calls replace
    otel: tuple[int, ...] = ()  # the OpenTelemetry files (indexes): their remote agents' spans are listed
    unlabelled: tuple[int, tuple[str, ...]] = (0, ())  # IngestResult.rows_matched_unlabelled, its runs
    overlapping: Overlap = field(default_factory=Overlap)  # IngestResult.rows_overlapping, its runs
    changed: tuple[int, tuple[str, ...]] = (0, ())  # IngestResult.rows_changed_in_place, its runs


def _prepare(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    files: list[Path],
    names: Sequence[str],
    formats: list[InputFormat],
    tables: Mapping[int, TableSource],
    fixed: Mapping[str, str],
    strict: bool,
    keep_prompts: bool,
    input_includes_cache: bool,
    overrides: PriceOverrides,
    key: bytes,
    tick: Callable[[int], None],
    output_excludes_reasoning: bool = False,
) -> _Batch:
    """Stage, check and deduplicate the input into temp table ``_checked``; view ``_priced`` prices it.

    Nothing of the ledger's usage changes here; only the price table may gain the rows of models it
    had not seen (a cache of the catalog, the same whoever fills it).
    """
    # Declared with DDL, not created from an (empty) Arrow table: DuckDB 1.5 loses a large parallel
    # INSERT into a temp table that was created from an Arrow scan in the same transaction.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage ({_STAGE_DDL})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked ({CHECKED_DDL})")
    # _key names a file in quarantine row keys whatever way its path was typed (a named source as named).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _files (_fidx INTEGER, _file VARCHAR, _format VARCHAR, _key VARCHAR)"
    )
    keys = file_keys(files, names)
    con.executemany(
        "INSERT INTO _files VALUES (?, ?, ?, ?)",
        [(i, n, fmt.name, k) for i, (n, fmt, k) in enumerate(zip(names, formats, keys, strict=True))],
    )
    for fidx, (path, fmt) in enumerate(zip(files, formats, strict=True)):
        if fidx in tables:
            _check_table(con, tables[fidx], fmt, path, fidx, input_includes_cache, output_excludes_reasoning)
        elif isinstance(fmt, RecordFormat):
            _stage_records(con, fmt, path, fidx, fixed, tick)
        else:  # pragma: no cover - every registered format is one of the two
            raise InputError(f"format {fmt.name} cannot be ingested", path=str(path))
    if len(tables) < len(files):
        staged = checked_sql("SELECT * FROM _stage", fidx="_fidx", incl_cache="false", raw="_raw")
        con.execute(f"INSERT INTO _checked {staged}")

    rows_read, bad, good, distinct, lo, hi = con.execute(
        """SELECT count(*), count(*) FILTER (error IS NOT NULL), count(*) FILTER (error IS NULL),
                  count(DISTINCT event_id), min(ts) FILTER (error IS NULL), max(ts) FILTER (error IS NULL)
           FROM _checked"""
    ).fetchone() or (0, 0, 0, 0, None, None)
    if bad == rows_read and fixed:  # every row refused for a --set value: the flag's error, said once
        # of the value itself: an error that shows it (not a CSV record short of the column, say)
        said = " OR ".join(
            f"(error_field = {sql_literal(k)} AND contains(error, {sql_literal(shown_value(v))}))"
            for k, v in fixed.items()
        )
        wrong = con.execute(
            f"SELECT error_field, error FROM _checked WHERE error IS NOT NULL AND ({said}) "
            f"GROUP BY ALL HAVING count(*) = {int(rows_read)} LIMIT 1"
        ).fetchone()
        if wrong is not None:
            raise InputError(f"--set {wrong[0]}={fixed[wrong[0]]}: {wrong[1]}; nothing stored")
    if strict and bad:
        sample = con.execute(
            f"SELECT _file, _line, error_field, error FROM _checked JOIN _files USING (_fidx) "
            f"WHERE error IS NOT NULL ORDER BY _fidx, _line LIMIT {_MAX_STRICT_ERRORS}"
        ).fetchall()
        lines = "; ".join(
            f"{f}:{ln}: {msg}" + (f" (field {fld!r})" if fld is not None else "")
            for f, ln, fld, msg in sample
        )
        raise InputError(f"--strict: {bad} bad row(s), nothing stored. First: {lines}")
    repeated_bad = 0
    if bad:
        _raw_of_bad_rows(con, tables)
        if len(set(keys)) < len(keys):  # a file given twice: its bad rows' second reading is a repeat
            (repeated_bad,) = con.execute(
                """DELETE FROM _checked WHERE rowid IN (
                       SELECT rid FROM (
                           SELECT c.rowid AS rid, row_number() OVER (
                               PARTITION BY f._key, c._line, coalesce(c._raw, '') ORDER BY c._fidx) AS k
                           FROM _checked AS c JOIN _files AS f USING (_fidx) WHERE c.error IS NOT NULL)
                       WHERE k > 1)"""
            ).fetchone() or (0,)
            bad -= repeated_bad
    if distinct < good:  # identical rows inside a file, or repeated source ids
        con.execute(repeat_id_sql("_checked"))
        distinct = count_of(con, "SELECT count(DISTINCT event_id) FROM _checked")
    # A remote agent's span counted for want of its model calls, whose model calls the ledger has
    # already (exported before it ended, in an earlier request): they count, it does not.
    otel = [i for i, fmt in enumerate(formats) if fmt.name == "otel"]
    superseded = _drop_superseded_agents(con, otel) if otel else 0
    if superseded:  # rows, not ids: a span exported twice is two rows of one id
        good -= superseded
        distinct = count_of(con, "SELECT count(DISTINCT event_id) FROM _checked")
    # The reverse: a remote agent's span stored for want of its model calls, which come now.
    replaced = _find_superseded_agents(con, otel) if otel else 0
    # An id covers the event's time, so only stored events inside this batch's time span can share
    # it: literal bounds let DuckDB skip the rest of a large ledger.
    window = f"ts BETWEEN TIMESTAMP '{lo}' AND TIMESTAMP '{hi}'" if lo is not None else "false"
    # Duplicates are counted as such, not as what is left over: repeats inside the input, and good
    # rows whose event is already stored. Stored rows are counted in the ledger after the insert.
    stored_before = restated = 0
    con.execute("CREATE OR REPLACE TEMP TABLE _restated (event_id VARCHAR, org VARCHAR)")
    # Usage-report buckets pulled again with grown totals restate their rows; requests only to give
    # their web searches.
    reports = [i for i, fmt in enumerate(formats) if fmt.name in USAGE_REPORT_FORMATS]
    unlabelled: tuple[int, tuple[str, ...]] = (0, ())
    stored_any = count_of(con, f"SELECT count(*) FROM events WHERE {window}") > 0
    if stored_any and reports:
        unlabelled = _matched_unlabelled(con, window, reports)
        restated = _find_restated(con, window, reports)
    if stored_any and len(reports) < len(files):
        restated = _find_searched(con, window, reports)
    # A usage report's rows, or an export of events that may carry them; requests never pull.
    pulls = pulling_formats()
    pulling = [i for i, fmt in enumerate(formats) if fmt.name in pulls]
    overlapping = overlapping_pulls(con, "_checked", pulling, "_restated")
    if restated and reports:
        _take_restated_orgs(con, reports)
    if stored_any:
        # Rows of stored events are dropped from the batch once, so no later step joins the ledger
        # again; whether an event is stored depends on its id alone (and a usage-report row's on
        # its organisation), so all its rows go together.
        # A usage-report row pulled again with grown counts stays: it replaces the stored one.
        (dropped,) = con.execute(
            f"DELETE FROM _checked WHERE error IS NULL AND {_stored_sql(window, reports)} "
            "AND event_id NOT IN (SELECT event_id FROM _restated)"
        ).fetchone() or (0,)
        if dropped:
            stored_before = distinct - count_of(
                con, "SELECT count(DISTINCT event_id) FROM _checked WHERE error IS NULL"
            )
    duplicates = good - distinct + stored_before + superseded + repeated_bad
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _new AS SELECT * FROM _checked WHERE error IS NULL"
        + (
            # one row per event: the first, or of a usage-report bucket pulled more than once the
            # largest (the latest pull: a bucket's counts only grow until it closes)
            " QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY "
            # rowid last: pages of one document share a line, and the rollup and the insert each
            # read this view, so the row kept must not depend on the order DuckDB reads them in
            # a request's repeat that says its web searches over one that does not (_find_searched)
            f"{_largest_pull(reports)} -{pulled_searches('_checked')}, _fidx, _line, _checked.rowid) = 1"
            if distinct < good
            else ""
        )
    )
    # (a day either side: a time read in another zone than before moves a row by hours)
    near = f"ts BETWEEN TIMESTAMP '{lo}' - INTERVAL 1 DAY AND TIMESTAMP '{hi}' + INTERVAL 1 DAY"
    changed = _changed_in_place(con, near) if lo is not None else (0, ())
    with_prompts = _fingerprints(con, key)
    with transaction(con):  # a model's price rows are stored whole or not at all (a kill between chunks)
        version = ensure_prices(con, overrides, "(SELECT provider, model FROM _new)")
    _price_new(con, ingest_id, version, keep_prompts, with_prompts)
    return _Batch(
        int(rows_read),
        int(bad),
        int(duplicates),
        window,
        version,
        restated,
        replaced,
        tuple(otel),
        unlabelled,
        overlapping,
        changed,
    )


def _changed_in_place(con: duckdb.DuckDBPyConnection, window: str) -> tuple[int, tuple[str, ...]]:
    """The new good rows of files an earlier committed run read whose line held a stored event of
    that run of the same time, model and user, or of the same request id, and another event id: the
    file was rewritten with changed rows (or its times read otherwise, as an older flopledger read
    a zone one row named into the rows after it). Rows without a source id are known by their
    content, and a source id goes with its time, so the changed ones are new events, and their
    earlier versions stay: both count. How many, and the runs that stored the earlier versions."""
    runs = [
        str(r)
        for (r,) in con.execute(
            """SELECT DISTINCT r.ingest_id FROM (
                   SELECT ingest_id, unnest(from_json(file_keys, '["VARCHAR"]')) AS k FROM ingests
                   WHERE status = 'committed' AND file_keys IS NOT NULL) AS r
               JOIN _files AS f ON f._key = r.k"""
        ).fetchall()
    ]
    if not runs or count_of(con, "SELECT count(*) FROM (SELECT 1 FROM _new LIMIT 1)") == 0:
        return 0, ()  # a file never read before, or nothing new in it (the same file again)
    ids = ", ".join(sql_literal(r) for r in runs)
    found = con.execute(
        f"""SELECT count(DISTINCT n.event_id), list(DISTINCT e.ingest_id ORDER BY e.ingest_id)
            FROM _new AS n JOIN (SELECT * FROM events WHERE {window} AND ingest_id IN ({ids})) AS e
              ON e.source_line = n._line AND e.event_id <> n.event_id
             AND ((e.ts = n.ts AND e.model IS NOT DISTINCT FROM n.model
                   AND e."user" IS NOT DISTINCT FROM n."user")
                  OR e.request_id = n.request_id)"""
    ).fetchone()
    if found is None or not found[0]:
        return 0, ()
    return int(found[0]), tuple(str(r) for r in found[1] or ())


_AGENT_WINDOW = "INTERVAL 1 DAY"
"""How long after its agent span a model call of the same trace may start (an agent's longest run)."""

_CLOCK_SKEW = "INTERVAL 1 HOUR"
"""How far a remote agent's service's clock may run behind its caller's: its model calls may seem to
start before the agent's span that made them."""


def _model_calls(table: str, where: str) -> str:
    """The trace and start of the OpenTelemetry model calls among the rows of ``table`` that
    ``where`` keeps, but those no remote agent made (their parent chain reached their trace's root
    in their file through no agent's span: the caller's own calls beside an agent)."""
    aggregate = ", ".join(sql_literal(op) for op in AGGREGATE_OPERATIONS)
    return f"""SELECT json_extract_string(tags, '$.trace_id') AS trace_id, ts FROM {table}
               WHERE {where} AND json_valid(tags)
                 AND lower(coalesce(json_extract_string(tags, '$."gen_ai.operation.name"'), ''))
                     NOT IN ({aggregate})
                 AND coalesce(json_extract_string(tags, '$.{OUTSIDE_AGENTS_TAG}'), '') <> 'true'"""


def _made_by(agent: str, call: str) -> str:
    """Whether model call ``call`` (a row with ``trace_id`` and ``ts``) is of the run of remote agent
    span ``agent`` (the same): of its trace, from an hour before it (the other service's clock) to
    an agent's longest run after it."""
    return (
        f"{call}.trace_id = {agent}.trace_id AND {call}.ts BETWEEN {agent}.ts - {_CLOCK_SKEW} "
        f"AND {agent}.ts + {_AGENT_WINDOW}"
    )


def _otel_rows(otel: Sequence[int]) -> str:
    """Which good rows of ``_checked`` come from the OpenTelemetry files ``otel`` (file indexes)."""
    return f"error IS NULL AND _fidx IN ({', '.join(str(i) for i in otel)})"


def _drop_superseded_agents(con: duckdb.DuckDBPyConnection, otel: Sequence[int]) -> int:
    """Delete the good rows of remote agents' spans (tagged so) whose model calls are stored in the
    ledger (so too a span those calls replaced, sent again), or are in another of the batch's
    files; how many. Their usage is their model calls'."""
    agents = f"{_otel_rows(otel)} AND {REMOTE_AGENTS}"
    bounds = con.execute(f"SELECT min(ts), max(ts) FROM _checked WHERE {agents}").fetchone()
    if bounds is None or bounds[0] is None:
        return 0
    stored = _model_calls(
        "events",
        f"ts BETWEEN TIMESTAMP '{bounds[0]}' - {_CLOCK_SKEW} AND TIMESTAMP '{bounds[1]}' + {_AGENT_WINDOW} "
        "AND source_format = 'otel'",
    )
    (dropped,) = con.execute(
        f"""DELETE FROM _checked WHERE rowid IN (
                SELECT a.rowid FROM (
                    SELECT rowid, json_extract_string(tags, '$.trace_id') AS trace_id, ts
                    FROM _checked WHERE {agents}) AS a
                SEMI JOIN ({stored} UNION ALL {_model_calls("_checked", _otel_rows(otel))}) AS c
                    ON {_made_by("a", "c")})"""
    ).fetchone() or (0,)
    return int(dropped)


def _find_superseded_agents(con: duckdb.DuckDBPyConnection, otel: Sequence[int]) -> int:
    """Put in temp table ``_superseded`` the stored remote agents' spans whose model calls are in
    this batch (exported after their agent's span, or by the agent's own service); how many.

    The model calls count, so their agent's span goes, as it would had they come first. Looked up in
    ``agent_spans``, by trace and time. Run before stored events are dropped from the batch, so model
    calls sent again also mend a ledger that counted both.
    """
    calls = _model_calls("_checked", _otel_rows(otel))
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM ({calls})").fetchone() or (None, None)
    if lo is None:
        return 0
    (found,) = con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _superseded AS
            SELECT DISTINCT a.event_id, a.ts FROM agent_spans AS a
            SEMI JOIN ({calls}) AS c ON {_made_by("a", "c")}
            WHERE a.ts BETWEEN TIMESTAMP '{lo}' - {_AGENT_WINDOW} AND TIMESTAMP '{hi}' + {_CLOCK_SKEW}"""
    ).fetchone() or (0,)
    return int(found)


def _largest_pull(fidx: Sequence[int]) -> str:
    """An ORDER BY prefix putting a usage-report row with the largest totals first ('' without reports)."""
    if not fidx:
        return ""
    files = ", ".join(str(i) for i in fidx)
    # every total a restatement is judged on (_find_restated), so the pull kept is the one judged
    return "".join(
        f"CASE WHEN _fidx IN ({files}) THEN -({total}) ELSE 0 END, "
        for total in (*pulled_totals("_checked").values(), pulled_searches("_checked"))
    )


def _same_org(row: str, stored: str) -> str:
    """Whether a usage-report row and a stored event of its id can be one bucket's row: of one
    organisation, or either of none said.

    A report row is known by its bucket and groups, which two organisations' reports share; their
    ``org`` (from ``--set org``) tells them apart. A row ingested without one stands for any: the
    same pull ingested once with and once without its organisation is one row.
    """
    mine, theirs = org_key(row), org_key(stored)
    return f"({mine} IS NULL OR {theirs} IS NULL OR {mine} = {theirs})"


def _matched_unlabelled(
    con: duckdb.DuckDBPyConnection, window: str, fidx: Sequence[int]
) -> tuple[int, tuple[str, ...]]:
    """How many usage-report rows of this batch (files ``fidx``) with an organisation share their
    id with rows stored without one, and the runs that stored those.

    Such a row is taken for the stored one (a duplicate, or its restatement): right when the stored
    row is the same organisation's pull, ingested before without ``--set org``; wrong when it is
    another organisation's, whose run is then to be undone and ingested again with its own.
    """
    row = con.execute(
        f"""SELECT count(DISTINCT c.event_id), list(DISTINCT e.ingest_id ORDER BY e.ingest_id)
            FROM _checked AS c JOIN (SELECT event_id, org, ingest_id FROM events WHERE {window}) AS e
              ON e.event_id = c.event_id
            WHERE c.error IS NULL AND c._fidx IN ({", ".join(str(i) for i in fidx)})
              AND {org_key("c")} IS NOT NULL AND {org_key("e")} IS NULL"""
    ).fetchone()
    if row is None or not row[0]:
        return 0, ()
    return int(row[0]), tuple(str(r) for r in row[1] or () if r is not None)


def _find_restated(con: duckdb.DuckDBPyConnection, window: str, fidx: Sequence[int]) -> int:
    """Fill ``_restated`` with the id and organisation of each stored event that usage-report rows
    of this batch (files ``fidx``) pull again with grown totals (none smaller, one larger: a bucket
    pulled before it closed); how many. An older pull ingested after the final one restates nothing.

    A row without an organisation restates only an id stored once: stored for two organisations,
    it cannot say whose it is, and counts as a duplicate. Restating a row of an organisation, it
    takes that organisation (:func:`_take_restated_orgs`, once the pulls are compared).
    """
    new, old = pulled_totals("c"), pulled_totals("e")
    grown = " AND ".join(f"{new[k]} >= {old[k]}" for k in new)
    larger = " OR ".join(
        [*(f"{new[k]} > {old[k]}" for k in new), f"{pulled_searches('c')} > {pulled_searches('e')}"]
    )
    stored = ", ".join(f'"{c}"' for c in SUMMED_COUNTS)
    reports = f"c.error IS NULL AND c._fidx IN ({', '.join(str(i) for i in fidx)})"
    con.execute(
        f"""INSERT INTO _restated
            SELECT DISTINCT e.event_id, e.org FROM _checked AS c
            JOIN (SELECT event_id, org, {stored}, count(*) OVER (PARTITION BY event_id) AS _stored
                  FROM events WHERE {window}
                    AND event_id IN (SELECT event_id FROM _checked AS c WHERE {reports})) AS e
              ON e.event_id = c.event_id
            WHERE {reports} AND {_same_org("c", "e")} AND ({org_key("c")} IS NOT NULL OR e._stored = 1)
              AND {grown} AND ({larger})"""
    )
    return count_of(con, "SELECT count(*) FROM _restated")


_SEARCHED_SAME: tuple[str, ...] = (
    "ts",
    "model",
    "provider",
    "service_tier",
    "org",
    "project",
    "team",
    "user",
    "api_key",
)
"""What a row giving a stored request more web searches keeps of it (with its counts): a row that
differs in any of them too is a duplicate, and the stored values stay."""


def _find_searched(con: duckdb.DuckDBPyConnection, window: str, reports: Sequence[int]) -> int:
    """Add to ``_restated`` each stored request that a row of this batch (of a file that is not a
    usage report, ``reports``) gives more web searches than it kept, with the same counts else;
    how many rows ``_restated`` holds then.

    An event an older flopledger stored before web searches had a column kept none (but for the
    Anthropic report rows its tags told), and a log may say a request's searches only once the
    tool's result is written: the row that says them replaces the stored one, as a usage-report
    bucket pulled again does. Usage-report rows are judged by :func:`_find_restated` alone, an
    export of events restating none of them.
    """
    kept = (*_SEARCHED_SAME, *(k for k in SUMMED_COUNTS if k != WEB_SEARCH_CLASS))
    same = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM e."{k}"' for k in kept)
    good = "c.error IS NULL" + (
        f" AND c._fidx NOT IN ({', '.join(str(i) for i in reports)})" if reports else ""
    )
    stored = ", ".join(f'"{k}"' for k in ("event_id", "request_id", "org", WEB_SEARCH_CLASS, *kept))
    # Every good row of the request in the batch must be the stored one but for its searches: the
    # row kept of them is the one with the most (_new), so one that differs else would replace it.
    con.execute(
        f"""INSERT INTO _restated
            SELECT e.event_id, any_value(e.org) FROM _checked AS c
            JOIN (SELECT {stored}, count(*) OVER (PARTITION BY event_id) AS _stored FROM events
                  WHERE {window} AND event_id IN (
                      SELECT event_id FROM _checked AS c WHERE {good} AND {pulled_searches("c")} > 0)) AS e
              ON e.event_id = c.event_id
            WHERE {good} AND e._stored = 1 AND NOT coalesce({is_report("e.request_id")}, false)
              AND e.event_id NOT IN (SELECT event_id FROM _restated)
            GROUP BY e.event_id
            HAVING bool_and({same}) AND max({pulled_searches("c")}) > max({pulled_searches("e")})"""
    )
    return count_of(con, "SELECT count(*) FROM _restated")


def _take_restated_orgs(con: duckdb.DuckDBPyConnection, fidx: Sequence[int]) -> None:
    """Give each usage-report row of this batch (files ``fidx``) without an organisation that
    restates a stored row of one (``_restated``) that organisation: the row it replaces is its."""
    con.execute(
        f"""UPDATE _checked AS c SET org = r.org FROM _restated AS r
            WHERE c.error IS NULL AND c._fidx IN ({", ".join(str(i) for i in fidx)})
              AND c.event_id = r.event_id AND {org_key("c")} IS NULL AND r.org IS NOT NULL"""
    )


def _stored_sql(window: str, reports: Sequence[int] = ()) -> str:
    """Whether a checked row's event is already in the ledger (stored events inside ``window``); a
    row of the usage-report files ``reports`` only as its organisation's (:func:`_same_org`).

    A few earlier flopledger versions gave the first occurrence of a row without a source id its bare
    content hash as its id; in a ledger they wrote, that id counts as the event too.
    """
    ids = f"(SELECT event_id FROM events WHERE {window})"
    stored = (
        f"(event_id IN {ids} OR (_content_hash IS NOT NULL "
        f"AND event_id = md5(concat(_content_hash, '|1')) AND _content_hash IN {ids}))"
    )
    if not reports:
        return stored
    ours = (
        f"EXISTS (SELECT 1 FROM events AS e WHERE {window} AND e.event_id = _checked.event_id "
        f"AND {_same_org('_checked', 'e')})"
    )
    return f"(CASE WHEN _fidx IN ({', '.join(str(i) for i in reports)}) THEN {ours} ELSE {stored} END)"


def _remove_stored(
    con: duckdb.DuckDBPyConnection, window: str, ids: str, *, by_org: bool = False
) -> list[dt.date]:
    """Delete the stored events inside ``window`` whose ids are in table ``ids`` (with their
    organisation too, ``by_org``: an ``org`` column, NULL for none); the day of each."""
    match = (
        f"EXISTS (SELECT 1 FROM {ids} AS r WHERE r.event_id = events.event_id "
        "AND r.org IS NOT DISTINCT FROM events.org)"
        if by_org
        else f"event_id IN (SELECT event_id FROM {ids})"
    )
    return [
        d
        for (d,) in con.execute(
            f"DELETE FROM events WHERE {window} AND {match} RETURNING CAST(ts AS DATE)"
        ).fetchall()
    ]


def _commit(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    files: Sequence[str],
    batch: _Batch,
    keep_prompts: bool,
    prompt_keys: tuple[str, ...] = (),
) -> IngestResult:
    """Store a prepared batch: quarantine, events and rollup (the caller holds the transaction).

    ``prompt_keys``: the input's own name for the prompt (a ``--map``), withheld from bad rows too.
    """
    if batch.rows_quarantined:
        _quarantine(con, ingest_id, keep_prompts, prompt_keys)
    days: list[dt.date] = []
    superseded = 0
    if batch.restated:  # the stored rows a usage report restates go; their days are summed again
        days += _remove_stored(con, batch.window, "_restated", by_org=True)
    if batch.superseded:  # so do the agent spans whose model calls come now
        (lo, hi) = con.execute("SELECT min(ts), max(ts) FROM _superseded").fetchone() or (None, None)
        removed = _remove_stored(con, f"ts BETWEEN TIMESTAMP '{lo}' AND TIMESTAMP '{hi}'", "_superseded")
        superseded, days = len(removed), days + removed
        con.execute("DELETE FROM agent_spans WHERE event_id IN (SELECT event_id FROM _superseded)")
    # First: a rollup an older flopledger made is rebuilt without the batch.
    days = sorted(set(days))
    outside = f" WHERE CAST(ts AS DATE) NOT IN {days_sql(days)}" if days else ""
    add_to_rollups(con, f"(SELECT * FROM _priced{outside})", f"(SELECT ts FROM _new{outside})")
    con.execute("INSERT INTO events BY NAME SELECT * FROM _priced")
    if batch.otel:
        index_agent_spans(con, f"SELECT * FROM _new WHERE {_otel_rows(batch.otel)}")
    if days:
        refresh_rollups(con, days)
    stored, unpriced = con.execute(
        f"SELECT count(*), count(*) FILTER (NOT priced) FROM events WHERE ingest_id = ? AND {batch.window}",
        [ingest_id],
    ).fetchone() or (0, 0)
    return IngestResult(
        ingest_id=ingest_id,
        files=tuple(files),
        rows_read=batch.rows_read,
        rows_stored=int(stored),
        rows_quarantined=batch.rows_quarantined,
        rows_duplicate=batch.rows_duplicate,
        rows_restated=batch.restated,
        rows_superseded=int(superseded),
        price_version=batch.version,
        unpriced_rows=int(unpriced),
        rows_matched_unlabelled=batch.unlabelled[0],
        unlabelled_runs=batch.unlabelled[1],
        rows_overlapping=batch.overlapping.rows,
        overlapping_runs=batch.overlapping.runs,
        overlaps_within_run=batch.overlapping.within_run,
        rows_changed_in_place=batch.changed[0],
        changed_runs=batch.changed[1],
    )


def _raw_of_bad_rows(con: duckdb.DuckDBPyConnection, tables: Mapping[int, TableSource]) -> None:
    """Fill in the raw text of the bad rows of table files, from the files' own rows."""
    for fidx, source in tables.items():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _bad_lines AS SELECT _line FROM _checked "
            f"WHERE _fidx = {fidx} AND error IS NOT NULL"
        )
        if not count_of(con, "SELECT count(*) FROM _bad_lines"):
            continue
        raw = source.raw_sql.replace("{lines}", "_bad_lines")
        con.execute(
            f"UPDATE _checked SET _raw = r._raw FROM ({raw}) AS r "
            f"WHERE _checked._fidx = {fidx} AND _checked.error IS NOT NULL AND _checked._line = r._line"
        )


def _from_arrow(con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> None:
    """Run ``sql`` with ``{}`` standing for an Arrow table."""
    name = f"_arrow_{uuid.uuid4().hex[:8]}"
    con.register(name, table)
    try:
        con.execute(sql.format(name))
    finally:
        con.unregister(name)


def _withheld_raw(con: duckdb.DuckDBPyConnection, prompt_keys: tuple[str, ...]) -> None:
    """``_withheld``: the raw text of each bad row that may hold prompt text, with that text withheld.

    Rows with a prompt, or whose raw text names a key that may carry one, are redacted in Python
    (:func:`redact_prompts`): a broken JSON line or an escaped prompt defeats a plain replace.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _withheld (_rid BIGINT, _raw VARCHAR)")
    rows = con.execute(
        "SELECT rowid, _raw, prompt FROM _checked WHERE error IS NOT NULL AND _raw IS NOT NULL "
        "AND (coalesce(prompt, '') <> '' OR regexp_matches(_raw, ?))",
        [prompt_key_pattern(prompt_keys)],
    ).fetchall()
    if rows:
        withheld = pa.table(
            {
                "_rid": pa.array([rid for rid, _, _ in rows], pa.int64()),
                "_raw": [redact_prompts(raw, prompt, prompt_keys) for _, raw, prompt in rows],
            }
        )
        _from_arrow(con, "INSERT INTO _withheld SELECT * FROM {}", withheld)


def _quarantine(
    con: duckdb.DuckDBPyConnection, ingest_id: str, keep_prompts: bool, prompt_keys: tuple[str, ...]
) -> None:
    # A bad row is kept whole so nothing is lost, except its prompt text (unless prompts are kept).
    if keep_prompts:
        con.execute("CREATE OR REPLACE TEMP TABLE _withheld (_rid BIGINT, _raw VARCHAR)")
    else:
        _withheld_raw(con, prompt_keys)
    now = _now()
    # A bad row's key is of its file, its raw text as read and which of the file's rows of that text
    # it is: a row that moves in its file (a log trimmed at its head, a row above it fixed) is
    # recognised. The keys earlier versions gave it, with its line, are recognised too. Its content
    # key leaves the file out: a file renamed or moved (its old path gone) keeps its bad rows.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bad AS
           SELECT *, md5(_key || '|' || content_key) AS row_key FROM (
               SELECT *, _checked.rowid AS _rid,
                      md5(coalesce(_raw, '') || '|#' || row_number() OVER (
                          PARTITION BY _key, coalesce(_raw, '') ORDER BY _line, _checked.rowid))
                          AS content_key,
                      md5(_key || '|' || _line || '|' || coalesce(_raw, '')) AS line_key,
                      -- the key of versions before that, from the path as typed
                      md5(_file || '|' || _line || '|' || coalesce(_raw, '')) AS typed_key
               FROM _checked JOIN _files USING (_fidx) WHERE error IS NOT NULL)"""
    )
    # a bad row read again is kept once, and said to be seen again (it is still open), where it is now
    # (one bad row for each stored one: a stored key of a line may name rows alike on one line)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _seen AS
           SELECT q.rowid AS qrid, any_value(q.row_key) AS old_key, arg_min(b._line, b.row_key) AS _line,
                  min(b.row_key) AS row_key, arg_min(b._key, b.row_key) AS _key,
                  arg_min(b._file, b.row_key) AS _file, arg_min(b.content_key, b.row_key) AS content_key
           FROM quarantine AS q JOIN _bad AS b ON q.row_key IN (b.row_key, b.line_key, b.typed_key)
           GROUP BY q.rowid"""
    )
    _renamed_files_rows(con)
    con.execute(
        """UPDATE quarantine SET last_seen_at = ?, source_line = s._line, row_key = s.row_key,
                  file_key = s._key, content_key = s.content_key,
                  -- the file as first named, unless it was renamed
                  source_file = CASE WHEN quarantine.file_key <> s._key THEN s._file ELSE source_file END
           FROM _seen AS s WHERE quarantine.rowid = s.qrid""",
        [now],
    )
    con.execute(
        "UPDATE quarantine_reads SET row_key = s.row_key FROM _seen AS s "
        "WHERE quarantine_reads.row_key = s.old_key AND s.old_key <> s.row_key"
    )
    con.execute(
        """INSERT INTO quarantine (ingest_id, source_format, source_file, source_line, field, reason, raw,
                                   row_key, quarantined_at, file_key, last_seen_at, content_key)
           SELECT ?, _format, _file, _line, error_field, error, coalesce(w._raw, c._raw), row_key, ?,
                  _key, ?, content_key
           FROM _bad AS c LEFT JOIN _withheld AS w USING (_rid)
           WHERE row_key NOT IN (SELECT row_key FROM quarantine)""",
        [ingest_id, now, now],
    )
    con.execute("INSERT INTO quarantine_reads SELECT DISTINCT row_key, ? FROM _bad", [ingest_id])
    con.execute("DROP TABLE _bad")
    con.execute("DROP TABLE _seen")


def _renamed_files_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Add to ``_seen`` the stored bad rows of files whose path is gone that a batch's file holds
    again, unseen yet: the file was renamed or moved, and its bad rows are the same rows (at their
    new path). A path still there is another file (a rotated log's copy), and keeps its own."""
    # the unseen stored rows of other files that rows of the batch have the content of
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _moved AS
           SELECT q.rowid AS qrid, q.row_key AS old_key, q.file_key AS old_file, b._line, b.row_key, b._key,
                  b._file, b.content_key
           FROM quarantine AS q JOIN _bad AS b USING (content_key)
           WHERE q.file_key <> b._key AND q.rowid NOT IN (SELECT qrid FROM _seen)
             AND b.row_key NOT IN (SELECT row_key FROM _seen)"""
    )
    keys = [
        str(k) for (k,) in con.execute("SELECT DISTINCT old_file FROM _moved").fetchall() if k is not None
    ]
    gone = [k for k in keys if Path(k).is_absolute() and not Path(k).exists()]
    if gone:
        con.execute(
            f"""INSERT INTO _seen
                SELECT min(qrid), arg_min(old_key, qrid), _line, row_key, _key, _file, content_key
                FROM _moved WHERE old_file IN ({", ".join(sql_literal(k) for k in gone)})
                GROUP BY _line, row_key, _key, _file, content_key"""
        )
    con.execute("DROP TABLE _moved")


def _fingerprints(con: duckdb.DuckDBPyConnection, key: bytes) -> bool:
    """Fingerprint the prompts of the new events into ``_fp``; whether there were any."""
    if not count_of(con, "SELECT count(*) FROM _checked WHERE error IS NULL AND prompt IS NOT NULL"):
        return False
    tables: list[pa.Table] = []
    reader = con.execute("SELECT event_id, prompt FROM _new WHERE prompt IS NOT NULL").to_arrow_reader(
        _BATCH_ROWS
    )
    for batch in reader:
        ids = batch.column(0).to_pylist()
        fp = fingerprint_prompts(batch.column(1).to_pylist(), key)
        tables.append(fp.append_column("event_id", pa.array(ids, type=pa.string())))
    if not tables:
        return False
    _from_arrow(con, "CREATE OR REPLACE TEMP TABLE _fp AS SELECT * FROM {}", pa.concat_tables(tables))
    return True


def _price_new(
    con: duckdb.DuckDBPyConnection, ingest_id: str, version: str, keep_prompts: bool, with_prompts: bool
) -> None:
    """View ``_priced``: the new events priced, as the events rows they will be.

    A view, not a table: the rollup and the insert each price the rows as they read them, which
    costs less than writing every priced row to a temp table first (a join of a few price rows per
    event against copying 46 columns).
    """
    computed = {
        "prompt": "n.prompt" if keep_prompts else "CAST(NULL AS VARCHAR)",
        "source_format": "fl._format",
        "source_file": "fl._file",
        "source_line": "n._line",
        "ingest_id": sql_literal(ingest_id),
    }
    checked = {name for name, _ in CHECKED_COLUMNS}
    select = []
    for c in EVENT_COLUMNS:
        expr = computed.get(c.name, f'n."{c.name}"' if c.name in checked else "NULL")
        select.append(f'CAST({expr} AS {c.duckdb_type}) AS "{c.name}"')
    select += [
        f'f."{c.name}"' if with_prompts else f'CAST(NULL AS {c.duckdb_type}) AS "{c.name}"'
        for c in FINGERPRINT_COLUMNS
    ]
    join = " LEFT JOIN _fp f USING (event_id)" if with_prompts else ""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _incoming AS SELECT {', '.join(select)} "
        f"FROM _new n JOIN _files fl ON fl._fidx = n._fidx{join}"
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW _priced AS {priced_sql(con, '_incoming', version)}")
