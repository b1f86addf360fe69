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

import duckdb
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

from .conftest import FINOPS_GOLDEN, finops_ledger

GOLDEN = FINOPS_GOLDEN
AS_OF = dt.date(2026, 2, 14)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finops_ledger(tmp_path_factory.mktemp("forecast") / "ledger.duckdb")


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


def test_one_day_of_history_gives_an_interval_not_a_certainty() -> None:
    """A new team with one $50 day, on the 14th of a 30-day month: the P50 carries $50 a day on,
    and the interval is wide (one day cannot tell a level), not P10 = P50 = P90."""
    day = dt.date(2026, 11, 14)
    p = project_month_end([day], np.array([50.0]), day)
    assert p.p50_usd == pytest.approx(50.0 * 17)
    assert p.p10_usd < p.p50_usd - 100 and p.p90_usd > p.p50_usd + 100
    assert p.p10_usd >= p.spent_usd == 50.0  # what is spent is spent
    two = project_month_end([day - dt.timedelta(days=1), day], np.array([40.0, 60.0]), day)
    assert two.p10_usd < two.p50_usd < two.p90_usd


def test_weekend_effect_is_projected_not_a_straight_line() -> None:
    # Weekdays 100, weekends 20; history through Friday 9 Jan 2026. The rest of January has 15
    # weekdays and 7 weekend days; the straight line spreads the first nine days' mean instead.
    days = [dt.date(2025, 12, 1) + dt.timedelta(d) for d in range(40)]
    spend = np.array([20.0 if d.weekday() >= 5 else 100.0 for d in days])
    p = project_month_end(days, spend, dt.date(2026, 1, 9))
    spent = sum(s for d, s in zip(days, spend, strict=True) if d >= dt.date(2026, 1, 1))
    assert p.p50_usd == pytest.approx(spent + 15 * 100 + 7 * 20)
    assert abs(p.straight_line_usd - p.p50_usd) > 50


def test_no_weekend_spend_at_all() -> None:
    # Weekdays 100, weekends exactly 0: the weekend factor is 0 and must not poison the fit.
    days = [dt.date(2025, 12, 1) + dt.timedelta(d) for d in range(40)]
    spend = np.array([0.0 if d.weekday() >= 5 else 100.0 for d in days])
    p = project_month_end(days, spend, dt.date(2026, 1, 9))
    spent = sum(s for d, s in zip(days, spend, strict=True) if d >= dt.date(2026, 1, 1))
    assert p.p50_usd == pytest.approx(spent + 15 * 100)
    assert p.p10_usd == pytest.approx(p.p50_usd) and p.p90_usd == pytest.approx(p.p50_usd)
    short = project_month_end(days[-8:], spend[-8:], dt.date(2026, 1, 9))  # too short for a trend
    assert short.p50_usd == pytest.approx(short.spent_usd + 15 * 100)


def test_one_stray_old_day_does_not_move_the_forecast() -> None:
    """A single event months before a group's steady use (a test call, a stray import) pads its
    history with empty days; the forecast reads the history from where the use starts anew."""
    from flopledger.ledger.forecast_model import GAP_DAYS, RESTART_MIN_DAYS, history_start

    days = [dt.date(2025, 12, 1) + dt.timedelta(d) for d in range(40)]
    spend = np.array([20.0 if d.weekday() >= 5 else 100.0 for d in days])
    steady = project_month_end(days, spend, dt.date(2026, 1, 9))
    padded_days = [days[0] - dt.timedelta(d) for d in range(200, 0, -1)] + days
    padded = np.concatenate([[3.0], np.zeros(199), spend])
    assert history_start(padded) == 200
    stray = project_month_end(padded_days, padded, dt.date(2026, 1, 9))
    assert (stray.p10_usd, stray.p50_usd, stray.p90_usd) == pytest.approx(
        (steady.p10_usd, steady.p50_usd, steady.p90_usd)
    )
    # a quiet spell shorter than the gap is part of the history; quiet days at the end are too
    short = np.concatenate([[3.0], np.zeros(GAP_DAYS - 1), spend])
    assert history_start(short) == 0
    assert history_start(np.concatenate([[3.0], np.zeros(GAP_DAYS), spend])) == GAP_DAYS + 1
    assert history_start(np.concatenate([spend, np.zeros(60)])) == 0
    # of two gaps, the later one starts the history, once use has been back long enough after it
    twice = np.concatenate([[3.0], np.zeros(50), spend, np.zeros(30), spend[:RESTART_MIN_DAYS]])
    assert history_start(twice) == 1 + 50 + 40 + 30
    assert history_start(twice[:-1]) == 51  # back a day too few after the later gap: the earlier one


