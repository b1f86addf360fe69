"""Budgets per team, project or API key, checked against spend to date and the month-end forecast.

The config is TOML, one table per budget under its scope::

    [team.agents]
    monthly_usd = 4000
    daily_cap_usd = 250      # optional

    [api_key."key-nightly-etl"]
    monthly_usd = 800

Status: ``over`` when the month's spend already exceeds the budget or the as-of day's spend exceeds
the daily cap; ``at risk`` when the median (P50) forecast exceeds the budget or an earlier day this
month broke the cap; else ``ok``. Every budget not ok names its driver: the user, model and token
class whose spend grew most against the same days of last month (or, when none grew, spent most).
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flopledger.errors import ConfigError, InputError
from flopledger.ledger.forecast import (
    Z90,
    MonthProjection,
    daily_usage,
    forecast_groups,
    month_bounds,
    spend_days,
)
from flopledger.ledger.schema import BILLED_CLASSES, class_name
from flopledger.ledger.spark import Engine, events_table
from flopledger.ledger.spend_change import segment_spend

__all__ = ["BUDGET_SCOPES", "Budget", "BudgetStatus", "Driver", "check_budgets", "load_budgets"]

BUDGET_SCOPES: tuple[str, ...] = ("team", "project", "api_key")


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    monthly_usd: float = Field(gt=0, description="Monthly budget, USD.")
    daily_cap_usd: float | None = Field(
        default=None, gt=0, description="Optional cap on one day's spend, USD."
    )


class _BudgetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    team: dict[str, _Limit] = {}
    project: dict[str, _Limit] = {}
    api_key: dict[str, _Limit] = {}


@dataclass(frozen=True)
class Budget:
    scope: str  # team, project or api_key
    name: str
    monthly_usd: float
    daily_cap_usd: float | None = None


@dataclass(frozen=True)
class Driver:
    """Who, on which model and which token class, drives a budget's spend."""

    user: str | None
    model: str
    token_class: str
    cost_usd: float
    change_usd: float  # versus the same days of last month
    share_pct: float  # of the budget scope's spend this month


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    as_of: dt.date
    spent_usd: float
    day_usd: float  # spend on the as-of day
    forecast_p10_usd: float
    forecast_p50_usd: float
    forecast_p90_usd: float
    overrun_chance_pct: float
    status: str  # ok, at risk, over
    driver: Driver | None
    alert: str | None
    note: str | None = None  # e.g. a budget whose name never appears in the ledger (a typo?)

    def as_row(self) -> dict[str, Any]:
        """A flat row for tables, JSON and CSV."""
        d = self.driver
        return {
            "scope": self.budget.scope,
            "name": self.budget.name,
            "as_of": self.as_of,
            "monthly_usd": self.budget.monthly_usd,
            "daily_cap_usd": self.budget.daily_cap_usd,
            "spent_usd": self.spent_usd,
            "day_usd": self.day_usd,
            "forecast_p10_usd": self.forecast_p10_usd,
            "forecast_p50_usd": self.forecast_p50_usd,
            "forecast_p90_usd": self.forecast_p90_usd,
            "overrun_chance_pct": self.overrun_chance_pct,
            "status": self.status,
            "driver_user": d.user if d else None,
            "driver_model": d.model if d else None,
            "driver_token_class": d.token_class if d else None,
            "alert": self.alert,
            "note": self.note,
        }


