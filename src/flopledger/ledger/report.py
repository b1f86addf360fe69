"""Cost reports over the priced ledger, as Ibis expressions (the same on DuckDB and on Spark).

>>> from flopledger.ledger.spark import connect_engine
>>> engine = connect_engine("duckdb", db=":memory:")
>>> report(engine, by=["team"])
[]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.measures import EFFECTIVE_COSTS, SUMMED_COUNTS, ibis_measures
from flopledger.ledger.measures import unpriced_tokens as unpriced_of
from flopledger.ledger.schema import (
    BILLED_TOKEN_COLUMNS,
    DIMENSIONS,
    TOKEN_COLUMNS,
    USAGE_REPORT_FORMATS,
    WEB_SEARCH_CLASS,
)
from flopledger.ledger.spark import Engine, events_table

__all__ = [
    "REPORT_DIMENSIONS",
    "HeadlineView",
    "headline",
    "ledger_span",
    "parse_dimensions",
    "report",
    "report_expr",
    "report_rows_in_window",
    "unpriced_tokens",
    "window_bound",
]


REPORT_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, "service_tier")
"""What a report can group by: the ledger's dimensions, and the service tier (standard, batch,
priority, flex: how much of the bill each buys)."""


def parse_dimensions(by: str | Sequence[str]) -> list[str]:
    """``"team,model"`` -> ``["team", "model"]``; an unknown name suggests the closest one."""
    names = [d.strip() for d in (by.split(",") if isinstance(by, str) else by) if d.strip()]
    if not names:
        raise InputError("--by needs at least one dimension", field="--by")
    for name in names:
        if name not in REPORT_DIMENSIONS:
            raise UnknownNameError("report dimension", name, list(REPORT_DIMENSIONS))
    if len(set(names)) != len(names):
        raise InputError(f"--by names a dimension twice: {','.join(names)}", field="--by")
    return names


def window_bound(value: dt.date | dt.datetime) -> dt.datetime:
    """A window's bound as the ledger's time: a date is midnight UTC, a time with an offset is
    converted to UTC, one without is UTC."""
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def ledger_span(
    engine: Engine, since: dt.date | dt.datetime | None = None, until: dt.date | dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None, int]:
    """The first and last event times of the ledger (in the window, when given), and its number of
    events."""
    t = _window(events_table(engine), since, until)
    row = engine.rows(t.aggregate(first=t.ts.min(), last=t.ts.max(), events=t.count()))[0]
    return row["first"], row["last"], int(row["events"] or 0)


def report_rows_in_window(
    engine: Engine, since: dt.date | dt.datetime | None = None, until: dt.date | dt.datetime | None = None
) -> tuple[int, float]:
    """The usage-report rows (Anthropic's, OpenAI's buckets) in the window and their cost: each
    stands for a bucket of requests (most often a day's), placed at the bucket's start."""
    t = _window(events_table(engine), since, until)
    t = t.filter(t.source_format.isin(USAGE_REPORT_FORMATS))
    row = engine.rows(t.aggregate(rows=t.count(), cost=t.cost_usd.sum()))[0]
    return int(row["rows"] or 0), float(row["cost"] or 0.0)


def _window(
    t: ir.Table, since: dt.date | dt.datetime | None, until: dt.date | dt.datetime | None
) -> ir.Table:
    """Events with ``since <= ts < until`` (:func:`window_bound`; ``until`` is exclusive)."""
    if since is not None:
        t = t.filter(t.ts >= window_bound(since))
    if until is not None:
        t = t.filter(t.ts < window_bound(until))
    return t


def _dimension_expr(t: ir.Table, name: str) -> ir.Value:
    if name == "day":
        return t.ts.truncate("D").cast("date").name("day")
    if name == "hour":
        return t.ts.truncate("h").name("hour")
    if name == "service_tier":  # a row that says none is standard, as it is priced
        return t.service_tier.fill_null("standard").name(name)
    return t[name].name(name)


def report_expr(
    t: ir.Table,
    by: Sequence[str],
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    per_active_hour: bool = False,
) -> ir.Table:
    """Requests, tokens and cost per class grouped by ``by``, most expensive first (:func:`report`
    shows groups by day or hour in time order)."""
    t = _window(t, since, until)
    keys = [_dimension_expr(t, d) for d in by]
    metrics = ibis_measures(t, costs=EFFECTIVE_COSTS)  # list prices are the headline view's
    if per_active_hour:
        # Usage-report rows stand for a day of requests: they have no hours, so they are left out
        # of the hours and of the cost spread over them (NULL where a group has only such rows).
        hourly = ~t.source_format.isin(USAGE_REPORT_FORMATS).fill_null(False)
        metrics["active_hours"] = t.ts.truncate("h").nunique(where=hourly)
        metrics["_hourly_cost"] = t.cost_usd.fill_null(0).sum(where=hourly)
    grouped = t.group_by(keys).aggregate(**metrics)
    if per_active_hour:
        grouped = grouped.mutate(
            cost_usd_per_active_hour=ibis.ifelse(
                grouped.active_hours > 0, grouped._hourly_cost / grouped.active_hours.cast("float64"), None
            )
        ).drop("_hourly_cost")
    return grouped.order_by([ibis.desc("cost_usd"), *[ibis.asc(d) for d in by]])


def _in_time_order(expr: ir.Table, by: Sequence[str]) -> ir.Table:
    """Groups by day or hour read in time order (the costliest first within each); others stay
    costliest first. Applied after any limit, so a limit keeps the costliest groups."""
    times = [d for d in by if d in ("day", "hour")]
    if not times:
        return expr
    others = [d for d in by if d not in times]
    return expr.order_by([*map(ibis.asc, times), ibis.desc("cost_usd"), *map(ibis.asc, others)])


def report(
    engine: Engine,
    by: Sequence[str],
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    per_active_hour: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Rows keyed by the dimensions, ``requests``, each token column (and ``web_search_requests``: 0
    in a group without searches, NULL in a ledger written before they had a column),
    ``<column>_cost_usd``, ``cost_usd``.

    ``per_active_hour`` adds ``active_hours`` (hours with at least one request) and
    ``cost_usd_per_active_hour``: the cost of an active engineer-hour when grouped by user.
    """
    by = parse_dimensions(by)
    expr = report_expr(events_table(engine), by, since=since, until=until, per_active_hour=per_active_hour)
    if limit is not None:
        expr = expr.limit(limit)
    rows = engine.rows(_in_time_order(expr, by))
    # A group none of whose events said a count (web searches) has none of it: 0, where the events
    # have the column; a ledger an older flopledger wrote without it does not know, and says NULL.
    kept = set(engine.backend.table(engine.events_source).columns)
    for row in rows:
        for c in (*SUMMED_COUNTS, "unpriced_tokens", "active_hours"):
            if c in row and row[c] is not None:
                row[c] = int(row[c])
            elif c in row and c in kept and c in SUMMED_COUNTS:
                row[c] = 0
        for c in (*EFFECTIVE_COSTS, "cost_usd_per_active_hour"):
            if c in row and row[c] is not None:
                row[c] = round(float(row[c]), 6)
    return rows


def unpriced_tokens(
    engine: Engine,
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
) -> int:
    """The billed tokens of the window's unpriced events: what the ``unpriced_tokens`` of all of a
    report's rows add up to, whatever ``limit`` shows of them."""
    t = _window(events_table(engine), since, until)
    (row,) = engine.rows(t.aggregate(unpriced=unpriced_of(t).sum()))
    return int(row["unpriced"] or 0)


@dataclass(frozen=True)
class HeadlineView:
    """The real bill against the two naive ones a headline is made of."""

    real_cost_usd: float
    all_as_output_cost_usd: float
    all_input_uncached_cost_usd: float
    total_tokens: int
    unpriced_tokens: int
    classes: tuple[dict[str, Any], ...]

    @property
    def overstatement(self) -> float:
        """How many times the all-as-output bill exceeds the real one."""
        return self.all_as_output_cost_usd / self.real_cost_usd if self.real_cost_usd else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "real_cost_usd": self.real_cost_usd,
            "all_as_output_cost_usd": self.all_as_output_cost_usd,
            "all_input_uncached_cost_usd": self.all_input_uncached_cost_usd,
            "overstatement_x": round(self.overstatement, 2) if self.real_cost_usd else None,
            "total_tokens": self.total_tokens,
            "unpriced_tokens": self.unpriced_tokens,
            "classes": list(self.classes),
        }


