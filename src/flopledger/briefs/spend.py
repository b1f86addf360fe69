"""Spend-change and cache insights, from the ledger's segment spend and its volume/mix/price split.

One query (:func:`flopledger.ledger.spend_change.segment_spend`, by team and model) feeds both:
:func:`~flopledger.ledger.spend_change.decompose` splits each team's (and each model's) change into
volume, mix and price; the same rows give each team and model's cache-read share of input.

Rules, stated once:

* a team or model is a candidate when its spend rose by at least ``MIN_RISE_SHARE`` of the
  comparison period (or it is new) and by more than twice its usual week-on-week move
  (:mod:`flopledger.briefs.noise`); a model is only its own insight when no one team carries more
  than half of its rise (else the team's insight already tells it);
* a cache insight needs the cache-read share of input to fall by ``MIN_CACHE_DROP_PP`` points; its
  impact is the extra cost of the input that would have been cache reads at the old share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from flopledger.briefs.figures import pct, signed_pct, signed_usd, tokens, usd
from flopledger.briefs.model import BriefWindow, Insight
from flopledger.briefs.noise import NOISE_SIGMAS, usual_move_usd
from flopledger.ledger.forecast import daily_spend
from flopledger.ledger.schema import BILLED_CLASSES, class_name
from flopledger.ledger.spark import Engine, events_table
from flopledger.ledger.spend_change import ChangeEffect, Segment, decompose, segment_spend

__all__ = ["MIN_CACHE_DROP_PP", "MIN_RISE_SHARE", "SpendView", "spend_view"]

MIN_RISE_SHARE = 0.10
MIN_CACHE_DROP_PP = 5.0
_MANY_FOLD_PCT = 900.0  # above this a rise reads better as "N times as much"
_INPUT_CLASSES = ("input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")

Cells = dict[tuple[str, str, str], list[float]]
"""(team, model, class) to [tokens before, cost before, tokens now, cost now]."""


@dataclass(frozen=True)
class SpendView:
    """Totals of both periods and the spend and cache candidates."""

    cost_usd: float
    previous_cost_usd: float
    cache_share_pct: float | None
    previous_cache_share_pct: float | None
    insights: tuple[Insight, ...]
    daily_usd: Mapping[dt.date, float]
    """Priced spend of each day with spend up to the brief's date (for its chart)."""


def _cells(engine: Engine, window: BriefWindow) -> Cells:
    expr = segment_spend(
        events_table(engine),
        ("team",),
        (window.start, window.date),
        (window.previous_start, window.previous_end),
    )
    cells: Cells = {}
    for row in engine.rows(expr):
        now = row["period"] == "current"
        team = "(none)" if row["team"] is None else str(row["team"])
        for cls, qty, cost in ((c, row[c], row[cost]) for c, cost in BILLED_CLASSES):
            cell = cells.setdefault((team, str(row["model"]), cls), [0.0, 0.0, 0.0, 0.0])
            cell[2 if now else 0] += float(qty or 0)
            cell[3 if now else 1] += float(cost or 0.0)
    return cells


def _class_name(cls: str) -> str:
    return class_name(cls).removesuffix(" tokens")


def _page(kind: str, name: str) -> str:
    """The dashboard page with the evidence: a team's own page, else the models or overview page."""
    if kind == "teams" and name != "(none)":
        return f"/teams/{quote(name, safe='')}"
    return "/models" if kind == "models" else "/"


def _action(kind: str, name: str, effect: str, model: str, cls: str) -> str:
    who = f"The {name} team lead" if kind == "team" else f"The owner of {name}"
    if effect == "volume":
        return f"{who}: confirm the extra use of {model} is intended (new users, an agent loop, a batch job)."
    if effect == "mix":
        return f"{who}: spend moved towards {_class_name(cls)} on {model}; review prompt caching and models."
    return f"FinOps: {model} got dearer; check for a price change, a long-context tier or a lapsed discount."


