"""OTLP spans as particular instrumentations write them: OpenLIT's Anthropic counts, Pydantic AI's
agent runs, ids in base64, the current provider names."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

START_NS = 1_772_442_000_000_000_000  # 2026-03-02T09:00:00Z


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(span_id: str, trace: str = "5b8efff798038103d269b633813fc60c", **attrs: Any) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span_id,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 10**9),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
    }


def _file(path: Path, spans: list[dict[str, Any]], **resource: str) -> Path:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr(k.replace("_", "."), v) for k, v in resource.items()]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
        ]
    }
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return path


def _events(tmp_path: Path, *files: Path) -> list[tuple[Any, ...]]:
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, list(files), format="otel")
    assert result.reconciles
    return con.execute(
        "SELECT provider, model, input_tokens, cache_read_tokens, cache_write_5m_tokens, output_tokens "
        "FROM events ORDER BY input_tokens"
    ).fetchall()


ANTHROPIC = {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
}


def test_openlit_anthropic_input_is_anthropics_own_count_without_the_cache(tmp_path: Path) -> None:
    usage = {
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.cache_read_input_tokens": 30_000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
        "gen_ai.usage.output_tokens": 40,
    }
    openlit = _file(
        tmp_path / "openlit.jsonl",
        [_span("c000000000000001", **ANTHROPIC, **usage)],
        telemetry_sdk_name="openlit",
    )
    # the same counts from another SDK follow OpenTelemetry: its input includes the cache
    other = dict(usage, **{"gen_ai.usage.input_tokens": 30_512})
    semconv = _file(tmp_path / "semconv.jsonl", [_span("c000000000000002", **ANTHROPIC, **other)])
    assert _events(tmp_path, openlit, semconv) == [
        ("anthropic", "claude-sonnet-4-5", 12, 30_000, 500, 40),
        ("anthropic", "claude-sonnet-4-5", 12, 30_000, 500, 40),
    ]


def test_a_pydantic_ai_agent_run_is_its_model_calls_usage_not_a_bad_row(tmp_path: Path) -> None:
    run = _span(
        "a000000000000001",
        **{"gen_ai.agent.name": "support", "model_name": "claude-sonnet-4-5"},
        **{"gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 300},
    )
    run["kind"] = 1  # INTERNAL: in process, its model calls are traced
    calls = [
        _span(
            f"a00000000000001{i}",
            **ANTHROPIC,
            **{"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.details.cache_read_tokens": 800},
            **{"gen_ai.usage.output_tokens": 100},
        )
        for i in range(3)
    ]
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [_file(tmp_path / "p.jsonl", [run, *calls])], format="otel")
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (3, 3, 0)
    assert con.execute("SELECT sum(input_tokens), sum(cache_read_tokens) FROM events").fetchone() == (
        600,
        2400,
    )


def test_a_span_with_base64_ids_is_of_its_trace_in_hex(tmp_path: Path) -> None:
    """A protobuf JSON printer writes ids in base64: the trace a span is of reads as the hex trace
    id (its agent spans and model calls are matched by it); the span keeps the id it always had, so
    a ledger that holds it finds it again."""
    usage = {**ANTHROPIC, "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    trace, span = "72b7652c1ae77ddc4ac8489f0e18b91c", "ab119b7ec3c1b0ff"
    b64 = _span(
        base64.b64encode(bytes.fromhex(span)).decode(), base64.b64encode(bytes.fromhex(trace)).decode()
    )
    b64["attributes"] = _span(span, trace, **usage)["attributes"]
    coded = _file(tmp_path / "b64.jsonl", [b64])
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [coded], format="otel")
    again = ingest_files(con, [coded], format="otel")
    assert (again.rows_stored, again.rows_duplicate) == (0, 1)
    (tags, request_id) = con.execute("SELECT tags, request_id FROM events").fetchone() or ("", "")
    assert json.loads(tags)["trace_id"] == trace
    assert request_id == b64["spanId"]


def test_the_current_azure_provider_names_are_one_provider(tmp_path: Path) -> None:
    spans = [
        _span(
            f"b00000000000000{i}",
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": name,
                "gen_ai.request.model": "gpt-4o",
            },
            **{"gen_ai.usage.input_tokens": 10 + i, "gen_ai.usage.output_tokens": 1},
        )
        for i, name in enumerate(("azure.ai.inference", "azure.ai.openai", "az.ai.inference"))
    ]
    assert {r[0] for r in _events(tmp_path, _file(tmp_path / "az.jsonl", spans))} == {"azure"}


def test_a_remote_agent_beside_the_callers_own_model_call_still_counts(tmp_path: Path) -> None:
    """One trace: the caller's request span, its own model call, and a remote agent it invoked (a
    CLIENT span, the only record of the agent's usage). The caller's call is not the agent's: both
    count. When the agent's own service exports its model calls later, they replace its span."""
    trace = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
    root = _span("d000000000000001", trace)
    root["kind"] = 2  # SERVER: the caller's handler, no GenAI attributes
    own = _span(
        "d000000000000002",
        trace,
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        },
        **{"gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 20},
    )
    agent = _span(
        "d000000000000003",
        trace,
        **{"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic"},
        **{"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 50_000},
        **{"gen_ai.usage.output_tokens": 4_000},
    )
    own["parentSpanId"] = agent["parentSpanId"] = root["spanId"]
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [_file(tmp_path / "caller.jsonl", [root, own, agent])], format="otel")
    assert (first.rows_read, first.rows_stored) == (2, 2)
    assert con.execute("SELECT sum(input_tokens) FROM events").fetchone() == (50_300,)
    # the agent's service, later: its model call, under a span of that service the caller never saw
    made = _span(
        "d000000000000010",
        trace,
        **ANTHROPIC,
        **{"gen_ai.usage.input_tokens": 48_000, "gen_ai.usage.output_tokens": 3_900},
    )
    made["parentSpanId"] = "d0000000000000ff"
    later = ingest_files(
        con, [_file(tmp_path / "agent.jsonl", [made], service_name="agent-svc")], format="otel"
    )
    assert (later.rows_stored, later.rows_superseded) == (1, 1)
    assert sorted(con.execute("SELECT model, input_tokens FROM events").fetchall()) == [
        ("claude-sonnet-4-5", 48_000),
        ("gpt-4o-mini", 300),
    ]


