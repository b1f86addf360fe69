"""OTLP JSON traces with OpenTelemetry GenAI span attributes.

Reads what the OpenTelemetry Collector's file exporter writes (one ``ExportTraceServiceRequest``
per line) or a single OTLP/HTTP JSON document. Current semantic-convention names are read first,
then the older names OpenLLMetry and OpenLIT send, then OpenInference's (``llm.token_count.*``) and
Pydantic AI's usage details. OpenTelemetry's ``gen_ai.usage.input_tokens`` *includes* cache reads
and writes, so they are subtracted to give the canonical uncached input; OpenLIT's Anthropic spans
are the exception (they give Anthropic's own count, without the cache). Spans that carry no GenAI
attributes (HTTP, database ...) are not usage and are not counted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flopledger.ledger.formats.base import (
    BadCount,
    JsonLineError,
    RecordFormat,
    StagedRow,
    canonical_tier,
    compact,
    iter_json_documents,
    register,
    whole_count,
)
from flopledger.ledger.formats.redact import PROMPT_PREFIXES

__all__ = [
    "AGGREGATE_OPERATIONS",
    "OUTSIDE_AGENTS_TAG",
    "REMOTE_AGENT_TAG",
    "MalformedAttributes",
    "OtlpTraces",
    "otlp_attributes",
    "read_attributes",
    "spans_to_rows",
]

# Each canonical field: the attribute names that carry it, newest convention first.
_ATTRS: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.vendor", "llm.provider", "llm.system"),
    "model": (
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.response.model",
        "llm.request.model",
        "llm.model_name",  # OpenInference
    ),
    "input_total": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
        "llm.token_count.prompt",  # OpenInference: the whole prompt, its cached part included
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cached_tokens",
        "gen_ai.usage.cache_read_tokens",
        "gen_ai.usage.details.cache_read_tokens",  # Pydantic AI
        "gen_ai.usage.details.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_tokens",
        "gen_ai.usage.details.cache_write_tokens",
        "gen_ai.usage.details.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.completion_tokens_details.reasoning_tokens",
        "gen_ai.usage.details.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
    "service_tier": (
        "gen_ai.openai.response.service_tier",
        "openai.response.service_tier",
        "gen_ai.request.service_tier",
        "gen_ai.openai.request.service_tier",
    ),
    "user": ("user.id", "enduser.id", "gen_ai.request.user", "gen_ai.user.id"),
    "team": ("team", "team.id", "flopledger.team"),
    "project": ("gen_ai.project", "project", "flopledger.project"),
    "org": ("gen_ai.openai.organization", "organization", "flopledger.org"),
    "api_key": ("gen_ai.api_key.id", "api_key.id", "flopledger.api_key"),
    "request_id": ("gen_ai.response.id",),
}
_PROVIDER_ALIASES = {
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}


class MalformedAttributes(ValueError):
    """OTLP attributes not in their ``[{key, value: AnyValue}]`` shape. The message names keys only,
    never values (a value may be prompt text)."""


def _values_of(v: Mapping[str, Any], kind: str) -> list[Any]:
    wrapper = v[kind]
    values = wrapper.get("values") if isinstance(wrapper, dict) else None
    if values is None and isinstance(wrapper, dict):
        return []
    if not isinstance(values, list):
        raise MalformedAttributes(f"its {kind} is not an object with a 'values' list")
    return values


class _TooDeep(MalformedAttributes):
    """A value nested beyond :data:`_MAX_VALUE_DEPTH`: named by its top-level attribute alone."""


_MAX_VALUE_DEPTH = 32
"""How deeply an attribute's value may nest arrays and key-value lists (far beyond any real one;
deeper is malformed, rather than a walk that exhausts the stack)."""


def _value(v: Any, depth: int = 0) -> Any:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise MalformedAttributes("its value is not an AnyValue object")
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in v:
            return v[key]
    if depth >= _MAX_VALUE_DEPTH and ("arrayValue" in v or "kvlistValue" in v):
        raise _TooDeep(f"its value nests deeper than {_MAX_VALUE_DEPTH} levels")
    if "arrayValue" in v:
        return [_value(x, depth + 1) for x in _values_of(v, "arrayValue")]
    if "kvlistValue" in v:
        return otlp_attributes(_values_of(v, "kvlistValue"), depth + 1)
    if v:  # fields an AnyValue does not have
        raise MalformedAttributes("its value is not an AnyValue object")
    return None  # an empty AnyValue


def read_attributes(attrs: Any, depth: int = 0) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """OTLP's ``[{key, value: {stringValue: ...}}]`` as a plain dict, and what was not in that shape:
    (its key, or None when there is none, and why, which names no value); the rest are all read."""
    if attrs is None:
        return {}, []
    if not isinstance(attrs, list):
        return {}, [(None, "attributes are not a list of {key, value} objects")]
    out: dict[str, Any] = {}
    problems: list[tuple[str | None, str]] = []
    for a in attrs:
        if not isinstance(a, dict) or not isinstance(a.get("key"), str):
            problems.append((None, "an attribute is not a {key, value} object"))
            continue
        try:
            out[a["key"]] = _value(a.get("value"), depth)
        except MalformedAttributes as exc:
            if depth and isinstance(exc, _TooDeep):  # told once, by the attribute it is under
                raise
            problems.append((a["key"], f"attribute {a['key'][:80]!r}: {exc}"))
    return out, problems


def otlp_attributes(attrs: Any, depth: int = 0) -> dict[str, Any]:
    """OTLP's ``[{key, value: {stringValue: ...}}]`` as a plain dict; :class:`MalformedAttributes`
    when any is not in that shape (``depth``: how deep inside another value it is)."""
    out, problems = read_attributes(attrs, depth)
    if problems:
        raise MalformedAttributes(problems[0][1])
    return out


def _first(attrs: Mapping[str, Any], field: str) -> Any:
    return _first_named(attrs, field)[1]


def _first_named(attrs: Mapping[str, Any], field: str) -> tuple[str, Any]:
    """(attribute name, value) of the first attribute carrying ``field``; the newest name when none does."""
    for name in _ATTRS[field]:
        if attrs.get(name) is not None:
            return name, attrs[name]
    return _ATTRS[field][0], None


def _count(attrs: Mapping[str, Any], field: str) -> int:
    name, value = _first_named(attrs, field)
    return whole_count(value, name)


class _NotNanoseconds(ValueError):
    """A start time that, read as OTLP's nanoseconds, falls before 2000: another unit."""