def test_a_group_back_for_a_day_after_a_long_quiet_spell_keeps_a_wide_interval() -> None:
    """One day of spend after a month without cannot tell a level: the whole history is read,
    and its quiet weeks keep the interval open."""
    days = [dt.date(2025, 11, 1) + dt.timedelta(d) for d in range(59)]
    spend = np.concatenate([np.full(30, 100.0), np.zeros(28), [150.0]])
    p = project_month_end(days, spend, days[-1])
    assert p.p90_usd - p.p10_usd > 50


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
    model = [float(r["model_error_pct"]) for r in summary]  # type: ignore[arg-type]
    line = [float(r["straight_line_error_pct"]) for r in summary]  # type: ignore[arg-type]
    assert all(m <= s for m, s in zip(model, line, strict=True)), summary
    assert sum(model) < 0.8 * sum(line)


def test_forecast_golden(ledger: Path) -> None:
    groups = forecast_month(connect_engine("duckdb", db=ledger), by=["team"], as_of=AS_OF)
    check_golden("forecast_team_2026-02-14.json", [g.as_row() for g in groups])
    assert all(g.projection.p10_usd <= g.projection.p50_usd <= g.projection.p90_usd for g in groups)


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
    # by team and model, or model alone: each model a group of its own, the same change in all
    by_model = spend_change(connect_engine("duckdb", db=ledger), by=["team", "model"], as_of=AS_OF)
    assert by_model[0].group == "agents/claude-sonnet-4-5"
    assert sum(e.change_usd for e in by_model) == pytest.approx(sum(e.change_usd for e in effects))
    alone = spend_change(connect_engine("duckdb", db=ledger), by=["model"], as_of=AS_OF)
    assert sum(e.change_usd for e in alone) == pytest.approx(sum(e.change_usd for e in effects))


# Whole hundredths of a cent: sub-femto-dollar days only probe float underflow, not the model.
daily_usd = st.lists(st.floats(0.0, 1e4).map(lambda v: round(v, 4)), min_size=1, max_size=120)


@given(daily_usd, st.integers(1, 28), st.floats(0.01, 100.0))
def test_projection_is_ordered_and_scales_with_spend(history: list[float], day: int, scale: float) -> None:
    # History ends on ``day`` of March 2026, whatever its length; spend is never negative.
    as_of = dt.date(2026, 3, day)
    days = [as_of - dt.timedelta(days=len(history) - 1 - i) for i in range(len(history))]
    p = project_month_end(days, np.array(history), as_of)
    spent = sum(c for d, c in zip(days, history, strict=True) if d.month == 3)
    assert p.spent_usd == pytest.approx(spent)
    assert spent - 1e-6 <= p.p10_usd <= p.p50_usd + 1e-6 and p.p50_usd <= p.p90_usd + 1e-6
    scaled = project_month_end(days, np.array(history) * scale, as_of)
    for a, b in ((p.p10_usd, scaled.p10_usd), (p.p50_usd, scaled.p50_usd), (p.p90_usd, scaled.p90_usd)):
        assert b == pytest.approx(a * scale, rel=1e-6, abs=1e-6)


segments = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["m1", "m2"]),
        st.sampled_from(["input_tokens", "output_tokens", "web_search_requests", "requests"]),
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


def test_web_searches_are_a_volume_of_their_own_not_part_of_the_token_mix() -> None:
    """Twice the searches at the same price is all volume; they do not dilute the tokens' mix."""
    segs = [
        ("a", "m1", "input_tokens", 1000, 3.0, 1000, 3.0),
        ("a", "m1", "output_tokens", 1000, 15.0, 1000, 15.0),
        ("a", "m1", "web_search_requests", 100, 1.0, 200, 2.0),
    ]
    effects = {e.token_class: e for e in decompose(segs)}
    searches = effects["web_search_requests"]
    assert (searches.volume_usd, searches.mix_usd, searches.price_usd) == pytest.approx((1.0, 0.0, 0.0))
    for cls in ("input_tokens", "output_tokens"):  # the tokens did not move: no mix, no volume
        assert (effects[cls].volume_usd, effects[cls].mix_usd) == pytest.approx((0.0, 0.0))