def test_a_remote_agent_whose_model_call_is_under_it_in_the_file_is_not_counted_again(tmp_path: Path) -> None:
    trace = "ffffffffffffffffffffffffffffffff"
    agent = _span(
        "e000000000000001",
        trace,
        **{"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic"},
        **{"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 1_000},
    )
    server = _span("e000000000000002", trace)  # the agent service's handler, under the CLIENT span
    server["parentSpanId"], server["kind"] = agent["spanId"], 2
    call = _span("e000000000000003", trace, **ANTHROPIC, **{"gen_ai.usage.input_tokens": 1_000})
    call["parentSpanId"] = server["spanId"]
    assert [r[2] for r in _events(tmp_path, _file(tmp_path / "t.jsonl", [agent, server, call]))] == [1_000]


def test_a_failed_call_with_no_usage_is_not_usage_and_one_without_tokens_is_quarantined(
    tmp_path: Path,
) -> None:
    limited = _span("f000000000000001", **ANTHROPIC, **{"error.type": "429"})  # refused: nothing billed
    failed = _span("f000000000000002", **ANTHROPIC)
    failed["status"] = {"code": 2, "message": "overloaded"}
    streamed = _span("f000000000000003", **ANTHROPIC)  # answered, its usage never traced
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [_file(tmp_path / "e.jsonl", [limited, failed, streamed])], format="otel")
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (1, 0, 1)
    (reason,) = con.execute("SELECT reason FROM quarantine").fetchone() or ("",)
    assert reason.startswith("the span names a model but counts no tokens")


def test_openinference_agent_runs_and_anthropic_counts(tmp_path: Path) -> None:
    """smolagents' AGENT span sums its LLM spans (no model of its own): not a bad row, not counted.
    An Anthropic LLM span whose cache exceeds its prompt count gave Anthropic's own (uncached) input."""
    run = _span("a100000000000001", **{"openinference.span.kind": "AGENT", "llm.token_count.prompt": 5_000})
    run["kind"] = 1
    llm = {
        "openinference.span.kind": "LLM",
        "llm.provider": "anthropic",
        "llm.model_name": "claude-sonnet-4-5",
    }
    own = _span(
        "a100000000000002",
        **llm,
        **{"llm.token_count.prompt": 12, "llm.token_count.prompt_details.cache_read": 30_000},
        **{"llm.token_count.completion": 40},
    )
    whole = _span(
        "a100000000000003",
        **llm,
        **{"llm.token_count.prompt": 5_000, "llm.token_count.prompt_details.cache_read": 3_000},
        **{"llm.token_count.completion": 40},
    )
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [_file(tmp_path / "oi.jsonl", [run, own, whole])], format="otel")
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (2, 2, 0)
    got = con.execute("SELECT input_tokens, cache_read_tokens FROM events ORDER BY input_tokens").fetchall()
    assert got == [(12, 30_000), (2_000, 3_000)]
