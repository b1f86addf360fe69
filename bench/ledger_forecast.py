"""Forecast backtest: the model versus the straight-line projection, on daily spend with weekday and
weekend effects, trends, a price change and a token-burning bot.

    .venv/bin/python bench/ledger_forecast.py                  # 24 teams x 12 months, prints the table
    .venv/bin/python bench/ledger_forecast.py --demo-db demo.duckdb   # also backtest the demo ledger
    .venv/bin/python bench/ledger_forecast.py --write-fixture tests/ledger/golden/finops/events.csv.gz

The fixture written by ``--write-fixture`` is the small ledger the forecast, budget, FOCUS and
Spark tests load (4 teams, Nov 2025 to Feb 2026). Everything here is deterministic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from flopledger.ledger.forecast import backtest, backtest_summary, daily_spend, daily_usage
from flopledger.ledger.spark import connect_engine, events_table
from flopledger.ledger.store import open_ledger

# USD per million tokens: input, cache read, cache write 5m, cache write 1h, output.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float, float, float, float]] = {
    "claude-sonnet-4-5": (3.0, 0.30, 3.75, 6.0, 15.0),
    "claude-opus-4-1": (15.0, 1.50, 18.75, 30.0, 75.0),
    "gpt-5": (1.25, 0.125, 0.0, 0.0, 10.0),
    "gpt-5-mini": (0.25, 0.025, 0.0, 0.0, 2.0),
}
PROVIDER = {
    "claude-sonnet-4-5": "anthropic",
    "claude-opus-4-1": "anthropic",
    "gpt-5": "openai",
    "gpt-5-mini": "openai",
    "private-llm": "self-hosted",
}
ANTHROPIC_DISCOUNT_FROM = dt.date(2026, 2, 1)  # a negotiated 10% discount starts here: a price effect
BILLED = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)


@dataclass(frozen=True)
class Stream:
    """One user's daily use of one model."""

    team: str
    project: str
    user: str
    model: str
    mtok_per_day: tuple[float, float, float, float, float]  # per billed class, millions of tokens
    weekend_factor: float
    growth_per_week: float
    noise: float
    service_tier: str = "standard"
    start: dt.date | None = None


FIXTURE_STREAMS: tuple[Stream, ...] = (
    Stream("agents", "ide-assist", "alice", "claude-sonnet-4-5", (2.0, 40.0, 3.0, 0.0, 1.5), 0.2, 0.04, 0.15),
    Stream("agents", "ide-assist", "bob", "claude-sonnet-4-5", (1.5, 25.0, 2.0, 0.5, 1.0), 0.15, 0.03, 0.2),
    Stream(
        "agents",
        "ide-assist",
        "leaderboard-bot",
        "claude-sonnet-4-5",
        (0.5, 2.0, 0.0, 0.0, 6.0),
        1.0,
        0.0,
        0.1,
        start=dt.date(2026, 2, 10),
    ),
    Stream(
        "platform", "support-bot", "svc-support", "gpt-5-mini", (30.0, 60.0, 0.0, 0.0, 8.0), 0.8, 0.0, 0.1
    ),
    Stream("research", "evals", "carol", "claude-opus-4-1", (0.4, 3.0, 0.3, 0.0, 0.3), 0.35, 0.01, 0.3),
    Stream("research", "evals", "dave", "gpt-5", (2.0, 6.0, 0.0, 0.0, 1.2), 0.3, 0.02, 0.25),
    Stream("batch", "nightly-etl", "svc-etl", "gpt-5", (20.0, 0.0, 0.0, 0.0, 4.0), 1.0, -0.02, 0.12, "batch"),
    Stream(
        "batch",
        "nightly-etl",
        "svc-etl",
        "private-llm",
        (5.0, 0.0, 0.0, 0.0, 1.0),
        1.0,
        0.0,
        0.1,
        start=dt.date(2026, 2, 1),
    ),
)
FIXTURE_START, FIXTURE_END = dt.date(2025, 11, 1), dt.date(2026, 2, 28)


