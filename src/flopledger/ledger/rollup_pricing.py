"""Priced rollups without pricing every event: aggregate first, then price the groups, exactly.

A price row is constant between breakpoints: the dates its validity windows start and end, its
time-of-day window edges and its long-context tier thresholds. Events are grouped by the rollup's
dimensions plus provider, model, service tier and which side of *every* breakpoint of the price
table they fall on; inside such a group every event is priced by the same row, so pricing the
group's summed tokens once gives the same cost as pricing each event (to floating-point rounding).
A group's per-request input stays inside its tier bucket (a mean of values in an interval is in
it), and its earliest timestamp inside its time buckets, so :func:`price_events` prices it right.

For events not yet priced (a Parquet export, a Spark table) at rollup grain, on DuckDB and on Spark
alike; the ledger's own reports sum the costs stored at ingest, with the price version of the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from flopledger.catalog.prices import FAR_FUTURE, FAR_PAST
from flopledger.ledger.pricing import price_events
from flopledger.ledger.schema import COST_COLUMNS, TOKEN_COLUMNS

__all__ = ["PriceBreaks", "price_breaks", "priced_rollup"]


@dataclass(frozen=True)
class PriceBreaks:
    """Every breakpoint of one price version: instants, seconds of the day, tier thresholds."""

    instants: tuple[dt.datetime, ...]
    tod_s: tuple[int, ...]
    tier_tokens: tuple[int, ...]


def price_breaks(prices: ir.Table, rows: Any) -> PriceBreaks:
    """Read the breakpoints of ``prices`` (one price version) with ``rows`` (an engine's row runner)."""
    edges = rows(
        prices.select(
            prices.valid_from,
            prices.valid_to,
            prices.tod_from_s,
            prices.tod_to_s,
            prices.tier_above_tokens,
            prices.tier_upto_tokens,
        ).distinct()
    )
    instants = {e[k] for e in edges for k in ("valid_from", "valid_to")} - {FAR_PAST, FAR_FUTURE, None}
    tods = {int(e[k]) for e in edges for k in ("tod_from_s", "tod_to_s")} - {0, 86_400}
    tiers = {int(e[k]) for e in edges for k in ("tier_above_tokens", "tier_upto_tokens")} - {-1, 2**62}
    return PriceBreaks(tuple(sorted(instants)), tuple(sorted(tods)), tuple(sorted(tiers)))


def _bucket(terms: list[ir.BooleanValue]) -> ir.IntegerValue:
    if not terms:
        return ibis.literal(0)
    total: ir.IntegerValue = terms[0].cast("int32")
    for term in terms[1:]:
        total = total + term.cast("int32")
    return total


def priced_rollup(
    events: ir.Table,
    prices: ir.Table,
    model_map: ir.Table,
    breaks: PriceBreaks,
    keys: Sequence[ir.Value],
) -> ir.Table:
    """Cost per class and tokens per class grouped by ``keys`` (expressions on ``events``).

    ``prices`` and ``model_map`` are of one price version; ``breaks`` are its breakpoints.
    """
    t = events
    epoch_s = t.ts.epoch_seconds()
    tod = epoch_s % 86_400
    total_in = t.input_tokens + t.cache_read_tokens + t.cache_write_5m_tokens + t.cache_write_1h_tokens
    requests = ibis.greatest(t.requests.fill_null(1), 1)
    tier_in = ibis.greatest(
        total_in.cast("float64") / requests.cast("float64"),
        t.min_request_input_tokens.fill_null(0).cast("float64"),
    )
    key_names = [k.get_name() for k in keys]
    # Keys that are the pricing columns themselves are grouped once; others get private names.
    plain = {"provider", "model", "service_tier"}
    inner = [
        k.get_name() if k.get_name() in plain and k.equals(t[k.get_name()]) else f"_key{i}"
        for i, k in enumerate(keys)
    ]
    # One integer for every bucket: the day, then which side of each breakpoint (fewer keys, faster).
    epoch_day = epoch_s // 86_400
    instants_s = [int(b.replace(tzinfo=dt.UTC).timestamp()) for b in breaks.instants]
    bucket = (
        epoch_day * 1_000_000
        + _bucket([epoch_s >= b for b in instants_s]).cast("int64") * 10_000
        + _bucket([tod >= b for b in breaks.tod_s]).cast("int64") * 100
        + _bucket([tier_in > b for b in breaks.tier_tokens]).cast("int64")
    )
    extra = [c for c in ("provider", "model", "service_tier") if c not in inner]
    groups = (
        t.mutate(
            **{name: k for name, k in zip(inner, keys, strict=True) if name.startswith("_key")},
            _tier_in=tier_in,
            _bucket=bucket,
        )
        .group_by([*inner, *extra, "_bucket"])
        .aggregate(
            ts=lambda g: g.ts.min(),
            requests=lambda g: g.requests.fill_null(1).sum(),
            min_request_input_tokens=lambda g: g._tier_in.min().ceil().cast("int64"),
            _events=lambda g: g.count(),
            **{c: (lambda g, c=c: g[c].sum()) for c in TOKEN_COLUMNS},
        )
    )
    priced = price_events(groups, prices, model_map)
    unpriced = ibis.ifelse(
        priced.priced,
        0,
        priced.input_tokens
        + priced.cache_read_tokens
        + priced.cache_write_5m_tokens
        + priced.cache_write_1h_tokens
        + priced.output_tokens,
    )
    metrics: dict[str, Any] = {"requests": priced.requests.sum(), "events": priced._events.sum()}
    metrics.update({c: priced[c].sum() for c in TOKEN_COLUMNS})
    metrics.update({c: priced[c].fill_null(0).sum() for c in COST_COLUMNS})
    metrics["request_cost_usd"] = priced.request_cost_usd.fill_null(0).sum()
    metrics["cost_usd"] = priced.cost_usd.fill_null(0).sum()
    metrics["list_cost_usd"] = priced.list_cost_usd.fill_null(0).sum()
    metrics["unpriced_tokens"] = unpriced.sum()
    out = priced.group_by(inner).aggregate(**metrics)
    return out.rename({name: i for name, i in zip(key_names, inner, strict=True) if name != i})
