"""What a brief is made of: the period it covers, its insights and its key numbers.

Every insight carries the numbers its sentences quote (``numbers``), so a test can recompute each
one through the library and check the wording against them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flopledger.errors import UnknownNameError

__all__ = [
    "DAYS_PER_MONTH",
    "PERIODS",
    "Brief",
    "BriefWindow",
    "Insight",
    "KeyNumber",
    "Suppressed",
    "window_for",
]

DAYS_PER_MONTH = 30.0
"""Impacts are stated per month: a day's change counts 30 times, a week's 30/7 times."""

PERIODS: Mapping[str, int] = {"day": 1, "week": 7}
"""Period name to its length in days."""


@dataclass(frozen=True)
class BriefWindow:
    """The period a brief covers and the one it is compared with (same length, one week earlier).

    A day is compared with the same weekday a week before, so weekends never look like a drop.
    """

    period: str
    date: dt.date
    start: dt.date
    previous_start: dt.date
    previous_end: dt.date

    @property
    def days(self) -> int:
        return PERIODS[self.period]

    @property
    def per_month(self) -> float:
        """Factor from one period's dollars to a month's run rate."""
        return DAYS_PER_MONTH / self.days

    @property
    def during(self) -> str:
        """How the text names the period: "on 2026-03-15 (Sun)" or "in the week 2026-03-09 to 2026-03-15"."""
        if self.period == "day":
            return f"on {self.date.isoformat()} ({self.date:%a})"
        return f"in the week {self.start.isoformat()} to {self.date.isoformat()}"

    @property
    def comparison(self) -> str:
        return "on the same day last week" if self.period == "day" else "in the week before"

    @property
    def versus(self) -> str:
        return "vs the same day last week" if self.period == "day" else "vs the week before"

    @property
    def short(self) -> str:
        """Chart label of the period."""
        return self.date.isoformat() if self.period == "day" else f"week to {self.date.isoformat()}"

    @property
    def previous_short(self) -> str:
        return (
            self.previous_end.isoformat()
            if self.period == "day"
            else f"week to {self.previous_end.isoformat()}"
        )


def window_for(period: str, date: dt.date) -> BriefWindow:
    """The window of ``period`` ending on ``date`` and its comparison window.

    >>> w = window_for("week", dt.date(2026, 3, 15))
    >>> (w.start, w.previous_start, w.previous_end)
    (datetime.date(2026, 3, 9), datetime.date(2026, 3, 2), datetime.date(2026, 3, 8))
    """
    if period not in PERIODS:
        raise UnknownNameError("period", period, list(PERIODS))
    days = PERIODS[period]
    start = date - dt.timedelta(days=days - 1)
    shift = dt.timedelta(days=7)
    return BriefWindow(period, date, start, start - shift, date - shift)


@dataclass(frozen=True)
class Insight:
    """One thing to know: what happened, its impact in USD per month, who should do what, and where.

    ``key`` names the insight across days (the no-repeat rule compares it); ``numbers`` holds every
    figure the title and body quote, unrounded; ``chart`` is a few labelled bars for the HTML brief.
    """

    key: str
    layer: str
    title: str
    body: str
    impact_usd_per_month: float
    action: str
    link: str
    numbers: Mapping[str, float] = field(default_factory=dict)
    chart: tuple[tuple[str, float], ...] = ()
    chart_unit: str = "usd"  # usd, pct or count

    def as_dict(self, dashboard_url: str) -> dict[str, Any]:
        return {
            "key": self.key,
            "layer": self.layer,
            "title": self.title,
            "body": self.body,
            "impact_usd_per_month": round(self.impact_usd_per_month, 2),
            "action": self.action,
            "link": dashboard_url.rstrip("/") + self.link,
            "numbers": {k: round(v, 6) for k, v in self.numbers.items()},
            "chart": [{"label": label, "value": round(v, 6)} for label, v in self.chart],
            "chart_unit": self.chart_unit,
        }


@dataclass(frozen=True)
class KeyNumber:
    """A figure for the top of the brief: ``text`` is how it reads, ``value`` the number behind it."""

    name: str
    label: str
    value: float
    text: str


@dataclass(frozen=True)
class Suppressed:
    """A candidate left out because it was already sent and has not changed materially."""

    key: str
    impact_usd_per_month: float
    last_sent: dt.date
    last_impact_usd_per_month: float


@dataclass(frozen=True)
class Brief:
    """The brief: a headline, key numbers, the top insights, and what was held back as a repeat."""

    window: BriefWindow
    headline: str
    key_numbers: tuple[KeyNumber, ...]
    insights: tuple[Insight, ...]
    suppressed: tuple[Suppressed, ...]
    candidates: int
    daily_spend: tuple[tuple[dt.date, float], ...]
    dashboard_url: str
    sources: tuple[str, ...]

    def link(self, insight: Insight) -> str:
        return self.dashboard_url.rstrip("/") + insight.link

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the brief."""
        w = self.window
        return {
            "period": w.period,
            "date": w.date.isoformat(),
            "start": w.start.isoformat(),
            "compared_with": [w.previous_start.isoformat(), w.previous_end.isoformat()],
            "headline": self.headline,
            "key_numbers": [
                {"name": k.name, "label": k.label, "value": round(k.value, 6), "text": k.text}
                for k in self.key_numbers
            ],
            "insights": [i.as_dict(self.dashboard_url) for i in self.insights],
            "suppressed_repeats": [
                {
                    "key": s.key,
                    "impact_usd_per_month": round(s.impact_usd_per_month, 2),
                    "last_sent": s.last_sent.isoformat(),
                    "last_impact_usd_per_month": round(s.last_impact_usd_per_month, 2),
                }
                for s in self.suppressed
            ],
            "candidates": self.candidates,
            "daily_spend": [{"day": d.isoformat(), "cost_usd": round(c, 6)} for d, c in self.daily_spend],
            "sources": list(self.sources),
        }
