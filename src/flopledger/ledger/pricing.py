"""Bulk pricing of usage events as an Ibis expression (runs on DuckDB and on Spark alike).

An event is joined once to the catalog model its logged name maps to (``model_map``) and once to
the flat price row that applies to it: same service tier, the event's time inside the row's
validity and time-of-day window, and the request's total input inside the row's long-context tier
(which reprices the *whole* request). Unknown models stay unpriced (``cost_usd`` NULL,
``priced`` false), never silently free.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from flopledger.catalog.prices import PRICE_ROW_KEYS
from flopledger.ledger.schema import PRICED_COLUMNS, TOKEN_COLUMNS, WEB_SEARCH_CLASS

__all__ = ["price_events", "second_of_day", "tier_requests", "total_input", "web_searches"]


_CLASS_RATE = {
    "input_tokens": "input_usd_per_mtok",
    "cache_read_tokens": "cache_read_usd_per_mtok",
    "cache_write_5m_tokens": "cache_write_5m_usd_per_mtok",
    "cache_write_1h_tokens": "cache_write_1h_usd_per_mtok",
    "output_tokens": "output_usd_per_mtok",
    "reasoning_tokens": "output_reasoning_usd_per_mtok",
}
_REASONING_RATE = _CLASS_RATE["reasoning_tokens"]
"""Only a model that prices reasoning apart has it; others' reasoning is at the output rate."""


def total_input(events: ir.Table) -> ir.IntegerValue:
    """An event's whole input, cached and uncached: what a long-context tier is judged on."""
    return (
        events.input_tokens
        + events.cache_read_tokens
        + events.cache_write_5m_tokens
        + events.cache_write_1h_tokens
    )


def second_of_day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Seconds since midnight (UTC): where a time-of-day price window is judged."""
    return ts.hour() * 3600 + ts.minute() * 60 + ts.second()


def request_input_cap(events: ir.Table) -> ir.IntegerValue | None:
    """The stated upper bound of each request's input (NULL: none), or None for events without the
    column (an export made before flopledger had it)."""
    return events.max_request_input_tokens if "max_request_input_tokens" in events.columns else None


def web_searches(events: ir.Table) -> ir.IntegerValue:
    """An event's server-side web searches (NULL: none said), NULL for events without the column
    (an export made before flopledger had it)."""
    if WEB_SEARCH_CLASS in events.columns:
        return events[WEB_SEARCH_CLASS]
    return ibis.null("int64")


def tier_requests(events: ir.Table) -> ir.IntegerValue:
    """The requests an event's input is spread over for the long-context tier: NULL or below 1 is 1."""
    return ibis.greatest(events.requests.fill_null(1), 1)


