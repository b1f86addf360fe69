"""Priced rollups without pricing every event: aggregate first, then price the groups, exactly.

A price row is constant between breakpoints: the dates its validity windows start and end, its
time-of-day window edges and its long-context tier thresholds. Events are grouped by the rollup's
dimensions plus provider, model, service tier and which side of *every* breakpoint of the price
table they fall on; inside such a group every event is priced by the same row, so pricing the
group's summed tokens once gives the same cost as pricing each event (to floating-point rounding).
A group is priced at a representative time and per-request input rebuilt from its bucket (the
latest lower bound of its time buckets, one token above its tier's lower threshold), which lie in
the buckets of all its events, so :func:`price_events` picks the row that priced each of them.

For events not yet priced (a Parquet export, a Spark table) at rollup grain, on DuckDB and on Spark
alike; the ledger's own reports sum the costs stored at ingest, with the price version of the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from flopledger.catalog.prices import FAR_FUTURE, FAR_PAST, TIER_ABOVE_ALL, TIER_BELOW_ALL
from flopledger.ledger.measures import ibis_measures
from flopledger.ledger.pricing import (
    price_events,
    request_input_cap,
    second_of_day,
    tier_requests,
    total_input,
)
from flopledger.ledger.schema import TOKEN_COLUMNS, WEB_SEARCH_CLASS

__all__ = ["PriceBreaks", "price_breaks", "priced_rollup"]


@dataclass(frozen=True)
class PriceBreaks:
    """Every breakpoint of one price version: instants, seconds of the day, tier thresholds; and
    whether each model of its model map is logged under one provider only (then a rollup need not
    group by the provider: the model names it)."""

    instants: tuple[dt.datetime, ...]
    tod_s: tuple[int, ...]
    tier_tokens: tuple[int, ...]
    provider_follows_model: bool = False


def price_breaks(prices: ir.Table, rows: Any, model_map: ir.Table | None = None) -> PriceBreaks:
    """Read the breakpoints of ``prices`` (one price version) with ``rows`` (an engine's row runner).

    With ``model_map`` (of the same version, holding every logged provider and model of the events
    to roll up, as :func:`~flopledger.ledger.price_table.ensure_prices` leaves it) it also reads
    whether a model's provider follows from the model.
    """
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
    tiers = {int(e[k]) for e in edges for k in ("tier_above_tokens", "tier_upto_tokens")} - {
        TIER_BELOW_ALL,
        TIER_ABOVE_ALL,
    }
    follows = False
    if model_map is not None:
        per_model = _providers_of_models(model_map)
        (most,) = rows(per_model.aggregate(most=per_model._providers.max().fill_null(0)))
        follows = int(most["most"]) <= 1
    return PriceBreaks(tuple(sorted(instants)), tuple(sorted(tods)), tuple(sorted(tiers)), follows)


def _providers_of_models(model_map: ir.Table) -> ir.Table:
    """Per logged model: how many providers it is logged under (``_providers``) and one of them
    (``provider``, the one when there is one; the model map writes a missing provider as '')."""
    provider = model_map.provider.fill_null("")
    return model_map.group_by("model").aggregate(_providers=provider.nunique(), provider=provider.max())


def _side(terms: list[ir.BooleanValue]) -> ir.IntegerValue:
    """How many of ``terms`` hold, for terms that hold for a prefix of sorted breakpoints.

    One CASE from the last breakpoint down: cheaper per row than a sum of comparisons, and a NULL
    term (a NULL column) counts as not holding.
    """
    return ibis.cases(*((terms[i], i + 1) for i in reversed(range(len(terms)))), else_=0)


def _is_day_of(ts: ir.TimestampValue, key: ir.Value) -> bool:
    op = key.op()
    bare = op.arg if isinstance(op, ops.Alias) else op
    return any(bare.equals(day.op()) for day in (ts.truncate("D").cast("date"), ts.date()))


@dataclass(frozen=True)
class _Buckets:
    """The per-event bucket number, and how to rebuild a representative event from it per group.

    Event time is bucketed by its UTC day (which settles every price change at midnight) plus which
    side of each other price-change instant and of each time-of-day edge it falls on; request input by
    which side of each tier threshold. One integer holds all three indexes.
    """

    instants: tuple[dt.datetime, ...]  # price changes not at midnight: the day does not settle them
    tod_s: tuple[int, ...]
    tier_tokens: tuple[int, ...]

    def number(self, t: ir.Table) -> ir.IntegerValue | None:
        parts: list[tuple[ir.IntegerValue, int]] = []
        if self.instants:
            parts.append((_side([t.ts >= ibis.literal(b) for b in self.instants]), len(self.instants) + 1))
        if self.tod_s:
            tod = second_of_day(t.ts)
            parts.append((_side([tod >= b for b in self.tod_s]), len(self.tod_s) + 1))
        if self.tier_tokens:
            # price_events judges min(max(total input / max(requests, 1), min_request_input_tokens),
            # max_request_input_tokens) > T in floating point; for integers below 2**53 that is
            # exactly this integer test.
            total_in = total_input(t)
            requests = tier_requests(t)
            cap = request_input_cap(t)
            above = [(total_in > b * requests) | (t.min_request_input_tokens > b) for b in self.tier_tokens]
            if cap is not None:
                above = [a & (cap.isnull() | (cap > b)) for a, b in zip(above, self.tier_tokens, strict=True)]
            parts.append((_side(above), len(self.tier_tokens) + 1))
        if not parts:
            return None
        number, _ = parts[0]
        for index, size in parts[1:]:
            number = number * size + index
        return number

    def _index(self, bucket: ir.IntegerValue, which: str) -> ir.IntegerValue:
        sizes = {
            name: len(getattr(self, name)) + 1
            for name in ("instants", "tod_s", "tier_tokens")
            if getattr(self, name)
        }
        below = 1
        for name in reversed(sizes):
            if name == which:
                return (bucket // below) % sizes[name]
            below *= sizes[name]
        raise KeyError(which)

    def representative_ts(self, bucket: ir.IntegerValue, day: ir.DateValue) -> ir.TimestampValue:
        """A time every event of the group shares all buckets with: the latest lower bound of them.

        Every bound is at or before each event of the group, so the result is too, and on its day.
        """
        ts: ir.TimestampValue = day.cast("timestamp")
        if self.tod_s:
            index = self._index(bucket, "tod_s")
            ts = ibis.cases(
                *((index == i + 1, ts + ibis.interval(seconds=s)) for i, s in enumerate(self.tod_s)), else_=ts
            )
        if self.instants:
            index = self._index(bucket, "instants")
            ts = ibis.cases(
                *((index == i + 1, ibis.greatest(ts, ibis.literal(b))) for i, b in enumerate(self.instants)),
                else_=ts,
            )
        return ts

    def tier_input(self, bucket: ir.IntegerValue) -> ir.IntegerValue:
        """A per-request input inside the group's tier bucket, where every event of the group is:
        one token above its lower threshold (0 below the first).

        The group is judged on it rather than on its mean per request, which a request count of 0
        (read as 1 per event) could carry out of the bucket.
        """
        if not self.tier_tokens:
            return ibis.literal(0, "int64")
        index = self._index(bucket, "tier_tokens")
        return ibis.cases(
            *((index == i + 1, ibis.literal(b + 1, "int64")) for i, b in enumerate(self.tier_tokens)),
            else_=ibis.literal(0, "int64"),
        )


def priced_rollup(
    events: ir.Table,
    prices: ir.Table,
    model_map: ir.Table,
    breaks: PriceBreaks,
    keys: Sequence[ir.Value],
) -> ir.Table:
    """Cost per class and tokens per class grouped by ``keys`` (expressions on ``events``).

    ``prices`` and ``model_map`` are of one price version; ``breaks`` are its breakpoints.

    >>> # breaks = price_breaks(prices, lambda e: e.to_pyarrow().to_pylist(), model_map)
    >>> # priced_rollup(events, prices, model_map, breaks, [events.team, events.ts.date().name("day")])
    """
    t = events
    buckets = _Buckets(
        tuple(b for b in breaks.instants if b.time() != dt.time()), breaks.tod_s, breaks.tier_tokens
    )
    key_names = [k.get_name() for k in keys]
    # Keys that are the pricing columns themselves are grouped once; others get private names.
    plain = {"provider", "model", "service_tier"}
    inner = [
        k.get_name() if k.get_name() in plain and k.equals(t[k.get_name()]) else f"_key{i}"
        for i, k in enumerate(keys)
    ]
    # A model logged under one provider only names it: the provider is joined to the groups, not
    # grouped by (a string key less per event).
    joined_provider = breaks.provider_follows_model and "provider" not in inner
    pricing = ("model", "service_tier") if joined_provider else ("provider", "model", "service_tier")
    extra = [c for c in pricing if c not in inner]
    computed: dict[str, ir.Value] = {n: k for n, k in zip(inner, keys, strict=True) if n.startswith("_key")}
    # The day settles midnight price changes and anchors the representative time; a day key is reused.
    day = next((n for n, k in zip(inner, keys, strict=True) if _is_day_of(t.ts, k)), None)
    if day is None and (breaks.instants or breaks.tod_s):
        day = "_day"
        computed[day] = t.ts.date()
    number = buckets.number(t)
    if number is not None:
        computed["_bucket"] = number
    group_keys = [*inner, *extra, *(c for c in ("_day", "_bucket") if c in computed)]
    counts = [*TOKEN_COLUMNS, *((WEB_SEARCH_CLASS,) if WEB_SEARCH_CLASS in t.columns else ())]
    groups = (
        t.mutate(**computed)
        .group_by(group_keys)
        .aggregate(
            requests=lambda g: g.requests.fill_null(1).sum(),
            _events=lambda g: g.count(),
            **{c: (lambda g, c=c: g[c].sum()) for c in counts},
        )
    )
    if joined_provider:  # one row per model, so the join never multiplies a group
        logged = _providers_of_models(model_map).drop("_providers").rename(_pf_model="model")
        groups = groups.left_join(logged, groups.model == logged._pf_model).drop("_pf_model")
    # Only times and inputs inside each group's buckets reach price_events: one price row applies.
    bucket = groups._bucket if number is not None else ibis.literal(0)
    groups = groups.mutate(
        ts=buckets.representative_ts(bucket, groups[day]) if day is not None else ibis.literal(FAR_PAST),
        _tier_input=buckets.tier_input(bucket),
    )
    priced = price_events(groups, prices, model_map)
    metrics = {**ibis_measures(priced), "events": priced._events.sum()}
    out = priced.group_by(inner).aggregate(**metrics)
    return out.rename({name: i for name, i in zip(key_names, inner, strict=True) if name != i})
