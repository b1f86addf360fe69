"""Name the constraints that make an allocation infeasible (a deletion filter over constraint groups).

Start from every group that can cause infeasibility (pool capacities, the development floor, share
limits); drop each group in turn and keep it dropped if the rest is still infeasible. What is left is an
irreducible conflicting set: remove any one of its groups and a plan exists.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from flopledger.errors import SolverError
from flopledger.fleet.program import CONFLICT_CANDIDATE_KINDS, LinearProgram, solve_program

__all__ = ["find_conflict", "raise_infeasible"]

# Past this many pools, pool capacities are tested as one group (the envelope) to bound solver calls.
MAX_POOL_GROUPS = 60


def _groups(lp: LinearProgram) -> list[tuple[str, npt.NDArray[np.intp]]]:
    kinds = np.asarray(lp.row_kind)
    pool_rows = np.flatnonzero(kinds == "pool")
    groups: list[tuple[str, npt.NDArray[np.intp]]] = []
    if pool_rows.size > MAX_POOL_GROUPS:
        groups.append((f"capacity of the envelope ({pool_rows.size} pools)", pool_rows))
    else:
        groups.extend((lp.row_label[r], np.array([r])) for r in pool_rows)
    for kind in CONFLICT_CANDIDATE_KINDS[1:]:
        groups.extend((lp.row_label[r], np.array([r])) for r in np.flatnonzero(kinds == kind))
    return groups


def find_conflict(lp: LinearProgram) -> list[str]:
    """Labels of an irreducible set of conflicting constraint groups (empty if none is found)."""
    groups = _groups(lp)
    kinds = np.asarray(lp.row_kind)
    always = ~np.isin(kinds, CONFLICT_CANDIDATE_KINDS)
    active = [True] * len(groups)

    def infeasible_with(flags: list[bool]) -> bool:
        keep = always.copy()
        for on, (_, rows) in zip(flags, groups, strict=True):
            if on:
                keep[rows] = True
        relaxed = dataclasses.replace(lp, integer=False)
        return solve_program(relaxed, keep_rows=keep, feasibility_only=True).infeasible

    if not infeasible_with(active):
        return []  # only the integer version is infeasible; no LP-level conflict to name
    for i in range(len(groups)):
        trial = active.copy()
        trial[i] = False
        if infeasible_with(trial):
            active = trial
    return [label for on, (label, _) in zip(active, groups, strict=True) if on]


def raise_infeasible(lp: LinearProgram, name: str) -> None:
    """Raise a :class:`SolverError` that names the conflicting constraints."""
    conflict = find_conflict(lp)
    if conflict:
        raise SolverError(
            f"fleet {name!r} is infeasible; these constraints conflict: "
            + "; ".join(conflict)
            + ". Relax one of them."
        )
    raise SolverError(
        f"fleet {name!r} has no plan in whole nodes, though one exists in fractions of nodes; "
        "lower the floor or share limits, or drop --integer"
    )
