"""Anthropic Admin API messages usage report (``/v1/organizations/usage_report/messages``).

A file holds one response page, a list of pages, or one page per line. Each ``data[i]`` bucket has
``starting_at`` / ``ending_at`` and ``results``, one per group (api key, workspace, model, service
tier, context window). Anthropic's ``uncached_input_tokens`` already excludes cache reads and
writes, which is exactly the canonical ``input_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flopledger.ledger.formats.base import (
    RecordFormat,
    StagedRow,
    canonical_tier,
    compact,
    first_json_value,
    iter_report_results,
    register,
)
from flopledger.ledger.schema import REPORT_ID_PREFIXES

__all__ = ["CONTEXT_BOUNDS", "AnthropicUsageReport"]

# Grouping dimensions of a result: two results of one bucket differ in at least one of them.
_GROUP_KEYS = (
    "model",
    "workspace_id",
    "api_key_id",
    "account_id",
    "service_account_id",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
)
CONTEXT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "0-200k": (None, 200_000),
    "200k-1m": (200_001, 1_000_000),
}
"""Each request's total input as a context-window bucket bounds it (a report row has no request
count, so its mean per request cannot tell the long-context tier)."""
_UNGROUPED_BOUNDS = CONTEXT_BOUNDS["0-200k"]
"""A row of no context window is priced as one of the 0-200k window (see ``_row``)."""


def _is_report(value: Any) -> bool:
    page = value[0] if isinstance(value, list) and value else value
    if not isinstance(page, dict) or "data" not in page:
        return False
    data = page.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return "starting_at" in data[0] or "results" in data[0]
    # A document too long to decode from its head: its keys say what it is.
    return data is None and any(k in page for k in ("has_more", "next_page", "starting_at", "results"))


@register
class AnthropicUsageReport(RecordFormat):
    name = "anthropic"
    description = "Anthropic Admin API messages usage report (JSON pages)."

    def sniff(self, path: Path, head: str) -> bool:
        value = first_json_value(head)
        return _is_report(value) and ("uncached_input_tokens" in head or "cache_creation" in head)

    def rows(self, path: Path) -> Iterator[StagedRow]:
        return iter_report_results(path, self._row)

    def _row(self, line: int, where: str, bucket: dict[str, Any], result: Any) -> StagedRow:
        raw = compact(
            {
                "starting_at": bucket.get("starting_at"),
                "ending_at": bucket.get("ending_at"),
                "result": result,
                "at": where,
            }
        )
        if not isinstance(result, dict):
            return StagedRow(line=line, raw=raw, error=f"{where} is not an object")
        cache = result.get("cache_creation") or {}
        if not isinstance(cache, dict):
            return StagedRow(
                line=line, raw=raw, error="cache_creation is not an object", error_field="cache_creation"
            )
        tool_use = result.get("server_tool_use")
        tool_use = {} if tool_use is None else tool_use
        if not isinstance(tool_use, dict):
            return StagedRow(
                line=line, raw=raw, error="server_tool_use is not an object", error_field="server_tool_use"
            )
        context = str(result.get("context_window") or "").lower()
        tags: dict[str, Any] = {"source_record": where}
        if context:
            tags["context_window"] = context
        for extra in ("inference_geo", "speed"):
            if result.get(extra):
                tags[extra] = result[extra]
        # A row not grouped by context window sums many requests of both windows, and a report names
        # no count of them: its mean cannot tell a long-context request. It is priced below the
        # long-context tier, as most requests are; group the pull by context_window to tell them.
        lower, upper = CONTEXT_BOUNDS.get(context, (None, None)) if context else _UNGROUPED_BOUNDS
        values = {
            "ts": bucket.get("starting_at"),
            "provider": "anthropic",
            "model": result.get("model"),
            "project": result.get("workspace_id"),
            "api_key": result.get("api_key_id"),
            "user": result.get("account_id") or result.get("service_account_id"),
            "service_tier": canonical_tier(result.get("service_tier") or None),
            "requests": result.get("num_requests") or 1,
            "input_tokens": result.get("uncached_input_tokens"),
            "cache_read_tokens": result.get("cache_read_input_tokens"),
            "cache_write_5m_tokens": cache.get("ephemeral_5m_input_tokens"),
            "cache_write_1h_tokens": cache.get("ephemeral_1h_input_tokens"),
            "output_tokens": result.get("output_tokens"),
            "web_search_requests": tool_use.get("web_search_requests"),
            "min_request_input_tokens": lower,
            "max_request_input_tokens": upper,
            "tags": compact(tags),
        }
        # A usage report has no request id: a bucket x group is identified by its keys, not its counts.
        identity = compact(
            [bucket.get("starting_at"), bucket.get("ending_at"), *(result.get(k) for k in _GROUP_KEYS)]
        )
        return StagedRow(
            line=line, raw=raw, values=values, source_id=REPORT_ID_PREFIXES[self.name] + identity
        )
