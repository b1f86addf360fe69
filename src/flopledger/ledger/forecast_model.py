"""The daily spend model behind the month-end forecast: season, level, trend, steps, interval.

Per group: daily spend = (level + trend x day) x weekday-or-weekend factor, fitted over the last
twelve weeks. The weekend factor is the ratio of mean weekend to mean weekday spend; level and
trend are a least-squares line through de-seasonalised spend, recent days weighted more
(half-life four weeks) and quiet days (a small season factor) less. A trend is fitted only from
four whole weeks of history on (before that it cannot be told from the weeks' noise), half of it
is carried forward, and less when its t-statistic is small.

A step in the last two weeks (a new bot, a new batch job, a team that doubled) is found as the
least-squares change point of the residuals against the line fitted before those two weeks, as an
added constant per day (an always-on process: weekends rise as much as weekdays) or as a scale
factor (more of the same use), whichever fits better; it counts when its summed residual is beyond
five standard deviations of that line's projection. The interval comes from the residuals (inflated
for their day-to-day correlation), the uncertainty of the line (the whole of the slope's, shrunk or
not) and that of the step, at a Student t quantile of the fit's effective number of days.

A group's history starts anew after four weeks without spend, once it has two weeks of use since:
what came before (one stray old event, a project that paused) says nothing of the level it came
back at. A group back for fewer days keeps its whole history, whose quiet weeks widen the interval
as they should: a few days cannot tell a level. A history of one day has no spread to measure: its
daily spread is taken as large as its level.

Prices are not the model's business: the caller hands it spend at one set of prices (see
:mod:`flopledger.ledger.forecast_prices`), so a price change is not mistaken for a change in use.

>>> import datetime as dt, numpy as np
>>> days = [dt.date(2026, 1, 1) + dt.timedelta(d) for d in range(14)]
>>> expected, sd = project_days(days, np.full(14, 100.0), days[-1:])
>>> round(float(expected[0]))
100
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["GAP_DAYS", "RESTART_MIN_DAYS", "Z90", "Step", "find_step", "history_start", "project_days"]

Z90 = NormalDist().inv_cdf(0.9)
"""The standard normal 90th percentile: P10 and P90 are P50 -/+ ``Z90`` times the projected spread."""

HISTORY_WINDOW_DAYS = 84
"""Days of history the model reads: twelve whole weeks, so weekends weigh fairly."""
HALF_LIFE_DAYS = 28.0
"""Weight of a day in the level and trend fit halves every this many days back."""
TREND_DAMPING = 0.5
"""Share of the fitted trend carried forward: a full trend over-reacts to noise (see the backtest)."""
TREND_T = 3.0
"""A trend counts in full (before damping) once its t-statistic reaches this."""
MIN_TREND_DAYS = 28
"""Below four whole weeks of history no trend is fitted: a flat level instead (see the backtest)."""
STEP_SEARCH_DAYS = 14
"""A step is looked for in this many last days of history."""
STEP_MIN_DAYS = 3
"""A step needs this many days after it: one lumpy day is not a step."""
STEP_MIN_HISTORY_DAYS = 14
"""History needed before the searched days, to fit the line the step is measured against."""
GAP_DAYS = 28
"""A run of this many days without spend, followed by spend, starts a group's history anew..."""
RESTART_MIN_DAYS = 14
""" ... once this many days have passed since its spend came back (the first day included)."""
STEP_Z = 5.0
"""Standard deviations the summed residual after a step must exceed. The change point is the best of
about twenty (days x two forms), and daily spend is heavy-tailed: a lower bar fires on noise."""


@dataclass(frozen=True)
class Step:
    """A level step found at ``start`` (an index into the history)."""

    start: int
    form: str  # "add": USD per day added on every day; "scale": spend multiplied by a factor
    size: float  # USD per day for "add", the factor for "scale"
    se: float  # standard error of ``size``, in its units


def _weekend(days: Sequence[dt.date]) -> np.ndarray:
    return np.array([d.weekday() >= 5 for d in days], dtype=bool)


