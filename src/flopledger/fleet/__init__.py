"""Fleet layer: how much compute to have and where.

Envelope allocation (LP/MILP with shadow prices), supplier concentration, capacity (revenue to GW),
procurement under uncertainty, unit economics and build versus buy.
"""

from __future__ import annotations

from flopledger.fleet.allocate import Allocation, allocate_envelope
from flopledger.fleet.concentration import ConcentrationReport, assess_concentration
from flopledger.fleet.envelope import EnvelopeProblem, build_envelope
from flopledger.fleet.plan import plan_envelope
from flopledger.fleet.spec import load_fleet_spec, parse_fleet_spec

__all__ = [
    "Allocation",
    "ConcentrationReport",
    "EnvelopeProblem",
    "allocate_envelope",
    "assess_concentration",
    "build_envelope",
    "load_fleet_spec",
    "parse_fleet_spec",
    "plan_envelope",
]
