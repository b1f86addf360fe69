"""The canonical usage event and the ledger's tables, declared once.

Every input format is converted to these canonical columns on the way in; reports, exports and
detectors read them and nothing else.

Token semantics (never double counted):

* ``input_tokens``: *uncached* input only. Anthropic reports it this way; OpenAI and OpenTelemetry
  report total input including cache reads and writes, so ingest subtracts the cache tokens.
* ``cache_read_tokens``, ``cache_write_5m_tokens``, ``cache_write_1h_tokens``: apart from input.
* ``output_tokens`` includes ``reasoning_tokens``; ``reasoning_tokens`` is informational.
* ``web_search_requests``: server-side web searches the model ran (Anthropic's
  ``server_tool_use``), billed per search apart from the tokens their results add to the input.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BILLED_CLASSES",
    "BILLED_TOKEN_COLUMNS",
    "COST_COLUMNS",
    "DIMENSIONS",
    "EVENT_COLUMNS",
    "LATER_COLUMNS",
    "PRICED_COLUMNS",
    "REPORT_ID_PREFIXES",
    "REQUESTS_CLASS",
    "SERVICE_TIERS",
    "TOKEN_COLUMNS",
    "UNIT_CLASSES",
    "USAGE_REPORT_FORMATS",
    "WEB_SEARCH_CLASS",
    "Column",
    "class_name",
]


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    doc: str


TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
"""Token classes, canonical names. The first five are billed; reasoning is part of output."""

BILLED_TOKEN_COLUMNS: tuple[str, ...] = TOKEN_COLUMNS[:5]

WEB_SEARCH_CLASS = "web_search_requests"
"""The count of server-side web searches, billed per search (the catalog prices them per thousand)."""
REQUESTS_CLASS = "requests"
"""Per-request fees, a class of their own beside the token classes."""

BILLED_CLASSES: tuple[tuple[str, str], ...] = (
    *((c, f"{c}_cost_usd") for c in BILLED_TOKEN_COLUMNS),
    (WEB_SEARCH_CLASS, "web_search_cost_usd"),
    (REQUESTS_CLASS, "request_cost_usd"),
)
"""Every class a bill charges apart, as (count column, cost column): the billed token classes,
web searches and per-request fees. Their costs add up to ``cost_usd``."""

UNIT_CLASSES: tuple[str, ...] = (WEB_SEARCH_CLASS, REQUESTS_CLASS)
"""The billed classes counted in units of their own, not tokens: no part of a token mix."""


def class_name(cls: str) -> str:
    """A billed class as a sentence names it: ``cache read tokens``, ``web searches``, ...."""
    if cls == REQUESTS_CLASS:
        return "per-request fees"
    if cls == WEB_SEARCH_CLASS:
        return "web searches"
    return cls.replace("_", " ")


SERVICE_TIERS: tuple[str, ...] = ("standard", "batch", "priority", "flex")

USAGE_REPORT_FORMATS: tuple[str, ...] = ("anthropic", "openai")
"""Input formats whose rows are vendor usage-report buckets (a day of many requests), not requests:
a bucket pulled again restates its row, and it has no hour of use of its own."""

REPORT_ID_PREFIXES: dict[str, str] = {"anthropic": "anthropic-report:", "openai": "openai-usage:"}
"""What a usage-report row's source id (stored as its ``request_id``) starts with, by format: the
prefix, then a JSON list of the bucket's start and end, the model and the row's group values."""

DIMENSIONS: tuple[str, ...] = (
    "team",
    "user",
    "model",
    "provider",
    "project",
    "api_key",
    "org",
    "day",
    "hour",
)
"""What a report can group by; ``day`` and ``hour`` are truncations of ``ts``."""

EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR", "Stable id: the source's id, or a hash of the row's content."),
    Column("ts", "TIMESTAMP", "Request time, UTC."),
    Column("request_id", "VARCHAR", "The vendor's request or span id, when known."),
    Column("provider", "VARCHAR", "Vendor, lower case: anthropic, openai, google, ..."),
    Column("model", "VARCHAR", "Model name as the vendor reported it."),
    Column("org", "VARCHAR", "Organisation."),
    Column("project", "VARCHAR", "Project or workspace."),
    Column("team", "VARCHAR", "Team."),
    Column("user", "VARCHAR", "User (engineer or service account)."),
    Column("api_key", "VARCHAR", "API key id (never the secret)."),
    Column("service_tier", "VARCHAR", "standard, batch, priority or flex."),
    Column("requests", "BIGINT", "Requests this row stands for (usage reports aggregate many)."),
    Column("input_tokens", "BIGINT", "Uncached input tokens."),
    Column("cache_read_tokens", "BIGINT", "Input tokens read from the prompt cache."),
    Column("cache_write_5m_tokens", "BIGINT", "Input tokens written to the cache with a 5-minute TTL."),
    Column("cache_write_1h_tokens", "BIGINT", "Input tokens written to the cache with a 1-hour TTL."),
    Column("output_tokens", "BIGINT", "Output tokens, reasoning included."),
    Column("reasoning_tokens", "BIGINT", "Reasoning tokens (already inside output_tokens)."),
    Column(WEB_SEARCH_CLASS, "BIGINT", "Server-side web searches, billed per search (NULL: none said)."),
    Column(
        "min_request_input_tokens",
        "BIGINT",
        "Lower bound of each request's total input when the source says so (e.g. a 200k-1M context bucket).",
    ),
    Column(
        "max_request_input_tokens",
        "BIGINT",
        "Upper bound of each request's total input when the source says so (e.g. a 0-200k context bucket).",
    ),
    Column("tags", "VARCHAR", "Free-form tags, a JSON object."),
    Column("prompt", "VARCHAR", "Prompt text; NULL unless ingested with --keep-prompts."),
    Column("source_format", "VARCHAR", "Input format the row came from."),
    Column("source_file", "VARCHAR", "File the row came from."),
    Column("source_line", "BIGINT", "Line (or record number) in that file."),
    Column("ingest_id", "VARCHAR", "The ingest run that stored the row."),
)

COST_COLUMNS: tuple[str, ...] = tuple(f"{c}_cost_usd" for c in TOKEN_COLUMNS)
"""Cost per token class. ``reasoning_tokens_cost_usd`` is the part of ``output_tokens_cost_usd``
spent on reasoning: included in it, never added again to the total."""

PRICED_COLUMNS: tuple[Column, ...] = (
    *(
        Column(c, "DOUBLE", f"Cost of {c.removesuffix('_cost_usd')}, USD, after discounts.")
        for c in COST_COLUMNS
    ),
    Column("web_search_cost_usd", "DOUBLE", "Cost of the web searches, USD, after discounts."),
    Column("request_cost_usd", "DOUBLE", "Per-request fees, USD."),
    Column("list_cost_usd", "DOUBLE", "Total at list price, before negotiated discounts."),
    Column("cost_usd", "DOUBLE", "Total effective cost, USD (NULL when the model has no price)."),
    Column("priced", "BOOLEAN", "False when no price applies: unknown models are never silently free."),
    Column("price_model", "VARCHAR", "The catalog model the event was priced as (provider/model)."),
    Column(
        "price_version",
        "VARCHAR",
        "Version of the price table used (catalog version, mapping rules and overrides hash).",
    ),
    Column("input_usd_per_mtok_applied", "DOUBLE", "Uncached input rate applied, after discounts."),
    Column("output_usd_per_mtok_applied", "DOUBLE", "Output rate applied, after discounts."),
)

LATER_COLUMNS: tuple[Column, ...] = tuple(
    c for c in (*EVENT_COLUMNS, *PRICED_COLUMNS) if c.name in (WEB_SEARCH_CLASS, "web_search_cost_usd")
)
"""Event columns a ledger written by an older flopledger, or an export of one, may lack: readers
see them as NULL there (a ledger opened for writing gains them, filled from what its rows hold)."""
