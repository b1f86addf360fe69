"""Property tests of the per-request parsers: OTLP JSON traces and LiteLLM spend logs.

Both report input the OpenAI way (cache included), so the canonical uncached input is what is left
after the cache reads and writes; the stored split must add back to the vendor's input total.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Canon, canon_records, check_ingest, fresh_file, place, unix_s

PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --- OTLP traces ----------------------------------------------------------------------------------

# (input total, output, cache read, cache write, reasoning, model) attribute names per convention
_CONVENTIONS = {
    "semconv": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.response.model",
    ),
    "openllmetry": (
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.request.model",
    ),
    "traceloop_llm": (
        "llm.usage.prompt_tokens",
        "llm.usage.completion_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.completion_tokens_details.reasoning_tokens",
        "llm.request.model",
    ),
    "openinference": (
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write",
        "llm.token_count.completion_details.reasoning",
        "llm.model_name",
    ),
    "pydantic_ai": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.details.cache_read_tokens",
        "gen_ai.usage.details.cache_write_tokens",
        "gen_ai.usage.details.reasoning_tokens",
        "gen_ai.request.model",
    ),
}


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # OTLP JSON writes 64-bit ints as strings
    return {"key": key, "value": {"stringValue": value}}


def _genai_span(c: Canon, n: int, convention: str, sub_us_nanos: int) -> dict[str, Any]:
    total, output, read, write, reasoning, model = _CONVENTIONS[convention]
    values: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        model: c.model,
        total: c.total_input_tokens,
        output: c.output_tokens,
        read: c.cache_read_tokens,
        write: c.cache_write_5m_tokens,
        reasoning: c.reasoning_tokens,
    }
    for key, value in (
        ("team.id", c.team),
        ("user.id", c.user),
        ("gen_ai.project", c.project),
        ("gen_ai.api_key.id", c.api_key),
    ):
        if value is not None:
            values[key] = value
    start = unix_s(c.ts) * 1_000_000_000 + sub_us_nanos
    return {
        "traceId": f"{n:032x}",
        "spanId": f"{n:016x}",
        "name": f"chat {c.model}",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 10**9),
        "attributes": [_attr(k, v) for k, v in values.items()],
    }


def _other_span(n: int) -> dict[str, Any]:
    return {
        "traceId": f"{n:032x}",
        "spanId": f"{n:016x}",
        "name": "GET /healthz",
        "kind": 2,
        "startTimeUnixNano": "1772442000000000000",
        "endTimeUnixNano": "1772442000100000000",
        "attributes": [_attr("http.request.method", "GET"), _attr("http.response.status_code", 200)],
    }


def _bad_span(kind: str, c: Canon, n: int) -> dict[str, Any]:
    span = _genai_span(c, n, "semconv", 0)
    attrs = {a["key"]: a for a in span["attributes"]}
    if kind == "cache_over_total":
        attrs["gen_ai.usage.cache_read.input_tokens"]["value"] = {"intValue": str(c.total_input_tokens + 1)}
    elif kind == "negative":
        attrs["gen_ai.usage.input_tokens"]["value"] = {"intValue": "-3"}
    elif kind == "fraction":
        attrs["gen_ai.usage.input_tokens"]["value"] = {"doubleValue": c.total_input_tokens + 0.5}
    elif kind == "no_model":
        del attrs["gen_ai.response.model"]
    elif kind == "no_tokens":  # a model call traced without its usage: its cost is unknown, not $0
        for name in _CONVENTIONS["semconv"][:5]:
            del attrs[name]
    elif kind == "millis":  # a start time in milliseconds, not OTLP's nanoseconds
        span["startTimeUnixNano"] = str(unix_s(c.ts) * 1000)
    else:
        del span["startTimeUnixNano"]
    span["attributes"] = list(attrs.values())
    return span


otel_records = canon_records(one_hour=False, tiers=("standard",))


@st.composite
def otel_files(draw: st.DrawFn) -> tuple[list[Canon], list[dict[str, Any]], int]:
    valid = draw(st.lists(otel_records, max_size=8))
    spans = [
        _genai_span(c, i + 1, draw(st.sampled_from(sorted(_CONVENTIONS))), draw(st.integers(0, 999)))
        for i, c in enumerate(valid)
    ]
    kinds = draw(
        st.lists(
            st.sampled_from(
                ["cache_over_total", "negative", "fraction", "no_model", "no_ts", "no_tokens", "millis"]
            ),
            max_size=4,
        )
    )
    bad = [_bad_span(k, draw(otel_records), 1000 + i) for i, k in enumerate(kinds)]
    others = [_other_span(5000 + i) for i in range(draw(st.integers(0, 3)))]
    everything = place(draw, spans, bad + others)
    return valid, everything, len(bad)


@PROPERTY
@given(case=otel_files(), per_line=st.booleans())
def test_otlp_spans_store_uncached_input_and_ignore_other_spans(
    case: tuple[list[Canon], list[dict[str, Any]], int],
    per_line: bool,
    ledger: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    valid, spans, n_bad = case
    resource = {"attributes": [_attr("service.name", "svc")]}

    def request(group: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceSpans": [
                {"resource": resource, "scopeSpans": [{"scope": {"name": "t"}, "spans": group}]}
            ]
        }

    if per_line:  # the collector's file exporter: one ExportTraceServiceRequest per line
        path = fresh_file(tmp_path, "traces.jsonl")
        path.write_text(
            "".join(json.dumps(request([s]), ensure_ascii=False) + "\n" for s in spans), encoding="utf-8"
        )
    else:  # one OTLP/HTTP JSON body
        path = fresh_file(tmp_path, "traces.json")
        path.write_text(json.dumps(request(spans), ensure_ascii=False, indent=1), encoding="utf-8")
    compare = (
        "ts",
        "model",
        "team",
        "user",
        "api_key",
        "project",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_5m_tokens",
        "output_tokens",
        "reasoning_tokens",
    )
    # A span without a project attribute is attributed to its service (the resource's service.name).
    expected = [dataclasses.replace(c, project=c.project or "svc") for c in valid]
    check_ingest(ledger, path, expected, n_bad, compare=compare, format="otel")


# --- LiteLLM spend logs ---------------------------------------------------------------------------

_CSV_COLUMNS = (
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "model",
    "model_group",
    "custom_llm_provider",
    "user",
    "metadata",
    "request_tags",
    "team_id",
    "end_user",
    "status",
)


def _spend_log(c: Canon, n: int, where: str) -> dict[str, Any]:
    usage = {
        "prompt_tokens": c.total_input_tokens,
        "completion_tokens": c.output_tokens,
        "cache_read_input_tokens": c.cache_read_tokens,
        "cache_creation_input_tokens": c.cache_write_5m_tokens,
        "completion_tokens_details": {"reasoning_tokens": c.reasoning_tokens},
    }
    meta: dict[str, Any] = {"user_api_key_team_alias": c.team, "user_api_key_user_id": c.user}
    meta["usage_object" if where == "usage_object" else "additional_usage_values"] = usage
    return {
        "request_id": f"chatcmpl-{n:08d}",
        "call_type": "acompletion",
        "api_key": c.api_key or "",
        "spend": 0.0,
        "total_tokens": c.total_input_tokens + c.output_tokens,
        "prompt_tokens": c.total_input_tokens,
        "completion_tokens": c.output_tokens,
        "startTime": c.ts.isoformat() + "+00:00",
        "endTime": c.ts.isoformat() + "+00:00",
        "model": c.model,
        "model_group": c.model,
        "custom_llm_provider": "anthropic",
        "user": c.user or "",
        "metadata": meta,
        "request_tags": [],
        "team_id": None,
        "end_user": "",
        "status": "success",
    }


def _bad_log(kind: str, c: Canon, n: int) -> dict[str, Any]:
    log = _spend_log(c, n, "usage_object")
    if kind == "cache_over_total":
        log["metadata"]["usage_object"]["cache_read_input_tokens"] = c.total_input_tokens + 1
    elif kind == "text":
        log["prompt_tokens"] = "many"
    elif kind == "fraction":
        log["prompt_tokens"] = c.total_input_tokens + 0.5
    elif kind == "no_model":
        log["model"] = log["model_group"] = ""
    else:
        log["startTime"] = None
    return log


litellm_records = canon_records(one_hour=False, dims=("team", "user", "api_key"), tiers=("standard",))


@st.composite
def litellm_files(draw: st.DrawFn) -> tuple[list[Canon], list[dict[str, Any]], int]:
    valid = draw(st.lists(litellm_records, max_size=8))
    logs = [
        _spend_log(c, i, draw(st.sampled_from(["usage_object", "additional_usage_values"])))
        for i, c in enumerate(valid)
    ]
    kinds = draw(
        st.lists(st.sampled_from(["cache_over_total", "text", "fraction", "no_model", "no_ts"]), max_size=4)
    )
    bad = [_bad_log(k, draw(litellm_records), 1000 + i) for i, k in enumerate(kinds)]
    return valid, place(draw, logs, bad), len(bad)


@PROPERTY
@given(case=litellm_files(), layout=st.sampled_from(["json", "jsonl", "csv"]))
def test_litellm_spend_logs_store_the_generated_split(
    case: tuple[list[Canon], list[dict[str, Any]], int],
    layout: str,
    ledger: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    valid, logs, n_bad = case
    path = fresh_file(tmp_path, f"spend.{layout}")
    if layout == "json":
        path.write_text(json.dumps(logs, ensure_ascii=False, indent=1), encoding="utf-8")
    elif layout == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in logs), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(_CSV_COLUMNS)
            for r in logs:
                writer.writerow(
                    [
                        json.dumps(r[c], ensure_ascii=False)
                        if isinstance(r[c], dict | list)
                        else ""
                        if r[c] is None
                        else r[c]
                        for c in _CSV_COLUMNS
                    ]
                )
    compare = (
        "ts",
        "model",
        "team",
        "user",
        "api_key",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_5m_tokens",
        "output_tokens",
        "reasoning_tokens",
    )
    check_ingest(ledger, path, valid, n_bad, compare=compare, format="litellm")
