"""OTLP/HTTP intake: JSON and protobuf bodies, the real OpenTelemetry SDK exporter, dedupe, quarantine."""

from __future__ import annotations

import base64
import gzip
import time
from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from flopledger.web.state import ServerState

if TYPE_CHECKING:
    from tests.web.conftest import Api, Fixture


START_NS = 1_773_000_000_000_000_000  # 2026-03-08 UTC


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(
    span_id: str, *, team: str = "agents", input_tokens: int = 1200, cache_read: int = 200
) -> dict[str, Any]:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.output_tokens": 300,
        "user.id": "otel-user",
        "team": team,
    }
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "name": "chat claude-sonnet-4-5",
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 1_000_000_000),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
    }


def _doc(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "coding-agent")]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


def _count(state: ServerState, sql: str) -> Any:
    with state.cursor() as cur:
        row = cur.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_json_spans_are_ingested_once(api: Api, golden: Fixture, state: ServerState) -> None:
    doc = _doc(_span("eee19b7ec3c1b174"), _span("eee19b7ec3c1b175"))
    before = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["totals"]["requests"]
    r = api.post("/v1/traces", json=doc, token=golden.tokens["admin"])
    assert r.status_code == 200, r.text
    ingest = r.json()["ingest"]
    assert (ingest["rows_read"], ingest["rows_stored"], ingest["rows_quarantined"]) == (2, 2, 0)
    assert r.json()["partialSuccess"] == {}
    assert _count(state, "SELECT sum(input_tokens) FROM events WHERE \"user\" = 'otel-user'") == 2 * 1000
    again = api.post("/v1/traces", json=doc, token=golden.tokens["admin"]).json()["ingest"]
    assert (again["rows_stored"], again["rows_duplicate"]) == (0, 2)
    assert _count(state, "SELECT count(*) FROM events WHERE \"user\" = 'otel-user'") == 2
    after = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["totals"]["requests"]
    assert after == before + 2  # the overview's frame was rebuilt after the ingest
    # the rollup the overview reads moved with the ingest
    team = api.get("/api/v1/teams/agents/users/otel-user", token=golden.tokens["admin"]).json()
    assert team["totals"]["input_tokens"] == 2000


def test_the_overview_forecast_follows_each_ingest(api: Api, golden: Fixture, state: ServerState) -> None:
    """The forecast is kept per overview frame (it costs more than the rest of the page), never longer."""
    admin = golden.tokens["admin"]
    first = api.get("/api/v1/overview", token=admin).json()["forecast"]
    assert api.get("/api/v1/overview", token=admin).json()["forecast"] == first
    big = _span("fff19b7ec3c1b176", team="search", input_tokens=4_000_000, cache_read=0)
    others = [a for a in big["attributes"] if a["key"] != "user.id"]
    big["attributes"] = [*others, _attr("user.id", "big-user")]
    assert api.post("/v1/traces", json=_doc(big), token=admin).json()["ingest"]["rows_stored"] == 1
    added = _count(state, "SELECT sum(cost_usd) FROM events WHERE \"user\" = 'big-user'")
    assert added > 1.0
    then = api.get("/api/v1/overview", token=admin).json()["forecast"]
    assert then["total"]["spent_usd"] == pytest.approx(first["total"]["spent_usd"] + added, abs=0.011)
    assert then["total"]["p50_usd"] > first["total"]["p50_usd"]


def test_bad_spans_are_quarantined_and_reported(api: Api, golden: Fixture, state: ServerState) -> None:
    doc = _doc(_span("aaa19b7ec3c1b001"), _span("aaa19b7ec3c1b002", input_tokens=10, cache_read=500))
    body = api.post("/v1/traces", json=doc, token=golden.tokens["admin"]).json()
    assert (body["ingest"]["rows_stored"], body["ingest"]["rows_quarantined"]) == (1, 1)
    assert body["partialSuccess"]["rejectedSpans"] == 1
    assert body["ingest"]["ingest_id"] in body["partialSuccess"]["errorMessage"]  # as protobuf's says
    reason = _count(state, f"SELECT reason FROM quarantine WHERE ingest_id = '{body['ingest']['ingest_id']}'")
    assert "exceed input tokens" in reason
    where = f"WHERE ingest_id = '{body['ingest']['ingest_id']}'"
    assert (
        _count(state, f"SELECT source_file FROM quarantine {where}") == "POST /v1/traces"
    )  # not a temp file
    assert _count(state, f"SELECT source_file FROM events {where}") == "POST /v1/traces"


