from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from flopledger.fleet.procure import ProcurementSpec, plan_procurement, simulate_demand
from flopledger.fleet.procure_chart import write_procurement_charts


def _normal_spec(**over: object) -> ProcurementSpec:
    raw = {
        "name": "normal",
        "horizon_months": 1,
        "scenarios": 200_000,
        "seed": 11,
        "quantity_steps": 21,
        "max_insolvency_probability": 1.0,
        "demand": {"model": "normal", "mean_units": 1000.0, "sd_units": 200.0},
        "costs": {
            "revenue_usd_per_unit_month": 10.0,
            "opex_usd_per_unit_month": 3.0,
            "starting_cash_usd": 1e9,
        },
    }
    raw.update(over)
    return ProcurementSpec.model_validate(raw)


def test_newsvendor_matches_the_closed_form_for_normal_demand() -> None:
    plan = plan_procurement(_normal_spec())
    rec = plan.recommendation
    assert rec.critical_fractile == pytest.approx(7.0 / 10.0)  # cu = 10 - 3, co = 3
    closed = 1000.0 + 200.0 * norm.ppf(0.7)
    assert rec.closed_form_normal_units == pytest.approx(closed)
    assert rec.newsvendor_units == pytest.approx(closed, rel=0.005)
    # the simulated expected-profit curve peaks at the same quantity
    best = max(plan.curve, key=lambda p: p.expected_profit_usd)
    step = plan.curve[1].quantity_units - plan.curve[0].quantity_units
    assert abs(best.quantity_units - closed) <= step


def test_reproducible_under_a_seed() -> None:
    spec = _normal_spec(scenarios=5000, horizon_months=12)
    assert plan_procurement(spec) == plan_procurement(spec)
    a = simulate_demand(spec.demand, 1000, 36, seed=1)
    assert a.shape == (36, 1000)
    assert np.array_equal(a, simulate_demand(spec.demand, 1000, 36, seed=1))
    assert not np.array_equal(a, simulate_demand(spec.demand, 1000, 36, seed=2))


def test_solvency_caps_the_recommendation() -> None:
    spec = ProcurementSpec.model_validate(
        {
            "horizon_months": 24,
            "scenarios": 5000,
            "max_insolvency_probability": 0.05,
            "demand": {"start_units": 1000, "growth_per_month": 0.03, "volatility_per_month": 0.05},
            "costs": {
                "revenue_usd_per_unit_month": 2500,
                "capex_usd_per_unit": 50000,
                "life_months": 60,
                "starting_cash_usd": 6.0e7,
                "fixed_cost_usd_per_month": 5e5,
            },
        }
    )
    rec = plan_procurement(spec).recommendation
    assert rec.newsvendor_insolvency_probability > 0.05
    assert rec.recommended_units < rec.newsvendor_units
    assert rec.recommended_insolvency_probability <= 0.05


def test_lognormal_paths_start_at_the_start() -> None:
    spec = _normal_spec(demand={"start_units": 500.0, "growth_per_month": 0.1, "volatility_per_month": 0.0})
    paths = simulate_demand(spec.demand, 10, 4, seed=0)
    assert paths[:, 0] == pytest.approx([500.0, 550.0, 605.0, 665.5], rel=1e-5)


def test_charts_are_written(tmp_path: Path) -> None:
    plan = plan_procurement(_normal_spec(scenarios=2000))
    png, page = write_procurement_charts(plan, tmp_path / "curve")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text(encoding="utf-8")
    assert (
        "<svg" in text
        and "<script src" not in text
        and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    )
