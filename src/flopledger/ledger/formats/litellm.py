"""LiteLLM proxy spend logs (the ``LiteLLM_SpendLogs`` rows, as the ``/spend/logs`` JSON or a CSV).

LiteLLM reports usage the OpenAI way: ``prompt_tokens`` includes cache reads and cache creation,
which are subtracted to give canonical uncached input. Cache and reasoning details come from
``metadata.additional_usage_values`` or ``metadata.usage_object`` when present, the cache writes
split by TTL where LiteLLM gives Anthropic's ``cache_creation_token_details``. Some LiteLLM releases
counted Anthropic's cache reads in ``prompt_tokens`` but not its cache writes: a row whose
``prompt_tokens`` hold its reads and not its writes too is read so.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flopledger.catalog.prices import GATEWAY_VENDORS
from flopledger.ledger.formats.base import (
    BadCount,
    JsonLineError,
    RecordFormat,
    StagedRow,
    array_item_lines,
    compact,
    first_json_value,
    iter_json_documents,
    register,
    whole_count,
)

__all__ = ["LiteLLMSpendLogs"]

_MARKERS = ("request_id", "spend", "prompt_tokens", "completion_tokens", "startTime")


def _obj(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


_USAGE = "metadata.usage_object"


class _BadSplit(ValueError):
    """Cache writes split by TTL into more than their total; ``field`` names the split."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _usage_details(meta: dict[str, Any]) -> tuple[int, int, int, int, int | None]:
    """(cache read, 5-minute cache writes, 1-hour cache writes, reasoning, web searches) from
    LiteLLM's metadata, 0 when absent (web searches None: LiteLLM says them only for the models that
    ran them). Cache writes LiteLLM does not split by TTL are 5-minute ones, Anthropic's default.

    ``additional_usage_values`` holds the usage fields beyond the three counts and ``usage_object``
    the whole usage; either may be missing, so both are read (``usage_object`` wins).
    """
    usage = {**_obj(meta.get("additional_usage_values")), **_obj(meta.get("usage_object"))}
    details = _obj(usage.get("prompt_tokens_details"))
    read = usage.get("cache_read_input_tokens")
    if read is None:
        read = details.get("cached_tokens")
    write_name = f"{_USAGE}.cache_creation_input_tokens"
    write = usage.get("cache_creation_input_tokens")
    if write is None:
        write_name, write = (
            f"{_USAGE}.prompt_tokens_details.cache_creation_tokens",
            details.get("cache_creation_tokens"),
        )
    ttl_name = f"{_USAGE}.cache_creation_token_details"
    by_ttl = _obj(usage.get("cache_creation_token_details"))
    if not by_ttl:
        ttl_name, by_ttl = (
            f"{_USAGE}.prompt_tokens_details.cache_creation_token_details",
            _obj(details.get("cache_creation_token_details")),
        )
    writes = whole_count(write, write_name)
    hour = whole_count(by_ttl.get("ephemeral_1h_input_tokens"), f"{ttl_name}.ephemeral_1h_input_tokens")
    five = by_ttl.get("ephemeral_5m_input_tokens")
    if five is not None or write is None:  # the split given whole, or the total left out
        split = whole_count(five, f"{ttl_name}.ephemeral_5m_input_tokens") + hour
        if write is not None and split != writes:
            raise _BadSplit(
                f"{ttl_name} sums to {split}, not the {writes} cache writes of {write_name}", ttl_name
            )
        writes = split
    if hour > writes:
        raise _BadSplit(
            f"{ttl_name}.ephemeral_1h_input_tokens ({hour}) exceed the cache writes ({writes})", ttl_name
        )
    reasoning = _obj(usage.get("completion_tokens_details")).get("reasoning_tokens")
    searches = _obj(usage.get("server_tool_use")).get("web_search_requests")
    return (
        whole_count(read, f"{_USAGE}.cache_read_input_tokens"),
        writes - hour,
        hour,
        whole_count(reasoning, f"{_USAGE}.completion_tokens_details.reasoning_tokens"),
        None if searches is None else whole_count(searches, f"{_USAGE}.server_tool_use.web_search_requests"),
    )


def _provider(value: Any) -> str | None:
    if not value:
        return None
    name = str(value).strip().lower()
    return GATEWAY_VENDORS.get(name, name)  # LiteLLM's names onto those the other formats store


def _tag_list(value: Any) -> Any:
    """``request_tags``: a list in the JSON export, the same list as JSON text in a CSV export."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _prompt(messages: Any) -> str | None:
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError:
            return messages or None
    if isinstance(messages, list):
        texts = [
            m["content"]
            for m in messages
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
        ]
        return "\n".join(texts) or None
    return None


def _is_true(value: Any) -> bool:
    """LiteLLM writes flags as booleans or as the text "True"/"true" (a CSV export)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


