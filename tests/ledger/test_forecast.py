"""Forecast, backtest and the change decomposition, on the FinOps fixture ledger.

The fixture (``golden/finops/events.csv.gz``, written by ``bench/ledger_forecast.py
--write-fixture``) holds four teams' daily spend from Nov 2025 to Feb 2026 with weekday and weekend
effects, trends, a 10% discount from February and a token-burning bot from 10 February.
Set ``FLOPLEDGER_UPDATE_GOLDEN=1`` to rewrite the golden JSON after a deliberate model change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from flopledger.cli import ledger_finops
from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.forecast import backtest_ledger, forecast_month, project_month_end
from flopledger.ledger.spark import connect_engine
from flopledger.ledger.spend_change import decompose, spend_change
from flopledger.ledger.store import open_ledger

GOLDEN = Path(__file__).parent / "golden" / "finops"
AS_OF = dt.date(2026, 2, 14)


def load_fixture(db: Path) -> Path:
    con = open_ledger(db)
    con.execute(f"INSERT INTO events BY NAME SELECT * FROM read_csv('{GOLDEN / 'events.csv.gz'}')")
    con.close()
    return db


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_fixture(tmp_path_factory.mktemp("forecast") / "ledger.duckdb")


def check_golden(name: str, rows: list[dict[str, Any]]) -> None:
    path = GOLDEN / name
    actual = json.loads(json.dumps(rows, default=str))
    if os.environ.get("FLOPLEDGER_UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=0.02), key
            else:
                assert got[key] == value, key


def test_flat_spend_projects_flat() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(d) for d in range(40)]
    p = project_month_end(days, np.full(40, 100.0), dt.date(2026, 2, 9))
    assert p.p50_usd == pytest.approx(2800.0)
    assert p.p90_usd - p.p10_usd == pytest.approx(0.0, abs=1e-6)


def test_weekend_effect_is_projected_not_a_straight_line() -> None:
    # Weekdays 100, weekends 20; history through Friday 9 Jan 2026. The rest of January has 15
    # weekdays and 7 weekend days; the straight line spreads the first nine days' mean instead.
    days = [dt.date(2025, 12, 1) + dt.timedelta(d) for d in range(40)]
    spend = np.array([20.0 if d.weekday() >= 5 else 100.0 for d in days])
    p = project_month_end(days, spend, dt.date(2026, 1, 9))
    spent = sum(s for d, s in zip(days, spend, strict=True) if d >= dt.date(2026, 1, 1))
    assert p.p50_usd == pytest.approx(spent + 15 * 100 + 7 * 20)
    assert abs(p.straight_line_usd - p.p50_usd) > 50


def test_trend_is_carried_forward() -> None:
    days = [dt.date(2025, 12, 1) + dt.timedelta(d) for d in range(45)]
    spend = np.linspace(100.0, 190.0, 45)  # +2 USD a day
    p = project_month_end(days, spend, dt.date(2026, 1, 14))
    assert p.p50_usd > p.straight_line_usd
    assert p.p10_usd < p.p50_usd < p.p90_usd


def test_backtest_beats_the_straight_line(ledger: Path) -> None:
    summary = backtest_ledger(connect_engine("duckdb", db=ledger), by=["team"])
    assert {(r["kind"], r["cutoff_day"]) for r in summary} == {
        ("held-back week", None),
        ("month-end", 7),
        ("month-end", 14),
        ("month-end", 21),
    }
    for row in summary:
        assert row["model_error_pct"] <= row["straight_line_error_pct"], row
    assert sum(r["model_error_pct"] for r in summary) < 0.8 * sum(
        r["straight_line_error_pct"] for r in summary
    )


def test_forecast_golden(ledger: Path) -> None:
    rows = [g.as_row() for g in forecast_month(connect_engine("duckdb", db=ledger), by=["team"], as_of=AS_OF)]
    check_golden("forecast_team_2026-02-14.json", rows)
    assert all(r["p10_usd"] <= r["p50_usd"] <= r["p90_usd"] for r in rows)


def test_forecast_defaults_to_the_latest_month(ledger: Path) -> None:
    rows = forecast_month(connect_engine("duckdb", db=ledger), by=["team", "model"])
    assert {g.month for g in rows} == {"2026-02"}
    assert all(g.projection.p50_usd == pytest.approx(g.projection.spent_usd) for g in rows)  # month is over


def test_changes_golden_and_exact(ledger: Path) -> None:
    effects = spend_change(connect_engine("duckdb", db=ledger), by=["team"], as_of=AS_OF)
    check_golden("changes_team_2026-02-14.json", [e.as_row() for e in effects])
    for e in effects:
        assert e.volume_usd + e.mix_usd + e.price_usd == pytest.approx(e.change_usd, abs=1e-5)
    top = effects[0]
    assert (top.group, top.token_class) == ("agents", "output_tokens")  # the bot
    assert top.mix_usd > 0 and top.price_usd < 0  # more output tokens; the February discount


segments = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["m1", "m2"]),
        st.sampled_from(["input_tokens", "output_tokens", "requests"]),
        st.integers(0, 10**9),
        st.floats(0, 1e5),
        st.integers(0, 10**9),
        st.floats(0, 1e5),
    ),
    max_size=12,
    unique_by=lambda s: s[:3],
)


@given(segments)
def test_decomposition_adds_up(segs: list[tuple[str, str, str, int, float, int, float]]) -> None:
    # A segment with cost but no tokens cannot have a unit price; the ledger never has one.
    segs = [(g, m, k, q0, c0 if q0 else 0.0, q1, c1 if q1 else 0.0) for g, m, k, q0, c0, q1, c1 in segs]
    for e in decompose(segs):
        assert e.volume_usd + e.mix_usd + e.price_usd == pytest.approx(e.change_usd, rel=1e-6, abs=1e-4)


def test_unknown_dimension_and_bad_month(ledger: Path) -> None:
    engine = connect_engine("duckdb", db=ledger)
    with pytest.raises(UnknownNameError, match="did you mean 'team'"):
        forecast_month(engine, by=["teem"])
    with pytest.raises(InputError, match="YYYY-MM"):
        forecast_month(engine, by=["team"], month="Feb 2026")
    with pytest.raises(InputError, match="no spend in 2026-05"):
        forecast_month(engine, by=["team"], month="2026-05")


def cli() -> typer.Typer:
    app = typer.Typer()
    ledger_finops.register(app)
    return app


def test_cli_forecast_json(ledger: Path) -> None:
    result = CliRunner().invoke(
        cli(), ["forecast", "--db", str(ledger), "--as-of", "2026-02-14", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["team"] for r in rows] == ["agents", "research", "batch", "platform"]
    for flag in ("--changes", "--backtest"):
        result = CliRunner().invoke(cli(), ["forecast", "--db", str(ledger), flag, "-f", "csv"])
        assert result.exit_code == 0, result.output
        assert len(result.output.splitlines()) > 2
