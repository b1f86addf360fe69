"""The forecast reads history at the cutoff's prices, finds level steps, and never looks ahead.

Ledgers here are real DuckDB files (events inserted with their stored costs, as ingest leaves
them) or, for the property tests, the rows :func:`daily_usage` returns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flopledger.ledger.forecast import backtest, daily_spend, forecast_groups, forecast_month
from flopledger.ledger.forecast_model import Z90, find_step, project_days
from flopledger.ledger.forecast_prices import daily_usage, usage_histories
from flopledger.ledger.schema import BILLED_CLASSES
from flopledger.ledger.spark import connect_engine, events_table
from flopledger.ledger.store import open_ledger

START = dt.date(2026, 1, 1)
CUT_FROM = dt.date(2026, 1, 20)  # a negotiated 20% discount starts here
AS_OF = dt.date(2026, 2, 14)


def usage_row(
    day: dt.date, team: str, model: str, mtok_in: float, mtok_out: float, keep: float
) -> dict[str, Any]:
    """One day of one team on one model: $3 / $15 per million input / output tokens, times ``keep``."""
    row: dict[str, Any] = {"team": team, "day": day, "price_model": model, "service_tier": "standard"}
    row.update({q: 0 for q, _ in BILLED_CLASSES} | {c: 0.0 for _, c in BILLED_CLASSES})
    row.update(input_tokens=int(mtok_in * 1e6), output_tokens=int(mtok_out * 1e6), requests=100)
    row.update(input_tokens_cost_usd=3.0 * mtok_in * keep, output_tokens_cost_usd=15.0 * mtok_out * keep)
    row["cost_usd"] = row["input_tokens_cost_usd"] + row["output_tokens_cost_usd"]
    return row


def price_cut_ledger(db: Path) -> Path:
    """10 M input and 1 M output tokens every day ($45), 20% off from 20 January ($36)."""
    con = open_ledger(db)
    for i in range((AS_OF - START).days + 1):
        day = START + dt.timedelta(days=i)
        r = usage_row(
            day, "agents", "anthropic/claude-sonnet-4-5", 10.0, 1.0, 0.8 if day >= CUT_FROM else 1.0
        )
        con.execute(
            """INSERT INTO events (event_id, ts, provider, model, team, service_tier, requests, input_tokens,
                   cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
                   input_tokens_cost_usd, output_tokens_cost_usd, cache_read_tokens_cost_usd,
                   cache_write_5m_tokens_cost_usd, cache_write_1h_tokens_cost_usd, request_cost_usd,
                   cost_usd, priced, price_model)
               VALUES (?, ?, 'anthropic', 'claude-sonnet-4-5', 'agents', 'standard', ?, ?, 0, 0, 0, ?,
                       ?, ?, 0, 0, 0, 0, ?, true, ?)""",
            [
                f"e{i}",
                dt.datetime.combine(day, dt.time(12)),
                r["requests"],
                r["input_tokens"],
                r["output_tokens"],
                r["input_tokens_cost_usd"],
                r["output_tokens_cost_usd"],
                r["cost_usd"],
                r["price_model"],
            ],
        )
    con.close()
    return db


def test_a_dated_price_cut_does_not_pull_the_forecast_down_twice(tmp_path: Path) -> None:
    # Usage is flat; only the price fell. Spend to date is 14 days at $36, and so is the rest of
    # February at today's prices: $1,008. Raw dollars show a fall from $45 to $36 a day, which a model
    # fitted to them reads as falling use and projects further down.
    engine = connect_engine("duckdb", db=price_cut_ledger(tmp_path / "ledger.duckdb"))
    [g] = forecast_month(engine, by=["team"], as_of=AS_OF)
    p = g.projection
    assert p.spent_usd == pytest.approx(14 * 36.0)
    assert p.p50_usd == pytest.approx(28 * 36.0)
    assert p.p90_usd - p.p10_usd == pytest.approx(0.0, abs=1e-6)
    assert g.last_month_usd == pytest.approx(19 * 45.0 + 12 * 36.0)  # real dollars, not re-priced
    raw_rows = engine.rows(daily_spend(events_table(engine), ["team"], until=AS_OF))
    usage = engine.rows(daily_usage(events_table(engine), ["team"], until=AS_OF))
    assert [(r["day"], r["cost_usd"]) for r in usage] == [(r["day"], r["cost_usd"]) for r in raw_rows]
    assert {r["input_tokens"] for r in usage} == {10_000_000}
    [raw] = forecast_groups(raw_rows, ["team"], AS_OF.replace(day=1), AS_OF)
    assert raw.projection.p50_usd < p.p50_usd - 5.0


def test_history_is_repriced_per_segment_at_the_cutoff_rates() -> None:
    # Two models in one team: only the first got the discount. Rates come from the last week.
    rows = []
    for i in range(40):
        day = START + dt.timedelta(days=i)
        rows.append(usage_row(day, "t", "a/one", 10.0, 1.0, 0.8 if i >= 30 else 1.0))
        rows.append(usage_row(day, "t", "b/two", 2.0, 0.5, 1.0))
    [h] = usage_histories(rows, ["team"]).values()
    np.testing.assert_allclose(h.cost_usd[:2], [45.0 + 13.5] * 2)
    np.testing.assert_allclose(h.at_cutoff_prices(40), np.full(40, 36.0 + 13.5))
    np.testing.assert_allclose(h.at_cutoff_prices(30), h.cost_usd[:30])  # before the cut: as it was
    # Rows of daily spend carry no usage: nothing to re-price, the model reads dollars.
    spend = [{"team": r["team"], "day": r["day"], "cost_usd": r["cost_usd"]} for r in rows]
    [plain] = usage_histories(spend, ["team"]).values()
    np.testing.assert_allclose(plain.at_cutoff_prices(40), plain.cost_usd)


def weekday_spend(
    n: int, end: dt.date, weekday_usd: float, weekend_usd: float
) -> tuple[list[dt.date], np.ndarray]:
    days = [end - dt.timedelta(days=n - 1 - i) for i in range(n)]
    return days, np.array([weekend_usd if d.weekday() >= 5 else weekday_usd for d in days])


def test_an_always_on_bot_is_a_step_added_to_every_day() -> None:
    # Weekdays $100, weekends $10; a bot adding $50 on every day started five days before the cutoff.
    days, spend = weekday_spend(70, dt.date(2026, 3, 11), 100.0, 10.0)
    spend[-5:] += 50.0
    step = find_step(days, spend)
    assert step is not None and (step.start, step.form) == (65, "add")
    assert step.size == pytest.approx(50.0)
    horizon = [days[-1] + dt.timedelta(days=i) for i in range(1, 8)]
    expected, _ = project_days(days, spend, horizon)
    np.testing.assert_allclose(expected, [60.0 if d.weekday() >= 5 else 150.0 for d in horizon])


def test_a_team_that_doubles_is_a_scale_step() -> None:
    days, spend = weekday_spend(70, dt.date(2026, 3, 11), 100.0, 20.0)
    spend[-6:] *= 2.0
    step = find_step(days, spend)
    assert step is not None and (step.start, step.form) == (64, "scale")
    horizon = [days[-1] + dt.timedelta(days=i) for i in range(1, 8)]
    expected, _ = project_days(days, spend, horizon)
    np.testing.assert_allclose(expected, [40.0 if d.weekday() >= 5 else 200.0 for d in horizon])


def test_noise_is_not_a_step() -> None:
    rng = np.random.default_rng(3)
    days, spend = weekday_spend(84, dt.date(2026, 3, 11), 100.0, 30.0)
    hits = sum(find_step(days, spend * rng.lognormal(0.0, 0.3, len(spend))) is not None for _ in range(200))
    assert hits <= 4  # at most 2% false alarms on heavy-tailed daily noise


def test_no_trend_from_less_than_four_weeks() -> None:
    # Three weeks rising $5 a day: too short to tell a trend from the weeks' noise, so a flat level.
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=d) for d in range(21)]
    expected, _ = project_days(days, np.linspace(50.0, 150.0, 21), [dt.date(2026, 3, 22)])
    assert expected[0] == pytest.approx(100.0, rel=0.05)


daily_mtok = st.lists(st.floats(0.0, 50.0), min_size=75, max_size=75)
price_keep = st.lists(st.sampled_from([0.7, 0.9, 1.0, 1.2]), min_size=75, max_size=75)


@settings(max_examples=40, deadline=None)
@given(daily_mtok, price_keep, daily_mtok, price_keep, st.integers(10, 70))
def test_backtest_never_looks_ahead(
    volume: list[float], keep: list[float], other_volume: list[float], other_keep: list[float], change_at: int
) -> None:
    # Two ledgers equal through day ``change_at`` and different (use and prices) after it: every
    # forecast made before that day is the same in both. Only its outcome (the actual) may differ.
    def rows(vol: list[float], kp: list[float]) -> list[dict[str, Any]]:
        out = []
        for i in range(75):
            day = dt.date(2026, 9, 1) + dt.timedelta(days=i)
            out.append(usage_row(day, "t", "a/one", vol[i], vol[i] / 10, kp[i]))
            out.append(usage_row(day, "t", "b/two", 1.0 + vol[i] / 5, 0.2, 1.0))
        return out

    later = [v if i < change_at else w for i, (v, w) in enumerate(zip(volume, other_volume, strict=True))]
    later_keep = [v if i < change_at else w for i, (v, w) in enumerate(zip(keep, other_keep, strict=True))]
    first = backtest(rows(volume, keep), ["team"])
    second = backtest(rows(later, later_keep), ["team"])
    changed = dt.date(2026, 9, 1) + dt.timedelta(days=change_at)
    assert [(c.kind, c.cutoff) for c in first] == [(c.kind, c.cutoff) for c in second]
    for a, b in zip(first, second, strict=True):
        if a.cutoff < changed:
            assert (a.p10_usd, a.p50_usd, a.p90_usd) == (b.p10_usd, b.p50_usd, b.p90_usd)
            assert a.straight_line_usd == b.straight_line_usd


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 20),  # day
            st.sampled_from(["a", "b", None]),  # team
            st.sampled_from(["x/one", "y/two"]),  # price model
            st.sampled_from(["standard", "batch"]),
            st.integers(0, 10**7),  # input tokens
            st.floats(0, 100),  # its cost
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 20),
)
def test_histories_from_rows_or_arrow_are_the_sums_of_the_rows(
    raw: list[tuple[Any, ...]], end_day: int
) -> None:
    rows = []
    for day, team, model, tier, tokens, cost in raw:
        row: dict[str, Any] = {"team": team, "day": START + dt.timedelta(days=day)}
        row |= {"price_model": model, "service_tier": tier, "cost_usd": cost + 1.0}
        row |= {q: 0 for q, _ in BILLED_CLASSES} | {c: 0.0 for _, c in BILLED_CLASSES}
        row |= {"input_tokens": tokens, "input_tokens_cost_usd": cost, "requests": 1, "request_cost_usd": 1.0}
        rows.append(row)
    end = START + dt.timedelta(days=end_day)
    from_rows = usage_histories(rows, ["team"], end=end)
    from_arrow = usage_histories(pa.Table.from_pylist(rows), ["team"], end=end)
    assert from_rows.keys() == from_arrow.keys()
    for key, h in from_rows.items():
        a = from_arrow[key]
        assert (h.days, h.row_days) == (a.days, a.row_days)
        np.testing.assert_allclose(h.cost_usd, a.cost_usd)
        np.testing.assert_allclose(h.quantity, a.quantity)
        np.testing.assert_allclose(h.class_cost_usd, a.class_cost_usd)
        # The reference: each day's total is the sum of its rows; the history ends on ``end``.
        team = dict(key)["team"]
        mine = [r for r in rows if (None if r["team"] is None else r["team"]) == team and r["day"] <= end]
        assert h.days[0] == min(r["day"] for r in mine) and h.days[-1] == end
        for i, day in enumerate(h.days):
            assert h.cost_usd[i] == pytest.approx(sum(r["cost_usd"] for r in mine if r["day"] == day))
            spent_in = sum(r["input_tokens"] for r in mine if r["day"] == day)
            assert h.quantity[:, i, 0].sum() == spent_in
    assert sum(len(h.row_days) for h in from_rows.values()) == len(
        {(r["team"], r["day"]) for r in rows if r["day"] <= end}
    )


@pytest.mark.parametrize("history_days", [28, 56])
def test_the_interval_covers_about_eight_in_ten_of_trending_noise(history_days: int) -> None:
    """P10..P90 of the next two weeks' spend, on series with a trend of 0.5% a day (s.d.) and 10% noise.

    A trend the fit shrinks towards flat keeps its whole uncertainty in the interval, and sigma from
    few effective days counts at a Student t quantile; with the shrunk slope's variance and normal
    quantiles it covered 70% of these at four weeks of history.
    """
    rng = np.random.default_rng(7)
    days = [START + dt.timedelta(days=d) for d in range(history_days + 14)]
    inside = 0
    runs = 300
    for _ in range(runs):
        truth = 100 + rng.normal(0, 0.5) * np.arange(len(days))
        spend = np.maximum(truth + rng.normal(0, 10, len(days)), 0)
        expected, sd = project_days(days[:history_days], spend[:history_days], days[history_days:])
        p50, actual = expected.sum(), spend[history_days:].sum()
        inside += p50 - Z90 * sd <= actual <= p50 + Z90 * sd
    assert 75 <= 100 * inside / runs <= 92
