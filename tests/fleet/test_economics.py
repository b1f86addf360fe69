from __future__ import annotations

from pathlib import Path

import pytest

from flopledger.errors import ConfigError
from flopledger.fleet.economics import project_economics_from_file

EXAMPLES = Path(__file__).parents[2] / "examples" / "fleet"


def test_lab_profitable_by_2027_with_17bn_in_2028() -> None:
    outlook = project_economics_from_file(EXAMPLES / "economics_lab_profit_2027.yaml")
    assert outlook.summary.break_even_year == 2027
    assert outlook.years[-1].operating_result_usd == pytest.approx(17.0e9)


def test_lab_spending_115bn_before_profit_in_2030() -> None:
    outlook = project_economics_from_file(EXAMPLES / "economics_lab_profit_2030.yaml")
    assert outlook.summary.break_even_year == 2030
    assert outlook.summary.burn_before_break_even_usd == pytest.approx(115e9, rel=0.01)
    # profitable on inference every year; the losses come from development
    assert all(y.operating_result_ex_development_usd > 0 for y in outlook.years)


def test_bad_years(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("years:\n  - {year: 2025, revenue_usd: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"years\[0\].*inference_cost"):
        project_economics_from_file(path)
