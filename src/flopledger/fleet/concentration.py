"""Supplier concentration: who the envelope depends on, and what the plan loses if a supplier goes.

For each supplier (nvidia, google, amazon, amd, ...) the allocation is solved again without that
supplier's pools. When the development floor can no longer be kept, the plan is solved without it and
says so: the floor is never traded away silently::

    risk = assess_concentration(problem, allocate_envelope(problem))
    [(s.supplier, s.revenue_lost_usd, s.floor_kept) for s in risk.supplier_loss]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flopledger.errors import SolverError
from flopledger.fleet.allocate import Allocation, allocate_envelope
from flopledger.fleet.envelope import EnvelopeProblem

__all__ = ["ConcentrationReport", "EnvelopeShare", "SupplierLoss", "assess_concentration"]


@dataclass(frozen=True)
class EnvelopeShare:
    dimension: str  # supplier or family
    name: str
    accelerators: int
    accelerator_hours: float
    share: float  # of the envelope's accelerator-hours
    power_mw: float  # at the facility (PUE included)


@dataclass(frozen=True)
class SupplierLoss:
    supplier: str
    share: float
    revenue_usd: float
    revenue_lost_usd: float
    revenue_lost_share: float
    unmet_inference_mtok: float
    extra_unmet_inference_mtok: float
    development_accelerator_hours: float
    floor_kept: bool
    feasible: bool  # False when nothing is left to allocate


@dataclass(frozen=True)
class ConcentrationReport:
    shares: tuple[EnvelopeShare, ...]
    supplier_loss: tuple[SupplierLoss, ...]
    herfindahl_supplier: float  # sum of squared supplier shares: 1 = one supplier


def _shares(problem: EnvelopeProblem, dimension: str) -> list[EnvelopeShare]:
    total = problem.envelope_accelerator_hours or 1.0
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(problem.pools):
        groups.setdefault(getattr(p, dimension), []).append(i)
    out = []
    for name, idx in sorted(groups.items()):
        pools = [problem.pools[i] for i in idx]
        hours = sum(p.accelerator_hours for p in pools)
        out.append(
            EnvelopeShare(
                dimension=dimension,
                name=name,
                accelerators=sum(p.count for p in pools),
                accelerator_hours=hours,
                share=hours / total,
                power_mw=sum(p.count * p.power_kw_per_accelerator * p.pue for p in pools) / 1000.0,
            )
        )
    return out


def _unmet_mtok(plan: Allocation) -> float:
    return sum(w.unmet_units for w in plan.workloads if w.kind == "inference")


def _loss(problem: EnvelopeProblem, base: Allocation, supplier: str, share: float) -> SupplierLoss:
    keep = np.array([p.supplier != supplier for p in problem.pools])
    demand_mtok = sum(w.demand_units for w in problem.workloads if w.kind == "inference")
    if not keep.any():
        return SupplierLoss(
            supplier,
            share,
            0.0,
            base.revenue_usd,
            1.0,
            demand_mtok,
            demand_mtok - _unmet_mtok(base),
            0.0,
            floor_kept=False,
            feasible=False,
        )
    floor_kept = True
    try:
        plan = allocate_envelope(problem.without_pools(keep))
    except SolverError:
        floor_kept = False
        try:
            plan = allocate_envelope(problem.without_pools(keep, keep_floor=False))
        except SolverError:
            return SupplierLoss(
                supplier,
                share,
                0.0,
                base.revenue_usd,
                1.0,
                demand_mtok,
                demand_mtok - _unmet_mtok(base),
                0.0,
                floor_kept=False,
                feasible=False,
            )
    lost = base.revenue_usd - plan.revenue_usd
    return SupplierLoss(
        supplier=supplier,
        share=share,
        revenue_usd=plan.revenue_usd,
        revenue_lost_usd=lost,
        revenue_lost_share=lost / base.revenue_usd if base.revenue_usd else 0.0,
        unmet_inference_mtok=_unmet_mtok(plan),
        extra_unmet_inference_mtok=_unmet_mtok(plan) - _unmet_mtok(base),
        development_accelerator_hours=plan.development_accelerator_hours,
        floor_kept=floor_kept
        and plan.development_accelerator_hours >= plan.development_floor_accelerator_hours * (1 - 1e-9),
        feasible=True,
    )


def assess_concentration(problem: EnvelopeProblem, base: Allocation) -> ConcentrationReport:
    """Envelope shares per supplier and chip family, and the cost of losing each supplier."""
    by_supplier = _shares(problem, "supplier")
    losses = tuple(_loss(problem, base, s.name, s.share) for s in by_supplier)
    return ConcentrationReport(
        shares=tuple(by_supplier + _shares(problem, "family")),
        supplier_loss=losses,
        herfindahl_supplier=float(sum(s.share**2 for s in by_supplier)),
    )
