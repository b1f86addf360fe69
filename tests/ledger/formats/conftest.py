"""Shared pieces of the format property tests: canonical records, a reusable ledger file, the check.

Every property writes generated records in a vendor's own shape, ingests the file through
``ingest_files`` into a real DuckDB ledger and compares what was stored with what was generated.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import strategies as st

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.schema import TOKEN_COLUMNS
from flopledger.ledger.store import open_ledger

TOKEN_FIELDS = TOKEN_COLUMNS


@dataclass(frozen=True)
class Canon:
    """One generated usage record, in canonical terms (``input_tokens`` is the uncached input)."""

    ts: dt.datetime
    model: str
    team: str | None
    user: str | None
    api_key: str | None
    project: str | None
    service_tier: str
    requests: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int

    @property
    def total_input_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
        )


COLUMNS = tuple(f.name for f in fields(Canon))

# Names: any printable unicode without surrounding blanks (trimming is not what these tests are about).
names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s
)
counts = st.integers(min_value=0, max_value=50_000_000)
moments = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda t: t.replace(microsecond=0)
)


@st.composite
def canon_records(
    draw: st.DrawFn,
    *,
    cache_writes: bool = True,
    one_hour: bool = True,
    reasoning: bool = True,
    dims: Sequence[str] = ("team", "user", "api_key", "project"),
    tiers: Sequence[str] = ("standard", "batch", "priority", "flex"),
    requests: bool = False,
) -> Canon:
    output = draw(counts)
    return Canon(
        ts=draw(moments),
        model=draw(names),
        team=draw(st.none() | names) if "team" in dims else None,
        user=draw(st.none() | names) if "user" in dims else None,
        api_key=draw(st.none() | names) if "api_key" in dims else None,
        project=draw(st.none() | names) if "project" in dims else None,
        service_tier=draw(st.sampled_from(tiers)),
        requests=draw(st.integers(1, 100_000)) if requests else 1,
        input_tokens=draw(counts),
        cache_read_tokens=draw(counts),
        cache_write_5m_tokens=draw(counts) if cache_writes else 0,
        cache_write_1h_tokens=draw(counts) if cache_writes and one_hour else 0,
        output_tokens=output,
        reasoning_tokens=draw(st.integers(0, output)) if reasoning else 0,
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One real ledger file per module; :func:`check_ingest` empties it before each example."""
    con = open_ledger(tmp_path_factory.mktemp("ledger") / "l.duckdb")
    yield con
    con.close()


def check_ingest(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    valid: Sequence[Canon],
    n_invalid: int,
    *,
    compare: Sequence[str] = COLUMNS,
    vendor_input_total: int | None = None,
    **options: Any,
) -> None:
    """Ingest ``path`` and check: counts reconcile, every valid record is stored exactly as generated,
    every invalid one is quarantined (with its raw text), token totals add back to the vendor's."""
    for table in ("events", "quarantine"):
        con.execute(f"DELETE FROM {table}")
    result = ingest_files(con, [path], **options)

    assert result.rows_read == len(valid) + n_invalid
    assert (result.rows_stored, result.rows_quarantined, result.rows_duplicate) == (len(valid), n_invalid, 0)
    assert result.reconciles

    cols = ", ".join(f'"{c}"' for c in compare)
    stored = sorted(con.execute(f"SELECT {cols} FROM events").fetchall(), key=repr)
    wanted = sorted((tuple(getattr(r, c) for c in compare) for r in valid), key=repr)
    assert stored == wanted

    # The split adds back to the vendor's own totals: nothing double counted, nothing lost.
    sums = con.execute(
        "SELECT coalesce(sum(input_tokens + cache_read_tokens + cache_write_5m_tokens"
        " + cache_write_1h_tokens), 0), coalesce(sum(output_tokens), 0) FROM events"
    ).fetchone()
    expected_input = (
        sum(r.total_input_tokens for r in valid) if vendor_input_total is None else vendor_input_total
    )
    assert sums == (expected_input, sum(r.output_tokens for r in valid))

    bad = con.execute("SELECT count(*), count(*) FILTER (WHERE raw <> '' AND reason <> '') FROM quarantine")
    assert bad.fetchone() == (n_invalid, n_invalid)


def fresh_file(folder: Path, name: str) -> Path:
    """A path not used before in ``folder``: hypothesis reuses one ``tmp_path`` for all examples, and a
    file rewritten under the same name within a second can be served from DuckDB's metadata cache."""
    stem, _, ext = name.partition(".")
    return folder / f"{stem}-{next(_FILE_NUMBERS)}.{ext}"


_FILE_NUMBERS = itertools.count()


def iso_z(moment: dt.datetime) -> str:
    return moment.isoformat() + "Z"


def unix_s(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def place(draw: st.DrawFn, good: Sequence[Any], bad: Sequence[Any]) -> list[Any]:
    """``good`` and ``bad`` items interleaved at drawn positions (good ones keep their order)."""
    out = list(good)
    for item in bad:
        out.insert(draw(st.integers(0, len(out))), item)
    return out


def chunks(draw: st.DrawFn, items: Sequence[Any]) -> list[list[Any]]:
    """``items`` cut into drawn, non-empty consecutive pieces (pages of a paginated response)."""
    pieces: list[list[Any]] = []
    rest = list(items)
    while rest:
        n = draw(st.integers(1, len(rest)))
        pieces.append(rest[:n])
        rest = rest[n:]
    return pieces or [[]]