def load_budgets(path: Path) -> tuple[Budget, ...]:
    """Read and validate a budgets TOML file; any problem is a :class:`ConfigError` naming the file,
    line and key."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a budgets file: give the TOML file's path")
    try:
        text = path.read_text("utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such budgets file; write one (see `flopledger budgets check --help`)"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the budgets file {path}: {exc.strerror or exc}") from exc
    try:
        parsed = _BudgetFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        line = _line_of(text, loc)
        where = f"{path}:{line}" if line is not None else str(path)
        raise ConfigError(f"{where}: {'.'.join(loc)}: {first['msg']}") from exc
    budgets = tuple(
        Budget(scope, name, limit.monthly_usd, limit.daily_cap_usd)
        for scope in BUDGET_SCOPES
        for name, limit in sorted(getattr(parsed, scope).items())
    )
    if not budgets:
        raise ConfigError(f"{path}: no budgets; add a table such as [team.agents] with monthly_usd = 4000")
    return budgets


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """The line (1-based) of the key ``loc`` points at, else of the deepest TOML table holding it."""
    best: tuple[int, int] | None = None  # (depth of the table, its line)
    header: tuple[str, ...] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            try:  # the header alone, parsed with TOML's own quoting rules, gives its dotted path
                parsed: Any = tomllib.loads(stripped)
            except tomllib.TOMLDecodeError:
                header = None
                continue
            path: list[str] = []
            while isinstance(parsed, dict) and len(parsed) == 1:
                key, parsed = next(iter(parsed.items()))
                path.append(key)
            header = tuple(path)
            if header == loc[: len(header)] and (best is None or len(header) > best[0]):
                best = (len(header), number)
                if header == loc:
                    return number
            elif best is None and header[: len(loc)] == loc:  # an unknown table such as [teams.a]
                return number
        elif (
            header is not None
            and len(loc) > len(header) == _common(header, loc)
            and _key(stripped) == loc[len(header)]
        ):
            return number
    return best[1] if best else None


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many leading parts two dotted keys share."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _key(line: str) -> str | None:
    """The key of a ``key = value`` line, unquoted."""
    return line.split("=", 1)[0].strip().strip("\"'") if "=" in line else None


def _overrun_chance_pct(budget_usd: float, p50: float, p90: float) -> float:
    sd = (p90 - p50) / Z90  # the forecast's own normal spread
    if sd <= 0:
        return 100.0 if p50 > budget_usd else 0.0
    return round(100 * 0.5 * math.erfc((budget_usd - p50) / (sd * math.sqrt(2))), 1)


def _driver(engine: Engine, budget: Budget, as_of: dt.date) -> Driver | None:
    first, _ = month_bounds(as_of.replace(day=1))
    prev_first = (first - dt.timedelta(days=1)).replace(day=1)
    prev_last = min(month_bounds(prev_first)[1], prev_first + dt.timedelta(days=as_of.day - 1))
    events = events_table(engine)
    scoped = events.filter(events[budget.scope] == budget.name)
    rows = engine.rows(segment_spend(scoped, ("user",), (first, as_of), (prev_first, prev_last)))
    cells: dict[tuple[str | None, str, str], list[float]] = {}
    for row in rows:
        for cls, cost_column in BILLED_CLASSES:
            cost = float(row[cost_column] or 0.0)
            cell = cells.setdefault((row["user"], str(row["model"]), cls), [0.0, 0.0])
            cell[0 if row["period"] == "current" else 1] += cost
    spending = {k: v for k, v in cells.items() if v[0] > 0}
    total = sum(v[0] for v in spending.values())
    if total <= 0:
        return None
    # The largest growth names the driver; when nothing grew, the largest spend does.
    grew = any(now > before for now, before in spending.values())
    (user, model, cls), (now, before) = max(
        spending.items(), key=lambda kv: ((kv[1][0] - kv[1][1]) if grew else kv[1][0], kv[1][0])
    )
    return Driver(user, model, cls, round(now, 2), round(now - before, 2), round(100 * now / total, 1))


def _alert(
    b: Budget, s: str, spent: float, p50: float, day_usd: float, capped_days: int, d: Driver | None
) -> str:
    what = f"{b.scope} {b.name} is {s}: spent ${spent:,.0f} of ${b.monthly_usd:,.0f}, forecast ${p50:,.0f}"
    if b.daily_cap_usd is not None and day_usd > b.daily_cap_usd:
        what += f"; ${day_usd:,.0f} on the day against a cap of ${b.daily_cap_usd:,.0f}"
    if capped_days:
        what += f"; the daily cap was broken on {capped_days} earlier day{'s' if capped_days > 1 else ''}"
    if d is None:
        return what
    who = f"user {d.user}" if d.user is not None else "an unattributed user"
    cls = class_name(d.token_class)
    # A driver that grew is named as such; when nothing grew, the largest spend is.
    label = "driver" if d.change_usd > 0 else "largest spend"
    change = f"{'-' if round(d.change_usd) < 0 else '+'}${abs(d.change_usd):,.0f}"
    return (
        f"{what}; {label}: {who} on {d.model}, {cls} (${d.cost_usd:,.0f} this month, "
        f"{change} vs the same days last month, {d.share_pct:.0f}% of spend)"
    )


def _unknown_note(b: Budget, known: set[str]) -> str | None:
    if b.name in known:
        return None
    close = difflib.get_close_matches(b.name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no priced spend for {b.scope} {b.name!r} in the ledger so far{hint}"


def check_budgets(
    engine: Engine,
    budgets: Sequence[Budget],
    *,
    as_of: dt.date | None = None,
    days: tuple[dt.date, dt.date] | None = None,
) -> list[BudgetStatus]:
    """Each budget's spend to date, forecast and status for the month of ``as_of``.

    ``as_of`` defaults to the latest day with priced spend, so a cron job sees today. A later
    ``as_of`` is brought back to that day, with a note: days the ledger has not been given yet are
    not days without spend, and forecasting them as such would call an overrun "ok".
    ``days``: the ledger's :func:`~flopledger.ledger.forecast.spend_days`, when the caller has them.
    """
    daily: dict[str, list[dict[str, Any]]] = {
        scope: engine.rows(daily_usage(events_table(engine), (scope,), until=as_of))
        for scope in sorted({b.scope for b in budgets})
    }
    seen = [r["day"] for rows in daily.values() for r in rows]
    lag_note = None
    if as_of is None:
        if not seen:
            raise InputError("the ledger holds no priced spend to check budgets against")
        as_of = max(seen)
    else:
        _, latest = days or spend_days(engine)  # the ledger's last day, not the budgets' before as_of
        if as_of > latest:
            lag_note = (
                f"the ledger's spend ends on {latest}, before the as-of day {as_of}: judged as of "
                f"{latest} (ingest the days since to judge them)"
            )
            as_of = latest
    month = as_of.replace(day=1)
    known = {scope: {str(r[scope]) for r in rows if r[scope] is not None} for scope, rows in daily.items()}
    # Per scope, the budgeted names' rows (each name's cost per day) and one forecast of them all:
    # each group's history is its own, so forecasting them together changes no figure.
    spend: dict[tuple[str, object], dict[dt.date, float]] = {}
    forecasts: dict[tuple[str, object], MonthProjection] = {}
    for scope, rows in daily.items():
        names = {b.name for b in budgets if b.scope == scope}
        budgeted = [r for r in rows if r[scope] in names]
        for r in budgeted:  # a day has a row per price segment
            by_day = spend.setdefault((scope, r[scope]), {})
            by_day[r["day"]] = by_day.get(r["day"], 0.0) + float(r["cost_usd"] or 0.0)
        for g in forecast_groups(budgeted, (scope,), month, as_of):
            forecasts[(scope, g.group[0][1])] = g.projection
    out = []
    for b in budgets:
        by_day = spend.get((b.scope, b.name), {})
        day_usd = by_day.get(as_of, 0.0)
        p = forecasts.get((b.scope, b.name))
        if p is not None:
            spent, p10, p50, p90 = p.spent_usd, p.p10_usd, p.p50_usd, p.p90_usd
        else:
            spent = p10 = p50 = p90 = 0.0
        cap = b.daily_cap_usd
        capped_days = 0 if cap is None else sum(month <= d < as_of and v > cap for d, v in by_day.items())
        if spent > b.monthly_usd or (cap is not None and day_usd > cap):
            status = "over"
        elif p50 > b.monthly_usd or capped_days:
            status = "at risk"
        else:
            status = "ok"
        driver = _driver(engine, b, as_of) if status != "ok" else None
        alert = _alert(b, status, spent, p50, day_usd, capped_days, driver) if status != "ok" else None
        note = "; ".join(n for n in (lag_note, _unknown_note(b, known[b.scope])) if n) or None
        out.append(
            BudgetStatus(
                b,
                as_of,
                round(spent, 2),
                round(day_usd, 2),
                round(p10, 2),
                round(p50, 2),
                round(p90, 2),
                _overrun_chance_pct(b.monthly_usd, p50, p90),
                status,
                driver,
                alert,
                note,
            )
        )
    return out
