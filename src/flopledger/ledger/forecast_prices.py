"""Spend history at the prices in force at the cutoff, so a price change is not read as a change in use.

A negotiated discount from 8 October, or a catalog price cut, shows in dollar history as a step down
that is not a change in usage; a forecast fitted to raw dollars carries the old prices forward (too
high after a cut) and may read the step as a falling trend. So the forecast reads usage per price
segment (the catalog model an event was priced as, and its service tier) and per billed class
(the five token classes and per-request fees), and re-prices each past day's quantities at the
segment's unit rates of the cutoff: cost over quantity in the last :data:`RATE_DAYS` days of use
before the cutoff. Those rates are the ledger's own stored costs (priced at ingest, or by
``flopledger reprice``, with every dated price and override), so no price table is needed and it
runs wherever the events are (DuckDB or Spark). Only days up to the cutoff are read: no look-ahead.
Month-to-date spend itself stays at its real prices; only the model's input is re-priced.

>>> # rows = engine.rows(daily_usage(events_table(engine), ["team"]))
>>> # history = usage_histories(rows, ["team"])[(("team", "agents"),)]
>>> # history.at_cutoff_prices(k)  # the first k days at the rates of day k - 1
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS

__all__ = ["PRICED_CLASSES", "RATE_DAYS", "GroupKey", "UsageHistory", "daily_usage", "usage_histories"]

RATE_DAYS = 7
"""Unit rates at the cutoff are taken over this many last days of use: a whole week, so a
long-context request or a time-of-day price on one day does not set the rate alone."""

PRICED_CLASSES: tuple[tuple[str, str], ...] = (
    *((c, f"{c}_cost_usd") for c in BILLED_TOKEN_COLUMNS),
    ("requests", "request_cost_usd"),
)
"""(quantity column, cost column) of every billed class; reasoning is part of output."""

_SEGMENT = ("price_model", "service_tier")

GroupKey = tuple[tuple[str, str | None], ...]


def daily_usage(events: ir.Table, by: Sequence[str], *, until: dt.date | None = None) -> ir.Table:
    """Priced usage per group, UTC day and price segment, as an Ibis expression (DuckDB and Spark).

    Columns: the ``by`` dimensions, ``day``, ``price_model``, ``service_tier``, ``cost_usd`` and,
    per billed class, its quantity and cost (``input_tokens``, ``input_tokens_cost_usd``, ...,
    ``requests``, ``request_cost_usd``). Summed over segments it is :func:`forecast.daily_spend`.
    """
    t = events.filter(events.cost_usd.notnull())
    if until is not None:
        t = t.filter(t.ts < ibis.timestamp(dt.datetime.combine(until + dt.timedelta(days=1), dt.time())))
    keys: dict[str, Any] = {d: t[d] for d in by}
    keys["price_model"] = t.price_model
    keys["service_tier"] = t.service_tier.fill_null("standard")
    metrics: dict[str, Any] = {"cost_usd": t.cost_usd.sum()}
    for quantity, cost in PRICED_CLASSES:
        metrics[quantity] = t[quantity].fill_null(0).sum()
        metrics[cost] = t[cost].fill_null(0).sum()
    return t.group_by(day=t.ts.date(), **keys).aggregate(**metrics).order_by([*by, "day", *_SEGMENT])


@dataclass(frozen=True, eq=False)
class UsageHistory:
    """One group's daily spend, dense from its first day with spend, with its usage per segment.

    ``quantity`` and ``class_cost_usd`` have shape (segments, days, classes of
    :data:`PRICED_CLASSES`); both are empty when the rows carried spend only (no re-pricing then).
    """

    days: tuple[dt.date, ...]
    cost_usd: np.ndarray
    quantity: np.ndarray
    class_cost_usd: np.ndarray
    row_days: frozenset[dt.date]

    def at_cutoff_prices(self, k: int) -> np.ndarray:
        """Spend of the first ``k`` days, each day's use priced at the unit rates of day ``k - 1``.

        Per segment and class the rate is cost over quantity in its last :data:`RATE_DAYS` days of use
        among those ``k``; a class never used is left at its own cost, as is any cost not split into
        classes.
        """
        own = self.cost_usd[:k].copy()
        if self.quantity.size == 0 or k == 0:
            return own
        qty, cost = self.quantity[:, :k, :], self.class_cost_usd[:, :k, :]
        out: np.ndarray = own - cost.sum(axis=(0, 2))
        for s in range(qty.shape[0]):
            for c in range(qty.shape[2]):
                used = np.flatnonzero(qty[s, :, c] > 0)
                if used.size == 0:
                    out += cost[s, :, c]
                    continue
                last = used[-RATE_DAYS:]
                rate = cost[s, last, c].sum() / qty[s, last, c].sum()
                out += qty[s, :, c] * rate
        return out


def usage_histories(
    rows: Sequence[dict[str, Any]], by: Sequence[str], *, end: dt.date | None = None
) -> dict[GroupKey, UsageHistory]:
    """Group the rows of :func:`daily_usage` (or of :func:`forecast.daily_spend`) into histories.

    Each runs from the group's first day with a row through ``end`` (default: the latest day of all
    rows); rows after ``end`` are left out.
    """
    if end is None:
        end = max((r["day"] for r in rows), default=None)
    if end is None:
        return {}
    has_usage = bool(rows) and all(c in rows[0] for c in (*_SEGMENT, PRICED_CLASSES[0][0]))
    per_group: dict[GroupKey, list[dict[str, Any]]] = {}
    for row in rows:
        if row["day"] <= end:
            key = tuple((d, None if row[d] is None else str(row[d])) for d in by)
            per_group.setdefault(key, []).append(row)
    out: dict[GroupKey, UsageHistory] = {}
    for key, group_rows in per_group.items():
        start: dt.date = min(r["day"] for r in group_rows)
        n = (end - start).days + 1
        cost = np.zeros(n)
        segments: dict[tuple[str, str], int] = {}
        if has_usage:
            for r in group_rows:
                segments.setdefault((str(r["price_model"]), str(r["service_tier"])), len(segments))
        qty = np.zeros((len(segments), n, len(PRICED_CLASSES)))
        class_cost = np.zeros_like(qty)
        for r in group_rows:
            i = (r["day"] - start).days
            cost[i] += float(r["cost_usd"] or 0.0)
            if has_usage:
                s = segments[(str(r["price_model"]), str(r["service_tier"]))]
                for c, (quantity, cost_col) in enumerate(PRICED_CLASSES):
                    qty[s, i, c] += float(r[quantity] or 0)
                    class_cost[s, i, c] += float(r[cost_col] or 0.0)
        days = tuple(start + dt.timedelta(days=i) for i in range(n))
        out[key] = UsageHistory(days, cost, qty, class_cost, frozenset(r["day"] for r in group_rows))
    return out
