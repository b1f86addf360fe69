"""OTLP/HTTP trace intake: JSON or protobuf bodies, into the ledger through the ordinary ingest path.

A protobuf ``ExportTraceServiceRequest`` is turned into the OTLP JSON shape (camelCase names, trace
and span ids in hex, integers as the JSON mapping writes them), written to a temporary file and
ingested with the ``otel`` format, so spans get the same validation, quarantine, pricing and
dedupe by span id as a file would.

>>> doc = decode_traces(b'{"resourceSpans": []}', "application/json", None)
>>> doc
{'resourceSpans': []}
"""

from __future__ import annotations

import base64
import json
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from flopledger.catalog.overrides import load_overrides
from flopledger.errors import InputError
from flopledger.ledger.ingest import IngestResult, ingest_files
from flopledger.web.state import ServerState

__all__ = ["PROTOBUF", "decode_traces", "ingest_traces", "media_type", "protobuf_response"]

PROTOBUF = "application/x-protobuf"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> None:
    """The protobuf JSON mapping writes bytes as base64; OTLP JSON wants trace and span ids in hex."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


class BodyTooLarge(InputError):
    """A body over the size limit, before or after decompression (HTTP 413)."""


def _inflate(body: bytes, encoding: str | None, max_bytes: int | None = None) -> bytes:
    """The body decompressed; never more than ``max_bytes`` of it (a small gzip can inflate to gigabytes)."""
    enc = (encoding or "identity").lower().strip()
    if enc not in ("gzip", "deflate"):
        if enc != "identity":
            raise InputError(
                f"unsupported Content-Encoding {enc!r}; send gzip or none", field="Content-Encoding"
            )
        return body
    out = bytearray()
    rest = body
    try:
        while True:  # a gzip body may hold several members, one after the other
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
            out += inflater.decompress(rest, (max_bytes + 1 - len(out)) if max_bytes is not None else 0)
            if max_bytes is not None and len(out) > max_bytes:
                raise BodyTooLarge(
                    f"body over {max_bytes} bytes once decompressed; send smaller batches", field="body"
                )
            if not inflater.eof:
                raise InputError(f"body is not valid {enc}: it ends early", field="Content-Encoding")
            rest = inflater.unused_data
            if not rest:
                return bytes(out)
            if enc != "gzip" or not rest.startswith(b"\x1f\x8b"):
                raise InputError(f"body is not valid {enc}: data follows its end", field="Content-Encoding")
    except zlib.error as exc:
        raise InputError(f"body is not valid {enc}: {exc}", field="Content-Encoding") from exc


def _objects(node: Any, where: str) -> list[dict[str, Any]]:
    if node is None:
        return []
    if not isinstance(node, list) or not all(isinstance(x, dict) for x in node):
        raise InputError("expected a list of objects", field=where)
    return node


def _check_shape(doc: Any) -> None:
    """The nesting OTLP JSON promises (resourceSpans > scopeSpans > spans, all objects)."""
    if not isinstance(doc, dict):
        raise InputError("expected an ExportTraceServiceRequest object with resourceSpans", field="body")
    for i, rs in enumerate(_objects(doc.setdefault("resourceSpans", []), "resourceSpans")):
        if not isinstance(rs.get("resource") or {}, dict):
            raise InputError("expected an object", field=f"resourceSpans[{i}].resource")
        for j, ss in enumerate(_objects(rs.get("scopeSpans"), f"resourceSpans[{i}].scopeSpans")):
            _objects(ss.get("spans"), f"resourceSpans[{i}].scopeSpans[{j}].spans")


MAX_DEPTH = 256
"""How deeply an OTLP JSON body may nest: an export nests a span's attributes about ten levels down;
far deeper nesting is no export, and would exhaust the stack of whatever walks it. Set above what the
``otel`` reader allows an attribute's value (32 levels of values, about 140 containers in all), so an
over-deep attribute is the reader's to judge, as in a file: its span quarantined, or it left out."""