def fixture_events(streams: tuple[Stream, ...], start: dt.date, end: dt.date, seed: int = 7) -> pa.Table:
    """Priced events, one per stream per day, as an Arrow table with the ledger's column names."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    n_days = (end - start).days + 1
    for s in streams:
        first = s.start or start
        for i in range(n_days):
            day = start + dt.timedelta(days=i)
            shocks = rng.lognormal(0.0, s.noise, size=6)  # drawn every day so streams stay independent
            if day < first:
                continue
            weeks = (day - start).days / 7
            level = (1 + s.growth_per_week) ** weeks * (s.weekend_factor if day.weekday() >= 5 else 1.0)
            tokens = [
                int(m * 1e6 * level * shocks[0] * shocks[1 + k] ** 0.5) for k, m in enumerate(s.mtok_per_day)
            ]
            rows.append(_priced_row(s, day, tokens))
    return pa.Table.from_pylist(rows)


def _priced_row(s: Stream, day: dt.date, tokens: list[int]) -> dict[str, Any]:
    provider = PROVIDER[s.model]
    prices = PRICES_USD_PER_MTOK.get(s.model)
    discount = 0.10 if provider == "anthropic" and day >= ANTHROPIC_DISCOUNT_FROM else 0.0
    batch = 0.5 if s.service_tier == "batch" else 1.0
    reasoning = tokens[4] // 5
    row: dict[str, Any] = {
        "event_id": hashlib.sha256(f"{s.user}|{s.model}|{day}".encode()).hexdigest()[:32],
        "ts": dt.datetime.combine(day, dt.time(13, 0)),
        "provider": provider,
        "model": s.model,
        "org": "acme",
        "project": s.project,
        "team": s.team,
        "user": s.user,
        "api_key": f"key-{s.project}",
        "service_tier": s.service_tier,
        "requests": max(1, sum(tokens) // 40_000),
        **dict(zip(BILLED, tokens, strict=True)),
        "reasoning_tokens": reasoning,
        "tags": json.dumps({"env": "prod", "cost_center": f"cc-{s.team}"}),
        "source_format": "fixture",
        "request_cost_usd": 0.0,
        "price_model": f"{provider}/{s.model}",
        "price_version": "fixture-1",
    }
    if prices is None:  # a private model with no price: never silently free
        row.update({f"{c}_cost_usd": None for c in (*BILLED, "reasoning_tokens")})
        row.update(list_cost_usd=None, cost_usd=None, priced=False, price_model=None)
        row.update(input_usd_per_mtok_applied=None, output_usd_per_mtok_applied=None)
        return row
    costs = [round(t * p * batch * (1 - discount) / 1e6, 6) for t, p in zip(tokens, prices, strict=True)]
    row.update({f"{c}_cost_usd": v for c, v in zip(BILLED, costs, strict=True)})
    row["reasoning_tokens_cost_usd"] = round(reasoning * prices[4] * batch * (1 - discount) / 1e6, 6)
    row["cost_usd"] = round(sum(costs), 6)
    row["list_cost_usd"] = round(sum(t * p * batch / 1e6 for t, p in zip(tokens, prices, strict=True)), 6)
    row["priced"] = True
    row["input_usd_per_mtok_applied"] = prices[0] * batch * (1 - discount)
    row["output_usd_per_mtok_applied"] = prices[4] * batch * (1 - discount)
    return row


def load_events(db: str | Path, events: pa.Table) -> None:
    """Insert events into the ledger file ``db`` (created with the real schema)."""
    con = open_ledger(db)
    con.register("fixture_events", events)
    con.execute("INSERT INTO events BY NAME SELECT * FROM fixture_events")
    con.close()


def _scaled(
    mtok: tuple[float, float, float, float, float], factors: list[float]
) -> tuple[float, float, float, float, float]:
    a, b, c, d, e = (m * f for m, f in zip(mtok, factors, strict=True))
    return a, b, c, d, e


def bench_streams(n_teams: int, seed: int) -> tuple[Stream, ...]:
    """Many teams with random scale, weekend factor, growth and noise."""
    rng = np.random.default_rng(seed)
    models = list(PRICES_USD_PER_MTOK)
    out = []
    for i in range(n_teams):
        base = FIXTURE_STREAMS[i % 7]
        out.append(
            replace(
                base,
                team=f"team-{i:02d}",
                user=f"user-{i:02d}",
                model=models[i % len(models)],
                mtok_per_day=_scaled(base.mtok_per_day, [float(rng.uniform(0.3, 3.0)) for _ in range(5)]),
                weekend_factor=float(rng.uniform(0.1, 1.1)),
                growth_per_week=float(rng.uniform(-0.03, 0.06)),
                noise=float(rng.uniform(0.05, 0.35)),
                start=None,
            )
        )
    return tuple(out)


def run_backtest(db: str | Path, by: tuple[str, ...]) -> tuple[list[dict[str, object]], float]:
    """The backtest as ``flopledger forecast --backtest`` runs it (history at the cutoff's prices),
    plus, as ``raw_dollar_error_pct``, the same model fitted to raw dollars (no re-pricing)."""
    engine = connect_engine("duckdb", db=db)
    t0 = time.perf_counter()
    summary = backtest_summary(backtest(engine.rows(daily_usage(events_table(engine), by)), by))
    seconds = time.perf_counter() - t0
    raw = backtest_summary(backtest(engine.rows(daily_spend(events_table(engine), by)), by))
    for row, raw_row in zip(summary, raw, strict=True):
        row["raw_dollar_error_pct"] = raw_row["model_error_pct"]
    return summary, seconds


def _print(title: str, summary: list[dict[str, object]], seconds: float) -> None:
    print(f"\n{title}  ({seconds:.2f} s)")
    print(
        "| case | cutoff day | cases | model error % | straight-line error % | P10-P90 coverage % "
        "| model on raw dollars, error % |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in summary:
        print(
            f"| {r['kind']} | {r['cutoff_day'] or '-'} | {r['cases']} | {r['model_error_pct']} | "
            f"{r['straight_line_error_pct']} | {r['coverage_pct']} | {r['raw_dollar_error_pct']} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write-fixture", type=Path, help="write the test fixture (CSV, .gz ok) and stop")
    parser.add_argument(
        "--demo-db", type=Path, help="also backtest this ledger (e.g. from `flopledger demo`)"
    )
    parser.add_argument("--teams", type=int, default=24)
    args = parser.parse_args(argv)
    if args.write_fixture:
        table = fixture_events(FIXTURE_STREAMS, FIXTURE_START, FIXTURE_END)
        pacsv.write_csv(
            table,
            pa.CompressedOutputStream(str(args.write_fixture), "gzip")
            if args.write_fixture.suffix == ".gz"
            else str(args.write_fixture),
        )
        print(f"wrote {table.num_rows} events to {args.write_fixture}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fixture_db = Path(tmp) / "fixture.duckdb"
        load_events(fixture_db, fixture_events(FIXTURE_STREAMS, FIXTURE_START, FIXTURE_END))
        _print("Test fixture (4 teams, Nov 2025 - Feb 2026), by team", *run_backtest(fixture_db, ("team",)))
        big_db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        events = fixture_events(
            bench_streams(args.teams, 11), dt.date(2025, 3, 1), dt.date(2026, 2, 28), seed=11
        )
        load_events(big_db, events)
        print(f"\nbuilt {events.num_rows:,} events in {time.perf_counter() - t0:.1f} s")
        _print(f"{args.teams} teams x 12 months, by team", *run_backtest(big_db, ("team",)))
    if args.demo_db:
        _print(f"demo ledger {args.demo_db.name}, by team", *run_backtest(args.demo_db, ("team",)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