def test_unknown_dimension_and_bad_month(ledger: Path) -> None:
    engine = connect_engine("duckdb", db=ledger)
    with pytest.raises(UnknownNameError, match="did you mean 'team'"):
        forecast_month(engine, by=["teem"])
    with pytest.raises(InputError, match="YYYY-MM"):
        forecast_month(engine, by=["team"], month="Feb 2026")
    with pytest.raises(InputError, match="no spend in 2026-05"):
        forecast_month(engine, by=["team"], month="2026-05")
    with pytest.raises(InputError, match="starts on 2025-11-01, so 2025-10 days 1-30 are not all in it"):
        spend_change(engine, by=["team"], month="2025-11")


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


def test_cli_forecast_table_ends_with_the_whole_bills_own_forecast(ledger: Path) -> None:
    from flopledger.cli.output import _cell

    engine = connect_engine("duckdb", db=ledger)
    (whole,) = forecast_month(engine, by=[], as_of=dt.date(2026, 2, 14))
    result = CliRunner().invoke(cli(), ["forecast", "--db", str(ledger), "--as-of", "2026-02-14"])
    assert result.exit_code == 0, result.output
    assert "total: the whole bill's own forecast" in result.output
    (line,) = [ln for ln in result.output.splitlines() if "total" in ln and "│" in ln]
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells[0] == "total"
    row = whole.as_row()
    assert cells[1:5] == [_cell(row[k]) for k in ("spent_usd", "p10_usd", "p50_usd", "p90_usd")]
    # P10 and P90 of the whole are its own, not the sums of the teams' (their spreads do not add up)
    teams = forecast_month(engine, by=["team"], as_of=dt.date(2026, 2, 14))
    spread = [sum(getattr(t.projection, k) for t in teams) for k in ("p10_usd", "p90_usd")]
    assert spread[0] < whole.projection.p10_usd and whole.projection.p90_usd < spread[1]
    # JSON stays the groups alone
    rows = json.loads(CliRunner().invoke(cli(), ["forecast", "--db", str(ledger), "-f", "json"]).stdout)
    assert all(r["team"] != "total" for r in rows)


def test_cli_forecast_takes_the_month_of_as_of_and_says_when_the_usage_ends_before_it(
    ledger: Path, tmp_path: Path
) -> None:
    """The ledger's spend runs to 2026-02-28."""
    earlier = CliRunner().invoke(
        cli(), ["forecast", "--db", str(ledger), "--as-of", "2025-12-10", "-f", "json"]
    )
    assert earlier.exit_code == 0, earlier.output  # December's, not "not in the month 2026-02"
    assert {(r["month"], r["as_of"]) for r in json.loads(earlier.stdout)} == {("2025-12", "2025-12-10")}
    wrong = CliRunner().invoke(
        cli(), ["forecast", "--db", str(ledger), "--as-of", "2025-12-10", "--month", "2026-01"]
    )
    assert wrong.exit_code == 1 and "give --month 2025-12, or leave --month out" in str(wrong.exception)
    # a ledger whose usage ends on the 20th, asked as of the 25th: as of the 20th, and said so
    short = tmp_path / "short.duckdb"
    con = duckdb.connect(str(short))
    con.execute(f"ATTACH '{ledger}' AS l (READ_ONLY)")
    con.execute("CREATE TABLE events AS SELECT * FROM l.events WHERE ts < TIMESTAMP '2026-02-21'")
    con.close()
    late = CliRunner().invoke(cli(), ["forecast", "--db", str(short), "--as-of", "2026-02-25", "-f", "json"])
    assert late.exit_code == 0, late.output
    assert {r["as_of"] for r in json.loads(late.stdout)} == {"2026-02-20"}
    assert "the ledger's usage ends on 2026-02-20, before --as-of 2026-02-25" in late.stderr
    # as of a day in a month with no usage yet: as of the last day of usage, in its month, said so
    march = CliRunner().invoke(cli(), ["forecast", "--db", str(short), "--as-of", "2026-03-02", "-f", "json"])
    assert march.exit_code == 0, march.output
    assert {(r["month"], r["as_of"]) for r in json.loads(march.stdout)} == {("2026-02", "2026-02-20")}
    assert "before --as-of 2026-03-02" in march.stderr
    changes = CliRunner().invoke(
        cli(), ["forecast", "--db", str(short), "--as-of", "2026-03-02", "--changes"]
    )
    assert changes.exit_code == 0, changes.output
