"""Property tests of the usage-report parsers (Anthropic messages report, OpenAI completions usage).

Random valid records are written as the vendor's own JSON (one page, a list of pages, or a page per
line), with random invalid ones among them; after a real ingest the stored canonical counts equal the
generated ones, add back to the vendor's totals, and every invalid record is in quarantine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Canon, canon_records, check_ingest, chunks, fresh_file, iso_z, place, unix_s

PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(path: Path, pages: list[dict[str, Any]], layout: str) -> None:
    if layout == "page":
        path.write_text(json.dumps(pages[0], ensure_ascii=False, indent=1), encoding="utf-8")
    elif layout == "pages":
        path.write_text(json.dumps(pages, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), encoding="utf-8")


# --- Anthropic ------------------------------------------------------------------------------------


def _anthropic_result(c: Canon) -> dict[str, Any]:
    return {
        "uncached_input_tokens": c.input_tokens,
        "cache_creation": {
            "ephemeral_1h_input_tokens": c.cache_write_1h_tokens,
            "ephemeral_5m_input_tokens": c.cache_write_5m_tokens,
        },
        "cache_read_input_tokens": c.cache_read_tokens,
        "output_tokens": c.output_tokens,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": c.api_key,
        "workspace_id": c.project,
        "account_id": c.user,
        "model": c.model,
        "service_tier": c.service_tier,
        "context_window": "0-200k",
    }


def _anthropic_bad(kind: str, c: Canon) -> dict[str, Any]:
    result = _anthropic_result(c)
    bucket = {"starting_at": iso_z(c.ts), "ending_at": None, "results": [result]}
    if kind == "negative":
        result["uncached_input_tokens"] = -1 - c.input_tokens
    elif kind == "text":
        result["output_tokens"] = f"{c.output_tokens} tokens"
    elif kind == "no_model":
        result["model"] = None
    elif kind == "no_ts":
        bucket["starting_at"] = None
    else:
        result["cache_creation"] = [c.cache_write_5m_tokens]
    return bucket


anthropic_records = canon_records(
    reasoning=False, dims=("user", "api_key", "project"), tiers=("standard", "batch", "priority", "flex")
)
_ANTHROPIC_KEY = lambda c: (c.ts, c.model, c.api_key, c.project, c.user, c.service_tier)  # noqa: E731


@st.composite
def anthropic_files(draw: st.DrawFn) -> tuple[list[Canon], list[dict[str, Any]], int, str]:
    valid = draw(st.lists(anthropic_records, max_size=8, unique_by=_ANTHROPIC_KEY))
    bad_kinds = draw(
        st.lists(st.sampled_from(["negative", "text", "no_model", "no_ts", "cache_shape"]), max_size=4)
    )
    bad = [_anthropic_bad(k, draw(anthropic_records)) for k in bad_kinds]
    good = [{"starting_at": iso_z(c.ts), "ending_at": None, "results": [_anthropic_result(c)]} for c in valid]
    buckets = place(draw, good, bad)
    pages = [{"data": piece, "has_more": True, "next_page": "page_x"} for piece in chunks(draw, buckets)]
    layout = draw(st.sampled_from(["page", "pages", "jsonl"]))
    if layout == "page":
        pages = [{"data": buckets, "has_more": False, "next_page": None}]
    return valid, pages, len(bad), layout


@PROPERTY
@given(case=anthropic_files())
def test_anthropic_reports_store_the_generated_split(
    case: tuple[list[Canon], list[dict[str, Any]], int, str],
    ledger: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    valid, pages, n_bad, layout = case
    path = fresh_file(tmp_path, "report.jsonl" if layout == "jsonl" else "report.json")
    _write(path, pages, layout)
    check_ingest(ledger, path, valid, n_bad, format="anthropic")


# --- OpenAI ---------------------------------------------------------------------------------------

_OPENAI_TIER = {"standard": "default", "priority": "priority", "flex": "flex", "batch": None}


def _openai_result(c: Canon) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": c.input_tokens + c.cache_read_tokens,
        "output_tokens": c.output_tokens,
        "input_cached_tokens": c.cache_read_tokens,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": c.requests,
        "project_id": c.project,
        "user_id": c.user,
        "api_key_id": c.api_key,
        "model": c.model,
        "batch": c.service_tier == "batch",
        "service_tier": _OPENAI_TIER[c.service_tier],
    }


def _openai_bad(kind: str, c: Canon) -> dict[str, Any]:
    result = _openai_result(c)
    bucket = {
        "object": "bucket",
        "start_time": unix_s(c.ts),
        "end_time": unix_s(c.ts) + 86_400,
        "results": [result],
    }
    if kind == "cache_over_total":
        result["input_cached_tokens"] = result["input_tokens"] + 1
    elif kind == "text":
        result["input_tokens"] = str(result["input_tokens"]) + "k"
    elif kind == "no_model":
        result["model"] = None
    elif kind == "negative":
        result["output_tokens"] = -1 - c.output_tokens
    else:
        bucket["start_time"] = None
    return bucket


openai_records = canon_records(
    cache_writes=False, reasoning=False, dims=("user", "api_key", "project"), requests=True
)
_OPENAI_KEY = lambda c: (c.ts, c.model, c.api_key, c.project, c.user, c.service_tier)  # noqa: E731


@st.composite
def openai_files(draw: st.DrawFn) -> tuple[list[Canon], list[dict[str, Any]], int, str]:
    valid = draw(st.lists(openai_records, max_size=8, unique_by=_OPENAI_KEY))
    bad_kinds = draw(
        st.lists(st.sampled_from(["cache_over_total", "text", "no_model", "negative", "no_ts"]), max_size=4)
    )
    bad = [_openai_bad(k, draw(openai_records)) for k in bad_kinds]
    good = [
        {
            "object": "bucket",
            "start_time": unix_s(c.ts),
            "end_time": unix_s(c.ts) + 86_400,
            "results": [_openai_result(c)],
        }
        for c in valid
    ]
    buckets = place(draw, good, bad)
    layout = draw(st.sampled_from(["page", "pages", "jsonl"]))
    pieces = [buckets] if layout == "page" else chunks(draw, buckets)
    pages = [{"object": "page", "data": piece, "has_more": False, "next_page": None} for piece in pieces]
    return valid, pages, len(bad), layout


@PROPERTY
@given(case=openai_files())
def test_openai_usage_stores_uncached_input_and_adds_back_to_the_vendor_total(
    case: tuple[list[Canon], list[dict[str, Any]], int, str],
    ledger: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    valid, pages, n_bad, layout = case
    path = fresh_file(tmp_path, "usage.jsonl" if layout == "jsonl" else "usage.json")
    _write(path, pages, layout)
    vendor_input = sum(_openai_result(c)["input_tokens"] for c in valid)  # OpenAI's input includes the cache
    check_ingest(ledger, path, valid, n_bad, vendor_input_total=vendor_input, format="openai")