def _usual_moves(
    engine: Engine, window: BriefWindow
) -> tuple[dict[tuple[str, str], float | None], dict[dt.date, float]]:
    """The usual week-on-week move of each team's and each model's spend over this period's length,
    and the whole ledger's spend per day (the same rows, summed)."""
    rows = engine.rows(daily_spend(events_table(engine), ("team", "model"), until=window.date))
    series: dict[tuple[str, str], dict[dt.date, float]] = {}
    total: dict[dt.date, float] = {}
    for r in rows:
        team = "(none)" if r["team"] is None else str(r["team"])
        cost = float(r["cost_usd"] or 0.0)
        total[r["day"]] = total.get(r["day"], 0.0) + cost
        for key in (("team", team), ("model", str(r["model"]))):
            days = series.setdefault(key, {})
            days[r["day"]] = days.get(r["day"], 0.0) + cost
    return {key: usual_move_usd(days, window.date, window.days) for key, days in series.items()}, total


def _rise(
    kind: str,
    name: str,
    effects: Sequence[ChangeEffect],
    by_sub: Mapping[str, float],
    window: BriefWindow,
    usual: float | None,
) -> Insight | None:
    before = sum(e.last_cost_usd for e in effects)
    now = sum(e.cost_usd for e in effects)
    change = now - before
    if change <= 0 or (before > 0 and change < MIN_RISE_SHARE * before):
        return None
    if usual is not None and change <= NOISE_SIGMAS * usual:
        return None
    split = {
        "volume": sum(e.volume_usd for e in effects),
        "mix": sum(e.mix_usd for e in effects),
        "price": sum(e.price_usd for e in effects),
    }
    main = max(split, key=lambda k: (split[k], k))
    top_class = max(effects, key=lambda e: (e.change_usd, e.token_class))
    sub, sub_change = max(by_sub.items(), key=lambda kv: (kv[1], kv[0]))
    label = f"team {name}" if kind == "team" else f"model {name}"
    rise_pct = 100 * change / before if before else None
    if rise_pct is None or rise_pct > _MANY_FOLD_PCT:
        up = " (new this period)" if rise_pct is None else f" ({tokens(now / before)} times as much)"
    else:
        up = f" ({signed_pct(rise_pct)})"
    model = sub if kind == "team" else name
    where = f"on {sub}" if kind == "team" else f"for team {sub}"
    body = (
        f"{label[0].upper()}{label[1:]} spent {usd(now)} {window.during}, against {usd(before)} "
        f"{window.comparison}. The largest rise is {where} ({signed_usd(sub_change)}); by token class "
        f"{_class_name(top_class.token_class)} ({signed_usd(top_class.change_usd)}). By effect: volume "
        f"{signed_usd(split['volume'])}, mix {signed_usd(split['mix'])}, price {signed_usd(split['price'])}."
    )
    if usual is not None:
        body += f" Its usual move is {usd(usual)}."
    numbers = {
        "cost_usd": now,
        "previous_cost_usd": before,
        "change_usd": change,
        "sub_change_usd": sub_change,
        "class_change_usd": top_class.change_usd,
        "volume_usd": split["volume"],
        "mix_usd": split["mix"],
        "price_usd": split["price"],
        "impact_usd_per_month": change * window.per_month,
    }
    if rise_pct is not None:
        numbers["change_pct"] = rise_pct
        numbers["times"] = now / before
    if usual is not None:
        numbers["usual_move_usd"] = usual
    return Insight(
        key=f"spend:{kind}:{name}",
        layer="ledger",
        title=f"{label[0].upper()}{label[1:]} spend up {signed_usd(change)}{up}",
        body=body,
        impact_usd_per_month=change * window.per_month,
        action=_action(kind, name, main, model, top_class.token_class),
        link=_page("teams" if kind == "team" else "models", name),
        numbers=numbers,
        chart=((window.previous_short, before), (window.short, now)),
    )


def _rises(cells: Cells, window: BriefWindow, usual: Mapping[tuple[str, str], float | None]) -> list[Insight]:
    out: list[Insight] = []
    teams: dict[str, list[Segment]] = {}
    models: dict[str, list[Segment]] = {}
    for (team, model, cls), (q0, c0, q1, c1) in cells.items():
        teams.setdefault(team, []).append((team, model, cls, q0, c0, q1, c1))
        models.setdefault(model, []).append((model, team, cls, q0, c0, q1, c1))
    for kind, groups in (("team", teams), ("model", models)):
        for name, segments in sorted(groups.items()):
            by_sub: dict[str, float] = {}
            for _g, sub, _cls, _q0, c0, _q1, c1 in segments:
                by_sub[sub] = by_sub.get(sub, 0.0) + c1 - c0
            if kind == "model":
                rise = sum(by_sub.values())
                if rise > 0 and max(by_sub.values()) > 0.5 * rise:
                    continue  # one team carries it: that team's insight tells the story
            found = _rise(kind, name, decompose(segments), by_sub, window, usual.get((kind, name)))
            if found is not None:
                out.append(found)
    return out


