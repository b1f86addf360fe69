"""Input formats, registered by name. Each turns its source's records into canonical staged rows.

Vendor documents (Anthropic and OpenAI usage reports, OTLP traces, LiteLLM spend logs) are parsed
in Python record by record; plain tables (CSV, JSONL, Parquet) are read by DuckDB directly, mapped
with ``--map`` and ``--set``, and validated in SQL.
"""

from __future__ import annotations

from flopledger.ledger.formats.base import (
    FORMATS,
    STAGE_COLUMNS,
    InputFormat,
    StagedRow,
    detect_format,
    get_format,
)

__all__ = ["FORMATS", "STAGE_COLUMNS", "InputFormat", "StagedRow", "detect_format", "get_format"]

# Registering the formats is importing them.
from flopledger.ledger.formats import anthropic, litellm, openai, otel, tabular

del anthropic, litellm, openai, otel, tabular
