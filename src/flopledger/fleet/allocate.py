"""Split the compute envelope between customers, model development and internal use.

The allocation maximises revenue plus the notional value of development and internal work, less the
energy of the hours used (capex and leases are paid either way, so they do not move the optimum but are
reported). Duals of the LP become shadow prices::

    plan = allocate_envelope(build_envelope(load_fleet_spec("examples/fleet/three_vendor_envelope.yaml")))
    plan.pools[0].shadow_price_usd_per_accelerator_hour   # what one more hour of that pool is worth
    plan.development_floor_cost_usd_per_accelerator_hour  # what one more hour of floor costs
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flopledger.errors import SolverError
from flopledger.fleet.conflicts import raise_infeasible
from flopledger.fleet.envelope import EnvelopeProblem
from flopledger.fleet.program import build_program, solve_program, split_pair_hours

__all__ = ["Allocation", "Assignment", "PoolOutcome", "WorkloadOutcome", "allocate_envelope"]


@dataclass(frozen=True)
class PoolOutcome:
    pool: str
    accelerator: str
    supplier: str
    family: str
    accelerator_hours: float
    used_accelerator_hours: float
    utilisation: float
    fixed_cost_usd: float
    energy_cost_usd: float
    shadow_price_usd_per_accelerator_hour: float | None  # None for whole-node (MILP) plans


@dataclass(frozen=True)
class WorkloadOutcome:
    workload: str
    kind: str
    unit: str
    value_usd_per_unit: float
    demand_units: float
    served_units: float
    unmet_units: float
    accelerator_hours: float
    revenue_usd: float
    internal_value_usd: float
    demand_shadow_price_usd_per_unit: float | None  # value of one more unit of demand


@dataclass(frozen=True)
class Assignment:
    pool: str
    workload: str
    accelerator_hours: float
    nodes: int | None


@dataclass(frozen=True)
class Allocation:
    name: str
    integer: bool
    period_hours: float
    envelope_accelerator_hours: float
    objective_usd: float  # revenue + internal value - energy
    revenue_usd: float
    internal_value_usd: float
    fixed_cost_usd: float
    energy_cost_usd: float
    development_floor_accelerator_hours: float
    development_accelerator_hours: float
    development_floor_cost_usd_per_accelerator_hour: float | None
    lp_relaxation_objective_usd: float | None  # for whole-node plans: the fractional optimum above it
    pools: tuple[PoolOutcome, ...]
    workloads: tuple[WorkloadOutcome, ...]
    assignments: tuple[Assignment, ...]

    @property
    def cost_usd(self) -> float:
        return self.fixed_cost_usd + self.energy_cost_usd

    @property
    def operating_margin_usd(self) -> float:
        return self.revenue_usd - self.cost_usd

    @property
    def unmet_revenue_usd(self) -> float:
        return sum(w.unmet_units * w.value_usd_per_unit for w in self.workloads if w.kind == "inference")

    def share_by_kind(self) -> dict[str, float]:
        total = self.envelope_accelerator_hours or 1.0
        out: dict[str, float] = {}
        for w in self.workloads:
            out[w.kind] = out.get(w.kind, 0.0) + w.accelerator_hours / total
        return out


def allocate_envelope(problem: EnvelopeProblem, *, integer: bool = False) -> Allocation:
    """Solve the envelope allocation (LP, or MILP in whole nodes) and read it back by name.

    Raises :class:`SolverError` naming the conflicting constraints when no plan exists.
    """
    lp = build_program(problem, integer=integer)
    sol = solve_program(lp)
    if sol.infeasible:
        raise_infeasible(lp, problem.name)
    if not sol.optimal or sol.x is None or sol.objective_min is None:
        raise SolverError(f"fleet {problem.name!r}: the solver stopped: {sol.message}")
    relaxation: float | None = None
    if integer:
        relaxed = solve_program(build_program(problem, integer=False))
        relaxation = -relaxed.objective_min if relaxed.objective_min is not None else None

    split = split_pair_hours(lp, sol.x)
    served = sol.x[lp.n_pairs + lp.n_pools :]
    n_w, n_p = problem.units_per_accelerator_hour.shape
    hours_by_pool = np.bincount(split.pool, weights=split.hours, minlength=n_p)
    hours_by_workload = np.bincount(split.workload, weights=split.hours, minlength=n_w)
    duals = sol.row_duals
    pool_rows, demand_rows, floor_rows = lp.rows_of("pool"), lp.rows_of("demand"), lp.rows_of("floor")

    pools = []
    for i, p in enumerate(problem.pools):
        used = float(hours_by_pool[i])
        pools.append(
            PoolOutcome(
                pool=p.id,
                accelerator=p.accelerator,
                supplier=p.supplier,
                family=p.family,
                accelerator_hours=p.accelerator_hours,
                used_accelerator_hours=used,
                utilisation=used / p.accelerator_hours if p.accelerator_hours else 0.0,
                fixed_cost_usd=p.fixed_usd_per_accelerator_hour * p.count * problem.period_hours,
                energy_cost_usd=p.energy_usd_per_accelerator_hour * used,
                shadow_price_usd_per_accelerator_hour=None
                if duals is None
                else -float(duals[pool_rows[i]]) + 0.0,
            )
        )
    workloads = []
    for i, w in enumerate(problem.workloads):
        done = float(served[i])
        earned = done * w.value_usd_per_unit
        workloads.append(
            WorkloadOutcome(
                workload=w.id,
                kind=w.kind,
                unit=w.unit,
                value_usd_per_unit=w.value_usd_per_unit,
                demand_units=w.demand_units,
                served_units=done,
                unmet_units=max(0.0, w.demand_units - done),
                accelerator_hours=float(hours_by_workload[i]),
                revenue_usd=earned if w.is_revenue else 0.0,
                internal_value_usd=0.0 if w.is_revenue else earned,
                demand_shadow_price_usd_per_unit=None
                if duals is None
                else -float(duals[demand_rows[i]]) + 0.0,
            )
        )
    assignments = tuple(
        Assignment(
            problem.pools[int(p)].id,
            problem.workloads[int(w)].id,
            float(h),
            round(float(u)) if integer else None,
        )
        for p, w, h, u in zip(split.pool, split.workload, split.hours, split.units, strict=True)
    )
    dev_hours = sum(o.accelerator_hours for o in workloads if o.kind == "development")
    floor_cost: float | None = None
    if duals is not None:
        floor_cost = -float(duals[floor_rows[0]]) + 0.0 if floor_rows.size else 0.0
    return Allocation(
        name=problem.name,
        integer=integer,
        period_hours=problem.period_hours,
        envelope_accelerator_hours=problem.envelope_accelerator_hours,
        objective_usd=-sol.objective_min + 0.0,
        revenue_usd=sum(o.revenue_usd for o in workloads),
        internal_value_usd=sum(o.internal_value_usd for o in workloads),
        fixed_cost_usd=sum(o.fixed_cost_usd for o in pools),
        energy_cost_usd=sum(o.energy_cost_usd for o in pools),
        development_floor_accelerator_hours=problem.development_floor_accelerator_hours,
        development_accelerator_hours=dev_hours,
        development_floor_cost_usd_per_accelerator_hour=floor_cost,
        lp_relaxation_objective_usd=relaxation,
        pools=tuple(pools),
        workloads=tuple(workloads),
        assignments=assignments,
    )