def _share(cells: Cells, keys: Sequence[tuple[str, str]], col: int) -> tuple[float, float]:
    """Cache-read tokens and all input tokens of the given (team, model) pairs in one period."""
    read = sum(cells.get((t, m, "cache_read_tokens"), [0.0] * 4)[col] for t, m in keys)
    total = sum(cells.get((t, m, c), [0.0] * 4)[col] for t, m in keys for c in _INPUT_CLASSES)
    return read, total


def _unit_usd(cell: list[float]) -> float | None:
    if cell[2] > 0:
        return cell[3] / cell[2]
    return cell[1] / cell[0] if cell[0] > 0 else None


def _cache_drops(cells: Cells, window: BriefWindow) -> list[Insight]:
    out = []
    for team, model in sorted({(t, m) for t, m, _ in cells}):
        read0, total0 = _share(cells, [(team, model)], 0)
        read1, total1 = _share(cells, [(team, model)], 2)
        if total0 <= 0 or total1 <= 0 or read0 <= 0:
            continue
        share0, share1 = 100 * read0 / total0, 100 * read1 / total1
        p_input = _unit_usd(cells.get((team, model, "input_tokens"), [0.0] * 4))
        p_read = _unit_usd(cells.get((team, model, "cache_read_tokens"), [0.0] * 4))
        if share0 - share1 < MIN_CACHE_DROP_PP or p_input is None or p_read is None or p_input <= p_read:
            continue
        extra = total1 * (share0 - share1) / 100 * (p_input - p_read)
        monthly = extra * window.per_month
        out.append(
            Insight(
                key=f"cache:{team}:{model}",
                layer="ledger",
                title=f"Cache hit rate of team {team} on {model} fell from {pct(share0)} to {pct(share1)}",
                body=(
                    f"Cache reads were {pct(share1)} of team {team}'s {tokens(total1)} input tokens on "
                    f"{model} {window.during}, against {pct(share0)} {window.comparison}. Uncached input "
                    f"costs {usd(p_input * 1e6)} per million tokens against {usd(p_read * 1e6)} for a cache "
                    f"read, so the drop cost about {usd(extra)} ({usd(monthly)} a month at this rate)."
                ),
                impact_usd_per_month=monthly,
                action=(
                    f"The {team} team lead: check that prompts on {model} keep a stable prefix (system "
                    "prompt and tools first) and that the cache lifetime covers the gap between calls."
                ),
                link=_page("teams", team),
                numbers={
                    "cache_share_pct": share1,
                    "previous_cache_share_pct": share0,
                    "input_tokens_total": total1,
                    "input_usd_per_mtok": p_input * 1e6,
                    "cache_read_usd_per_mtok": p_read * 1e6,
                    "extra_cost_usd": extra,
                    "impact_usd_per_month": monthly,
                },
                chart=((window.previous_short, share0), (window.short, share1)),
                chart_unit="pct",
            )
        )
    return out


def spend_view(engine: Engine, window: BriefWindow) -> SpendView:
    """Totals, spend-rise and cache-drop candidates for ``window``."""
    cells = _cells(engine, window)
    pairs = sorted({(t, m) for t, m, _ in cells})
    read0, total0 = _share(cells, pairs, 0)
    read1, total1 = _share(cells, pairs, 2)
    usual, daily = _usual_moves(engine, window)
    return SpendView(
        cost_usd=sum(v[3] for v in cells.values()),
        previous_cost_usd=sum(v[1] for v in cells.values()),
        cache_share_pct=100 * read1 / total1 if total1 else None,
        previous_cache_share_pct=100 * read0 / total0 if total0 else None,
        insights=(*_rises(cells, window, usual), *_cache_drops(cells, window)),
        daily_usd=daily,
    )