_TOO_DEEP = f"body nests deeper than {MAX_DEPTH} levels; an OTLP export nests about ten"


def _depth_over(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` containers (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def media_type(content_type: str | None) -> str:
    """The media type a Content-Type names, lower case: ``application/json`` or :data:`PROTOBUF`.

    Anything else is :class:`UnsupportedMedia` (HTTP 415), told before the body is read.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, "application/json"):
        raise UnsupportedMedia(
            f"unsupported Content-Type {media or 'none'!r}; send application/json or {PROTOBUF}",
            field="Content-Type",
        )
    return media


def decode_traces(
    body: bytes, content_type: str | None, encoding: str | None, *, max_bytes: int | None = None
) -> dict[str, Any]:
    """An OTLP/HTTP trace export body as the OTLP JSON document the ``otel`` format reads.

    ``content_type``: the request's Content-Type (or its :func:`media_type`). ``max_bytes`` bounds
    the body once decompressed (:class:`BodyTooLarge` beyond it).
    """
    media = media_type(content_type)
    raw = _inflate(body, encoding, max_bytes)
    if media == PROTOBUF:
        try:
            message = ExportTraceServiceRequest.FromString(raw)
        except DecodeError as exc:
            raise InputError(f"not an OTLP ExportTraceServiceRequest: {exc}", field="body") from exc
        doc: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
        _hex_ids(doc)
        doc.setdefault("resourceSpans", [])
        return doc
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"body is not JSON: {exc}", field="body") from exc
    except RecursionError as exc:
        raise InputError(_TOO_DEEP, field="body") from exc
    if _depth_over(parsed, MAX_DEPTH):
        raise InputError(_TOO_DEEP, field="body")
    _check_shape(parsed)
    checked: dict[str, Any] = parsed
    return checked


class UnsupportedMedia(InputError):
    """A body in a media type OTLP/HTTP does not use (HTTP 415)."""


def _span_count(doc: dict[str, Any]) -> int:
    return sum(
        len(ss.get("spans") or [])
        for rs in doc.get("resourceSpans") or []
        if isinstance(rs, dict)
        for ss in (rs.get("scopeSpans") or [])
        if isinstance(ss, dict)
    )


def ingest_traces(state: ServerState, doc: dict[str, Any]) -> IngestResult | None:
    """Ingest one export request; None when it carries no span at all."""
    if _span_count(doc) == 0:
        return None
    with tempfile.TemporaryDirectory(prefix="flopledger-otlp-") as tmp:
        path = Path(tmp) / f"otlp-{uuid.uuid4().hex[:12]}.json"
        path.write_text(json.dumps(doc), "utf-8")
        with state.write_lock, state.cursor() as cur:
            return ingest_files(
                cur,
                [path],
                format="otel",
                overrides=load_overrides(state.config.overrides, required=state.config.overrides_required),
                fingerprint_key=state.config.fingerprint_key or None,
                source_names=[OTLP_SOURCE],  # the temporary file is gone once the request is done
            )


OTLP_SOURCE = "POST /v1/traces"
"""What events and quarantined rows received over OTLP name as their file."""


def partial_success(result: IngestResult | None) -> dict[str, Any]:
    """OTLP's partial success: the spans quarantined and where to look them up ({} when none was)."""
    if result is None or not result.rows_quarantined:
        return {}
    return {
        "rejectedSpans": result.rows_quarantined,
        "errorMessage": f"{result.rows_quarantined} span(s) quarantined; see the quarantine "
        f"(`flopledger quarantine list`, once the server stops) for ingest {result.ingest_id}",
    }


def protobuf_response(result: IngestResult | None) -> bytes:
    """The OTLP response; quarantined spans are reported as rejected (partial success)."""
    response = ExportTraceServiceResponse()
    partial = partial_success(result)
    if partial:
        response.partial_success.rejected_spans = partial["rejectedSpans"]
        response.partial_success.error_message = partial["errorMessage"]
    return response.SerializeToString()
