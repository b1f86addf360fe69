from __future__ import annotations

import pytest

from flopledger.errors import InputError, UnknownNameError
from flopledger.fleet.assumptions import load_assumptions
from flopledger.fleet.capacity import plan_capacity


def test_sixty_billion_needs_about_four_gw_in_ten_months() -> None:
    plan = plan_capacity(revenue_increase_usd=60e9, months=10, scenarios=5000)
    top = plan.result("gw_top_down")
    assert top.value == pytest.approx(4.0)  # $60B / $15B per GW-year
    assert plan.result("gw_per_month_top_down").value == pytest.approx(0.4)
    bottom = plan.result("gw_bottom_up")
    assert 3.5 < bottom.value < 4.5
    assert bottom.p10 < bottom.p50 < bottom.p90
    assert bottom.p90 / bottom.p10 > top.p90 / top.p10  # the bottom-up band is the wide one


def test_three_and_a_half_gw_of_tpu_in_chips() -> None:
    plan = plan_capacity(
        power_gw=3.5, overrides={"power_kw_per_accelerator": 1.0, "pue": 1.1}, scenarios=5000
    )
    chips = plan.result("accelerators_in_power")
    assert chips.value == pytest.approx(3.5e9 / 1100.0)
    assert chips.p10 < chips.value < chips.p90
    assert plan.result("annual_revenue_supported_usd").value == pytest.approx(52.5e9)


def test_lease_of_one_and_a_quarter_billion_a_month() -> None:
    plan = plan_capacity(lease_usd_per_month=1.25e9, scenarios=5000)
    assert plan.result("accelerators_leased").value == pytest.approx(1.25e9 / (2.5 * 730))


def test_monte_carlo_reproducible_under_a_seed() -> None:
    a = plan_capacity(revenue_increase_usd=1e9, months=6, scenarios=2000, seed=3)
    b = plan_capacity(revenue_increase_usd=1e9, months=6, scenarios=2000, seed=3)
    c = plan_capacity(revenue_increase_usd=1e9, months=6, scenarios=2000, seed=4)
    assert a == b
    assert a.result("gw_bottom_up").p50 != c.result("gw_bottom_up").p50


def test_every_assumption_has_range_and_source() -> None:
    table = load_assumptions()
    assert "revenue_usd_per_inference_gw_year" in table
    for a in table.values():
        assert a.low <= a.default <= a.high and a.source and a.unit


def test_bad_input() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'pue'"):
        plan_capacity(revenue_increase_usd=1e9, overrides={"pu": 1.1})
    with pytest.raises(InputError):
        plan_capacity()


def test_accelerator_takes_chip_facts_from_the_catalog() -> None:
    # 3.5 GW of TPU v7: catalog wall power 1,250 W per chip and Google's fleet PUE 1.1
    plan = plan_capacity(power_gw=3.5, accelerator="tpu-v7", scenarios=5000)
    assert plan.result("accelerators_in_power").value == pytest.approx(3.5e9 / (1250.0 * 1.1))
    table = {a.name: a for a in plan.assumptions}
    assert table["pue"].source.startswith("catalog tpu-v7:") and table["pue"].overridden
    assert table["pue"].low >= 1.0  # PUE never goes below 1, however the range moves
    assert table["accelerator_peak_pflops"].default == pytest.approx(4.614)
    explicit = plan_capacity(power_gw=3.5, accelerator="tpu-v7", overrides={"pue": 1.2}, scenarios=1000)
    assert explicit.result("accelerators_in_power").value == pytest.approx(3.5e9 / (1250.0 * 1.2))
    with pytest.raises(InputError, match="at least 1"):
        plan_capacity(power_gw=1.0, overrides={"pue": 0.9})
    with pytest.raises(UnknownNameError):
        plan_capacity(power_gw=1.0, accelerator="tpu-v9")
