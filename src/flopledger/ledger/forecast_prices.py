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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flopledger.ledger.schema import BILLED_CLASSES

__all__ = [
    "RATE_DAYS",
    "GroupKey",
    "Rows",
    "UsageHistory",
    "daily_usage",
    "usage_histories",
]

RATE_DAYS = 7
"""Unit rates at the cutoff are taken over this many last days of use: a whole week, so a
long-context request or a time-of-day price on one day does not set the rate alone."""

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
    for quantity, cost in BILLED_CLASSES:
        metrics[quantity] = t[quantity].fill_null(0).sum()
        metrics[cost] = t[cost].fill_null(0).sum()
    return t.group_by(day=t.ts.date(), **keys).aggregate(**metrics).order_by([*by, "day", *_SEGMENT])


@dataclass(frozen=True, eq=False)
class UsageHistory:
    """One group's daily spend, dense from its first day with spend, with its usage per segment.

    ``quantity`` and ``class_cost_usd`` have shape (segments, days, classes of
    :data:`~flopledger.ledger.schema.BILLED_CLASSES`); both are empty when the rows carried spend
    only (no re-pricing then).
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


Rows: TypeAlias = Sequence[Mapping[str, Any]] | pa.Table
"""Rows of :func:`daily_usage`: an engine's dictionaries, or an Arrow table of the same columns."""

_EPOCH = dt.date(1970, 1, 1).toordinal()


def _codes(rows: Rows, names: Sequence[str]) -> tuple[np.ndarray, list[tuple[str | None, ...]]]:
    """Each row's index into the distinct values of ``names`` (as text, NULL kept), and those values,
    sorted (NULL last) whatever the rows' form.

    An Arrow table is encoded column by column in Arrow; dictionaries one row at a time.
    """
    codes, keys = _unsorted_codes(rows, names)
    order = sorted(range(len(keys)), key=lambda i: [(v is None, v or "") for v in keys[i]])
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank[codes], [keys[i] for i in order]


def _unsorted_codes(rows: Rows, names: Sequence[str]) -> tuple[np.ndarray, list[tuple[str | None, ...]]]:
    n = len(rows)
    if not names:
        return np.zeros(n, dtype=np.int64), [()]
    if not isinstance(rows, pa.Table):
        seen: dict[tuple[str | None, ...], int] = {}
        codes = [
            seen.setdefault(tuple(None if r[c] is None else str(r[c]) for c in names), len(seen))
            for r in rows
        ]
        return np.array(codes, dtype=np.int64), list(seen)
    combined = np.zeros(n, dtype=np.int64)
    dictionaries = []
    for name in names:
        encoded = pc.dictionary_encode(rows.column(name), null_encoding="encode").combine_chunks()
        values = [None if v is None else str(v) for v in encoded.dictionary.to_pylist()]
        combined = combined * len(values) + np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
        dictionaries.append(values)
    distinct, inverse = np.unique(combined, return_inverse=True)
    keys = []
    for code in distinct.tolist():
        parts = []
        for values in reversed(dictionaries):
            code, i = divmod(code, len(values))
            parts.append(values[i])
        keys.append(tuple(reversed(parts)))
    return inverse.astype(np.int64), keys


def _numbers(rows: Rows, name: str) -> np.ndarray:
    """A numeric column as floats, NULL as 0."""
    if isinstance(rows, pa.Table):
        column = pc.fill_null(rows.column(name), 0)
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    return np.array([0.0 if r[name] is None else float(r[name]) for r in rows], dtype=float)


def _ordinals(rows: Rows) -> np.ndarray:
    """The ``day`` column as proleptic ordinals."""
    if isinstance(rows, pa.Table):
        epoch_days = pc.cast(rows.column("day"), pa.int32()).to_numpy(zero_copy_only=False)
        return np.asarray(epoch_days, dtype=np.int64) + _EPOCH
    return np.array([r["day"].toordinal() for r in rows], dtype=np.int64)


def usage_histories(
    rows: Rows, by: Sequence[str], *, end: dt.date | None = None
) -> dict[GroupKey, UsageHistory]:
    """Group the rows of :func:`daily_usage` (or of :func:`forecast.daily_spend`) into histories.

    ``rows`` are dictionaries (an engine's rows) or an Arrow table of the same columns. Each history
    runs from the group's first day with a row through ``end`` (default: the latest day of all rows);
    rows after ``end`` are left out.
    """
    names = list(rows.column_names) if isinstance(rows, pa.Table) else list(rows[0]) if rows else []
    if not names or not len(rows):
        return {}
    has_usage = all(c in names for c in (*_SEGMENT, BILLED_CLASSES[0][0]))
    ordinals = _ordinals(rows)
    if end is None:
        end = dt.date.fromordinal(int(ordinals.max()))
    keep = ordinals <= end.toordinal()
    gid, group_values = _codes(rows, by)
    group_keys: list[GroupKey] = [tuple(zip(by, v, strict=True)) for v in group_values]
    cost = _numbers(rows, "cost_usd")
    n_classes = len(BILLED_CLASSES)
    if has_usage:
        sid, _ = _codes(rows, _SEGMENT)
        qty_rows = np.stack([_numbers(rows, q) for q, _ in BILLED_CLASSES], axis=1)
        cost_rows = np.stack([_numbers(rows, c) for _, c in BILLED_CLASSES], axis=1)
    out: dict[GroupKey, UsageHistory] = {}
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(gid[kept], kind="stable")]
    bounds = np.searchsorted(gid[order], np.arange(len(group_keys) + 1))
    for g, key in enumerate(group_keys):
        idx = order[bounds[g] : bounds[g + 1]]
        if idx.size == 0:
            continue
        start = int(ordinals[idx].min())
        n = end.toordinal() - start + 1
        day = ordinals[idx] - start
        daily = np.zeros(n)
        np.add.at(daily, day, cost[idx])
        if has_usage:
            local, seg = np.unique(sid[idx], return_inverse=True)
            qty = np.zeros((local.size, n, n_classes))
            class_cost = np.zeros_like(qty)
            np.add.at(qty, (seg, day), qty_rows[idx])
            np.add.at(class_cost, (seg, day), cost_rows[idx])
        else:
            qty = class_cost = np.zeros((0, n, n_classes))
        days = tuple(dt.date.fromordinal(start + i) for i in range(n))
        row_days = frozenset(dt.date.fromordinal(start + int(i)) for i in np.unique(day))
        out[key] = UsageHistory(days, daily, qty, class_cost, row_days)
    return out