def headline(
    engine: Engine,
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
) -> HeadlineView:
    """The bill with every token priced as output, or all input as uncached, versus the real bill.

    Both counterfactuals use each event's own applied rates (after discounts); unpriced events are left out
    of every figure and counted in ``unpriced_tokens``.
    """
    t = _window(events_table(engine), since, until)
    # One pass: unpriced events count only their tokens (their costs are NULL and sum to nothing).
    is_priced = t.priced.fill_null(False)

    def when_priced(value: Any) -> Any:
        return ibis.ifelse(is_priced, value, 0)

    all_in = t.input_tokens + t.cache_read_tokens + t.cache_write_5m_tokens + t.cache_write_1h_tokens
    apart = t.web_search_cost_usd.fill_null(0) + t.request_cost_usd.fill_null(0)
    agg: dict[str, Any] = {
        "real": t.cost_usd.sum(),
        # what is billed apart from tokens (web searches, request fees) is the same in every bill
        "as_output": (
            (all_in + t.output_tokens).cast("float64") * t.output_usd_per_mtok_applied / 1e6 + apart
        ).sum(),
        "uncached": (
            all_in.cast("float64") * t.input_usd_per_mtok_applied / 1e6 + t.output_tokens_cost_usd + apart
        ).sum(),
        "unpriced": unpriced_of(t).sum(),
    }
    agg.update({f"tok_{c}": when_priced(t[c]).sum() for c in TOKEN_COLUMNS})
    agg.update({f"cost_{c}": t[f"{c}_cost_usd"].sum() for c in TOKEN_COLUMNS})
    agg["searches"] = when_priced(t.web_search_requests.fill_null(0)).sum()
    agg["cost_searches"] = t.web_search_cost_usd.sum()
    totals = engine.rows(t.aggregate(**agg))[0]
    real = float(totals["real"] or 0.0)
    billed_tokens = sum(int(totals[f"tok_{c}"] or 0) for c in BILLED_TOKEN_COLUMNS)
    classes = []
    for c in TOKEN_COLUMNS:
        tokens = int(totals[f"tok_{c}"] or 0)
        cost = float(totals[f"cost_{c}"] or 0.0)
        classes.append(
            {
                "token_class": c,
                "tokens": tokens,
                "cost_usd": round(cost, 6),
                "token_share": round(tokens / billed_tokens, 6) if billed_tokens else 0.0,
                "cost_share": round(cost / real, 6) if real else 0.0,
                "usd_per_mtok": round(cost / tokens * 1e6, 6) if tokens else None,
                "billed_apart": c != "reasoning_tokens",
            }
        )
    searches, search_cost = int(totals["searches"] or 0), float(totals["cost_searches"] or 0.0)
    if searches or search_cost:  # billed per search: a class of the bill, with no tokens
        classes.append(
            {
                "token_class": WEB_SEARCH_CLASS,
                "tokens": None,
                "cost_usd": round(search_cost, 6),
                "token_share": None,
                "cost_share": round(search_cost / real, 6) if real else 0.0,
                "usd_per_mtok": None,
                "billed_apart": True,
                "searches": searches,
            }
        )
    return HeadlineView(
        real_cost_usd=round(real, 6),
        all_as_output_cost_usd=round(float(totals["as_output"] or 0.0), 6),
        all_input_uncached_cost_usd=round(float(totals["uncached"] or 0.0), 6),
        total_tokens=billed_tokens,
        unpriced_tokens=int(totals["unpriced"] or 0),
        classes=tuple(classes),
    )