def price_events(
    events: ir.Table, prices: ir.Table, model_map: ir.Table, *, with_row: bool = False
) -> ir.Table:
    """Events with cost per token class, list and effective cost, and the price used.

    ``events`` has the canonical columns of :mod:`flopledger.ledger.schema`; ``prices`` the flat
    rows of one price version; ``model_map`` maps logged ``(provider, model)`` to catalog ids.
    The result has the event columns (without any previous priced columns; with
    ``web_search_requests``, NULL where the events have no such column) plus the priced ones.
    A column ``_tier_input``, when present, is the per-request input the long-context tier is judged
    on (a group of events priced together: a value inside the tier all of them fall in). With
    ``with_row`` the result also names the price row that priced each event: ``row_<key>`` for each
    of :data:`PRICE_ROW_KEYS` (NULL when none did).

    >>> # priced = price_events(con.table("events"), con.table("prices"), con.table("model_map"))
    """
    priced_names = {c.name for c in PRICED_COLUMNS}
    keep = [c for c in events.columns if c not in priced_names]
    ev = events.select(keep).mutate(
        **{WEB_SEARCH_CLASS: web_searches(events)},
        _prov=events.provider.fill_null(""),
        _tier=events.service_tier.fill_null("standard"),
        _total_in=total_input(events),
        _requests=tier_requests(events),
        _tod=second_of_day(events.ts),
    )
    mm = model_map.select(
        _mm_prov=model_map.provider.fill_null(""),
        _mm_model=model_map.model,
        _pid=model_map.provider_id,
        _mid=model_map.model_id,
    )
    # A long-context tier is judged on each request's own input. A usage report row stands for many
    # requests: its per-request mean, raised to the source's stated lower bound and lowered to its
    # upper bound (a context-window bucket: 0-200k, 200k-1M).
    if "_tier_input" in ev.columns:
        tier_in = ev["_tier_input"].cast("float64")
    else:
        tier_in = ibis.greatest(
            ev._total_in.cast("float64") / ev._requests.cast("float64"),
            ev.min_request_input_tokens.fill_null(0).cast("float64"),
        )
        cap = request_input_cap(ev)
        if cap is not None:
            tier_in = ibis.cases(
                (cap.notnull() & (tier_in > cap.cast("float64")), cap.cast("float64")), else_=tier_in
            )
    ev = ev.mutate(_tier_in=tier_in)
    ev = ev.left_join(mm, [ev._prov == mm._mm_prov, ev.model == mm._mm_model]).drop("_mm_prov", "_mm_model")
    p = prices.select(
        _p_pid=prices.provider_id,
        _p_mid=prices.model_id,
        **{f"_p_{key}": prices[key] for key in PRICE_ROW_KEYS},  # what tells the row from the others
        _p_discount=prices.discount_pct,
        _p_version=prices.price_version,
        _p_fee=prices.usd_per_request,
        # a price version flattened before web searches were priced has none for them
        _p_search=prices.usd_per_web_search.fill_null(0.0),
        **{f"_p_{rate}": prices[rate] for rate in sorted(set(_CLASS_RATE.values()) - {_REASONING_RATE})},
        # a model that prices reasoning apart has a rate for it; for the rest it is output like any
        _p_output_reasoning_usd_per_mtok=(
            prices[_REASONING_RATE].fill_null(prices.output_usd_per_mtok)
            if _REASONING_RATE in prices.columns
            else prices.output_usd_per_mtok
        ),
    )
    joined = ev.left_join(
        p,
        [
            ev._pid == p._p_pid,
            ev._mid == p._p_mid,
            ev._tier == p._p_variant,
            ev.ts >= p._p_valid_from,
            ev.ts < p._p_valid_to,
            ev._tod >= p._p_tod_from_s,
            ev._tod < p._p_tod_to_s,
            ev._tier_in > p._p_tier_above_tokens,
            ev._tier_in <= p._p_tier_upto_tokens,
        ],
    )
    keep_share = 1.0 - joined._p_discount / 100.0
    list_costs: dict[str, Any] = {
        col: joined[col].cast("float64") * joined[f"_p_{_CLASS_RATE[col]}"] / 1e6 for col in TOKEN_COLUMNS
    }
    # the output's reasoning at its own rate: the output tokens less it at the output rate, plus it
    reasoning = ibis.least(joined.reasoning_tokens, joined.output_tokens).cast("float64")
    apart = joined._p_output_reasoning_usd_per_mtok - joined._p_output_usd_per_mtok
    list_costs["output_tokens"] = list_costs["output_tokens"] + ibis.ifelse(
        apart != 0, reasoning * apart / 1e6, 0.0
    )
    list_fee = joined.requests.fill_null(1).cast("float64") * joined._p_fee  # no count: one request
    list_search = joined[WEB_SEARCH_CLASS].fill_null(0).cast("float64") * joined._p_search
    list_total = sum(
        (list_costs[c] for c in TOKEN_COLUMNS if c != "reasoning_tokens"),
        start=list_fee + list_search,
    )
    priced_flag = joined._p_version.notnull()
    result = joined.mutate(
        **{f"{col}_cost_usd": list_costs[col] * keep_share for col in TOKEN_COLUMNS},
        web_search_cost_usd=list_search * keep_share,
        request_cost_usd=list_fee * keep_share,
        list_cost_usd=list_total,
        cost_usd=list_total * keep_share,
        priced=priced_flag,
        price_model=ibis.ifelse(joined._pid.notnull(), joined._pid + "/" + joined._mid, ibis.null("string")),
        price_version=joined._p_version,
        input_usd_per_mtok_applied=joined._p_input_usd_per_mtok * keep_share,
        output_usd_per_mtok_applied=joined._p_output_usd_per_mtok * keep_share,
    )
    row = [result[f"_p_{key}"].name(f"row_{key}") for key in PRICE_ROW_KEYS]
    kept = keep if WEB_SEARCH_CLASS in keep else [*keep, WEB_SEARCH_CLASS]
    return result.select(*kept, *(c.name for c in PRICED_COLUMNS), *(row if with_row else ()))
