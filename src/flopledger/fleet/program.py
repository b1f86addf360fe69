"""The envelope allocation as a linear programme in matrix form (HiGHS through SciPy).

Pools whose throughput column is the same (the same accelerator type, and in whole-node mode the same
node-hours) are interchangeable for every workload: only their energy price differs. The programme
therefore assigns workload time to each such *group* and draws that time from the group's pools, an
exact reformulation with (workloads x groups + pools) variables instead of (workloads x pools). On
1,000 pools of 12 chip types and 200 workloads that is 3,400 variables instead of 200,000, and the
same optimum, pool duals and floor dual (the pool rows are unchanged).

Variables: ``y[j]`` for each allowed (workload, group) pair, ``z[p]`` for each pool, in
accelerator-hours (or whole nodes when ``integer``), then ``s[w]``, the work each workload gets done
(Mtok or EFLOP). Every constraint is ``A @ x <= b`` and every row belongs to a named group, so an
infeasible programme can say which groups conflict and a solved one can report each group's dual.

Maximise  sum_w value_w * s_w  -  sum_p energy_p * hours_p
subject to
  pool p:        hours drawn from p                   <= accelerator-hours of p
  link g:        sum_j hours_j over g - sum_p in g z_p <= 0
  production w:  s_w - sum_j rate_j * hours_j over w  <= 0
  demand w:      s_w                                   <= demand_w
  floor:         - sum_j hours_j over development      <= - floor
  kind shares:   -/+ sum_j hours_j over kind           <= -min*E / max*E
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from flopledger.fleet.envelope import EnvelopeProblem

__all__ = [
    "CONFLICT_CANDIDATE_KINDS",
    "LinearProgram",
    "PairHours",
    "ProgramSolution",
    "build_program",
    "solve_program",
    "split_pair_hours",
]

IPM_MIN_VARIABLES = 20_000

# Rows of these kinds can make the programme infeasible; link, production and demand rows cannot.
CONFLICT_CANDIDATE_KINDS: tuple[str, ...] = ("pool", "floor", "min_share", "max_share")


@dataclass(frozen=True)
class LinearProgram:
    c: npt.NDArray[np.float64]  # minimised: negative value, positive energy cost
    a_ub: sp.csr_matrix
    b_ub: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]  # variable upper bounds (inf for hours, nodes for integer)
    integrality: npt.NDArray[np.int8]
    pair_workload: npt.NDArray[np.intp]  # per y variable
    pair_group: npt.NDArray[np.intp]  # per y variable
    pool_group: npt.NDArray[np.intp]  # per pool
    hours_per_unit: npt.NDArray[np.float64]  # accelerator-hours one unit of z_p stands for, per pool
    row_kind: tuple[str, ...]  # pool / link / production / demand / floor / min_share / max_share
    row_label: tuple[str, ...]  # human name of the constraint
    integer: bool

    @property
    def n_pairs(self) -> int:
        return int(self.pair_workload.size)

    @property
    def n_pools(self) -> int:
        return int(self.pool_group.size)

    def rows_of(self, kind: str) -> npt.NDArray[np.intp]:
        return np.flatnonzero(np.asarray(self.row_kind) == kind)


def _fmt_hours(hours: float) -> str:
    return f"{hours:,.0f} accelerator-hours"


def _group_pools(problem: EnvelopeProblem, integer: bool) -> npt.NDArray[np.intp]:
    """Group index of each pool: pools with the same throughput column (and node-hours) share one."""
    rates = problem.units_per_accelerator_hour
    keys: dict[bytes, int] = {}
    out = np.empty(rates.shape[1], dtype=np.intp)
    for i, pool in enumerate(problem.pools):
        key = rates[:, i].tobytes()
        if integer:
            key += np.float64(pool.node_size * pool.available_hours).tobytes()
        out[i] = keys.setdefault(key, len(keys))
    return out


def build_program(problem: EnvelopeProblem, *, integer: bool = False) -> LinearProgram:
    """Matrix form of the allocation; ``integer`` counts pool time in whole nodes."""
    rates = problem.units_per_accelerator_hour
    n_w, n_p = rates.shape
    pool_group = _group_pools(problem, integer)
    n_g = int(pool_group.max()) + 1 if n_p else 0
    first_pool = np.zeros(n_g, dtype=np.intp)
    first_pool[pool_group[::-1]] = np.arange(n_p, dtype=np.intp)[::-1]  # a representative per group
    group_rates = rates[:, first_pool]
    pw, pg = np.nonzero(group_rates)
    pw, pg = pw.astype(np.intp), pg.astype(np.intp)
    n_j = pw.size
    avail = np.array([p.available_hours for p in problem.pools], dtype=np.float64)
    pool_hours = np.array([p.accelerator_hours for p in problem.pools], dtype=np.float64)
    energy = np.array([p.energy_usd_per_accelerator_hour for p in problem.pools], dtype=np.float64)
    if integer:
        node_size = np.array([p.node_size for p in problem.pools], dtype=np.float64)
        scale_pool = node_size * avail
        upper_z = np.array([p.nodes for p in problem.pools], dtype=np.float64)
    else:
        scale_pool = np.ones(n_p)
        upper_z = np.full(n_p, np.inf)
    scale = scale_pool[first_pool][pg]  # hours per unit of each y (the same for a whole group)
    value = np.array([w.value_usd_per_unit for w in problem.workloads], dtype=np.float64)
    demand = np.array([w.demand_units for w in problem.workloads], dtype=np.float64)
    kinds = np.array([w.kind for w in problem.workloads])

    rows: list[npt.NDArray[np.intp]] = []
    cols: list[npt.NDArray[np.intp]] = []
    vals: list[npt.NDArray[np.float64]] = []
    b: list[float] = []
    row_kind: list[str] = []
    row_label: list[str] = []
    y_idx = np.arange(n_j, dtype=np.intp)
    z_idx = n_j + np.arange(n_p, dtype=np.intp)
    s_idx = n_j + n_p + np.arange(n_w, dtype=np.intp)

    def add_block(r: npt.NDArray[np.intp], c: npt.NDArray[np.intp], v: npt.NDArray[np.float64]) -> None:
        rows.append(r + len(b))
        cols.append(c)
        vals.append(v)

    # pool capacity
    add_block(np.arange(n_p, dtype=np.intp), z_idx, scale_pool)
    b.extend(pool_hours.tolist())
    row_kind.extend(["pool"] * n_p)
    row_label.extend(f"capacity of pool {p.id} (<= {_fmt_hours(p.accelerator_hours)})" for p in problem.pools)
    # link: time given to a group's workloads is drawn from that group's pools
    add_block(
        np.concatenate([pg, pool_group]), np.concatenate([y_idx, z_idx]), np.concatenate([scale, -scale_pool])
    )
    b.extend([0.0] * n_g)
    row_kind.extend(["link"] * n_g)
    row_label.extend(f"pools like {problem.pools[i].id}" for i in first_pool)
    # production: s_w - sum rate * hours <= 0
    add_block(
        np.concatenate([pw, np.arange(n_w, dtype=np.intp)]),
        np.concatenate([y_idx, s_idx]),
        np.concatenate([-group_rates[pw, pg] * scale, np.ones(n_w)]),
    )
    b.extend([0.0] * n_w)
    row_kind.extend(["production"] * n_w)
    row_label.extend(f"work done by {w.id}" for w in problem.workloads)
    # demand
    add_block(np.arange(n_w, dtype=np.intp), s_idx, np.ones(n_w))
    b.extend(demand.tolist())
    row_kind.extend(["demand"] * n_w)
    row_label.extend(f"demand of {w.id} (<= {w.demand_units:,.6g} {w.unit})" for w in problem.workloads)
    envelope = float(pool_hours.sum())
    floor = problem.development_floor_accelerator_hours
    if floor > 0:
        dev = np.flatnonzero(kinds[pw] == "development").astype(np.intp)
        add_block(np.zeros(dev.size, dtype=np.intp), dev, -scale[dev])
        b.append(-floor)
        row_kind.append("floor")
        share = problem.development_floor_share
        what = f", {share:.0%} of the envelope" if share is not None else ""
        row_label.append(f"development floor (>= {_fmt_hours(floor)}{what})")
    for kind, (lo, hi) in sorted(problem.kind_shares.items()):
        members = np.flatnonzero(kinds[pw] == kind).astype(np.intp)
        if lo > 0:
            add_block(np.zeros(members.size, dtype=np.intp), members, -scale[members])
            b.append(-lo * envelope)
            row_kind.append("min_share")
            row_label.append(f"minimum share of {kind} (>= {lo:.0%} = {_fmt_hours(lo * envelope)})")
        if hi < 1:
            add_block(np.zeros(members.size, dtype=np.intp), members, scale[members])
            b.append(hi * envelope)
            row_kind.append("max_share")
            row_label.append(f"maximum share of {kind} (<= {hi:.0%} = {_fmt_hours(hi * envelope)})")

    a_ub = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(b), n_j + n_p + n_w)
    )
    c = np.concatenate([np.zeros(n_j), energy * scale_pool, -value])
    integrality = np.concatenate([np.full(n_j + n_p, 1 if integer else 0), np.zeros(n_w)]).astype(np.int8)
    upper_y = np.full(n_j, np.inf)
    return LinearProgram(
        c=c,
        a_ub=a_ub,
        b_ub=np.asarray(b, dtype=np.float64),
        upper=np.concatenate([upper_y, upper_z, np.full(n_w, np.inf)]),
        integrality=integrality,
        pair_workload=pw,
        pair_group=pg,
        pool_group=pool_group,
        hours_per_unit=scale_pool,
        row_kind=tuple(row_kind),
        row_label=tuple(row_label),
        integer=integer,
    )


@dataclass(frozen=True)
class PairHours:
    """Accelerator-hours of each (workload, pool) pair with time; ``units`` are nodes when integer."""

    pool: npt.NDArray[np.intp]
    workload: npt.NDArray[np.intp]
    hours: npt.NDArray[np.float64]
    units: npt.NDArray[np.float64]


def split_pair_hours(lp: LinearProgram, x: npt.NDArray[np.float64], *, tol: float = 1e-9) -> PairHours:
    """Hand each group's workload time out to its pools, in pool order (any split is optimal).

    Within a group the pools are interchangeable for every workload, so filling them in order keeps
    each pool's drawn time and each workload's time exactly, and whole nodes stay whole.
    """
    n_j = lp.n_pairs
    y, z = x[:n_j], x[n_j : n_j + lp.n_pools]
    if lp.integer:
        y, z = np.round(y), np.round(z)
    out_p: list[int] = []
    out_w: list[int] = []
    out_u: list[float] = []
    pools_of = [np.flatnonzero(lp.pool_group == g) for g in range(int(lp.pool_group.max()) + 1)]
    for g, members in enumerate(pools_of):
        left = {int(p): float(z[p]) for p in members if z[p] > tol}
        order = list(left)
        k = 0
        for j in np.flatnonzero((lp.pair_group == g) & (y > tol)):
            need = float(y[j])
            while need > tol and k < len(order):
                p = order[k]
                take = min(need, left[p])
                if take > tol:
                    out_p.append(p)
                    out_w.append(int(lp.pair_workload[j]))
                    out_u.append(take)
                need -= take
                left[p] -= take
                if left[p] <= tol:
                    k += 1
    pool = np.asarray(out_p, dtype=np.intp)
    units = np.asarray(out_u, dtype=np.float64)
    return PairHours(pool, np.asarray(out_w, dtype=np.intp), units * lp.hours_per_unit[pool], units)


@dataclass(frozen=True)
class ProgramSolution:
    status: int  # 0 optimal, 2 infeasible, other: see message
    message: str
    x: npt.NDArray[np.float64] | None
    objective_min: float | None
    row_duals: npt.NDArray[np.float64] | None  # d(min objective)/d(b_ub), <= 0; None for MILP

    @property
    def optimal(self) -> bool:
        return self.status == 0

    @property
    def infeasible(self) -> bool:
        return self.status == 2


def solve_program(
    lp: LinearProgram,
    *,
    keep_rows: npt.NDArray[np.bool_] | None = None,
    feasibility_only: bool = False,
) -> ProgramSolution:
    """Solve with HiGHS: ``linprog`` for the LP (with duals), ``milp`` for whole nodes."""
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    a, b = lp.a_ub, lp.b_ub
    if keep_rows is not None:
        a, b = a[keep_rows], b[keep_rows]
    c = np.zeros_like(lp.c) if feasibility_only else lp.c
    if lp.integer:
        res = milp(
            c,
            constraints=LinearConstraint(a, -np.inf, b),
            integrality=lp.integrality,
            bounds=Bounds(np.zeros_like(lp.upper), lp.upper),
        )
        x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
        fun = None if res.fun is None else float(res.fun)
        return ProgramSolution(int(res.status), str(res.message), x, fun, None)
    # LP variables have no upper bounds: pool time is capped by the pool rows. Past ~20,000 variables
    # (many distinct pool types) the interior-point method with crossover beat dual simplex by ~30%
    # in bench/fleet_allocate.py; the grouped programmes of typical envelopes stay on dual simplex.
    method = "highs-ipm" if lp.c.size > IPM_MIN_VARIABLES else "highs-ds"
    res = linprog(c, A_ub=a, b_ub=b, bounds=(0, None), method=method)
    if res.status != 0:
        return ProgramSolution(int(res.status), str(res.message), None, None, None)
    return ProgramSolution(
        0,
        str(res.message),
        np.asarray(res.x, dtype=np.float64),
        float(res.fun),
        np.asarray(res.ineqlin.marginals, dtype=np.float64),
    )
