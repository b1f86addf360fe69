"""OpenAI organization usage API, completions (``/v1/organization/usage/completions``).

Buckets of ``start_time`` / ``end_time`` (Unix seconds) with ``results`` grouped by project, user,
api key, model, batch and service tier. OpenAI's ``input_tokens`` *includes* ``input_cached_tokens``;
canonical ``input_tokens`` is the uncached part, so the cached tokens are subtracted here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flopledger.ledger.formats.base import (
    BadCount,
    RecordFormat,
    StagedRow,
    canonical_tier,
    compact,
    first_json_value,
    iter_report_results,
    register,
    whole_count,
)
from flopledger.ledger.schema import REPORT_ID_PREFIXES

__all__ = ["OpenAIUsage"]


def _ts(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        except (OverflowError, OSError, ValueError):  # beyond a date: judged as the number it is (ms, ...)
            return str(value)
    return None if value is None else str(value)


@register
class OpenAIUsage(RecordFormat):
    name = "openai"
    description = "OpenAI organization usage API, completions buckets (JSON pages)."

    def sniff(self, path: Path, head: str) -> bool:
        value = first_json_value(head)
        page = value[0] if isinstance(value, list) and value else value
        return isinstance(page, dict) and (
            "organization.usage.completions" in head
            or ("input_cached_tokens" in head and "start_time" in head)
        )

    def rows(self, path: Path) -> Iterator[StagedRow]:
        return iter_report_results(path, self._row)

    def _row(self, line: int, where: str, bucket: dict[str, Any], result: Any) -> StagedRow:
        raw = compact(
            {
                "start_time": bucket.get("start_time"),
                "end_time": bucket.get("end_time"),
                "result": result,
                "at": where,
            }
        )
        if not isinstance(result, dict):
            return StagedRow(line=line, raw=raw, error=f"{where} is not an object")
        try:
            total_in = whole_count(result.get("input_tokens"), "input_tokens")
            cached = whole_count(result.get("input_cached_tokens"), "input_cached_tokens")
        except BadCount as exc:
            return StagedRow(line=line, raw=raw, error=str(exc), error_field=exc.field)
        if cached > total_in:
            return StagedRow(
                line=line,
                raw=raw,
                error_field="input_cached_tokens",
                error=f"input_cached_tokens ({cached}) exceeds input_tokens ({total_in}); "
                "OpenAI's input includes cached tokens",
            )
        tags: dict[str, Any] = {"source_record": where}
        # Audio tokens are counted apart from input_tokens/output_tokens (which are text); the canonical
        # token classes have no audio class, so they are kept as tags rather than silently dropped.
        for audio in ("input_audio_tokens", "output_audio_tokens"):
            if result.get(audio):
                tags[audio] = result[audio]
        tier = "batch" if result.get("batch") is True else canonical_tier(result.get("service_tier"))
        values = {
            "ts": _ts(bucket.get("start_time")),
            "provider": "openai",
            "model": result.get("model"),
            "project": result.get("project_id"),
            "user": result.get("user_id"),
            "api_key": result.get("api_key_id"),
            "service_tier": tier,
            "requests": 1 if result.get("num_model_requests") is None else result.get("num_model_requests"),
            "input_tokens": total_in - cached,
            "cache_read_tokens": cached,
            "output_tokens": result.get("output_tokens"),
            "tags": compact(tags),
        }
        identity = compact(
            [
                bucket.get("start_time"),
                bucket.get("end_time"),
                result.get("model"),
                result.get("project_id"),
                result.get("user_id"),
                result.get("api_key_id"),
                result.get("batch"),
                result.get("service_tier"),
            ]
        )
        return StagedRow(
            line=line, raw=raw, values=values, source_id=REPORT_ID_PREFIXES[self.name] + identity
        )