class _DocumentLines:
    """The line each record of the whole-document spend logs of a file starts on (documents in
    file order, one after another). The file is read once, and its lines counted once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._text: str | None = None
        self._line, self._offset = 1, 0  # the start of the last document asked for

    def records(self, doc: Any, line: int) -> list[int] | None:
        """Of the document (a list, or an object's ``data``) that starts on line ``line``."""
        if self._text is None:
            self._text = self._path.read_text(encoding="utf-8-sig", errors="replace")
        text = self._text
        while self._line < line:  # the document's first character: after the newline ending line - 1
            self._offset = text.index("\n", self._offset) + 1
            self._line += 1
        lines = array_item_lines(text, None if isinstance(doc, list) else "data", self._offset)
        records = doc if isinstance(doc, list) else doc["data"]
        return lines if lines is not None and len(lines) == len(records) else None


@register
class LiteLLMSpendLogs(RecordFormat):
    name = "litellm"
    description = "LiteLLM proxy spend logs (JSON list, JSONL or CSV of LiteLLM_SpendLogs rows)."

    def sniff(self, path: Path, head: str) -> bool:
        if path.suffix.lower() == ".csv":
            header = head.split("\n", 1)[0]
            return all(m in header for m in _MARKERS)
        value = first_json_value(head)
        first = value[0] if isinstance(value, list) and value else value
        return isinstance(first, dict) and all(m in first for m in _MARKERS)

    def rows(self, path: Path) -> Iterator[StagedRow]:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
                reader = csv.DictReader(fh)
                for record in reader:
                    yield self._row(reader.line_num, record)
            return
        documents = _DocumentLines(path)
        for line, doc in iter_json_documents(path):
            if isinstance(doc, JsonLineError):
                yield doc.staged()
                continue
            listed = isinstance(doc, list) or (isinstance(doc, dict) and isinstance(doc.get("data"), list))
            if isinstance(doc, list):
                records = doc
            else:
                records = doc.get("data", [doc]) if isinstance(doc, dict) else [doc]
            # A whole JSON document's records are numbered by the line each starts on.
            starts = documents.records(doc, line) if listed else None
            for i, record in enumerate(records):
                where = (
                    starts[i]
                    if starts is not None and i < len(starts)
                    else (i + 1 if isinstance(doc, list) else line)
                )
                yield self._row(where, record, index=i)

    def _row(self, line: int, record: Any, index: int | None = None) -> StagedRow:
        if not isinstance(record, dict):
            return StagedRow(line=line, raw=str(record)[:2000], error="a spend log entry is not an object")
        safe = {k: v for k, v in record.items() if k not in ("messages", "response", "proxy_server_request")}
        if index is not None:
            safe["_index"] = index
        raw = compact(safe)
        meta = _obj(record.get("metadata"))
        try:
            prompt_tokens = whole_count(record.get("prompt_tokens"), "prompt_tokens")
            read, write, write_1h, reasoning, searches = _usage_details(meta)
        except (BadCount, _BadSplit) as exc:
            return StagedRow(line=line, raw=raw, error=str(exc), error_field=exc.field)
        write_all = write + write_1h
        if read > prompt_tokens:
            return StagedRow(
                line=line,
                raw=raw,
                error_field="prompt_tokens",
                error=f"cache reads ({read}) exceed prompt_tokens ({prompt_tokens}); "
                "LiteLLM's prompt_tokens includes cached tokens",
            )
        # prompt_tokens holding the reads and not the writes too: a release that left them out
        uncached = prompt_tokens - read - (write_all if read + write_all <= prompt_tokens else 0)
        tags = _tag_list(record.get("request_tags"))
        tags_obj: dict[str, Any] = {"request_tags": tags} if tags else {}
        if record.get("call_type"):
            tags_obj["call_type"] = record["call_type"]
        output = record.get("completion_tokens")
        requests = None
        if _is_true(record.get("cache_hit")):
            # Served from the proxy's own cache: no vendor call, no vendor cost (LiteLLM's spend is 0).
            # The tokens it would have cost are kept in the tags, and the event counts no request.
            tags_obj.update(
                proxy_cache_hit=True, cached_prompt_tokens=prompt_tokens, cached_completion_tokens=output
            )
            uncached = read = write = write_1h = reasoning = 0
            searches = None
            output, requests = 0, 0
        values = {
            "ts": record.get("startTime"),
            "request_id": record.get("request_id"),
            "provider": _provider(record.get("custom_llm_provider")),
            "model": record.get("model") or record.get("model_group") or None,
            # LiteLLM writes "" for an unknown user, key or team: that is no value, not an empty name.
            "team": meta.get("user_api_key_team_alias")
            or record.get("team_id")
            or meta.get("user_api_key_team_id")
            or None,
            "user": record.get("user") or meta.get("user_api_key_user_id") or record.get("end_user") or None,
            "api_key": record.get("api_key") or None,
            "org": meta.get("user_api_key_org_id") or None,
            "service_tier": "standard",
            "requests": requests,
            "input_tokens": uncached,
            "cache_read_tokens": read,
            "cache_write_5m_tokens": write,
            "cache_write_1h_tokens": write_1h,
            "output_tokens": output,
            "reasoning_tokens": reasoning,
            "web_search_requests": searches,
            "tags": compact(tags_obj) if tags_obj else None,
            "prompt": _prompt(record.get("messages")),
        }
        rid = record.get("request_id")
        return StagedRow(line=line, raw=raw, values=values, source_id=f"litellm:{rid}" if rid else None)