@dataclass(frozen=True)
class _Line:
    """A seasonal line fitted to a history once, projected onto any horizon after it."""

    last_day: dt.date
    coef: np.ndarray  # level at the last day of history, USD per day, and slope
    cov: np.ndarray
    weekend_factor: float
    sigma: float  # residual sd of one day
    rho: float  # lag-1 autocorrelation of the residuals
    widen: float  # Student t over normal, for the fit's effective number of days

    def project(self, horizon: Sequence[dt.date]) -> tuple[np.ndarray, float]:
        """Expected spend on each ``horizon`` day from the line alone, and the sd of their sum."""
        if not horizon:
            return np.zeros(0), 0.0
        h_t = np.array([(d - self.last_day).days for d in horizon], dtype=float)
        h_season = np.where(_weekend(horizon), self.weekend_factor, 1.0)
        expected = np.maximum(self.coef[0] + self.coef[1] * h_t, 0.0) * h_season
        # Correlated day-to-day errors do not average out: inflate by the AR(1) variance factor.
        noise_var = self.sigma**2 * float(h_season @ h_season) * (1 + self.rho) / (1 - self.rho)
        x = np.array([h_season.sum(), h_season @ h_t])
        line_var = float(x @ self.cov @ x)
        return expected, self.widen * float(np.sqrt(noise_var + line_var))


def _fit_line(days: Sequence[dt.date], cost_usd: np.ndarray) -> _Line | None:
    """The seasonal line of the last :data:`HISTORY_WINDOW_DAYS` of a history (None when empty)."""
    n = len(cost_usd)
    if n == 0:
        return None
    w = min(n, HISTORY_WINDOW_DAYS)
    y_raw, weekend = cost_usd[n - w :], _weekend(days[n - w :])
    weekend_factor = 1.0
    if weekend.sum() >= 2 and (~weekend).any() and y_raw[~weekend].mean() > 0:
        weekend_factor = float(y_raw[weekend].mean() / y_raw[~weekend].mean())
    season = np.where(weekend, weekend_factor, 1.0)
    # A group that never spends at weekends (factor 0) is fitted on its weekdays alone.
    fitted = season > 0
    y = np.divide(y_raw, season, out=np.zeros(w), where=fitted)
    t = np.arange(w, dtype=float) - (w - 1)  # 0 = the last day of history
    # A quiet day divided by its small season factor is noisy (count-like spend has variance in
    # proportion to its mean), so each day weighs in proportion to its season factor.
    weight = 0.5 ** (-t / HALF_LIFE_DAYS) * fitted * np.minimum(season, 1.0 / np.maximum(season, 1e-9))
    trend = w >= MIN_TREND_DAYS
    design = np.column_stack([np.ones(w), t]) if trend else np.ones((w, 1))
    root_w = np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(design * root_w[:, None], y * root_w, rcond=None)
    resid = (y - design @ coef)[fitted]
    dof = max(int(fitted.sum()) - design.shape[1], 1)
    sigma = float(np.sqrt((weight[fitted] * resid**2).sum() / weight.sum() * fitted.sum() / dof))
    if int(fitted.sum()) <= design.shape[1]:
        # No day is left over the line to measure the spread by (one day of history): a day's
        # spend is taken to be as uncertain as its level, not known exactly.
        sigma = max(sigma, abs(float(coef[0])))
    cov = sigma**2 * np.linalg.inv((design * weight[:, None]).T @ design) * weight.max()
    if trend:
        # A trend the data cannot tell from noise is shrunk towards flat (by its t-statistic).
        t_stat = abs(coef[1]) / np.sqrt(cov[1, 1]) if cov[1, 1] > 0 else 0.0
        keep = TREND_DAMPING * min(1.0, (t_stat / TREND_T) ** 2)
        # Only the estimate is shrunk: the interval keeps the whole uncertainty of the slope.
        coef = coef * np.array([1.0, keep])
    else:
        coef, cov = np.array([coef[0], 0.0]), np.array([[cov[0, 0], 0.0], [0.0, 0.0]])
    rho = 0.0
    if len(resid) > 3 and resid[:-1].std() > 0 and resid[1:].std() > 0:
        rho = float(np.clip(np.corrcoef(resid[:-1], resid[1:])[0, 1], 0.0, 0.9))
    # sigma comes from few effectively independent days (the weights halve every HALF_LIFE_DAYS): a
    # Student t quantile of their degrees of freedom, expressed as a wider normal spread.
    w_fit = weight[fitted]
    n_eff = float(w_fit.sum() ** 2 / (w_fit**2).sum())
    from scipy.stats import t as student_t  # scipy is imported when a forecast is made, not at start-up

    widen = float(student_t.ppf(0.9, max(n_eff - design.shape[1], 1.0))) / Z90
    return _Line(days[-1], coef, cov, weekend_factor, sigma, rho, widen)


