"""How much a group's spend usually moves, so a brief reports changes and not noise.

For a period of ``n`` days ending on day ``t``, the usual move is the root-mean-square of
``S(t') - S(t' - 7)`` over the 28 days ``t'`` before the period, where ``S`` sums ``n`` days of the
group's daily spend (from :func:`flopledger.ledger.forecast.daily_spend`). Comparing with a week
earlier keeps weekends out of it. A rise is news when it exceeds ``NOISE_SIGMAS`` times that move;
with fewer than ``MIN_SAMPLES`` comparisons in the history there is no gate.

>>> import datetime as dt
>>> days = {dt.date(2026, 3, 1) + dt.timedelta(i): 100.0 + (i % 2) for i in range(60)}
>>> round(usual_move_usd(days, dt.date(2026, 4, 29), 1), 2)
1.0
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

__all__ = ["HISTORY_DAYS", "MIN_SAMPLES", "NOISE_SIGMAS", "usual_move_usd"]

HISTORY_DAYS = 28
MIN_SAMPLES = 7
NOISE_SIGMAS = 2.0


def usual_move_usd(daily: Mapping[dt.date, float], end: dt.date, days: int) -> float | None:
    """RMS week-on-week change of ``days``-day sums before the period ending ``end`` (None: no history)."""
    if not daily:
        return None
    first = min(daily)

    def total(last: dt.date) -> float:
        return sum(daily.get(last - dt.timedelta(days=i), 0.0) for i in range(days))

    start = end - dt.timedelta(days=days)  # the last day before the period
    moves = []
    for back in range(HISTORY_DAYS):
        t = start - dt.timedelta(days=back)
        if t - dt.timedelta(days=7 + days - 1) < first:
            break
        moves.append(total(t) - total(t - dt.timedelta(days=7)))
    if len(moves) < MIN_SAMPLES:
        return None
    return math.sqrt(sum(m * m for m in moves) / len(moves))
