"""Outcomes (commits, merged changes, closed tickets) per user, so usage is judged by what it produced.

Input: CSV with a header, or JSON lines, with ``user``, ``ts`` (ISO 8601), ``kind`` and optional
``weight`` (default 1). Re-ingesting a file never duplicates a row; bad rows are reported with file,
line and reason, kept in the ledger's quarantine as read (``flopledger quarantine list``, format
``outcomes``), and the rest are stored.

>>> import duckdb
>>> con = duckdb.connect()
>>> ingest_outcomes(con, []).stored
0
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flopledger.errors import InputError
from flopledger.ledger.store import count_of

__all__ = ["OUTCOME_KINDS", "OutcomeIngest", "Rejected", "ingest_outcomes"]

OUTCOME_KINDS: tuple[str, ...] = ("commit", "merged_change", "closed_ticket", "review", "incident_resolved")

_DDL = """
CREATE TABLE IF NOT EXISTS outcomes (
    "user" VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, weight DOUBLE NOT NULL,
    source_file VARCHAR, source_line BIGINT, row_key VARCHAR PRIMARY KEY
)
"""


class _OutcomeRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    user: str = Field(min_length=1)
    ts: dt.datetime
    kind: str
    weight: float = Field(default=1.0, ge=0, le=1e6, allow_inf_nan=False)  # one outcome, not a bank

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        kind = value.lower().replace(" ", "_").replace("-", "_")
        if kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown kind {value!r}; expected one of {', '.join(OUTCOME_KINDS)}")
        return kind

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class Rejected:
    path: str
    line: int
    reason: str
    field: str | None = None
    raw: str = ""  # the row as read


@dataclass(frozen=True)
class OutcomeIngest:
    read: int
    stored: int
    quarantined: int
    duplicates: int
    rejected: tuple[Rejected, ...]


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def _records(path: Path) -> Iterator[tuple[int, dict[str, object] | str, str]]:
    """(line, record, raw) triples; a record that cannot be parsed at all comes back as an error string."""
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                raw = text.rstrip("\r\n")
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield number, f"not JSON: {exc.msg}", raw
                    continue
                yield number, value if isinstance(value, dict) else "not a JSON object", raw
        else:
            reader = csv.reader(handle)
            header = next(reader, [])
            start = reader.line_num + 1  # a row's first line: a quoted field may span lines
            for values in reader:
                number, start = start, reader.line_num + 1
                if not values:  # a blank line
                    continue
                record: dict[str, object] = {k: v for k, v in zip(header, values, strict=False) if v != ""}
                yield number, record, _csv_line(values)


def ingest_outcomes(con: duckdb.DuckDBPyConnection, paths: Sequence[str | Path]) -> OutcomeIngest:
    """Store outcome rows from ``paths`` into the ``outcomes`` table (created if missing)."""
    con.execute(_DDL)
    read = stored = duplicates = 0
    rejected: list[Rejected] = []
    seen: set[str] = set()
    rows: list[tuple[object, ...]] = []
    for raw_path in paths:
        path = Path(raw_path)
        if not path.is_file():
            raise InputError("no such outcomes file", path=str(path))
        try:
            records = list(_records(path))
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8", path=str(path)
            ) from exc
        for line, record, raw in records:
            read += 1
            if isinstance(record, str):
                rejected.append(Rejected(str(path), line, record, raw=raw))
                continue
            try:
                row = _OutcomeRow.model_validate(record)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "row"
                reason = f"field {field!r}: {first['msg']}"
                rejected.append(Rejected(str(path), line, reason, field=field, raw=raw))
                continue
            key = hashlib.blake2b(
                f"{row.user}|{row.ts.isoformat()}|{row.kind}|{row.weight}".encode(), digest_size=16
            ).hexdigest()
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            rows.append((row.user, row.ts, row.kind, row.weight, str(path), line, key))
    if rows:
        con.execute("CREATE OR REPLACE TEMP TABLE outcome_batch AS SELECT * FROM outcomes LIMIT 0")
        con.executemany("INSERT INTO outcome_batch VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        before = _count(con)
        con.execute("INSERT INTO outcomes SELECT * FROM outcome_batch ON CONFLICT (row_key) DO NOTHING")
        stored = _count(con) - before
        duplicates += len(rows) - stored
        con.execute("DROP TABLE outcome_batch")
    _quarantine(con, rejected)
    return OutcomeIngest(read, stored, len(rejected), duplicates, tuple(rejected))


def _quarantine(con: duckdb.DuckDBPyConnection, rejected: Sequence[Rejected]) -> None:
    """Keep rejected rows in the ledger's quarantine, once each (keyed like usage rows: file, line, raw)."""
    has_table = count_of(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'"
    )
    if not rejected or not has_table:  # a bare connection (no ledger) has no quarantine
        return
    ingest_id = f"outcomes-{uuid.uuid4().hex[:12]}"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        (
            ingest_id,
            "outcomes",
            r.path,
            r.line,
            r.field,
            r.reason,
            r.raw,
            # keyed like usage rows: by the resolved path, so another spelling of it is the same row
            hashlib.md5(f"{Path(r.path).resolve()}|{r.line}|{r.raw}".encode()).hexdigest(),
            now,
            str(Path(r.path).resolve()),
            now,
        )
        for r in rejected
    ]
    columns = (
        "ingest_id, source_format, source_file, source_line, field, reason, raw, row_key, quarantined_at, "
        "file_key, last_seen_at"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _outcome_rejects AS SELECT {columns} FROM quarantine LIMIT 0")
    try:
        con.executemany(f"INSERT INTO _outcome_rejects VALUES ({', '.join('?' * 11)})", rows)
        con.execute(
            "UPDATE quarantine SET last_seen_at = ? WHERE row_key IN (SELECT row_key FROM _outcome_rejects)",
            [now],
        )
        con.execute(
            f"""INSERT INTO quarantine ({columns}) SELECT DISTINCT ON (row_key) * FROM _outcome_rejects
               WHERE row_key NOT IN (SELECT row_key FROM quarantine)"""
        )
    finally:
        con.execute("DROP TABLE _outcome_rejects")


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM outcomes").fetchone()
    return int(row[0]) if row else 0