_NANOS_2000 = 946_684_800 * 1_000_000_000
"""2000-01-01 in Unix nanoseconds: no usage is older, so an earlier time is in another unit."""


def _ts_from_nanos(start: Any) -> str | None:
    """ISO 8601 UTC of a Unix-nanosecond time (a string in OTLP JSON), exact to the microsecond."""
    if start is None:
        return None
    nanos = int(start)
    if nanos <= 0:
        raise ValueError(start)
    if nanos < _NANOS_2000:
        raise _NotNanoseconds(start)
    seconds, rest = divmod(nanos, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(microseconds=rest // 1000)
    return moment.isoformat()


def _prompt_text(attrs: Mapping[str, Any], events: list[Any]) -> str | None:
    """The user's prompt text, from whichever convention the instrumentation used."""
    parts: list[str] = []
    messages = attrs.get("gen_ai.input.messages")
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError:
            messages = None
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user":
                for part in m.get("parts") or [{"content": m.get("content")}]:
                    if isinstance(part, dict) and isinstance(part.get("content"), str):
                        parts.append(part["content"])
    i = 0
    while f"gen_ai.prompt.{i}.content" in attrs:
        if attrs.get(f"gen_ai.prompt.{i}.role", "user") == "user":
            parts.append(str(attrs[f"gen_ai.prompt.{i}.content"]))
        i += 1
    if not parts and isinstance(attrs.get("gen_ai.prompt"), str):
        parts.append(attrs["gen_ai.prompt"])
    for ev in events:
        if isinstance(ev, dict) and ev.get("name") == "gen_ai.user.message":
            try:
                content = otlp_attributes(ev.get("attributes")).get("content")
            except MalformedAttributes:
                continue
            if isinstance(content, str):
                parts.append(content)
    return "\n".join(parts) if parts else None


def _is_genai(span_attrs: Mapping[str, Any]) -> bool:
    """Whether a span's *own* attributes are GenAI ones (a resource's attributes say nothing of a span)."""
    return any(k.startswith(("gen_ai.", "llm.")) for k in span_attrs)


AGGREGATE_OPERATIONS: tuple[str, ...] = ("invoke_agent", "create_agent", "invoke_workflow")
"""GenAI operations whose token counts sum the model calls made inside them (the semantic
conventions' agent spans). An in-process agent's model calls are traced as its children, so its own
counts are not counted again; a remote agent's (a CLIENT span) are the only record of its use."""

_CLIENT_KINDS = (3, "3", "SPAN_KIND_CLIENT")


_TOKEN_FIELDS = ("input_total", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _counts_tokens(attrs: Mapping[str, Any]) -> bool:
    """Whether a span gives any token count."""
    return any(_first(attrs, f) is not None for f in _TOKEN_FIELDS)


def _is_usage(attrs: Mapping[str, Any]) -> bool:
    """Whether a GenAI span records usage: it names a model or counts tokens.

    Tool executions and agent steps carry ``gen_ai.*`` attributes but neither; they are not usage.
    """
    return _first(attrs, "model") is not None or _counts_tokens(attrs)


_AGGREGATE_KINDS = ("AGENT", "CHAIN")
"""OpenInference span kinds that sum the model calls made inside them (smolagents' agent run)."""


def _is_aggregate(attrs: Mapping[str, Any]) -> bool:
    """An agent's span: an aggregate operation, an OpenInference AGENT or CHAIN span, or one naming
    an agent and no model (Pydantic AI's agent run, which sums its model calls' usage under
    ``gen_ai.agent.name`` and its own ``model_name``)."""
    if str(attrs.get("gen_ai.operation.name") or "").lower() in AGGREGATE_OPERATIONS:
        return True
    if str(attrs.get("openinference.span.kind") or "").upper() in _AGGREGATE_KINDS:
        return True
    return attrs.get("gen_ai.agent.name") is not None and _first(attrs, "model") is None


_ERROR_CODES = (2, "2", "STATUS_CODE_ERROR")


def _failed_without_usage(span: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
    """A model call that failed (an error status, or an ``error.type``) and counts no tokens: no
    usage was billed (a refused or rate-limited request), so it is not usage."""
    if _counts_tokens(attrs):
        return False
    status = span.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    return code in _ERROR_CODES or attrs.get("error.type") is not None


def _counts_itself(span: Mapping[str, Any], blocking: Mapping[str, list[tuple[str, ...] | None]]) -> bool:
    """Whether an agent span's own counts are counted: only a remote agent's (a CLIENT span) none
    of whose trace's model calls in the file or request may be its own. ``blocking`` holds, per
    trace, each model call's ancestors when its parent chain reaches the trace's root in the file
    (None when it does not: made who knows where, perhaps in the agent's service). A call whose
    whole chain passes no span of the agent is not the agent's (the caller's own model call beside
    it). An in-process agent's (INTERNAL, or no kind) never are: its model calls are traced, and may
    have been exported before it ended."""
    if span.get("kind") not in _CLIENT_KINDS:
        return False
    me = _hex_id(span, "spanId")
    return all(chain is not None and me not in chain for chain in blocking.get(_trace(span) or "", []))


OUTSIDE_AGENTS_TAG = "outside_agents"
"""Tag of a model call whose parent chain reaches its trace's root within its file through no
agent's span: no remote agent made it, so it never stands in for one's span."""

_MAX_CHAIN = 10_000
"""The most parents followed up from a span (a loop of parent ids ends there, as a broken chain)."""


def _ancestors(span: Mapping[str, Any], parents: Mapping[tuple[str, str], str]) -> tuple[str, ...] | None:
    """The span ids above ``span`` up to its trace's root, when every one is in ``parents`` (the
    file's spans: (trace, span) -> parent, '' for a root); None when the chain leaves the file."""
    trace, parent = _trace(span), _hex_id(span, "parentSpanId")
    if trace is None:
        return None
    chain: list[str] = []
    while parent:
        if len(chain) >= _MAX_CHAIN or (trace, parent) not in parents:
            return None
        chain.append(parent)
        parent = parents[(trace, parent)]
    return tuple(chain)


_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def _hex_id(span: Mapping[str, Any], key: str) -> str | None:
    """A span's ``traceId``, ``spanId`` or ``parentSpanId`` as lower-case hex, OTLP/JSON's form (its
    ids are case-insensitive). An id in base64, as a protobuf JSON printer writes bytes, is decoded,
    so the trace a span is of and its parent read alike however they were written. None when it has
    none."""
    value = span.get(key)
    if not value:
        return None
    text = str(value)
    size = _ID_BYTES[key]
    if not re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) == 4 * ((size + 2) // 3):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw.hex()
    return text.lower()


def _trace(span: Mapping[str, Any]) -> str | None:
    """A span's trace id (:func:`_hex_id`); None when it has none or the invalid all-zero one (which
    many spans may share: it links nothing)."""
    trace = _hex_id(span, "traceId") or ""
    return trace if trace.strip("0") else None


def _input_excludes_cache(attrs: Mapping[str, Any], input_total: int, cache: int) -> bool:
    """Whether a span's input count leaves the cache out: OpenLIT's Anthropic instrumentation
    writes Anthropic's own ``input_tokens`` (uncached) as ``gen_ai.usage.input_tokens``; so do some
    releases of OpenInference's Anthropic ones, as ``llm.token_count.prompt``, told where the cache
    they count exceeds it (others count the whole prompt, as OpenTelemetry does)."""
    if str(_first(attrs, "provider") or "").strip().lower() != "anthropic":
        return False
    if str(attrs.get("telemetry.sdk.name") or "").strip().lower() == "openlit":
        return True
    return attrs.get("openinference.span.kind") is not None and cache > input_total


_READ: frozenset[str] = frozenset(
    {
        *(name for names in _ATTRS.values() for name in names),
        "gen_ai.operation.name",
        "service.name",
        "openinference.span.kind",
    }
)
"""Attributes a span's usage, price or attribution is read from: one of these out of shape
quarantines the span (others are left out)."""


def _malformed(line: int, node: Any, why: str) -> StagedRow:
    """A quarantined row for a span (or an entry above spans) out of OTLP's shape, kept whole."""
    return StagedRow(line=line, raw=compact(node), error=f"not an OTLP span: {why}")


def _usage_spans(
    doc: Any, line: int, parents: dict[tuple[str, str], str]
) -> Iterator[StagedRow | tuple[Mapping[str, Any], dict[str, Any]]]:
    """Quarantined rows of one export's parts out of OTLP's shape, and its usage spans with their
    attributes (the resource's under the span's own). Every span's parent goes into ``parents``
    ((trace, span) -> parent, '' for a root)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        yield StagedRow(
            line=line, raw=compact(doc)[:2000], error="not an OTLP trace document (no resourceSpans)"
        )
        return
    for rs in doc["resourceSpans"]:
        if not isinstance(rs, dict) or not isinstance(rs.get("resource") or {}, dict):
            yield _malformed(line, rs, "a resourceSpans entry (or its resource) that is not an object")
            continue
        resource, problems = read_attributes((rs.get("resource") or {}).get("attributes"))
        # What the spans are attributed or priced by, out of shape on the resource: each of its
        # usage spans waits in quarantine, whole; anything else out of shape is left out.
        resource_bad = [f"resource {why}" for key, why in problems if key is None or key in _READ]
        scopes = rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []
        for ss in scopes if isinstance(scopes, list) else [scopes]:
            spans = ss.get("spans") if isinstance(ss, dict) else None
            if not isinstance(ss, dict) or not isinstance(spans, list | None):
                yield _malformed(line, ss, "a scopeSpans entry that is not an object with a list of spans")
                continue
            for span in spans or []:
                if not isinstance(span, dict):
                    yield _malformed(line, span, "a span that is not an object")
                    continue
                trace, span_id = _trace(span), _hex_id(span, "spanId")
                if trace and span_id:
                    parents[(trace, span_id)] = _hex_id(span, "parentSpanId") or ""
                own, problems = read_attributes(span.get("attributes"))
                attrs = {**resource, **own}
                unreadable = any(key is None for key, _ in problems)  # can't tell what span it is
                genai = _is_genai(own) or _is_genai({k: None for k, _ in problems if k is not None})
                bad = [why for key, why in problems if key is None or key in _READ]
                if unreadable or (genai and (bad or (resource_bad and _is_usage(attrs)))):
                    yield _malformed(line, span, "; ".join([*resource_bad, *bad]))
                    continue
                if genai and _is_usage(attrs) and not _failed_without_usage(span, attrs):
                    yield span, attrs


def spans_to_rows(documents: Iterable[tuple[int, Any]]) -> Iterator[StagedRow]:
    """Staged rows of every GenAI span of OTLP ``ExportTraceServiceRequest`` documents (as JSON),
    given as (line, document); a :class:`JsonLineError` document is quarantined.

    Each document is read once. Agent spans are judged against the model calls of all of them: an
    agent span and its model calls may be in different exports (lines) of one file.
    """
    found: list[tuple[int, StagedRow | tuple[Mapping[str, Any], dict[str, Any]]]] = []
    parents: dict[tuple[str, str], str] = {}
    for line, doc in documents:
        if isinstance(doc, JsonLineError):
            found.append((line, doc.staged()))
        else:
            found.extend((line, item) for item in _usage_spans(doc, line, parents))
    spans = {n: item for n, (_, item) in enumerate(found) if isinstance(item, tuple)}
    agents = {n for n, (_, attrs) in spans.items() if _is_aggregate(attrs)}
    remote = {_hex_id(spans[n][0], "spanId") for n in agents if spans[n][0].get("kind") in _CLIENT_KINDS}
    # each model call's ancestors (None: its chain leaves the file), and, by trace, for the agents
    chains = {n: _ancestors(span, parents) for n, (span, _) in spans.items() if n not in agents}
    blocking: dict[str, list[tuple[str, ...] | None]] = {}
    for n, chain in chains.items():
        if trace := _trace(spans[n][0]):
            blocking.setdefault(trace, []).append(chain)
    for n, (line, item) in enumerate(found):
        if isinstance(item, StagedRow):
            yield item
        elif n in chains:  # a model call: no remote agent made it where its whole chain passes none
            chain = chains[n]
            yield _span_row(line, *item, outside_agents=chain is not None and not remote.intersection(chain))
        elif _counts_itself(item[0], blocking):
            # counted unless the ledger already holds model calls of its trace (ingest looks)
            yield _span_row(line, *item, remote_agent=True)


REMOTE_AGENT_TAG = "remote_agent"
"""Tag of a remote agent's span counted for its model calls: none of them was in its file or request."""


def _span_row(
    line: int,
    span: Mapping[str, Any],
    attrs: dict[str, Any],
    *,
    remote_agent: bool = False,
    outside_agents: bool = False,
) -> StagedRow:
    trace_id, span_id = span.get("traceId"), span.get("spanId")
    raw_attrs = {k: v for k, v in attrs.items() if not k.startswith(PROMPT_PREFIXES)}
    raw = compact(
        {
            "traceId": trace_id,
            "spanId": span_id,
            "name": span.get("name"),
            "startTimeUnixNano": span.get("startTimeUnixNano"),
            "attributes": raw_attrs,
        }
    )
    # OTLP ids are case-insensitive hex: one span sent as ABCD... and as abcd... is one event. (An id
    # in base64 keeps the id it was always given, so a ledger holding it still finds it.)
    source_id = f"otel:{str(trace_id).lower()}:{str(span_id).lower()}" if trace_id and span_id else None
    try:
        total_in = _count(attrs, "input_total")
        cache_read = _count(attrs, "cache_read_tokens")
        cache_write = _count(attrs, "cache_write_tokens")
    except BadCount as exc:
        return StagedRow(line=line, raw=raw, source_id=source_id, error=str(exc), error_field=exc.field)
    output = _first(attrs, "output_tokens")
    reasoning = _first(attrs, "reasoning_tokens")
    if not _counts_tokens(attrs):
        return StagedRow(
            line=line,
            raw=raw,
            source_id=source_id,
            error_field=_ATTRS["input_total"][0],
            error="the span names a model but counts no tokens, so its cost is unknown (a streamed "
            "response traced without its usage? OpenAI streams it with stream_options "
            "include_usage)",
        )
    excludes_cache = _input_excludes_cache(attrs, total_in, cache_read + cache_write)
    if cache_read + cache_write > total_in and not excludes_cache:
        input_name = _first_named(attrs, "input_total")[0]
        return StagedRow(
            line=line,
            raw=raw,
            source_id=source_id,
            error_field=input_name,
            error=f"cache tokens ({cache_read + cache_write}) exceed input tokens ({total_in}); "
            "OpenTelemetry's input_tokens includes cached tokens",
        )
    start = span.get("startTimeUnixNano")
    try:
        ts = _ts_from_nanos(start)
    except _NotNanoseconds:
        return StagedRow(
            line=line,
            raw=raw,
            source_id=source_id,
            error=f"startTimeUnixNano {start!r} is before 2000 read as nanoseconds since 1970, OTLP's "
            "unit: the exporter wrote milliseconds or seconds; fix its times and ingest again",
            error_field="startTimeUnixNano",
        )
    except (TypeError, ValueError, OverflowError, OSError):
        return StagedRow(
            line=line,
            raw=raw,
            source_id=source_id,
            error=f"bad startTimeUnixNano {start!r}",
            error_field="startTimeUnixNano",
        )
    provider = _first(attrs, "provider")
    provider = _PROVIDER_ALIASES.get(str(provider).lower(), str(provider).lower()) if provider else None
    tier = _first(attrs, "service_tier")
    tag_keys = ("service.name", "gen_ai.operation.name", "deployment.environment")
    tags = {k: v for k, v in attrs.items() if k in tag_keys}
    trace = _trace(span)
    if trace:  # which trace a span is of: its agent span and model calls may come apart
        tags["trace_id"] = trace
    if remote_agent:
        tags[REMOTE_AGENT_TAG] = True
    if outside_agents:
        tags[OUTSIDE_AGENTS_TAG] = True
    values: dict[str, Any] = {
        "ts": ts,
        "request_id": _first(attrs, "request_id") or span_id,
        "provider": provider,
        "model": _first(attrs, "model"),
        "org": _first(attrs, "org"),
        "project": _first(attrs, "project") or attrs.get("service.name"),
        "team": _first(attrs, "team"),
        "user": _first(attrs, "user"),
        "api_key": _first(attrs, "api_key"),
        "service_tier": canonical_tier(tier) if tier else "standard",
        "input_tokens": total_in if excludes_cache else total_in - cache_read - cache_write,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": cache_write,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        "tags": compact(tags) if tags else None,
        "prompt": _prompt_text(attrs, list(span.get("events") or [])),
    }
    return StagedRow(line=line, raw=raw, values=values, source_id=source_id)


@register
class OtlpTraces(RecordFormat):
    name = "otel"
    description = "OTLP JSON traces with OpenTelemetry GenAI attributes (also OpenLLMetry and OpenLIT names)."

    def sniff(self, path: Path, head: str) -> bool:
        return '"resourceSpans"' in head

    def rows(self, path: Path) -> Iterator[StagedRow]:
        yield from spans_to_rows(iter_json_documents(path))