def find_step(days: Sequence[dt.date], cost_usd: np.ndarray) -> Step | None:
    """The level step in the last :data:`STEP_SEARCH_DAYS` days of history, if one is beyond chance."""
    before = _line_before_search(days, cost_usd)
    return None if before is None else _find_step(days, cost_usd, before)


def _line_before_search(days: Sequence[dt.date], cost_usd: np.ndarray) -> _Line | None:
    """The line of the history before the searched days, when there is enough of it to search."""
    w0 = len(cost_usd) - STEP_SEARCH_DAYS
    return _fit_line(days[:w0], cost_usd[:w0]) if w0 >= STEP_MIN_HISTORY_DAYS else None


def _find_step(days: Sequence[dt.date], cost_usd: np.ndarray, line: _Line) -> Step | None:
    """:func:`find_step` given ``line``, the fit of the days before the search."""
    w0 = len(cost_usd) - STEP_SEARCH_DAYS
    base, _ = line.project(days[w0:])
    resid = cost_usd[w0:] - base
    best: tuple[float, int, str, float] | None = None  # (sse, start, form, size)
    for tau in range(STEP_SEARCH_DAYS - STEP_MIN_DAYS + 1):
        sse_before = float((resid[:tau] ** 2).sum())
        post, post_base = cost_usd[w0 + tau :], base[tau:]
        add = float((post - post_base).mean())
        fits = [("add", add, float(((post - post_base - add) ** 2).sum()))]
        if post_base.sum() > 0:
            scale = float(post.sum() / post_base.sum())
            fits.append(("scale", scale, float(((post - post_base * scale) ** 2).sum())))
        for form, size, sse in fits:
            if best is None or sse_before + sse < best[0]:
                best = (sse_before + sse, tau, form, size)
    assert best is not None
    _, tau, form, size = best
    _, sd = line.project(days[w0 + tau :])
    excess = float(resid[tau:].sum())
    if abs(excess) <= 1e-9 * max(float(np.abs(cost_usd).sum()), 1e-300):
        return None  # the line already explains the days: nothing moved
    z = abs(excess) / sd if sd > 0 else float("inf")
    if z < STEP_Z:
        return None
    post, post_base = cost_usd[w0 + tau :], base[tau:]
    left = post - post_base - size if form == "add" else post - post_base * size
    se = float(left.std(ddof=1) / np.sqrt(len(left)))
    if form == "scale":
        se /= float(post_base.mean())
    return Step(w0 + tau, form, size, se)


def history_start(cost_usd: np.ndarray) -> int:
    """Where a history's last stretch of use starts: the first day with spend after the last run
    of :data:`GAP_DAYS` or more days without that has :data:`RESTART_MIN_DAYS` of history after it
    (0 when there is none). Days without spend at the end are no such run: a group gone quiet is
    forecast from the history that shows it so."""
    active = np.flatnonzero(cost_usd > 0)
    if len(active) < 2:
        return 0
    for gap in np.flatnonzero(np.diff(active) - 1 >= GAP_DAYS)[::-1]:
        start = int(active[gap + 1])
        if len(cost_usd) - start >= RESTART_MIN_DAYS:
            return start
    return 0


def project_days(
    days: Sequence[dt.date], cost_usd: np.ndarray, horizon: Sequence[dt.date]
) -> tuple[np.ndarray, float]:
    """Expected spend on each ``horizon`` day and the standard deviation of their sum, USD.

    ``days`` are consecutive (oldest first) and ``cost_usd`` their spend, at one set of prices;
    only the days from :func:`history_start` on are read.
    """
    start = history_start(cost_usd)
    days, cost_usd = days[start:], cost_usd[start:]
    if len(cost_usd) == 0 or not horizon:
        return np.zeros(len(horizon)), 0.0
    line = _line_before_search(days, cost_usd)  # fitted once: it finds the step and carries it on
    step = None if line is None else _find_step(days, cost_usd, line)
    if line is None or step is None:
        whole = _fit_line(days, cost_usd)
        assert whole is not None
        return whole.project(horizon)
    # The line before the searched days carries the old pattern on; the step sits on top of it.
    before, sd = line.project(horizon)
    if step.form == "add":
        expected = np.maximum(before + step.size, 0.0)
        step_sd = step.se * len(horizon)
    else:
        expected = before * step.size
        step_sd = step.se * float(before.sum())
        sd *= step.size
    return expected, float(np.sqrt(sd**2 + step_sd**2))
