"""Pools with the same throughput column are grouped; the grouped LP must equal the per-pool one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from flopledger.fleet import allocate_envelope
from flopledger.fleet.envelope import EnvelopeProblem, PoolFacts, WorkloadFacts
from flopledger.fleet.program import build_program


def _problem(seed: int, n_types: int, per_type: int, n_w: int) -> EnvelopeProblem:
    rng = np.random.default_rng(seed)
    pools = tuple(
        PoolFacts(
            f"p{t}-{k}",
            f"chip-{t}",
            "s",
            "f",
            "r",
            int(rng.integers(8, 64)),
            8,
            100.0,
            1.0,
            1.0,
            "owned",
            1.0,
            float(rng.uniform(0.0, 3.0)),
        )
        for t in range(n_types)
        for k in range(per_type)
    )
    type_rates = rng.uniform(0.5, 3.0, (n_w, n_types)) * (rng.random((n_w, n_types)) > 0.2)
    type_rates[:, 0] = np.maximum(type_rates[:, 0], 0.5)  # every workload runs somewhere
    rates = np.repeat(type_rates, per_type, axis=1)
    kinds = ["development" if w == 0 else "inference" for w in range(n_w)]
    envelope = sum(p.accelerator_hours for p in pools)
    workloads = tuple(
        WorkloadFacts(
            f"w{w}",
            k,
            "Mtok",
            float(rng.uniform(0.1, 0.6) * envelope),
            float(rng.uniform(1, 5)),
            k == "inference",
        )
        for w, k in enumerate(kinds)
    )
    return EnvelopeProblem(
        "g",
        100.0,
        pools,
        workloads,
        rates,
        tuple(("given",) * len(pools) for _ in kinds),
        0.2 * envelope,
        0.2,
        {"inference": (0.0, 0.9)},
    )


def _per_pool_optimum(problem: EnvelopeProblem) -> float:
    """The same allocation written with one variable per (workload, pool): the textbook form."""
    r = problem.units_per_accelerator_hour
    n_w, n_p = r.shape
    n = n_w * n_p + n_w
    energy = np.array([p.energy_usd_per_accelerator_hour for p in problem.pools])
    value = np.array([w.value_usd_per_unit for w in problem.workloads])
    c = np.concatenate([np.tile(energy, n_w), -value])
    rows, b = [], []
    for p in range(n_p):
        row = np.zeros(n)
        row[[w * n_p + p for w in range(n_w)]] = 1
        rows.append(row)
        b.append(problem.pools[p].accelerator_hours)
    for w in range(n_w):
        row = np.zeros(n)
        row[w * n_p : (w + 1) * n_p] = -r[w]
        row[n_w * n_p + w] = 1
        rows.append(row)
        b.append(0.0)
        row = np.zeros(n)
        row[n_w * n_p + w] = 1
        rows.append(row)
        b.append(problem.workloads[w].demand_units)
    allowed = (r > 0).reshape(-1)
    dev = np.zeros(n)
    dev[:n_p] = -1.0
    rows.append(dev * np.concatenate([allowed, np.zeros(n_w)]))
    b.append(-problem.development_floor_accelerator_hours)
    inf = np.zeros(n)
    inf[n_p : n_w * n_p] = 1.0
    rows.append(inf * np.concatenate([allowed, np.zeros(n_w)]))
    b.append(0.9 * problem.envelope_accelerator_hours)
    bounds = [(0, None if a else 0) for a in allowed] + [(0, None)] * n_w
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(b), bounds=bounds, method="highs")
    assert res.status == 0
    return -float(res.fun)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 4), st.integers(2, 5))
def test_grouped_programme_equals_the_per_pool_one(seed: int, n_types: int, per_type: int, n_w: int) -> None:
    problem = _problem(seed, n_types, per_type, n_w)
    # Development may not run on every type; a draw whose development pools hold less than the
    # floor is infeasible (allocate_envelope says so, naming the constraints), not a grouping case.
    development_hours = sum(
        p.accelerator_hours
        for p, rate in zip(problem.pools, problem.units_per_accelerator_hour[0], strict=True)
        if rate > 0
    )
    assume(development_hours >= problem.development_floor_accelerator_hours)
    plan = allocate_envelope(problem)
    assert plan.objective_usd == pytest.approx(_per_pool_optimum(problem), rel=1e-7, abs=1e-6)
    for pool in plan.pools:
        assert pool.used_accelerator_hours <= pool.accelerator_hours * (1 + 1e-9)
    assert plan.development_accelerator_hours >= 0.2 * problem.envelope_accelerator_hours * (1 - 1e-9)
    energy = sum(p.energy_cost_usd for p in plan.pools)
    assert plan.objective_usd == pytest.approx(plan.revenue_usd + plan.internal_value_usd - energy)


def test_pools_of_one_type_share_a_group() -> None:
    lp = build_program(_problem(1, n_types=3, per_type=4, n_w=3))
    assert lp.n_pools == 12 and len(set(lp.pool_group.tolist())) == 3