def test_protobuf_body_with_gzip(api: Api, golden: Fixture, state: ServerState) -> None:
    doc = _doc(_span("bbb19b7ec3c1b001", team="search"))
    # the protobuf JSON mapping carries ids as base64 bytes; build the message the way an SDK would
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                s["traceId"] = base64.b64encode(bytes.fromhex(s["traceId"])).decode()
                s["spanId"] = base64.b64encode(bytes.fromhex(s["spanId"])).decode()
    message = json_format.ParseDict(doc, ExportTraceServiceRequest())
    r = api.post(
        "/v1/traces",
        content=gzip.compress(message.SerializeToString()),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        token=golden.tokens["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    reply = ExportTraceServiceResponse.FromString(r.content)
    assert reply.partial_success.rejected_spans == 0
    assert r.headers["x-flopledger-rows-stored"] == "1"
    source = _count(state, "SELECT request_id FROM events WHERE team = 'search' AND \"user\" = 'otel-user'")
    assert source == "bbb19b7ec3c1b001"  # hex span id, as OTLP JSON writes it


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b"\x0a\xff\xff", {"Content-Type": "application/x-protobuf"}, 400),
        (b"<xml/>", {"Content-Type": "text/xml"}, 415),
        (b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, 400),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400),
    ],
)
def test_bad_bodies_are_refused_clearly(
    api: Api, golden: Fixture, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = api.post("/v1/traces", content=body, headers=headers, token=golden.tokens["admin"])
    assert r.status_code == status
    assert r.json()["detail"]


def test_intake_needs_an_admin_bearer_token(api: Api, golden: Fixture) -> None:
    doc = _doc(_span("ccc19b7ec3c1b001"))
    assert api.post("/v1/traces", json=doc).status_code == 401
    assert api.post("/v1/traces", json=doc, token=golden.tokens["agents"]).status_code == 403
    assert api.post("/v1/traces", json=doc, token=golden.tokens["revoked"]).status_code == 401


def test_real_sdk_exporter_to_a_running_server(server: str, golden: Fixture, state: ServerState) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{server}/v1/traces", headers={"Authorization": f"Bearer {golden.tokens['admin']}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-agent", "team": "infra"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("flopledger-test")
    span_ids = []
    for i in range(3):
        with tracer.start_as_current_span("chat claude-sonnet-4-5") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "anthropic")
            span.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
            span.set_attribute("gen_ai.usage.input_tokens", 1000 + i)
            span.set_attribute("gen_ai.usage.output_tokens", 50)
            span.set_attribute("user.id", "sdk-user")
            span_ids.append(format(span.get_span_context().span_id, "016x"))
        with tracer.start_as_current_span("GET /health"):  # not GenAI: not usage
            pass
    provider.shutdown()
    deadline = time.monotonic() + 10
    while _count(state, "SELECT count(*) FROM events WHERE \"user\" = 'sdk-user'") < 3:
        assert time.monotonic() < deadline, "spans never arrived"
        time.sleep(0.1)
    with state.cursor() as cur:
        rows = cur.execute(
            "SELECT request_id, team, project, input_tokens, priced FROM events "
            "WHERE \"user\" = 'sdk-user' ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in rows] == sorted(span_ids)
    assert {(r[1], r[2], r[4]) for r in rows} == {("infra", "sdk-agent", True)}
    assert sorted(r[3] for r in rows) == [1000, 1001, 1002]


def test_span_ids_are_case_insensitive_hex(api: Api, golden: Fixture, state: ServerState) -> None:
    upper = _span("ABCDEF0123456789", team="case-team")
    upper["traceId"] = "ABCDEF0123456789ABCDEF0123456789"
    lower = {**upper, "spanId": "abcdef0123456789", "traceId": "abcdef0123456789abcdef0123456789"}
    first = api.post("/v1/traces", json=_doc(upper), token=golden.tokens["admin"]).json()["ingest"]
    second = api.post("/v1/traces", json=_doc(lower), token=golden.tokens["admin"]).json()["ingest"]
    assert (first["rows_stored"], second["rows_stored"], second["rows_duplicate"]) == (1, 0, 1)
    assert _count(state, "SELECT count(*) FROM events WHERE team = 'case-team'") == 1


def test_an_agent_span_summing_its_model_calls_is_not_counted_again(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    calls = [
        _span(f"dd{i}19b7ec3c1b00{i}", team="agent-team", input_tokens=1000, cache_read=0) for i in (1, 2)
    ]
    agent = _span("dd019b7ec3c1b000", team="agent-team", input_tokens=2000, cache_read=0)
    agent["attributes"] = [
        _attr("gen_ai.operation.name", "invoke_agent") if a["key"] == "gen_ai.operation.name" else a
        for a in agent["attributes"]
    ]
    body = api.post("/v1/traces", json=_doc(agent, *calls), token=golden.tokens["admin"]).json()["ingest"]
    assert body["rows_stored"] == 2
    assert _count(state, "SELECT sum(input_tokens) FROM events WHERE team = 'agent-team'") == 2000


@pytest.mark.parametrize(
    ("attributes", "quarantined"),
    [
        (5, 1),  # no list at all
        ([{"key": "gen_ai.system", "value": 5}], 1),  # an attribute usage is read from
        (["a"], 1),  # an entry without a key
        ([{"key": "x.note", "value": {"arrayValue": [1]}}], 0),  # another attribute: left out
    ],
)
def test_malformed_attributes_are_quarantined_not_a_server_error(
    api: Api, golden: Fixture, state: ServerState, attributes: Any, quarantined: int
) -> None:
    bad = _span("ee119b7ec3c1b001")
    bad["attributes"] = attributes if not isinstance(attributes, list) else [*bad["attributes"], *attributes]
    r = api.post("/v1/traces", json=_doc(bad, _span("ee119b7ec3c1b002")), token=golden.tokens["admin"])
    assert r.status_code == 200, r.text
    assert (r.json()["ingest"]["rows_quarantined"], r.json()["ingest"]["rows_read"]) == (quarantined, 2)


def test_a_malformed_resource_attribute_leaves_its_spans_counted(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    doc = _doc(_span("ef119b7ec3c1b003"), _span("ef119b7ec3c1b004"))
    doc["resourceSpans"][0]["resource"]["attributes"].append({"key": "service.version", "value": "3"})
    r = api.post("/v1/traces", json=doc, token=golden.tokens["admin"])
    counts = r.json()["ingest"]
    assert r.status_code == 200 and (counts["rows_stored"], counts["rows_quarantined"]) == (2, 0)
    project = (
        "SELECT DISTINCT project FROM events WHERE request_id IN ('ef119b7ec3c1b003', 'ef119b7ec3c1b004')"
    )
    assert _count(state, project) == "coding-agent"  # the resource's well-formed attributes are kept
    # resource attributes not a list at all: no span of it can be attributed, so they are quarantined
    broken = _doc(_span("ef119b7ec3c1b005"), _span("ef119b7ec3c1b006"))
    broken["resourceSpans"][0]["resource"]["attributes"] = 7
    counts = api.post("/v1/traces", json=broken, token=golden.tokens["admin"]).json()["ingest"]
    assert (counts["rows_stored"], counts["rows_quarantined"]) == (0, 2)


def test_a_malformed_attribute_is_named_by_its_key_never_its_value(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    prompt = _span("ee119b7ec3c1b005")
    prompt["attributes"].append({"key": "gen_ai.prompt", "value": "SECRET-ALPHA board memo"})
    body = api.post("/v1/traces", json=_doc(prompt), token=golden.tokens["admin"]).json()["ingest"]
    assert (body["rows_quarantined"], body["rows_stored"]) == (0, 1)  # usage is not read from it
    where = f"WHERE ingest_id = '{body['ingest_id']}'"
    assert "SECRET" not in str(
        _count(state, f"SELECT coalesce(prompt, '') || coalesce(tags, '') FROM events {where}")
    )
    model = _span("ee119b7ec3c1b006")
    model["attributes"].append({"key": "gen_ai.response.model", "value": "secret-model-name"})
    body = api.post("/v1/traces", json=_doc(model), token=golden.tokens["admin"]).json()["ingest"]
    assert body["rows_quarantined"] == 1
    reason = _count(state, f"SELECT reason FROM quarantine WHERE ingest_id = '{body['ingest_id']}'")
    assert "'gen_ai.response.model'" in reason and "secret-model-name" not in reason


def test_agent_spans_count_when_they_are_the_only_record_of_their_model_calls(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    def agent(span_id: str, kind: int, team: str) -> dict[str, Any]:
        span = _span(span_id, team=team, input_tokens=5000, cache_read=0)
        span["kind"] = kind
        span["traceId"] = span_id * 2
        span["attributes"] = [
            _attr("gen_ai.operation.name", "invoke_agent") if a["key"] == "gen_ai.operation.name" else a
            for a in span["attributes"]
        ]
        return span

    remote, local = agent("ab119b7ec3c1b001", 3, "remote-agent"), agent("ab119b7ec3c1b002", 1, "local-agent")
    body = api.post("/v1/traces", json=_doc(remote, local), token=golden.tokens["admin"]).json()["ingest"]
    assert body["rows_stored"] == 1  # the remote (CLIENT) agent; the in-process one sums traced calls
    assert _count(state, "SELECT sum(input_tokens) FROM events WHERE team = 'remote-agent'") == 5000
    assert _count(state, "SELECT count(*) FROM events WHERE team = 'local-agent'") == 0
    # A CLIENT agent span whose model call is in the same export sums it: only the call counts.
    client = agent("ab119b7ec3c1b003", 3, "client-agent")
    call = _span("ab119b7ec3c1b004", team="client-agent", input_tokens=5000, cache_read=0)
    call["traceId"], call["kind"], call["parentSpanId"] = client["traceId"], 3, client["spanId"]
    body = api.post("/v1/traces", json=_doc(client, call), token=golden.tokens["admin"]).json()["ingest"]
    assert body["rows_stored"] == 1
    assert _count(state, "SELECT sum(input_tokens) FROM events WHERE team = 'client-agent'") == 5000


def test_an_agent_span_posted_after_its_model_calls_is_not_counted_again(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    """A collector exports spans as they end: the model calls first, their agent's span later."""
    trace = "ee" * 16
    calls = []
    for n, tokens in enumerate((1000, 2000)):
        call = _span(f"ae119b7ec3c1b10{n}", team="split-agent", input_tokens=tokens, cache_read=0)
        call["traceId"], call["parentSpanId"] = trace, "ae119b7ec3c1b1ff"
        calls.append(call)
    agent = _span("ae119b7ec3c1b1ff", team="split-agent", input_tokens=3000, cache_read=0)
    agent["traceId"], agent["kind"] = trace, 3
    agent["attributes"] = [
        _attr("gen_ai.operation.name", "invoke_agent") if a["key"] == "gen_ai.operation.name" else a
        for a in agent["attributes"]
    ]
    admin = golden.tokens["admin"]
    first = api.post("/v1/traces", json=_doc(*calls), token=admin).json()["ingest"]
    later = api.post("/v1/traces", json=_doc(agent), token=admin).json()["ingest"]
    assert first["rows_stored"] == 2
    assert (later["rows_read"], later["rows_stored"], later["rows_duplicate"]) == (1, 0, 1)
    twice = api.post("/v1/traces", json=_doc(agent, agent), token=admin).json()["ingest"]  # one id, two rows
    assert (twice["rows_read"], twice["rows_stored"], twice["rows_duplicate"]) == (2, 0, 2)
    assert _count(state, "SELECT sum(requests) FROM events WHERE team = 'split-agent'") == 2
    assert _count(state, "SELECT sum(input_tokens) FROM events WHERE team = 'split-agent'") == 3000
    # a remote agent of another trace, with no model call anywhere, still counts
    alone = dict(agent, traceId="ef" * 16, spanId="ae119b7ec3c1b2ff")
    assert api.post("/v1/traces", json=_doc(alone), token=admin).json()["ingest"]["rows_stored"] == 1


def test_an_agent_span_in_a_later_export_of_a_file_is_not_counted_again(tmp_path: Any) -> None:
    import json

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    call = _span("ac119b7ec3c1b001", team="file-agent", input_tokens=1000, cache_read=0)
    agent = _span("ac119b7ec3c1b002", team="file-agent", input_tokens=1000, cache_read=0)
    agent["kind"] = 3  # a remote agent: counted unless its model call is in the file, in any export
    call["parentSpanId"] = agent["spanId"]
    agent["attributes"] = [
        _attr("gen_ai.operation.name", "invoke_agent") if a["key"] == "gen_ai.operation.name" else a
        for a in agent["attributes"]
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(_doc(call)) + "\n" + json.dumps(_doc(agent)) + "\n")  # two exports
    con = open_ledger(":memory:")
    assert ingest_files(con, [path], format="otel").rows_stored == 1
    assert con.execute("SELECT request_id, input_tokens FROM events").fetchall() == [
        ("ac119b7ec3c1b001", 1000)
    ]


def _remote_agent(span_id: str, trace: str, *, team: str, input_tokens: int, hours_before: int = 0) -> Any:
    agent = _span(span_id, team=team, input_tokens=input_tokens, cache_read=0)
    agent["traceId"], agent["kind"] = trace, 3  # a CLIENT span: the agent runs in another service
    agent["startTimeUnixNano"] = str(START_NS - hours_before * 3600 * 10**9)
    agent["attributes"] = [
        _attr("gen_ai.operation.name", "invoke_agent") if a["key"] == "gen_ai.operation.name" else a
        for a in agent["attributes"]
    ]
    return agent


def _model_calls(prefix: str, trace: str, *, team: str, tokens: tuple[int, ...]) -> list[Any]:
    calls = []
    for n, count in enumerate(tokens):
        call = _span(f"{prefix}{n:02d}", team=team, input_tokens=count, cache_read=0)
        # made in the agent's service: under a span of it the caller never sees
        call["traceId"], call["parentSpanId"] = trace, f"{prefix}ff"
        calls.append(call)
    return calls


def _sums(con: Any, team: str) -> tuple[Any, ...]:
    """Events, input tokens and cost of ``team`` in the events and in the rollup."""
    events = con.execute(
        "SELECT count(*), sum(input_tokens), round(sum(cost_usd), 9) FROM events WHERE team = ?", [team]
    ).fetchone()
    rollup = con.execute(
        "SELECT sum(events), sum(input_tokens), round(sum(cost_usd), 9) FROM rollup_daily WHERE team = ?",
        [team],
    ).fetchone()
    return events, rollup


def test_model_calls_exported_after_their_remote_agents_span_replace_it(tmp_path: Any) -> None:
    """The remote agent's service exports its model calls after the caller exported the agent's
    span: the span was counted for want of them; once they come they count, and it goes."""
    import json

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    trace = "a7" * 16
    # the agent's own figure differs from its calls' sum: counting both would show 2,500 more
    agent = _remote_agent("a7119b7ec3c1b0ff", trace, team="late-calls", input_tokens=2500, hours_before=21)
    calls = _model_calls("a7119b7ec3c1b0", trace, team="late-calls", tokens=(1000, 2000))
    lone = _remote_agent("a7119b7ec3c1b1ff", "a8" * 16, team="late-calls", input_tokens=700)
    first, later = tmp_path / "caller.json", tmp_path / "agent-service.json"
    first.write_text(json.dumps(_doc(agent, lone)))
    later.write_text(json.dumps(_doc(*calls)))
    con = open_ledger(tmp_path / "ledger.duckdb")
    assert ingest_files(con, [first], format="otel").rows_stored == 2
    events, rollup = _sums(con, "late-calls")
    assert events[:2] == (2, 3200) and rollup == events  # counted for want of its calls
    result = ingest_files(con, [later], format="otel")
    assert result.reconciles and (result.rows_stored, result.rows_superseded) == (2, 1)
    assert result.as_row()["rows_superseded"] == 1
    events, rollup = _sums(con, "late-calls")
    assert events[:2] == (3, 3700) and rollup == events  # the calls and the lone agent; the rollup agrees
    # the agent's span started the day before its calls: that day of the rollup was summed again
    days = con.execute("SELECT DISTINCT day FROM rollup_daily WHERE team = 'late-calls'").fetchall()
    assert [str(d) for (d,) in days] == ["2026-03-08"]
    assert con.execute(
        "SELECT rows_superseded FROM ingests WHERE ingest_id = ?", [result.ingest_id]
    ).fetchone() == (1,)
    # the agent's span exported once more is a duplicate of its calls, as when it comes after them
    again = ingest_files(con, [first], format="otel")
    assert (again.rows_stored, again.rows_duplicate, again.rows_superseded) == (0, 2, 0)
    assert _sums(con, "late-calls")[0][:2] == (3, 3700)


def test_a_remote_agents_span_and_its_model_calls_in_two_files_of_one_ingest_count_once(
    tmp_path: Any,
) -> None:
    import json

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    trace = "b7" * 16
    agent = _remote_agent("b7119b7ec3c1b0ff", trace, team="two-files", input_tokens=2500)
    calls = _model_calls("b7119b7ec3c1b0", trace, team="two-files", tokens=(1000, 2000))
    caller, service = tmp_path / "caller.json", tmp_path / "service.json"
    caller.write_text(json.dumps(_doc(agent)))
    service.write_text(json.dumps(_doc(*calls)))
    con = open_ledger(tmp_path / "ledger.duckdb")
    result = ingest_files(con, [caller, service], format="otel")
    assert result.reconciles and (result.rows_stored, result.rows_duplicate) == (2, 1)
    events, rollup = _sums(con, "two-files")
    assert events[:2] == (2, 3000) and rollup == events


def _ingest_doc(con: Any, path: Any, *spans: Any) -> Any:
    import json

    from flopledger.ledger.ingest import ingest_files

    path.write_text(json.dumps(_doc(*spans)))
    result = ingest_files(con, [path], format="otel")
    assert result.reconciles
    return result


def _shifted(span: Any, minutes: int) -> Any:
    return {**span, "startTimeUnixNano": str(int(span["startTimeUnixNano"]) + minutes * 60 * 10**9)}


def test_model_calls_split_over_later_exports_each_count_and_the_agent_goes_once(tmp_path: Any) -> None:
    from flopledger.ledger.store import open_ledger

    trace = "c7" * 16
    agent = _remote_agent("c7119b7ec3c1b0ff", trace, team="split-later", input_tokens=2500)
    first, second = _model_calls("c7119b7ec3c1b0", trace, team="split-later", tokens=(1000, 2000))
    con = open_ledger(tmp_path / "ledger.duckdb")
    _ingest_doc(con, tmp_path / "a.json", agent)
    assert _ingest_doc(con, tmp_path / "b.json", first).rows_superseded == 1
    assert _sums(con, "split-later")[0][:2] == (1, 1000)
    # the second call of the trace supersedes nothing more: the first call stays
    assert _ingest_doc(con, tmp_path / "c.json", second).rows_superseded == 0
    events, rollup = _sums(con, "split-later")
    assert events[:2] == (2, 3000) and rollup == events
    # the replaced span is off the list
    assert con.execute("SELECT count(*) FROM agent_spans").fetchone() == (0,)


@pytest.mark.parametrize("agent_first", [True, False])
def test_a_remote_agents_service_clock_behind_its_callers_still_counts_once(
    tmp_path: Any, agent_first: bool
) -> None:
    """The agent's service logs its model call 30 minutes 'before' the caller's agent span."""
    from flopledger.ledger.store import open_ledger

    trace = "d7" * 16
    agent = _remote_agent("d7119b7ec3c1b0ff", trace, team="skewed", input_tokens=2500)
    (call,) = _model_calls("d7119b7ec3c1b0", trace, team="skewed", tokens=(1000,))
    con = open_ledger(tmp_path / "ledger.duckdb")
    spans = [agent, _shifted(call, -30)]
    for n, span in enumerate(spans if agent_first else spans[::-1]):
        _ingest_doc(con, tmp_path / f"{n}.json", span)
    assert _sums(con, "skewed")[0][:2] == (1, 1000)


def test_a_remote_agent_is_matched_to_model_calls_of_its_run_only(tmp_path: Any) -> None:
    """A trace's calls three days after its agent's span are not of its run; spans of the invalid
    all-zero trace id, which many share, are of no trace at all."""
    from flopledger.ledger.store import open_ledger

    con = open_ledger(tmp_path / "ledger.duckdb")
    old = _remote_agent("b8119b7ec3c1b0ff", "b8" * 16, team="runs", input_tokens=2500, hours_before=72)
    (late,) = _model_calls("b8119b7ec3c1b0", "b8" * 16, team="runs", tokens=(1000,))
    zeros = [
        _remote_agent(f"b9119b7ec3c1b{n}ff", "0" * 32, team="runs", input_tokens=700, hours_before=24 * n)
        for n in (0, 1, 2)
    ]
    (anonymous,) = _model_calls("b9119b7ec3c1b0", "0" * 32, team="runs", tokens=(100,))
    _ingest_doc(con, tmp_path / "agents.json", old, *zeros)
    assert _sums(con, "runs")[0][:2] == (4, 4600)
    result = _ingest_doc(con, tmp_path / "calls.json", late, anonymous)
    assert (result.rows_stored, result.rows_superseded) == (2, 0)
    assert _sums(con, "runs")[0][:2] == (6, 5700)
    # and the other way round: the agent's span after calls of its trace from days before stays too
    (early,) = _model_calls("b8119b7ec3c1b1", "ba" * 16, team="later-agent", tokens=(1000,))
    _ingest_doc(con, tmp_path / "early.json", _shifted(early, -72 * 60))
    agent = _remote_agent("ba119b7ec3c1b0ff", "ba" * 16, team="later-agent", input_tokens=2500)
    assert _ingest_doc(con, tmp_path / "agent.json", agent).rows_stored == 1


def test_a_replaced_agent_span_sent_again_is_a_duplicate(tmp_path: Any) -> None:
    from flopledger.ledger.store import open_ledger

    trace = "bb" * 16
    agent = _remote_agent("bb119b7ec3c1b0ff", trace, team="resent", input_tokens=2500, hours_before=20)
    calls = _model_calls("bb119b7ec3c1b0", trace, team="resent", tokens=(1000, 2000))
    con = open_ledger(tmp_path / "ledger.duckdb")
    _ingest_doc(con, tmp_path / "a.json", agent)
    assert _ingest_doc(con, tmp_path / "b.json", *calls).rows_superseded == 1
    assert con.execute("SELECT count(*) FROM agent_spans").fetchone() == (0,)
    again = _ingest_doc(con, tmp_path / "c.json", agent)
    assert (again.rows_stored, again.rows_duplicate) == (0, 1)
    assert _sums(con, "resent")[0][:2] == (2, 3000)


def test_rows_of_other_formats_tagged_like_a_remote_agent_are_never_dropped(tmp_path: Any) -> None:
    import json

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    trace = "e7" * 16
    tags = json.dumps({"remote_agent": True, "trace_id": trace})
    row = {"ts": "2026-03-08T20:00:00Z", "model": "claude-sonnet-4-5", "team": "tagged-rows"}
    jsonl = tmp_path / "usage.jsonl"
    jsonl.write_text(json.dumps({**row, "input_tokens": 700, "tags": tags}) + "\n")
    (call,) = _model_calls("e7119b7ec3c1b0", trace, team="tagged-rows", tokens=(1000,))
    spans = tmp_path / "spans.json"
    spans.write_text(json.dumps(_doc(call)))
    con = open_ledger(tmp_path / "ledger.duckdb")
    both = ingest_files(con, [jsonl, spans])  # one ingest: the row and a model call of its "trace"
    assert both.reconciles and (both.rows_stored, both.rows_duplicate) == (2, 0)
    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps({**row, "input_tokens": 800, "tags": tags}) + "\n")
    assert ingest_files(con, [later]).rows_stored == 1
    (call2,) = _model_calls("e7119b7ec3c1b1", trace, team="tagged-rows", tokens=(1000,))
    assert _ingest_doc(con, tmp_path / "more.json", call2).rows_superseded == 0
    assert _sums(con, "tagged-rows")[0][:2] == (4, 3500)


def test_a_ledger_that_counted_an_agent_and_its_calls_is_mended_when_the_calls_come_again(
    tmp_path: Any,
) -> None:
    """A ledger an older flopledger wrote has no list of agents' spans: it is made from the events
    when the ledger is opened, and model calls sent again then replace the agent they sum."""
    from flopledger.ledger.store import open_ledger

    trace = "f7" * 16
    agent = _remote_agent("f7119b7ec3c1b0ff", trace, team="mended", input_tokens=2500)
    calls = _model_calls("f7119b7ec3c1b0", trace, team="mended", tokens=(1000, 2000))
    db = tmp_path / "ledger.duckdb"
    con = open_ledger(db)
    _ingest_doc(con, tmp_path / "a.json", agent)
    con.execute("DELETE FROM agent_spans")  # as an older flopledger stored it: no list, so
    _ingest_doc(con, tmp_path / "b.json", *calls)  # ... the calls were counted besides it
    assert _sums(con, "mended")[0][:2] == (3, 5500)
    con.execute("DROP TABLE agent_spans")
    con.close()
    con = open_ledger(db)  # the list is made from the stored events
    assert (
        con.execute("SELECT event_id FROM agent_spans").fetchall()
        == con.execute("SELECT event_id FROM events WHERE request_id = 'f7119b7ec3c1b0ff'").fetchall()
    )
    again = _ingest_doc(con, tmp_path / "c.json", *calls)
    assert (again.rows_stored, again.rows_duplicate, again.rows_superseded) == (0, 2, 1)
    events, rollup = _sums(con, "mended")
    assert events[:2] == (2, 3000) and rollup == events


@pytest.mark.parametrize(
    ("attribute", "quarantined"),
    [
        ({"key": "openai.response.service_tier", "value": "flex"}, 1),  # read for the price
        ({"key": "user.id", "value": {"bogus": "alice"}}, 1),  # read for attribution (not an AnyValue)
        ({"key": "gen_ai.completion.0.content", "value": "text"}, 0),  # read for nothing: left out
    ],
)
def test_a_malformed_attribute_quarantines_its_span_when_the_span_is_read_by_it(
    api: Api, golden: Fixture, attribute: dict[str, Any], quarantined: int, state: ServerState
) -> None:
    span = _span(f"ad119b7ec3c1{quarantined}{len(attribute['key']):03d}")  # 16 hex digits
    span["attributes"].append(attribute)
    body = api.post("/v1/traces", json=_doc(span), token=golden.tokens["admin"]).json()["ingest"]
    assert (body["rows_quarantined"], body["rows_read"]) == (quarantined, 1)
    if quarantined:  # and the reason names the attribute that was out of shape
        reason = _count(state, f"SELECT reason FROM quarantine WHERE ingest_id = '{body['ingest_id']}'")
        assert repr(attribute["key"]) in reason


def test_a_small_gzip_body_that_inflates_past_the_limit_is_refused(api: Api, golden: Fixture) -> None:
    limit = api.state.config.max_body_bytes
    body = gzip.compress(b'{"resourceSpans": []' + b" " * (limit + 10) + b"}")
    assert len(body) < limit
    r = api.post(
        "/v1/traces",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        token=golden.tokens["admin"],
    )
    assert r.status_code == 413 and "decompressed" in r.json()["detail"]


def test_gzip_bodies_of_several_members_are_read_whole_and_trailing_bytes_refused(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    import json

    text = json.dumps(_doc(_span("cd119b7ec3c1b001", team="gzip-team"))).encode()
    half = len(text) // 2
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    two = gzip.compress(text[:half]) + gzip.compress(text[half:])
    r = api.post("/v1/traces", content=two, headers=headers, token=golden.tokens["admin"])
    assert r.status_code == 200 and r.json()["ingest"]["rows_stored"] == 1, r.text
    r = api.post(
        "/v1/traces", content=gzip.compress(text) + b"junk", headers=headers, token=golden.tokens["admin"]
    )
    assert r.status_code == 400 and "data follows its end" in r.json()["detail"]


def test_a_named_overrides_file_gone_while_serving_stops_otlp_pricing(
    golden: Fixture, tmp_path: Any, api_for: Any
) -> None:
    """Spans are never priced without the negotiated prices the server was started with."""
    import shutil

    from flopledger.web import WebConfig

    copy = tmp_path / "ledger.duckdb"
    shutil.copy(golden.path, copy)
    config = WebConfig(db=copy, overrides=tmp_path / "gone.toml", overrides_required=True)
    s = ServerState.open(config)
    try:
        r = api_for(s).post("/v1/traces", json=_doc(_span("fa119b7ec3c1b001")), token=golden.tokens["admin"])
        assert r.status_code == 500 and "no such overrides file" in r.json()["detail"]
        assert _count(s, "SELECT count(*) FROM events WHERE request_id = 'fa119b7ec3c1b001'") == 0
    finally:
        s.close()


def test_a_body_nested_too_deeply_is_refused_not_a_server_error(api: Api, golden: Fixture) -> None:
    import json

    deep_json = b'{"resourceSpans": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    # a span whose attribute nests 320 arrays: under the parser's own limit, deep enough to exhaust a
    # recursive walk (written as text: json.dumps itself cannot write it)
    span = json.dumps(_doc(_span("dee19b7ec3c1b001")))
    nested = '{"arrayValue": {"values": [' * 320 + '{"stringValue": "leaf"}' + "]}}" * 320
    attribute = '{"key": "app.nested", "value": ' + nested + "}, "
    deep_span = span.replace('"attributes": [', '"attributes": [' + attribute, 1)
    assert deep_span != span
    for body in (deep_json, deep_span.encode()):
        r = api.post(
            "/v1/traces",
            content=body,
            headers={"Content-Type": "application/json"},
            token=golden.tokens["admin"],
        )
        assert r.status_code == 400 and "nests deeper than" in r.json()["detail"]


def test_an_attribute_nested_too_deeply_is_judged_as_in_a_file_not_the_whole_request_refused(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"stringValue": "x"}
        for _ in range(levels):
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        return value

    read, unread = _span("de219b7ec3c1b001"), _span("de219b7ec3c1b002")
    read["attributes"].insert(0, {"key": "gen_ai.request.model", "value": nested(40)})
    unread["attributes"].insert(0, {"key": "app.deep", "value": nested(40)})
    r = api.post("/v1/traces", json=_doc(read, unread), token=golden.tokens["admin"])
    assert r.status_code == 200, r.text
    body = r.json()["ingest"]
    assert (body["rows_read"], body["rows_stored"], body["rows_quarantined"]) == (2, 1, 1)


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(
    server: str, golden: Fixture, state: ServerState
) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server)
    declared = state.config.max_body_bytes + 1
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {golden.tokens['admin']}\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode())  # and not one byte of the body: the answer must not wait for it
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status_line


def test_a_body_of_the_wrong_type_is_refused_before_it_is_sent(
    server: str, golden: Fixture, state: ServerState
) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server)
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: text/csv; charset=utf-8\r\n"
        f"Authorization: Bearer {golden.tokens['admin']}\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode())  # no body: a 415 that read it first would wait until the timeout
        reply = b""
        while b"application/json or" not in reply:  # the status line, then the reason
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    assert b" 415 " in reply.split(b"\r\n", 1)[0]
    assert b"text/csv" in reply and b"application/json" in reply


def test_a_file_nested_too_deeply_quarantines_its_lines_and_spans_not_a_traceback(tmp_path: Any) -> None:
    import json

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    def nested(levels: int) -> str:
        return (
            '{"kvlistValue": {"values": [{"key": "k", "value": ' * levels
            + '{"stringValue": "x"}'
            + "}]}}" * levels
        )

    read, unread = _span("dd119b7ec3c1b001"), _span("dd119b7ec3c1b002")
    text = [json.dumps(_doc(s)) for s in (read, unread)]
    # a deep value under a key usage is read by quarantines its span; under any other key it is left out
    text[0] = text[0].replace(
        '"attributes": [', '"attributes": [{"key": "gen_ai.request.model", "value": ' + nested(100) + "}, ", 1
    )
    text[1] = text[1].replace(
        '"attributes": [', '"attributes": [{"key": "app.deep", "value": ' + nested(100) + "}, ", 1
    )
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 5000 + "]" * 5000 + "\n" + "\n".join(text) + "\n")
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path], format="otel")
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (3, 1, 2) and result.reconciles
    reasons = sorted(r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall())
    assert reasons[0] == "not a usage record: it nests too deeply"  # the line no parser can read
    assert reasons[1].endswith("attribute 'gen_ai.request.model': its value nests deeper than 32 levels")
    con.close()
