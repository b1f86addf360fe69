"""Forecast-against-budget insights and the month-end forecast, from the ledger's own forecast.

A budget that is ``over`` or ``at risk`` (:func:`flopledger.ledger.budgets.check_budgets`) is a
candidate; its impact is the expected overrun, the median month-end forecast minus the budget, or,
when only a daily cap is broken, the day's excess over the cap at a monthly rate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flopledger.briefs.figures import pct, usd
from flopledger.briefs.model import DAYS_PER_MONTH, Insight
from flopledger.ledger.budgets import Budget, BudgetStatus, check_budgets
from flopledger.ledger.forecast import forecast_month
from flopledger.ledger.spark import Engine

__all__ = ["BUDGETS_FILE", "MonthOutlook", "budget_insights", "find_budgets", "month_outlook"]

BUDGETS_FILE = "flopledger-budgets.toml"
"""Looked for next to the ledger file when ``--budgets`` is not given."""


@dataclass(frozen=True)
class MonthOutlook:
    """The whole ledger's month-end forecast as of the brief's date, USD."""

    month: str
    spent_usd: float
    p10_usd: float
    p50_usd: float
    p90_usd: float
    last_month_usd: float


def month_outlook(engine: Engine, as_of: dt.date, days: tuple[dt.date, dt.date]) -> MonthOutlook | None:
    """Month-to-date spend and the month-end forecast of everything (no grouping); None before the
    month's first spend (a brief on the 1st, before that day's usage is in). ``days``: the ledger's
    :func:`~flopledger.ledger.forecast.spend_days`."""
    if days[1] < as_of.replace(day=1):
        return None
    groups = forecast_month(engine, by=(), month=f"{as_of:%Y-%m}", as_of=as_of, days=days)
    if not groups:
        return None
    g = groups[0]
    p = g.projection
    return MonthOutlook(g.month, p.spent_usd, p.p10_usd, p.p50_usd, p.p90_usd, g.last_month_usd)


def find_budgets(explicit: Path | None, db: Path) -> Path | None:
    """The budgets file: the one given, else ``flopledger-budgets.toml`` beside the ledger, else none."""
    if explicit is not None:
        return explicit
    beside = db.parent / BUDGETS_FILE
    return beside if beside.is_file() else None


def _impact(s: BudgetStatus) -> float:
    overrun = s.forecast_p50_usd - s.budget.monthly_usd
    if overrun > 0:
        return overrun
    cap = s.budget.daily_cap_usd
    if cap is not None and s.day_usd > cap:
        return (s.day_usd - cap) * DAYS_PER_MONTH
    return 0.0


def _action(s: BudgetStatus) -> str:
    owner = f"The owner of {s.budget.scope.replace('_', ' ')} {s.budget.name}"
    d = s.driver
    if d is None:
        return f"{owner}: decide whether to raise the budget or cut usage before month end."
    who = f"user {d.user}" if d.user is not None else "the unattributed traffic"
    return f"{owner}: talk to {who} about {d.model} usage, or raise the budget before month end."


def _insight(s: BudgetStatus) -> Insight:
    b = s.budget
    impact = _impact(s)
    scope = f"{b.scope.replace('_', ' ')} {b.name}"
    verb = "is over" if s.status == "over" else "is at risk of overrunning"
    body = (
        f"{scope[0].upper()}{scope[1:]} has spent {usd(s.spent_usd)} of its {usd(b.monthly_usd)} monthly "
        f"budget by {s.as_of.isoformat()}; the month-end forecast is {usd(s.forecast_p50_usd)} "
        f"(P10 {usd(s.forecast_p10_usd)}, P90 {usd(s.forecast_p90_usd)}), a {pct(s.overrun_chance_pct)} "
        "chance of overrun."
    )
    numbers = {
        "spent_usd": s.spent_usd,
        "monthly_usd": b.monthly_usd,
        "forecast_p10_usd": s.forecast_p10_usd,
        "forecast_p50_usd": s.forecast_p50_usd,
        "forecast_p90_usd": s.forecast_p90_usd,
        "overrun_chance_pct": s.overrun_chance_pct,
        "impact_usd_per_month": impact,
    }
    if b.daily_cap_usd is not None and s.day_usd > b.daily_cap_usd:
        body += f" The day's {usd(s.day_usd)} broke the daily cap of {usd(b.daily_cap_usd)}."
        numbers |= {"day_usd": s.day_usd, "daily_cap_usd": b.daily_cap_usd}
    if s.driver is not None:
        d = s.driver
        who = f"user {d.user}" if d.user is not None else "unattributed traffic"
        cls = "per-request fees" if d.token_class == "requests" else d.token_class.removesuffix("_tokens")
        body += (
            f" The driver is {who} on {d.model}, {cls.replace('_', ' ')} ({usd(d.cost_usd)} this month, "
            f"{pct(d.share_pct)} of the spend)."
        )
        numbers |= {"driver_cost_usd": d.cost_usd, "driver_share_pct": d.share_pct}
    link = f"/teams/{quote(b.name, safe='')}" if b.scope == "team" else "/"  # the overview has all budgets
    return Insight(
        key=f"budget:{b.scope}:{b.name}",
        layer="ledger",
        title=f"Budget: {scope} {verb} its {usd(b.monthly_usd)} budget",
        body=body,
        impact_usd_per_month=impact,
        action=_action(s),
        link=link,
        numbers=numbers,
        chart=(("budget", b.monthly_usd), ("spent", s.spent_usd), ("forecast", s.forecast_p50_usd)),
    )


def budget_insights(
    engine: Engine, budgets: Sequence[Budget], as_of: dt.date, days: tuple[dt.date, dt.date] | None = None
) -> tuple[Insight, ...]:
    """One candidate per budget that is over or at risk on ``as_of`` (``days``: as for check_budgets)."""
    if not budgets:
        return ()
    statuses = check_budgets(engine, budgets, as_of=as_of, days=days)
    return tuple(_insight(s) for s in statuses if s.status != "ok")
