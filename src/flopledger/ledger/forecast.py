"""Month-end bill forecast per group, with an interval, from daily history.

Per group, the month-end P50 = spend to date + the model's projection of the remaining days
(:mod:`flopledger.ledger.forecast_model`: weekday and weekend effects, a damped trend, level steps),
fitted to the group's history re-priced at the prices in force at the cutoff
(:mod:`flopledger.ledger.forecast_prices`), so a discount or a catalog price change is carried
forward as a price, not read as a change in use. A straight line from the month so far is kept
alongside, as the baseline the backtest (:func:`backtest`) must beat.

>>> import datetime as dt, numpy as np
>>> days = [dt.date(2026, 1, 1) + dt.timedelta(d) for d in range(14)]
>>> p = project_month_end(days, np.full(14, 100.0), dt.date(2026, 1, 14))
>>> round(p.p50_usd)
3100
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np

from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.forecast_model import Z90, project_days
from flopledger.ledger.forecast_prices import Rows, daily_usage, usage_histories
from flopledger.ledger.schema import DIMENSIONS
from flopledger.ledger.spark import Engine, events_table

__all__ = [
    "FORECAST_DIMENSIONS",
    "Z90",
    "BacktestCase",
    "GroupForecast",
    "MonthProjection",
    "backtest",
    "backtest_ledger",
    "backtest_summary",
    "check_dimensions",
    "daily_spend",
    "daily_usage",
    "forecast_groups",
    "forecast_month",
    "month_bounds",
    "parse_month",
    "project_days",
    "project_month_end",
    "resolve_period",
    "spend_days",
    "straight_line_usd",
]

FORECAST_DIMENSIONS: tuple[str, ...] = tuple(d for d in DIMENSIONS if d not in ("day", "hour"))


@dataclass(frozen=True)
class MonthProjection:
    """One group's month-end projection, USD."""

    spent_usd: float
    p10_usd: float
    p50_usd: float
    p90_usd: float
    straight_line_usd: float


@dataclass(frozen=True)
class GroupForecast:
    """Month-end forecast of one group (``group`` maps each ``--by`` dimension to its value)."""

    group: tuple[tuple[str, str | None], ...]
    month: str
    as_of: dt.date
    projection: MonthProjection
    last_month_usd: float

    def as_row(self) -> dict[str, object]:
        """A flat row for tables, JSON and CSV."""
        p = self.projection
        return {
            **dict(self.group),
            "month": self.month,
            "as_of": self.as_of,
            "spent_usd": round(p.spent_usd, 2),
            "p10_usd": round(p.p10_usd, 2),
            "p50_usd": round(p.p50_usd, 2),
            "p90_usd": round(p.p90_usd, 2),
            "straight_line_usd": round(p.straight_line_usd, 2),
            "last_month_usd": round(self.last_month_usd, 2),
        }


def parse_month(month: str) -> dt.date:
    """``YYYY-MM`` to the month's first day."""
    try:
        return dt.datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise InputError(f"month {month!r} is not YYYY-MM", field="month") from exc


