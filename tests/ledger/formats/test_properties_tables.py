"""Property test of the table formats (CSV, JSONL, Parquet) with ``--map``, ``--set`` and input that
includes the cache: generated rows come back as the canonical split, bad rows go to quarantine."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopledger.ledger.schema import TOKEN_COLUMNS

from .conftest import Canon, canon_records, check_ingest, fresh_file, place, unix_s

PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Source column of each canonical one (what --map names); requests and tier keep their canonical names.
SOURCE = {
    "ts": "when",
    "model": "model_name",
    "team": "squad",
    "user": "engineer",
    "api_key": "key_id",
    "project": "repo",
    "input_tokens": "prompt",
    "cache_read_tokens": "cached",
    "cache_write_5m_tokens": "cache_5m",
    "cache_write_1h_tokens": "cache_1h",
    "output_tokens": "completion",
    "reasoning_tokens": "thinking",
}
TEXT = ("model", "team", "user", "api_key", "project", "service_tier")
COUNTS = ("requests", *TOKEN_COLUMNS)


def _row(c: Canon, includes_cache: bool, epoch: bool) -> dict[str, Any]:
    row: dict[str, Any] = {SOURCE.get(k, k): getattr(c, k) for k in (*TEXT, *COUNTS)}
    row[SOURCE["ts"]] = str(unix_s(c.ts)) if epoch else c.ts.isoformat() + "Z"
    if includes_cache:
        row[SOURCE["input_tokens"]] = c.total_input_tokens
    return row


def _bad(kind: str, c: Canon, includes_cache: bool) -> dict[str, Any]:
    row = _row(c, includes_cache, epoch=False)
    if kind == "negative":
        row[SOURCE["output_tokens"]] = -1 - c.output_tokens
    elif kind == "text":
        row[SOURCE["cache_read_tokens"]] = "lots"
    elif kind == "no_model":
        row[SOURCE["model"]] = None
    elif kind == "bad_ts":
        row[SOURCE["ts"]] = "next week"
    elif kind == "reasoning_over_output":
        row[SOURCE["reasoning_tokens"]] = c.output_tokens + 1
    else:
        row["service_tier"] = "platinum"
    return row


def _write(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    columns = list(rows[0]) if rows else [*SOURCE.values(), "requests", "service_tier"]
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:  # every value as text, so a bad value can sit in any column
        table = pa.table(
            {c: pa.array([None if r[c] is None else str(r[c]) for r in rows], pa.string()) for c in columns}
        )
        pq.write_table(table, path)


@PROPERTY
@given(
    valid=st.lists(canon_records(requests=True), min_size=1, max_size=8),
    kinds=st.lists(
        st.sampled_from(["negative", "text", "no_model", "bad_ts", "reasoning_over_output", "tier"]),
        max_size=4,
    ),
    extra=st.data(),
    fmt=st.sampled_from(["csv", "jsonl", "parquet"]),
    includes_cache=st.booleans(),
    epoch=st.booleans(),
)
def test_tables_with_map_and_set_store_the_generated_split(
    valid: list[Canon],
    kinds: list[str],
    extra: st.DataObject,
    fmt: str,
    includes_cache: bool,
    epoch: bool,
    ledger: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    bad = [_bad(k, extra.draw(canon_records()), includes_cache) for k in kinds]
    rows = place(extra.draw, [_row(c, includes_cache, epoch) for c in valid], bad)
    path = fresh_file(tmp_path, f"usage.{fmt}")
    _write(path, rows, fmt)
    check_ingest(
        ledger,
        path,
        valid,
        len(bad),
        format=fmt,
        mapping=SOURCE,
        fixed={"provider": "acme-gateway"},
        input_includes_cache=includes_cache,
        vendor_input_total=sum(c.total_input_tokens for c in valid),
    )
    stored_providers = {r[0] for r in ledger.execute("SELECT DISTINCT provider FROM events").fetchall()}
    assert stored_providers <= {"acme-gateway"}
