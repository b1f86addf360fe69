"""What each page shows, as plain JSON-ready dictionaries: the pages render them, the API returns them.

Each builder reads through :mod:`flopledger.web.queries` (always scoped) and the library's own
functions (forecast, budgets, integrity scan); nothing here prices, forecasts or scores by itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from flopledger.ledger.forecast import GroupForecast, forecast_groups
from flopledger.ledger.rollups import rollup_state
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS
from flopledger.web import queries as q
from flopledger.web.budget_view import budget_rows
from flopledger.web.overview_frame import Frame
from flopledger.web.state import WebConfig

__all__ = ["models_page", "overview_page", "plain", "team_page", "teams_page", "user_page"]

TOP_N = 10
_ROLLUP_NOTE = {
    "current": "rollup_daily",
    "outdated": "aggregated from events (rollup_daily is from an older flopledger; a writer rebuilds it)",
    "missing": "aggregated from events (no rollup_daily table)",
}


def _stamp(path: Path | None) -> int | None:
    """When the file last changed (ns), None when there is none."""
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


def plain(value: Any) -> Any:
    """Dates as ISO text, NaN and infinities as null, decimals as floats: values JSON can carry."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain(value.item())
    return value


def _forecast_row(g: GroupForecast) -> dict[str, Any]:
    row = g.as_row()
    row.pop("as_of", None)
    return row


def _forecast(con: duckdb.DuckDBPyConnection, scope: q.Scope, source: str | None) -> dict[str, Any]:
    """Month-end forecast of the latest month with spend, in total and per team: the ledger's own
    forecast (history re-priced per segment at the cutoff's rates), read from the rollup."""
    team_rows = q.daily_usage_rows(con, q.Scope(scope.team), ("team",), source=source)
    if not team_rows.num_rows:
        return {"month": None, "as_of": None, "total": None, "teams": []}
    # The ledger's latest day, not the scope's: a team quiet this month gets this month's forecast
    # (nothing spent so far), not that of the last month it spent in.
    as_of = q.last_priced_day(con, source=source)
    if as_of is None:
        return {"month": None, "as_of": None, "total": None, "teams": []}
    month = as_of.replace(day=1)
    total = forecast_groups(team_rows, (), month, as_of)
    teams = forecast_groups(team_rows, ("team",), month, as_of)
    return {
        "month": month.strftime("%Y-%m"),
        "as_of": as_of,
        "total": _forecast_row(total[0]) if total else None,
        "teams": [_forecast_row(g) for g in teams[:TOP_N]],
    }


def overview_page(
    con: duckdb.DuckDBPyConnection, scope: q.Scope, config: WebConfig, frame: Frame | None = None
) -> dict[str, Any]:
    """Spend per day by token class, top teams and models, and the forecast against budgets.

    ``frame``: the rollup summed to day x team x model (:mod:`flopledger.web.overview_frame`), which
    also keeps the forecast and budget check of its ledger version; without it the rollup itself is
    read and both are computed.
    """
    source = None
    if frame is not None:
        con.register(q.OVERVIEW_FRAME, frame.table)
        source = q.OVERVIEW_FRAME

    def once(key: tuple[object, ...], compute: Callable[[], Any]) -> Any:
        return compute() if frame is None else frame.once(key, compute)

    payload = {
        "scope": {"team": scope.team, "since": scope.since, "until": scope.until},
        "totals": q.totals(con, scope, source=source),
        "daily": q.daily_by_token_class(con, scope, source=source),
        "token_classes": [f"{c}_cost_usd" for c in BILLED_TOKEN_COLUMNS]
        + ["web_search_cost_usd", "request_fees_usd"],
        "top_teams": q.spend_by(con, scope, "team", limit=TOP_N, source=source),
        "top_models": q.spend_by(con, scope, "model", limit=TOP_N, source=source),
        "forecast": once(("forecast", scope.team), lambda: _forecast(con, scope, source)),
        "budgets": once(  # keyed by the file's stamp too: an edited budgets file counts at once
            ("budgets", scope.team, str(config.budgets), _stamp(config.budgets)),
            lambda: budget_rows(con, scope, config.budgets),
        ),
        "rollup": _ROLLUP_NOTE[frame.rollup if frame is not None else rollup_state(con)],
    }
    result: dict[str, Any] = plain(payload)
    return result


def teams_page(con: duckdb.DuckDBPyConnection, scope: q.Scope) -> dict[str, Any]:
    result: dict[str, Any] = plain({"teams": q.spend_by(con, scope, "team")})
    return result


def team_page(con: duckdb.DuckDBPyConnection, scope: q.Scope, team: str) -> dict[str, Any] | None:
    """One team's users, models and daily spend; None when the scope may not see the team."""
    if not q.team_exists(con, scope, team):
        return None
    result: dict[str, Any] = plain(
        {
            "team": team,
            "totals": q.totals(con, scope, team=team),
            "users": q.spend_by(con, scope, "user", team=team),
            "models": q.spend_by(con, scope, "model", team=team),
            "daily": q.daily_by_token_class(con, scope, team=team),
        }
    )
    return result


def user_page(con: duckdb.DuckDBPyConnection, scope: q.Scope, team: str, user: str) -> dict[str, Any] | None:
    """One user's spend within a team; None when the scope may not see it."""
    if not q.user_exists(con, scope, team, user):
        return None
    result: dict[str, Any] = plain(
        {
            "team": team,
            "user": user,
            "totals": q.totals(con, scope, team=team, user=user),
            "models": q.spend_by(con, scope, "model", team=team, user=user),
            "api_keys": q.spend_by(con, scope, "api_key", team=team, user=user),
            "daily": q.daily_by_token_class(con, scope, team=team, user=user),
        }
    )
    return result


def _cache_hit_rate(row: Mapping[str, Any]) -> float | None:
    read = float(row["cache_read_tokens"] or 0)
    prompt = read + sum(
        float(row[c] or 0) for c in ("input_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
    )
    return round(read / prompt, 4) if prompt > 0 else None


def models_page(con: duckdb.DuckDBPyConnection, scope: q.Scope) -> dict[str, Any]:
    """Per model: spend, token mix, cache hit rate (cache reads over all prompt tokens) and price."""
    models = q.spend_by(con, scope, "model")
    for row in models:
        row["cache_hit_rate"] = _cache_hit_rate(row)
        billed = sum(float(row[c] or 0) for c in BILLED_TOKEN_COLUMNS)
        row["token_mix"] = {
            c: (round(float(row[c] or 0) / billed, 4) if billed else None) for c in BILLED_TOKEN_COLUMNS
        }
    result: dict[str, Any] = plain({"models": models, "prices": q.model_prices(con, scope)})
    return result
