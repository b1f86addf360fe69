"""The measures every ledger summary reports, declared once for Ibis (reports, priced rollups, Spark)
and for SQL (the daily rollup and the dashboard's queries over it).

Counts (``requests``, each token class and the web searches) are summed as they are; costs are
summed with NULL as 0, so a summary of unpriced events costs 0 and shows its volume in
``unpriced_tokens`` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Ibis is imported when a measure is built: ingest and the rollup use SQL only
    import ibis.expr.types as ir

from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS, COST_COLUMNS, TOKEN_COLUMNS, WEB_SEARCH_CLASS

__all__ = [
    "EFFECTIVE_COSTS",
    "SUMMED_COSTS",
    "SUMMED_COUNTS",
    "billed_tokens",
    "ibis_measures",
    "sql_measures",
    "unpriced_tokens",
]

SUMMED_COUNTS: tuple[str, ...] = ("requests", *TOKEN_COLUMNS, WEB_SEARCH_CLASS)
EFFECTIVE_COSTS: tuple[str, ...] = (*COST_COLUMNS, "web_search_cost_usd", "request_cost_usd", "cost_usd")
"""Costs after negotiated discounts: what reports and the dashboard show."""
SUMMED_COSTS: tuple[str, ...] = (*EFFECTIVE_COSTS, "list_cost_usd")


def ibis_measures(t: ir.Table, *, costs: tuple[str, ...] = SUMMED_COSTS) -> dict[str, Any]:
    """The summed measures over ``t`` (events, or groups of them), in order, then ``unpriced_tokens``:
    the billed tokens of rows whose ``priced`` is false."""

    out: dict[str, Any] = {c: t[c].sum() for c in SUMMED_COUNTS}
    out.update({c: t[c].fill_null(0).sum() for c in costs})
    out["unpriced_tokens"] = unpriced_tokens(t).sum()
    return out


def unpriced_tokens(t: ir.Table) -> ir.IntegerValue:
    """A row's billed tokens when no price applies to it (``priced`` false or unknown), else 0."""
    import ibis

    return ibis.ifelse(t.priced.fill_null(False), 0, billed_tokens(t))


def billed_tokens(t: ir.Table) -> ir.IntegerValue:
    """The tokens a row is billed for: every class but reasoning (which output already holds)."""
    total: ir.IntegerValue = sum((t[c] for c in BILLED_TOKEN_COLUMNS[1:]), t[BILLED_TOKEN_COLUMNS[0]])
    return total


def sql_measures() -> list[str]:
    """The same as SQL select items over events (``name`` aliases), then ``events`` (a row count)."""
    items = [f'sum("{c}")::BIGINT AS "{c}"' for c in SUMMED_COUNTS]
    items += [f'sum(coalesce("{c}", 0)) AS "{c}"' for c in SUMMED_COSTS]
    billed = " + ".join(f'"{c}"' for c in BILLED_TOKEN_COLUMNS)
    items.append(f"sum(CASE WHEN priced THEN 0 ELSE {billed} END)::BIGINT AS unpriced_tokens")
    items.append("count(*)::BIGINT AS events")
    return items
