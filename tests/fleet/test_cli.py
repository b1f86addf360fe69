"""The fleet commands end to end through the CLI (JSON output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import SolverError

EXAMPLES = Path(__file__).parents[2] / "examples" / "fleet"
runner = CliRunner()


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_allocate_json() -> None:
    data = _json(["fleet", "allocate", str(EXAMPLES / "three_vendor_envelope.yaml"), "--format", "json"])
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert summary["development_accelerator_hours"] >= summary["development_floor_accelerator_hours"] * 0.999
    assert summary["development_floor_cost_usd_per_accelerator_hour"] > 0
    pools = data["pools"]
    assert isinstance(pools, list) and all(p["shadow_price_usd_per_accelerator_hour"] >= 0 for p in pools)
    losses = data["supplier_loss"]
    assert isinstance(losses, list) and {x["supplier"] for x in losses} == {"nvidia", "google", "amazon"}


def test_allocate_integer_json() -> None:
    data = _json(
        ["fleet", "allocate", str(EXAMPLES / "three_vendor_envelope.yaml"), "--integer", "-f", "json"]
    )
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert summary["objective_usd"] <= summary["lp_relaxation_objective_usd"]


def test_allocate_infeasible_names_conflict() -> None:
    result = runner.invoke(app, ["fleet", "allocate", str(EXAMPLES / "infeasible_floor.toml")])
    assert result.exit_code == 1
    assert isinstance(result.exception, SolverError)
    assert "development floor" in str(result.exception)


def test_capacity_json() -> None:
    data = _json(
        [
            "fleet",
            "capacity",
            "--revenue-increase",
            "60e9",
            "--months",
            "10",
            "--scenarios",
            "2000",
            "-f",
            "json",
        ]
    )
    results = {r["metric"]: r for r in data["results"]}  # type: ignore[union-attr,index]
    assert results["gw_top_down"]["value"] == pytest.approx(4.0)
    assert len(data["assumptions"]) >= 8  # type: ignore[arg-type]


def test_procure_json_and_charts(tmp_path: Path) -> None:
    spec = tmp_path / "small.yaml"
    text = (
        (EXAMPLES / "procure_inference.yaml")
        .read_text(encoding="utf-8")
        .replace("scenarios: 100000", "scenarios: 5000")
    )
    spec.write_text(text, encoding="utf-8")
    data = _json(["fleet", "procure", str(spec), "--chart", str(tmp_path / "curve"), "-f", "json"])
    rec = data["recommendation"]
    assert isinstance(rec, dict)
    assert rec["recommended_insolvency_probability"] <= 0.05
    assert (tmp_path / "curve.png").exists() and (tmp_path / "curve.html").exists()


@pytest.mark.parametrize(
    ("name", "year"), [("economics_lab_profit_2027.yaml", 2027), ("economics_lab_profit_2030.yaml", 2030)]
)
def test_economics_json(name: str, year: int) -> None:
    data = _json(["fleet", "economics", str(EXAMPLES / name), "-f", "json"])
    assert data["summary"]["break_even_year"] == year  # type: ignore[index]


def test_table_output_runs() -> None:
    result = runner.invoke(app, ["fleet", "capacity", "--power-gw", "3.5", "--scenarios", "500"])
    assert result.exit_code == 0 and "results" in result.stdout and "assumptions" in result.stdout
