from __future__ import annotations

import flopledger.fleet as fleet


def test_public_surface_is_pinned() -> None:
    assert sorted(fleet.__all__) == [
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
    for name in fleet.__all__:
        assert hasattr(fleet, name)
