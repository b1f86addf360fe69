"""One rule for token counts and one table of service tiers, whichever format a row comes in.

The vendor formats parse counts in Python (``whole_count``) and tabular files are checked in SQL
(``validate.checked_sql``); both must accept and reject the same values. Tier names are read through
the same alias table everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flopledger.ledger.formats.base import (
    MAX_COUNT,
    STAGE_COLUMNS,
    TIER_ALIASES,
    BadCount,
    canonical_tier,
    whole_count,
)
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger
from flopledger.ledger.validate import checked_sql

_SQL = duckdb.connect()


def _sql_verdict(text: str) -> tuple[str | None, int | None]:
    """(error field, input tokens when good) of a tabular row whose input_tokens is ``text``, in SQL."""
    row: dict[str, str | None] = dict.fromkeys(STAGE_COLUMNS)
    row |= {"model": "m", "output_tokens": "1", "ts": "2026-01-01T00:00:00Z", "input_tokens": text}
    cols = ", ".join(f'CAST(? AS VARCHAR) AS "{k}"' for k in row)
    source = (
        f"SELECT {cols}, 1 AS _line, CAST(NULL AS VARCHAR) AS _source_id, "
        "CAST(NULL AS VARCHAR) AS _error, CAST(NULL AS VARCHAR) AS _error_field"
    )
    sql = checked_sql(source, fidx="0", incl_cache="false", raw="CAST(NULL AS VARCHAR)")
    field, tokens = _SQL.execute(
        f"SELECT error_field, input_tokens FROM ({sql})", list(row.values())
    ).fetchone()
    return field, tokens if field is None else None


def _python_verdict(value: Any) -> tuple[str | None, int | None]:
    try:
        return None, whole_count(value, "input_tokens")
    except BadCount as exc:
        return exc.field, None


counts = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=True, allow_infinity=True, width=64).filter(
        lambda f: abs(f) < 2**53 or not math.isfinite(f)
    ),
    st.integers(min_value=0, max_value=10**6).map(lambda n: f"{n}.0"),
    st.integers(min_value=0, max_value=10**6).map(lambda n: f" {n} "),
    st.sampled_from(["lots", "1e3", "12.5", "-0", "0x10", "1_000", "", "   ", "NaN", "inf", "-1", "+5"]),
    # other scripts' digits, and the limit, where a double is no longer exact
    st.sampled_from(["\u0661\u0662", "\uff11\uff12", "9007199254740993", str(MAX_COUNT), str(MAX_COUNT + 1)]),
    # decimal text where a double no longer holds every whole number: read exactly, fractions rejected
    st.tuples(
        st.integers(min_value=2**53 - 4, max_value=MAX_COUNT + 4),
        st.sampled_from(["", ".0", ".00", ".5", ".000000000000000001", ".0000000000000000004", "e0"]),
    ).map(lambda p: f"{p[0]}{p[1]}"),
    st.sampled_from(["9.007199254740993e15", "9.0071992547409935e15", "9007199254740993.5", "9.0e18"]),
    # a fraction a double rounds away, a number too small for one, and zeros written otherwise
    st.sampled_from(["4.9999999999999999", "100.0000000000000001", "1e-400", "0e5", "0.000", "5.000"]),
    # far beyond the limit, and digits grouped by underscores (which DuckDB reads unreliably)
    st.sampled_from(["1e43", "-1e43", "1" + "0" * 50 + ".0", "1_007_199_254_740_993", "12_345", "1_0.5"]),
)


@given(counts)
def test_vendor_formats_and_tabular_files_judge_a_count_alike(value: Any) -> None:
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    assert _python_verdict(value) == _sql_verdict(text)


def test_decimal_text_beyond_2_53_is_read_exactly_and_a_fraction_there_is_rejected() -> None:
    for text, count in (("9007199254740993.0", 2**53 + 1), ("9.007199254740993e15", 2**53 + 1)):
        assert whole_count(text, "f") == count
        assert _sql_verdict(text) == (None, count)
    for fraction in ("9007199254740993.5", "9.0071992547409935e15", "9007199254740993.000000000000000001"):
        with pytest.raises(BadCount):
            whole_count(fraction, "f")
        assert _sql_verdict(fraction) == ("input_tokens", None)


def test_counts_beyond_the_limit_and_non_numbers_are_rejected() -> None:
    assert whole_count(str(MAX_COUNT), "f") == MAX_COUNT
    for bad in ("9_007_199_254_740_993", True, [1], {"n": 1}, 1.5, -1):
        with pytest.raises(BadCount, match="is not a whole, non-negative number"):
            whole_count(bad, "f")
    # a whole number beyond the limit is said to be too large, in both paths
    for big in (str(MAX_COUNT + 1), "1e43", 9 * 10**18, "9000000000000000001"):
        with pytest.raises(BadCount, match="is more than 10,000,000,000,000,000"):
            whole_count(big, "f")
        assert _sql_verdict(str(big)) == ("input_tokens", None)


def test_a_count_beyond_the_limit_is_quarantined_as_too_large(tmp_path: Path) -> None:
    """9e18 tokens fit BIGINT but no bill: once stored as unpriced; two such rows overflowed the rollup."""
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,model,input_tokens,output_tokens\n"
        + "".join(f"2026-03-01T10:00:0{i}Z,gpt-4o,9000000000000000000,1\n" for i in range(2))
        + f"2026-03-01T10:00:05Z,gpt-4o,{MAX_COUNT},1\n"
    )
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path])
    assert (result.rows_stored, result.rows_quarantined, result.unpriced_rows) == (1, 2, 0)
    reasons = {r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()}
    assert reasons == {
        "input_tokens '9000000000000000000' is more than 10,000,000,000,000,000, the most one row may count"
    }


def test_every_alias_is_one_of_the_four_tiers_and_unknown_names_are_kept() -> None:
    assert set(TIER_ALIASES.values()) == {"standard", "batch", "priority", "flex"}
    assert canonical_tier("Priority_On_Demand") == "priority"
    assert canonical_tier(None) == "standard"
    assert canonical_tier("turbo") == "turbo"  # for validation to quarantine with its name


def _stored(tmp_path: Path, name: str, content: str, fmt: str) -> list[tuple[Any, ...]]:
    path = tmp_path / name
    path.write_text(content)
    con = open_ledger(tmp_path / f"{name}.duckdb")
    result = ingest_files(con, [path], format=fmt)
    assert result.reconciles and result.rows_quarantined == 0
    return con.execute("SELECT service_tier, input_tokens, cache_read_tokens FROM events").fetchall()


def test_each_format_reads_a_float_count_and_a_tier_alias_the_same_way(tmp_path: Path) -> None:
    openai_page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1767225600,
                "end_time": 1767312000,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": "120.0",
                        "input_cached_tokens": 20.0,
                        "output_tokens": 5,
                        "num_model_requests": 1,
                        "model": "gpt-5",
                        "service_tier": "scale",
                    }
                ],
            }
        ],
    }
    span = {
        "traceId": "t1",
        "spanId": "s1",
        "name": "chat gpt-5",
        "startTimeUnixNano": "1767225600000000000",
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-5"}},
            {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": 120.0}},
            {"key": "gen_ai.usage.cache_read_input_tokens", "value": {"stringValue": "20"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
            {"key": "openai.response.service_tier", "value": {"stringValue": "Scale"}},
        ],
    }
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    jsonl = {"ts": "2026-01-01T00:00:00Z", "model": "gpt-5", "provider": "openai", "service_tier": "scale"}
    jsonl |= {"input_tokens": "100.0", "cache_read_tokens": 20.0, "output_tokens": 5}
    got = {
        "openai": _stored(tmp_path, "usage.json", json.dumps(openai_page), "openai"),
        "otel": _stored(tmp_path, "traces.json", json.dumps(otlp), "otel"),
        "jsonl": _stored(tmp_path, "rows.jsonl", json.dumps(jsonl) + "\n", "jsonl"),
    }
    assert got == {k: [("priority", 100, 20)] for k in got}