def month_bounds(first: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the month that starts at ``first``."""
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last


def check_dimensions(by: Sequence[str]) -> tuple[str, ...]:
    for d in by:
        if d not in FORECAST_DIMENSIONS:
            raise UnknownNameError("dimension", d, list(FORECAST_DIMENSIONS))
    if len(set(by)) != len(by):
        raise InputError(f"--by names a dimension twice: {','.join(by)}", field="--by")
    return tuple(by)


def daily_spend(events: ir.Table, by: Sequence[str], *, until: dt.date | None = None) -> ir.Table:
    """Priced spend per group and UTC day, as an Ibis expression (runs on DuckDB and Spark).

    Columns: the ``by`` dimensions, ``day`` (DATE) and ``cost_usd``; unpriced events are left out
    (``flopledger prices missing`` lists them).
    """
    by = check_dimensions(by)
    t = events.filter(events.cost_usd.notnull())
    if until is not None:
        t = t.filter(t.ts < ibis.timestamp(dt.datetime.combine(until + dt.timedelta(days=1), dt.time())))
    keys = {d: t[d] for d in by}
    return t.group_by(day=t.ts.date(), **keys).aggregate(cost_usd=t.cost_usd.sum()).order_by([*by, "day"])


def straight_line_usd(spent_usd: float, as_of: dt.date) -> float:
    """The naive projection the model must beat: month-to-date spend scaled to the whole month."""
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    return spent_usd / as_of.day * days_in_month


def project_month_end(
    days: Sequence[dt.date], cost_usd: np.ndarray, as_of: dt.date, *, priced_usd: np.ndarray | None = None
) -> MonthProjection:
    """Project the month of ``as_of`` from daily spend through ``as_of`` (dense, oldest first).

    ``priced_usd`` is the same history at the cutoff's prices (see
    :meth:`~flopledger.ledger.forecast_prices.UsageHistory.at_cutoff_prices`), which the model
    reads; spend to date is always the real ``cost_usd``. Without it the model reads ``cost_usd``.
    """
    first, last = month_bounds(as_of.replace(day=1))
    spent = float(sum(c for d, c in zip(days, cost_usd, strict=True) if first <= d <= as_of))
    horizon = [as_of + dt.timedelta(days=i) for i in range(1, (last - as_of).days + 1)]
    expected, sd = project_days(days, cost_usd if priced_usd is None else priced_usd, horizon)
    p50 = spent + float(expected.sum())
    return MonthProjection(
        spent_usd=spent,
        p10_usd=max(spent, p50 - Z90 * sd),
        p50_usd=p50,
        p90_usd=p50 + Z90 * sd,
        straight_line_usd=straight_line_usd(spent, as_of),
    )


def forecast_groups(
    daily_rows: Rows, by: Sequence[str], month: dt.date, as_of: dt.date
) -> list[GroupForecast]:
    """Forecast each group's month from history through ``as_of``.

    ``daily_rows`` are the rows of :func:`~flopledger.ledger.forecast_prices.daily_usage` (the model
    then reads history at the cutoff's prices) or of :func:`daily_spend` (raw dollars), as
    dictionaries or an Arrow table.
    """
    first, _ = month_bounds(month)
    prev_first = (first - dt.timedelta(days=1)).replace(day=1)
    out = []
    for key, h in usage_histories(daily_rows, by, end=as_of).items():
        last_month = sum(c for d, c in zip(h.days, h.cost_usd, strict=True) if prev_first <= d < first)
        if not any(first <= d <= as_of for d in h.row_days) and last_month == 0:
            continue
        projection = project_month_end(
            list(h.days), h.cost_usd, as_of, priced_usd=h.at_cutoff_prices(len(h.days))
        )
        out.append(GroupForecast(key, first.strftime("%Y-%m"), as_of, projection, last_month))
    out.sort(key=lambda g: (-g.projection.p50_usd, g.group))
    return out


def spend_days(engine: Engine) -> tuple[dt.date, dt.date]:
    """The first and the last UTC day with priced spend (one min/max scan, the days as ``daily_spend``
    reads them)."""
    t = events_table(engine)
    t = t.filter(t.cost_usd.notnull())
    (row,) = engine.rows(t.aggregate(first=t.ts.date().min(), last=t.ts.date().max()))
    if row["first"] is None:
        raise InputError("the ledger holds no priced spend; ingest or price events first")
    return row["first"], row["last"]


def resolve_period(
    engine: Engine, month: str | None, as_of: dt.date | None, *, days: tuple[dt.date, dt.date] | None = None
) -> tuple[dt.date, dt.date]:
    """The month's first day and the last day of history: by default the month of ``as_of`` or, with
    neither, the latest month with spend, and its latest day with spend (the month's last day for a
    past month; an ``as_of`` after the ledger's last day of spend is that day, and its month that
    day's). ``days``: the ledger's :func:`spend_days`, when the caller has them already."""
    _, latest = days or spend_days(engine)
    # an as-of day after the last day of spend (even in a month with none yet) is that day's month
    first = parse_month(month) if month else min(as_of or latest, latest).replace(day=1)
    _, last = month_bounds(first)
    if latest < first:
        raise InputError(f"no spend in {first:%Y-%m} yet; the latest is on {latest}", field="month")
    if month and as_of is not None and not first <= as_of <= last:
        raise InputError(
            f"as-of day {as_of} is not in the month {first:%Y-%m}: give --month {as_of:%Y-%m}, or leave "
            "--month out (it is the as-of day's month then)",
            field="as_of",
        )
    return first, min(as_of if as_of is not None else last, latest)


def forecast_month(
    engine: Engine,
    *,
    by: Sequence[str],
    month: str | None = None,
    as_of: dt.date | None = None,
    days: tuple[dt.date, dt.date] | None = None,
) -> list[GroupForecast]:
    """Forecast ``month`` (default: the latest month with spend) per ``by`` group on ``engine``.

    Largest P50 first; see :func:`resolve_period` for the defaults (and ``days``).
    """
    by = check_dimensions(by)
    first, as_of = resolve_period(engine, month, as_of, days=days)
    return forecast_groups(engine.rows(daily_usage(events_table(engine), by, until=as_of)), by, first, as_of)


def backtest_ledger(engine: Engine, *, by: Sequence[str]) -> list[dict[str, object]]:
    """Backtest the forecast on the ledger's own history (see :func:`backtest`), summarised."""
    by = check_dimensions(by)
    return backtest_summary(backtest(engine.rows(daily_usage(events_table(engine), by)), by))


@dataclass(frozen=True)
class BacktestCase:
    """One forecast made in the past and what then happened, USD."""

    kind: str  # "month-end" (forecast at day N of a month) or "held-back week"
    period: str  # YYYY-MM, or the first day of the held-back week
    cutoff: dt.date
    group: tuple[tuple[str, str | None], ...]
    actual_usd: float
    p10_usd: float
    p50_usd: float
    p90_usd: float
    straight_line_usd: float


def backtest(
    daily_rows: Sequence[dict[str, object]], by: Sequence[str], *, cutoff_days: Sequence[int] = (7, 14, 21)
) -> list[BacktestCase]:
    """Re-run the forecast at day 7, 14 and 21 of every complete month, and on a held-back final week.

    ``daily_rows`` as for :func:`forecast_groups`. Each forecast reads only the days up to its cutoff,
    prices included: the history is re-priced at the rates of the cutoff, never of a later day.
    """
    histories = usage_histories(daily_rows, by)
    all_days = {d for h in histories.values() for d in h.row_days}
    if not all_days:
        return []
    start, end = min(all_days), max(all_days)
    months = sorted({d.replace(day=1) for d in all_days})
    cases: list[BacktestCase] = []
    for key, h in sorted(histories.items()):
        days, costs = list(h.days), h.cost_usd
        cost_of = dict(zip(days, costs, strict=True))
        for first in months:
            _, last = month_bounds(first)
            if first < start or last > end:
                continue  # only months the data covers whole
            actual = sum(cost_of.get(first + dt.timedelta(i), 0.0) for i in range(last.day))
            for n in cutoff_days:
                cutoff = first.replace(day=n)
                k = sum(1 for d in days if d <= cutoff)
                if k == 0:
                    continue
                p = project_month_end(days[:k], costs[:k], cutoff, priced_usd=h.at_cutoff_prices(k))
                cases.append(
                    BacktestCase(
                        "month-end",
                        f"{first:%Y-%m}",
                        cutoff,
                        key,
                        actual,
                        p.p10_usd,
                        p.p50_usd,
                        p.p90_usd,
                        p.straight_line_usd,
                    )
                )
        cutoff = end - dt.timedelta(days=7)
        k = sum(1 for d in days if d <= cutoff)
        if k >= 7:
            week = [cutoff + dt.timedelta(days=i) for i in range(1, 8)]
            expected, sd = project_days(days[:k], h.at_cutoff_prices(k), week)
            mtd = [c for d, c in zip(days[:k], costs[:k], strict=True) if d >= cutoff.replace(day=1)]
            run_rate = float(np.mean(mtd)) if mtd else float(np.mean(costs[k - 7 : k]))
            p50 = float(expected.sum())
            cases.append(
                BacktestCase(
                    "held-back week",
                    week[0].isoformat(),
                    cutoff,
                    key,
                    float(costs[k:].sum()),
                    max(0.0, p50 - Z90 * sd),
                    p50,
                    p50 + Z90 * sd,
                    run_rate * 7,
                )
            )
    return cases


def backtest_summary(cases: Sequence[BacktestCase]) -> list[dict[str, object]]:
    """Dollar-weighted absolute error of the model and of the straight line, per kind and cutoff day.

    ``model_error_pct`` = sum |P50 - actual| / sum actual over groups and periods; ``coverage_pct``
    is the share of cases whose actual fell inside P10..P90 (80% if the interval is calibrated).
    """
    buckets: dict[tuple[str, int], list[BacktestCase]] = {}
    for c in cases:
        day = c.cutoff.day if c.kind == "month-end" else 0
        buckets.setdefault((c.kind, day), []).append(c)
    out: list[dict[str, object]] = []
    for (kind, day), group in sorted(buckets.items()):
        actual = sum(c.actual_usd for c in group) or 1.0
        out.append(
            {
                "kind": kind,
                "cutoff_day": day or None,
                "cases": len(group),
                "actual_usd": round(sum(c.actual_usd for c in group), 2),
                "model_error_pct": round(100 * sum(abs(c.p50_usd - c.actual_usd) for c in group) / actual, 2),
                "straight_line_error_pct": round(
                    100 * sum(abs(c.straight_line_usd - c.actual_usd) for c in group) / actual, 2
                ),
                "coverage_pct": round(
                    100 * sum(c.p10_usd <= c.actual_usd <= c.p90_usd for c in group) / len(group), 1
                ),
            }
        )
    return out
