"""One call from a spec file to an envelope plan and its supplier-concentration view."""

from __future__ import annotations

from pathlib import Path

from flopledger.fleet.allocate import Allocation, allocate_envelope
from flopledger.fleet.concentration import ConcentrationReport, assess_concentration
from flopledger.fleet.envelope import build_envelope
from flopledger.fleet.spec import load_fleet_spec

__all__ = ["plan_envelope"]


def plan_envelope(path: str | Path, *, integer: bool = False) -> tuple[Allocation, ConcentrationReport]:
    """Load a fleet spec, allocate the envelope and assess supplier concentration.

    >>> plan, risk = plan_envelope("examples/fleet/three_vendor_envelope.yaml")  # doctest: +SKIP
    >>> plan.development_floor_cost_usd_per_accelerator_hour  # doctest: +SKIP
    """
    problem = build_envelope(load_fleet_spec(path), source=str(path))
    plan = allocate_envelope(problem, integer=integer)
    return plan, assess_concentration(problem, plan)
