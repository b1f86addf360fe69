"""Why spend changed versus last month: volume, mix and price effects by group and token class.

Like for like: days 1..N of this month against days 1..N of last month. Each segment is a
(group, model, token class); with q tokens, unit cost p = cost / q, the group's total tokens Q and
share m = q / Q, the change of segment i splits exactly into

* volume: (Q1 - Q0) m0 p0   -- the group used more or fewer tokens, at last month's mix and prices
* mix:    Q1 (m1 - m0) p0   -- its tokens moved between classes and models (say, towards output)
* price:  q1 (p1 - p0)      -- a dearer or cheaper token (price changes, discounts, tiers)

A segment new this month has no p0: its last-month price is taken as this month's, so it shows as
mix. Per-request fees are their own class: volume (requests) and price only.

>>> effects = decompose([("g", "m", "output_tokens", 100, 1.0, 200, 2.0)])
>>> [(e.volume_usd, e.mix_usd, e.price_usd) for e in effects]
[(1.0, 0.0, 0.0)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from flopledger.errors import InputError
from flopledger.ledger.forecast import check_dimensions, month_bounds, resolve_period, spend_days
from flopledger.ledger.schema import BILLED_CLASSES, UNIT_CLASSES
from flopledger.ledger.spark import Engine, events_table

__all__ = ["ChangeEffect", "decompose", "segment_spend", "spend_change"]


@dataclass(frozen=True)
class ChangeEffect:
    """The change of one group's spend on one token class, split into effects, USD."""

    group: str
    token_class: str
    last_cost_usd: float
    cost_usd: float
    volume_usd: float
    mix_usd: float
    price_usd: float

    @property
    def change_usd(self) -> float:
        return self.cost_usd - self.last_cost_usd

    def as_row(self) -> dict[str, object]:
        """A flat row for tables, JSON and CSV."""
        return {
            "group": self.group,
            "token_class": self.token_class,
            "last_cost_usd": round(self.last_cost_usd, 2),
            "cost_usd": round(self.cost_usd, 2),
            "change_usd": round(self.change_usd, 2),
            "volume_usd": round(self.volume_usd, 2),
            "mix_usd": round(self.mix_usd, 2),
            "price_usd": round(self.price_usd, 2),
        }


def _ts(day: dt.date) -> ir.Scalar:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


def segment_spend(
    events: ir.Table, by: Sequence[str], current: tuple[dt.date, dt.date], previous: tuple[dt.date, dt.date]
) -> ir.Table:
    """Tokens and cost per period, group and model, per billed class (an Ibis expression)."""
    t = events.filter(events.cost_usd.notnull())
    in_current = (t.ts >= _ts(current[0])) & (t.ts < _ts(current[1] + dt.timedelta(days=1)))
    in_previous = (t.ts >= _ts(previous[0])) & (t.ts < _ts(previous[1] + dt.timedelta(days=1)))
    t = t.filter(in_current | in_previous)
    sums = {c: t[c].sum() for c, _ in BILLED_CLASSES}
    sums |= {cost: t[cost].sum() for _, cost in BILLED_CLASSES}
    groups = [d for d in by if d != "model"]  # by model too: the model is the group's own
    return (
        t.group_by(
            period=ibis.ifelse(in_current, "current", "previous"), **{d: t[d] for d in groups}, model=t.model
        )
        .aggregate(**sums)
        .order_by(["period", *groups, "model"])
    )


Segment = tuple[str, str, str, float, float, float, float]
"""group, model, token class, tokens last month, cost last month, tokens now, cost now."""


def decompose(segments: Iterable[Segment]) -> list[ChangeEffect]:
    """Split each segment's change into volume, mix and price; sum per (group, token class).

    Volume and mix are measured within each group: a group's volume effect is its own token
    growth, its mix effect its own shift between token classes and models.
    """
    segs = list(segments)
    q0_total: dict[str, float] = {}
    q1_total: dict[str, float] = {}
    for group, _model, cls, q0, _c0, q1, _c1 in segs:
        if cls not in UNIT_CLASSES:
            q0_total[group] = q0_total.get(group, 0.0) + q0
            q1_total[group] = q1_total.get(group, 0.0) + q1
    out: dict[tuple[str, str], list[float]] = {}
    for group, _model, cls, q0, c0, q1, c1 in segs:
        p1 = c1 / q1 if q1 else 0.0
        p0 = c0 / q0 if q0 else p1
        if cls in UNIT_CLASSES:  # searches and requests: a volume of their own, no part of the mix
            volume, mix = (q1 - q0) * p0, 0.0
        else:
            big_q0, big_q1 = q0_total[group], q1_total[group]
            m0 = q0 / big_q0 if big_q0 else 0.0
            m1 = q1 / big_q1 if big_q1 else 0.0
            volume, mix = (big_q1 - big_q0) * m0 * p0, big_q1 * (m1 - m0) * p0
        acc = out.setdefault((group, cls), [0.0] * 5)
        for i, v in enumerate((c0, c1, volume, mix, q1 * (p1 - p0))):
            acc[i] += v
    return [ChangeEffect(g, k, *(round(v, 6) for v in vals)) for (g, k), vals in sorted(out.items())]


def _label(row: dict[str, object], by: Sequence[str]) -> str:
    return "/".join("(none)" if row[d] is None else str(row[d]) for d in by)


def spend_change(
    engine: Engine, *, by: Sequence[str], month: str | None = None, as_of: dt.date | None = None
) -> list[ChangeEffect]:
    """Decompose the change of days 1..``as_of`` of ``month`` versus the same days last month.

    ``month`` and ``as_of`` default as in :func:`~flopledger.ledger.forecast.forecast_month`. Rows
    come back largest absolute change first.
    """
    by = check_dimensions(by)
    days = spend_days(engine)  # one min/max scan serves the period and the check below
    first, as_of = resolve_period(engine, month, as_of, days=days)
    prev_first, prev_last = month_bounds((first - dt.timedelta(days=1)).replace(day=1))
    previous = (prev_first, min(prev_last, prev_first.replace(day=1) + dt.timedelta(days=as_of.day - 1)))
    first_day, _ = days
    if first_day > previous[0]:
        # Without last month's days every token would look new (all "mix"): say so instead.
        raise InputError(
            f"the ledger starts on {first_day}, so {previous[0]:%Y-%m} days 1-{as_of.day} are not all in it; "
            f"compare a later --month, or ingest {previous[0]:%Y-%m}",
            field="month",
        )
    rows = engine.rows(segment_spend(events_table(engine), by, (first, as_of), previous))
    acc: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        current = row["period"] == "current"
        for cls, qty, cost in ((c, row[c], row[cost]) for c, cost in BILLED_CLASSES):
            key = (_label(row, by), str(row["model"]), cls)
            vals = acc.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            vals[2 if current else 0] += float(qty or 0)
            vals[3 if current else 1] += float(cost or 0.0)
    segments: list[Segment] = [(g, m, k, v[0], v[1], v[2], v[3]) for (g, m, k), v in acc.items() if any(v)]
    effects = [e for e in decompose(segments) if e.last_cost_usd or e.cost_usd]
    return sorted(effects, key=lambda e: (-abs(e.change_usd), e.group, e.token_class))
