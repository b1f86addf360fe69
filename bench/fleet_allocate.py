"""Benchmark: envelope allocation, 1,000 pools x 200 workloads, flopledger (HiGHS via SciPy) vs CVXPY.

The same LP is written in CVXPY the way heterogeneity-aware schedulers write theirs (a matrix variable
of workloads x pools, vectorised constraints) and solved with CVXPY's HiGHS interface and with its
default solver. flopledger builds the exact grouped form (pools with one throughput column share their
workload variables; see flopledger.fleet.program). Times are medians of several runs of model building
plus solving, cold imports excluded; the objectives must agree.

    .venv/bin/python bench/fleet_allocate.py [--pools 1000] [--workloads 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from flopledger.fleet.allocate import allocate_envelope
from flopledger.fleet.envelope import EnvelopeProblem, PoolFacts, WorkloadFacts

SUPPLIERS = ("nvidia", "google", "amazon", "amd")


def synthetic_problem(n_pools: int, n_workloads: int, seed: int = 0) -> EnvelopeProblem:
    rng = np.random.default_rng(seed)
    pools = tuple(
        PoolFacts(
            id=f"pool-{i}",
            accelerator=f"chip-{i % 12}",
            supplier=SUPPLIERS[i % 4],
            family=f"family-{i % 12}",
            region=f"region-{i % 7}",
            count=int(rng.integers(64, 4096)),
            node_size=8,
            available_hours=730.0,
            power_kw_per_accelerator=float(rng.uniform(0.7, 1.9)),
            pue=1.2,
            ownership="owned",
            fixed_usd_per_accelerator_hour=float(rng.uniform(0.8, 2.5)),
            energy_usd_per_accelerator_hour=float(rng.uniform(0.05, 0.2)),
        )
        for i in range(n_pools)
    )
    kinds = [
        "development" if w % 10 == 0 else "internal" if w % 10 == 1 else "inference"
        for w in range(n_workloads)
    ]
    chip_speed = rng.uniform(0.5, 2.0, size=12)
    affinity = rng.uniform(0.6, 1.4, size=(n_workloads, 12))
    rates = (chip_speed[None, :] * affinity)[:, [i % 12 for i in range(n_pools)]] * rng.uniform(
        1.0, 5.0, (n_workloads, 1)
    )
    envelope = sum(p.count * p.available_hours for p in pools)
    workloads = tuple(
        WorkloadFacts(
            id=f"w-{w}",
            kind=k,
            unit="EFLOP" if k == "development" else "Mtok",
            demand_units=float(rng.uniform(0.2, 1.5) * envelope / n_workloads * rates[w].mean()),
            value_usd_per_unit=float(rng.uniform(0.5, 6.0)),
            is_revenue=k == "inference",
        )
        for w, k in enumerate(kinds)
    )
    return EnvelopeProblem(
        name="bench",
        period_hours=730.0,
        pools=pools,
        workloads=workloads,
        units_per_accelerator_hour=rates,
        throughput_source=tuple(("given",) * n_pools for _ in workloads),
        development_floor_accelerator_hours=0.25 * envelope,
        development_floor_share=0.25,
        kind_shares={"internal": (0.02, 0.10)},
    )


def solve_with_cvxpy(problem: EnvelopeProblem, solver: str | None) -> float:
    import cvxpy as cp

    rates = problem.units_per_accelerator_hour
    n_w, n_p = rates.shape
    hours = np.array([p.accelerator_hours for p in problem.pools])
    energy = np.array([p.energy_usd_per_accelerator_hour for p in problem.pools])
    value = np.array([w.value_usd_per_unit for w in problem.workloads])
    demand = np.array([w.demand_units for w in problem.workloads])
    kinds = np.array([w.kind for w in problem.workloads])
    envelope = hours.sum()
    x = cp.Variable((n_w, n_p), nonneg=True)
    s = cp.Variable(n_w, nonneg=True)
    constraints = [
        cp.sum(x, axis=0) <= hours,
        s <= cp.sum(cp.multiply(rates, x), axis=1),
        s <= demand,
        cp.sum(x[kinds == "development", :]) >= problem.development_floor_accelerator_hours,
    ]
    for kind, (lo, hi) in problem.kind_shares.items():
        constraints += [
            cp.sum(x[kinds == kind, :]) >= lo * envelope,
            cp.sum(x[kinds == kind, :]) <= hi * envelope,
        ]
    prob = cp.Problem(cp.Maximize(value @ s - cp.sum(x @ energy)), constraints)
    prob.solve(solver=solver)
    return float(prob.value)


def _median_seconds(fn: Callable[[], float], runs: int) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cvxpy-runs", type=int, default=3)
    args = parser.parse_args()
    problem = synthetic_problem(args.pools, args.workloads)
    ours, ours_value = _median_seconds(lambda: allocate_envelope(problem).objective_usd, args.runs)
    print(
        f"problem: {args.pools} pools x {args.workloads} workloads"
        f" = {args.pools * args.workloads:,} allocation variables"
    )
    print(
        f"flopledger allocate_envelope (HiGHS via SciPy): median {ours:.3f} s of {args.runs}, "
        f"objective {ours_value:,.0f}"
    )
    for solver in ("HIGHS", None):
        name = solver or "default (CLARABEL)"
        theirs, value = _median_seconds(lambda s=solver: solve_with_cvxpy(problem, s), args.cvxpy_runs)
        agree = abs(value - ours_value) <= 1e-4 * abs(ours_value)
        print(
            f"cvxpy {name}: median {theirs:.3f} s of {args.cvxpy_runs}, objective {value:,.0f} "
            f"(agrees: {agree}); flopledger is {theirs / ours:.1f}x faster"
        )


if __name__ == "__main__":
    main()
