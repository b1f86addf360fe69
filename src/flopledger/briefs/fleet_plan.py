"""Fleet insights: the binding constraint and its shadow price, and capacity gaps, from a fleet plan.

The plan is solved by :func:`flopledger.fleet.allocate_envelope` from the spec given with
``--fleet-spec`` (or ``flopledger-fleet.yaml`` / ``.toml`` beside the ledger). Impacts use the
LP's shadow prices: the optimum is concave in capacity, so shadow price x added hours is an upper
bound on what the hours are worth; the brief says "at most" and prices a 10% change. A plan whose
period is a calendar month (28 to 31 days) is read as monthly; other periods are scaled to 30 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flopledger.briefs.figures import pct, tokens, usd
from flopledger.briefs.model import DAYS_PER_MONTH, Insight
from flopledger.fleet import Allocation, EnvelopeProblem, allocate_envelope, build_envelope, load_fleet_spec

__all__ = ["FLEET_FILES", "RELIEF_SHARE", "FleetView", "find_fleet_spec", "fleet_view"]

FLEET_FILES: tuple[str, ...] = ("flopledger-fleet.yaml", "flopledger-fleet.toml")
"""Looked for next to the ledger file when ``--fleet-spec`` is not given."""
RELIEF_SHARE = 0.10
"""The change the binding-constraint insight prices: 10% more of the pool, 10% less floor."""


@dataclass(frozen=True)
class FleetView:
    plan: Allocation
    problem: EnvelopeProblem
    per_month: float
    insights: tuple[Insight, ...]


def find_fleet_spec(explicit: Path | None, db: Path) -> Path | None:
    """The fleet spec: the one given, else one of :data:`FLEET_FILES` beside the ledger, else none."""
    if explicit is not None:
        return explicit
    return next((db.parent / n for n in FLEET_FILES if (db.parent / n).is_file()), None)


def _per_month(period_hours: float) -> float:
    return 1.0 if 28 * 24 <= period_hours <= 31 * 24 else DAYS_PER_MONTH * 24 / period_hours


def _binding_pool(plan: Allocation, per_month: float) -> Insight | None:
    priced = [p for p in plan.pools if (p.shadow_price_usd_per_accelerator_hour or 0.0) > 0]
    if not priced:
        return None
    top = max(priced, key=lambda p: (p.shadow_price_usd_per_accelerator_hour or 0.0, p.pool))
    price = top.shadow_price_usd_per_accelerator_hour or 0.0
    hours = RELIEF_SHARE * top.accelerator_hours
    accelerators = hours / plan.period_hours
    worth = price * hours * per_month
    others = sorted(
        (p for p in priced if p is not top), key=lambda p: -(p.shadow_price_usd_per_accelerator_hour or 0)
    )
    runner = (
        f"; the next is {others[0].pool} at {usd(others[0].shadow_price_usd_per_accelerator_hour or 0.0)}"
        if others
        else ""
    )
    return Insight(
        key=f"fleet:binding:{plan.name}:{top.pool}",
        layer="fleet",
        title=f"Fleet: pool {top.pool} is the binding constraint at {usd(price)} per accelerator-hour",
        body=(
            f"In plan {plan.name}, {len(priced)} of {len(plan.pools)} pools are full; one more "
            f"accelerator-hour on {top.pool} ({top.accelerator}, utilisation {pct(100 * top.utilisation)}) "
            f"is worth {usd(price)}"
            f"{runner}. {pct(100 * RELIEF_SHARE)} more of it ({tokens(accelerators)} accelerators) would be "
            f"worth at most {usd(worth)} a month."
        ),
        impact_usd_per_month=worth,
        action=(
            f"Fleet planning: price more {top.accelerator} capacity in {top.pool}, or moving work off it, "
            f"against {usd(price)} per accelerator-hour."
        ),
        link="/fleet",
        numbers={
            "shadow_price_usd_per_accelerator_hour": price,
            "utilisation_pct": 100 * top.utilisation,
            "relief_pct": 100 * RELIEF_SHARE,
            "accelerators": accelerators,
            "impact_usd_per_month": worth,
            "pools_full": float(len(priced)),
            "pools": float(len(plan.pools)),
            **(
                {"runner_up_usd_per_accelerator_hour": others[0].shadow_price_usd_per_accelerator_hour or 0.0}
                if others
                else {}
            ),
        },
        chart=tuple((p.pool, p.shadow_price_usd_per_accelerator_hour or 0.0) for p in plan.pools),
    )


def _floor(plan: Allocation, per_month: float) -> Insight | None:
    price = plan.development_floor_cost_usd_per_accelerator_hour or 0.0
    if price <= 0 or plan.development_floor_accelerator_hours <= 0:
        return None
    hours = RELIEF_SHARE * plan.development_floor_accelerator_hours
    worth = price * hours * per_month
    return Insight(
        key=f"fleet:floor:{plan.name}",
        layer="fleet",
        title=f"Fleet: the development floor binds at {usd(price)} per accelerator-hour",
        body=(
            f"The floor of {tokens(plan.development_floor_accelerator_hours)} accelerator-hours for model "
            f"development is binding in plan {plan.name}: each of its hours displaces {usd(price)} of other "
            f"value. Lowering it by {pct(100 * RELIEF_SHARE)} would free at most {usd(worth)} a month."
        ),
        impact_usd_per_month=worth,
        action=(
            "Leadership: the floor is policy and is not traded away; this is its price. Revisit it at the "
            "next planning round, not in operations."
        ),
        link="/fleet",
        numbers={
            "floor_accelerator_hours": plan.development_floor_accelerator_hours,
            "floor_usd_per_accelerator_hour": price,
            "relief_pct": 100 * RELIEF_SHARE,
            "impact_usd_per_month": worth,
        },
    )


def _gaps(problem: EnvelopeProblem, plan: Allocation, per_month: float) -> list[Insight]:
    out = []
    for i, w in enumerate(plan.workloads):
        if w.unmet_units <= 0 or w.kind == "development":
            continue
        rates = problem.units_per_accelerator_hour[i]
        j = int(rates.argmax())
        if rates[j] <= 0:
            continue
        pool = problem.pools[j]
        accelerators = w.unmet_units / float(rates[j]) / plan.period_hours
        lost = w.unmet_units * w.value_usd_per_unit * per_month
        served_pct = 100 * w.served_units / w.demand_units if w.demand_units else 0.0
        what = "revenue" if w.kind == "inference" else "internal (notional) value"
        out.append(
            Insight(
                key=f"fleet:gap:{plan.name}:{w.workload}",
                layer="fleet",
                title=f"Capacity gap: {w.workload} gets {pct(served_pct)} of its demand",
                body=(
                    f"Plan {plan.name} leaves {tokens(w.unmet_units)} {w.unit} of {w.workload} ({w.kind}) "
                    "unserved, "
                    f"{usd(lost)} a month of {what}. Serving it would take about {tokens(accelerators)} more "
                    f"{pool.accelerator} accelerators (the fastest pool for it, {pool.id})."
                ),
                impact_usd_per_month=lost,
                action=(
                    f"Fleet planning: buy or lease about {tokens(accelerators)} {pool.accelerator} for "
                    f"{w.workload}, or agree with its owner that the gap is acceptable."
                ),
                link="/fleet",
                numbers={
                    "served_pct": served_pct,
                    "unmet_units": w.unmet_units,
                    "impact_usd_per_month": lost,
                    "accelerators": accelerators,
                },
                chart=(("served", w.served_units), ("unmet", w.unmet_units)),
                chart_unit="count",
            )
        )
    return out


def fleet_view(spec: Path) -> FleetView:
    """Solve the plan of ``spec`` and turn its binding constraints and gaps into candidates."""
    problem = build_envelope(load_fleet_spec(spec), source=str(spec))
    plan = allocate_envelope(problem)
    per_month = _per_month(plan.period_hours)
    found: Sequence[Insight | None] = [_binding_pool(plan, per_month), _floor(plan, per_month)]
    insights = (*(i for i in found if i is not None), *_gaps(problem, plan, per_month))
    return FleetView(plan, problem, per_month, insights)
