"""Build a brief: gather candidates from every layer, rank them by dollars, hold back repeats.

>>> from flopledger.ledger.store import open_ledger
>>> build_brief(open_ledger(":memory:"))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
flopledger.errors.InputError: the ledger holds no priced spend; ingest or price events first
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis

from flopledger.briefs.budget import budget_insights, month_outlook
from flopledger.briefs.figures import pct, signed_pct, usd
from flopledger.briefs.flagged import flagged_view
from flopledger.briefs.fleet_plan import fleet_view
from flopledger.briefs.history import last_sent, split_repeats
from flopledger.briefs.model import Brief, BriefWindow, Insight, KeyNumber, window_for
from flopledger.briefs.spend import spend_view
from flopledger.ledger.budgets import load_budgets
from flopledger.ledger.forecast import spend_days
from flopledger.ledger.spark import Engine

__all__ = [
    "CHART_DAYS",
    "DEFAULT_DASHBOARD_URL",
    "MIN_LEDGER_IMPACT_SHARE",
    "TOP_INSIGHTS",
    "BriefInputs",
    "build_brief",
    "rank",
]

TOP_INSIGHTS = 5
MIN_LEDGER_IMPACT_SHARE = 0.005
"""Spend and cache candidates below 0.5% of the month's spend run rate are noise, not news."""
CHART_DAYS = 28
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class BriefInputs:
    """What a brief reads besides the ledger: an optional budgets file and fleet spec."""

    period: str = "day"
    date: dt.date | None = None
    budgets: Path | None = None
    fleet_spec: Path | None = None
    dashboard_url: str = DEFAULT_DASHBOARD_URL
    top: int = TOP_INSIGHTS


def rank(candidates: list[Insight]) -> list[Insight]:
    """Largest impact first; ties by key, so the order never depends on the query plan."""
    return sorted(candidates, key=lambda i: (-round(i.impact_usd_per_month, 2), i.key))


def _chart_days(by_day: Mapping[dt.date, float], date: dt.date) -> tuple[tuple[dt.date, float], ...]:
    days = [date - dt.timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    return tuple((d, by_day.get(d, 0.0)) for d in days)


def _headline(
    window: BriefWindow, cost: float, before: float, top: list[Insight], latest: dt.date | None = None
) -> str:
    change = f" ({signed_pct(100 * (cost - before) / before)} {window.versus})" if before else ""
    lead = f"{usd(cost)} spent {window.during}{change}."
    if latest is not None:  # a quiet day, or one the ledger has not been given yet: say which
        lead += f" The ledger's spend ends on {latest}; ingest the days since for a full brief."
    if not top:
        return f"{lead} Nothing new to act on."
    return f"{lead} Top of {len(top)}: {top[0].title}."


def build_brief(con: duckdb.DuckDBPyConnection, inputs: BriefInputs = BriefInputs()) -> Brief:
    """The brief of ``inputs.period`` ending on ``inputs.date`` (default: the latest day with spend).

    ``con`` is an open, writable ledger (the sent-insights table lives in it).
    """
    engine = Engine("duckdb", ibis.duckdb.from_connection(con), "events")
    days = spend_days(engine)  # read once: the month outlook and the budgets need them too
    date = inputs.date or days[1]
    window = window_for(inputs.period, date)
    spend = spend_view(engine, window)
    outlook = month_outlook(engine, date, days)
    floor_usd = MIN_LEDGER_IMPACT_SHARE * spend.cost_usd * window.per_month
    candidates = [i for i in spend.insights if i.impact_usd_per_month >= floor_usd]
    sources = ["ledger: spend change (volume, mix, price) and cache reads by team and model"]
    if inputs.budgets is not None:
        candidates += budget_insights(engine, load_budgets(inputs.budgets), date, days)
        sources.append(f"ledger: budgets from {inputs.budgets.name}")
    flagged = flagged_view(con, engine, window)
    candidates += flagged.insights
    sources.append("integrity: scan as of the brief's date and as of the period's start")
    fleet = None
    if inputs.fleet_spec is not None:
        fleet = fleet_view(inputs.fleet_spec)
        candidates += fleet.insights
        sources.append(f"fleet: envelope plan of {inputs.fleet_spec.name}")
    fresh, held = split_repeats(rank(candidates), last_sent(con, window))
    top = fresh[: inputs.top]

    keys = [KeyNumber("cost_usd", "Spend", spend.cost_usd, usd(spend.cost_usd))]
    if spend.previous_cost_usd:
        change = 100 * (spend.cost_usd - spend.previous_cost_usd) / spend.previous_cost_usd
        keys.append(KeyNumber("change_pct", f"Change {window.versus}", change, signed_pct(change)))
    if outlook is not None:
        keys.append(
            KeyNumber(
                "month_to_date_usd", f"Spent in {outlook.month}", outlook.spent_usd, usd(outlook.spent_usd)
            )
        )
        keys.append(
            KeyNumber(
                "forecast_p50_usd",
                "Month-end forecast",
                outlook.p50_usd,
                f"{usd(outlook.p50_usd)} (P10 {usd(outlook.p10_usd)}, P90 {usd(outlook.p90_usd)})",
            )
        )
    if spend.cache_share_pct is not None:
        keys.append(
            KeyNumber(
                "cache_share_pct",
                "Cache reads, share of input",
                spend.cache_share_pct,
                pct(spend.cache_share_pct)
                + (
                    f" ({pct(spend.previous_cache_share_pct)} {window.comparison})"
                    if spend.previous_cache_share_pct is not None
                    else ""
                ),
            )
        )
    keys.append(
        KeyNumber(
            "flagged_accounts",
            "Flagged accounts",
            float(flagged.flagged_accounts),
            f"{flagged.flagged_accounts} ({flagged.newly_flagged_accounts} new)",
        )
    )
    if fleet is not None:
        keys.append(
            KeyNumber(
                "fleet_objective_usd",
                f"Fleet plan {fleet.plan.name}, value",
                fleet.plan.objective_usd,
                usd(fleet.plan.objective_usd),
            )
        )
    return Brief(
        window=window,
        headline=_headline(
            window, spend.cost_usd, spend.previous_cost_usd, top, days[1] if days[1] < date else None
        ),
        key_numbers=tuple(keys),
        insights=tuple(top),
        suppressed=tuple(held),
        candidates=len(candidates),
        daily_spend=_chart_days(spend.daily_usd, date),
        dashboard_url=inputs.dashboard_url,
        sources=tuple(sources),
    )
