"""The envelope allocation as a linear programme in matrix form (HiGHS through SciPy).

Variables: ``y[j]`` for each allowed (workload, pool) pair, in accelerator-hours (or in whole nodes when
``integer``), then ``s[w]``, the work each workload gets done (Mtok or EFLOP). Every constraint is
``A @ x <= b`` and every row belongs to a named group, so an infeasible programme can say which groups
conflict and a solved one can report the dual of each group as a shadow price.

Maximise  sum_w value_w * s_w  -  sum_j energy_j * hours_j
subject to
  pool p:        sum_j hours_j over p                  <= accelerator-hours of p
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

__all__ = ["CONFLICT_CANDIDATE_KINDS", "LinearProgram", "ProgramSolution", "build_program", "solve_program"]

IPM_MIN_PAIRS = 20_000

# Rows of these kinds can make the programme infeasible; production and demand rows cannot (s >= 0).
CONFLICT_CANDIDATE_KINDS: tuple[str, ...] = ("pool", "floor", "min_share", "max_share")


@dataclass(frozen=True)
class LinearProgram:
    c: npt.NDArray[np.float64]  # minimised: negative value, positive energy cost
    a_ub: sp.csr_matrix
    b_ub: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]  # variable upper bounds (inf for hours, nodes for integer)
    integrality: npt.NDArray[np.int8]
    pair_workload: npt.NDArray[np.intp]
    pair_pool: npt.NDArray[np.intp]
    hours_per_unit: npt.NDArray[np.float64]  # accelerator-hours one unit of y_j stands for
    row_kind: tuple[str, ...]  # pool / production / demand / floor / min_share / max_share
    row_label: tuple[str, ...]  # human name of the constraint
    integer: bool

    @property
    def n_pairs(self) -> int:
        return int(self.pair_workload.size)

    def rows_of(self, kind: str) -> npt.NDArray[np.intp]:
        return np.flatnonzero(np.asarray(self.row_kind) == kind)


def _fmt_hours(hours: float) -> str:
    return f"{hours:,.0f} accelerator-hours"


def build_program(problem: EnvelopeProblem, *, integer: bool = False) -> LinearProgram:
    """Matrix form of the allocation; ``integer`` counts pool time in whole nodes."""
    rates = problem.units_per_accelerator_hour
    n_w, n_p = rates.shape
    pw, pp = np.nonzero(rates)
    pw = pw.astype(np.intp)
    pp = pp.astype(np.intp)
    n_j = pw.size
    avail = np.array([p.available_hours for p in problem.pools], dtype=np.float64)
    pool_hours = np.array([p.accelerator_hours for p in problem.pools], dtype=np.float64)
    energy = np.array([p.energy_usd_per_accelerator_hour for p in problem.pools], dtype=np.float64)
    if integer:
        node_size = np.array([p.node_size for p in problem.pools], dtype=np.float64)
        scale = (node_size * avail)[pp]
        upper_y = np.array([p.nodes for p in problem.pools], dtype=np.float64)[pp]
    else:
        scale = np.ones(n_j)
        upper_y = np.full(n_j, np.inf)
    value = np.array([w.value_usd_per_unit for w in problem.workloads], dtype=np.float64)
    demand = np.array([w.demand_units for w in problem.workloads], dtype=np.float64)
    kinds = np.array([w.kind for w in problem.workloads])

    rows: list[npt.NDArray[np.intp]] = []
    cols: list[npt.NDArray[np.intp]] = []
    vals: list[npt.NDArray[np.float64]] = []
    b: list[float] = []
    row_kind: list[str] = []
    row_label: list[str] = []
    pair_idx = np.arange(n_j, dtype=np.intp)
    s_idx = n_j + np.arange(n_w, dtype=np.intp)

    def add_block(r: npt.NDArray[np.intp], c: npt.NDArray[np.intp], v: npt.NDArray[np.float64]) -> None:
        rows.append(r + len(b))
        cols.append(c)
        vals.append(v)

    # pool capacity
    add_block(pp, pair_idx, scale)
    b.extend(pool_hours.tolist())
    row_kind.extend(["pool"] * n_p)
    row_label.extend(f"capacity of pool {p.id} (<= {_fmt_hours(p.accelerator_hours)})" for p in problem.pools)
    # production: s_w - sum rate * hours <= 0
    add_block(
        np.concatenate([pw, np.arange(n_w, dtype=np.intp)]),
        np.concatenate([pair_idx, s_idx]),
        np.concatenate([-rates[pw, pp] * scale, np.ones(n_w)]),
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
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(b), n_j + n_w)
    )
    c = np.concatenate([energy[pp] * scale, -value])
    integrality = np.concatenate([np.full(n_j, 1 if integer else 0), np.zeros(n_w)]).astype(np.int8)
    return LinearProgram(
        c=c,
        a_ub=a_ub,
        b_ub=np.asarray(b, dtype=np.float64),
        upper=np.concatenate([upper_y, np.full(n_w, np.inf)]),
        integrality=integrality,
        pair_workload=pw,
        pair_pool=pp,
        hours_per_unit=scale,
        row_kind=tuple(row_kind),
        row_label=tuple(row_label),
        integer=integer,
    )


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
    # LP variables have no upper bounds: pool time is capped by the pool rows. On large envelopes
    # (1,000 pools x 200 workloads) the interior-point method with crossover solved ~30% faster than
    # dual simplex in bench/fleet_allocate.py; small programmes stay on dual simplex.
    method = "highs-ipm" if lp.n_pairs > IPM_MIN_PAIRS else "highs-ds"
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
