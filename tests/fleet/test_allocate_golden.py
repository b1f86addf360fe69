"""Golden allocation cases: small LPs whose optima and duals were worked out by hand (see each file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flopledger.errors import SolverError
from flopledger.fleet import allocate_envelope, build_envelope, parse_fleet_spec

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("allocate_*.yaml"))


def _load(path: Path) -> tuple[Any, dict[str, Any]]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    return build_envelope(parse_fleet_spec(case["spec"], source=path.name)), case.get("expected", {})


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_optimum_and_duals(path: Path) -> None:
    problem, expected = _load(path)
    plan = allocate_envelope(problem)
    approx = pytest.approx
    for key in (
        "objective_usd",
        "revenue_usd",
        "fixed_cost_usd",
        "development_accelerator_hours",
        "development_floor_cost_usd_per_accelerator_hour",
    ):
        assert getattr(plan, key) == approx(expected[key], abs=1e-6), key
    pools = {p.pool: p for p in plan.pools}
    for pool, price in expected["pool_shadow_price_usd_per_accelerator_hour"].items():
        assert pools[pool].shadow_price_usd_per_accelerator_hour == approx(price, abs=1e-6)
    workloads = {w.workload: w for w in plan.workloads}
    for name, served in expected["served_units"].items():
        assert workloads[name].served_units == approx(served, abs=1e-6)
    for name, price in expected["demand_shadow_price_usd_per_unit"].items():
        assert workloads[name].demand_shadow_price_usd_per_unit == approx(price, abs=1e-6)


def test_cases_exist() -> None:
    assert len(CASES) >= 2


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_milp_is_below_its_lp_relaxation_and_uses_whole_nodes(path: Path) -> None:
    problem, _ = _load(path)
    lp = allocate_envelope(problem)
    milp = allocate_envelope(problem, integer=True)
    assert milp.lp_relaxation_objective_usd == pytest.approx(lp.objective_usd)
    assert milp.objective_usd <= lp.objective_usd + 1e-6
    pools = {p.id: p for p in problem.pools}
    for a in milp.assignments:
        node_hours = pools[a.pool].node_size * pools[a.pool].available_hours
        assert a.nodes is not None and a.accelerator_hours == pytest.approx(a.nodes * node_hours)
    for p in milp.pools:
        assert p.shadow_price_usd_per_accelerator_hour is None


def test_milp_floor_hand_checked() -> None:
    # two nodes of 5 x 24 h = 120 h: one must go to development (floor 48 h) earning 120 x 9 = 1,080;
    # the other serves w-premium (360 Mtok fits in 432) for 3,600: 4,680 in all.
    problem, _ = _load(GOLDEN / "allocate_floor.yaml")
    assert allocate_envelope(problem, integer=True).objective_usd == pytest.approx(4680.0)


def _floor_case(floor_share: float, inference_min: float) -> Any:
    case = yaml.safe_load((GOLDEN / "allocate_floor.yaml").read_text(encoding="utf-8"))["spec"]
    case["policy"]["development_floor_share"] = floor_share
    case["policy"]["shares"] = {"inference": {"min": inference_min}}
    return build_envelope(parse_fleet_spec(case))


def test_infeasible_names_the_conflicting_constraints() -> None:
    with pytest.raises(SolverError) as err:
        allocate_envelope(_floor_case(0.6, 0.5))
    msg = str(err.value)
    assert (
        "development floor" in msg
        and "minimum share of inference" in msg
        and "capacity of pool pool-a" in msg
    )


def test_feasible_when_the_conflict_is_removed() -> None:
    plan = allocate_envelope(_floor_case(0.5, 0.5))
    assert plan.development_accelerator_hours == pytest.approx(120.0)
    assert plan.share_by_kind()["inference"] == pytest.approx(0.5)


def test_floor_on_chips_development_cannot_use_names_the_pool() -> None:
    case = yaml.safe_load((GOLDEN / "allocate_heterogeneous.yaml").read_text(encoding="utf-8"))["spec"]
    case["workloads"].append(
        {
            "id": "train",
            "kind": "development",
            "need_flop": 1e21,
            "value_usd": 1,
            "effective_pflops_per_accelerator": {"tpu-t": 1.0},
        }
    )
    case["policy"]["development_floor_share"] = 0.75
    with pytest.raises(SolverError) as err:
        allocate_envelope(build_envelope(parse_fleet_spec(case)))
    assert "capacity of pool pool-t" in str(err.value)
    assert "pool-g" not in str(err.value)
