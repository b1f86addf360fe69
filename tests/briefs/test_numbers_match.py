"""Every number in a brief matches the report or plan it came from, recomputed through the library.

Two checks per insight: each figure its text prints is one of its ``numbers`` (as the brief formats
them), and each of those numbers equals what the ledger report, the budget check, the integrity scan
or the fleet plan gives when asked directly (the scan on a separate ledger file cut at the date).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from flopledger.briefs import Brief, BriefInputs, build_brief
from flopledger.briefs.figures import renderings
from flopledger.fleet import plan_envelope
from flopledger.integrity.scan import scan
from flopledger.ledger.budgets import check_budgets, load_budgets
from flopledger.ledger.report import report
from flopledger.ledger.spark import connect_engine
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.organisation import DemoOrganisation

GOLDEN = Path(__file__).parent / "golden"
FLEET_SPEC = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "three_vendor_envelope.yaml"
ORG = DemoOrganisation()
NUMBER = re.compile(r"(?<![\w.\-])[+\-]?\$?\d+(?:,\d{3})*(?:\.\d+)?[MB%]?(?![\w\-])")
INPUTS = ("input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")


def printed_numbers_are_the_numbers(brief: Brief) -> None:
    for i in brief.insights:
        allowed = set().union(*(renderings(v) for v in i.numbers.values()))
        for token in NUMBER.findall(f"{i.title} {i.body}"):
            assert token in allowed or token.lstrip("+") in allowed, (i.key, token)


def by(engine: Any, dims: list[str], start: dt.date, end: dt.date) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = report(engine, dims, since=start, until=end + dt.timedelta(days=1))
    return {tuple(r[d] for d in dims): r for r in rows}


def check_ledger(engine: Any, brief: Brief) -> None:
    w = brief.window
    for i in brief.insights:
        n = i.numbers
        kind, _, rest = i.key.partition(":")
        if kind == "spend":
            dim, name = rest.split(":", 1)
            now = by(engine, [dim], w.start, w.date).get((name,), {}).get("cost_usd", 0.0)
            before = by(engine, [dim], w.previous_start, w.previous_end).get((name,), {}).get("cost_usd", 0.0)
            assert n["cost_usd"] == pytest.approx(now, abs=0.01)
            assert n["previous_cost_usd"] == pytest.approx(before, abs=0.01)
            assert n["volume_usd"] + n["mix_usd"] + n["price_usd"] == pytest.approx(now - before, abs=0.01)
            assert i.impact_usd_per_month == pytest.approx((now - before) * w.per_month, abs=0.05)
        elif kind == "cache":
            team, model = rest.split(":", 1)
            now = by(engine, ["team", "model"], w.start, w.date)[(team, model)]
            before = by(engine, ["team", "model"], w.previous_start, w.previous_end)[(team, model)]
            for row, key in ((now, "cache_share_pct"), (before, "previous_cache_share_pct")):
                share = 100 * row["cache_read_tokens"] / sum(row[c] for c in INPUTS)
                assert n[key] == pytest.approx(share, abs=1e-6)
            assert n["input_usd_per_mtok"] == pytest.approx(
                1e6 * now["input_tokens_cost_usd"] / now["input_tokens"], rel=1e-6
            )


def check_integrity(db: Path, brief: Brief, tmp_path: Path) -> None:
    cut = dt.datetime.combine(brief.window.date + dt.timedelta(days=1), dt.time())
    copy = tmp_path / "as_of.duckdb"
    con = open_ledger(copy)
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    con.execute("INSERT INTO events BY NAME SELECT * FROM src.events WHERE ts < ?", [cut])
    con.execute("CREATE TABLE outcomes AS SELECT * FROM src.outcomes")  # the scan weighs usage by outcomes
    con.execute("DETACH src")
    findings = scan(con)
    con.close()
    flagged = {f.account for f in findings if f.flagged}
    engine = connect_engine("duckdb", db=copy)
    for i in brief.insights:
        if i.layer != "integrity":
            continue
        accounts = [label for label, _ in i.chart]
        assert set(accounts) <= flagged, i.key
        spend: dict[str, float] = {}  # an account is the user, else the API key
        for (user, key), row in by(
            engine, ["user", "api_key"], brief.window.start, brief.window.date
        ).items():
            spend[user or key] = spend.get(user or key, 0.0) + row["cost_usd"]
        for label, value in i.chart:
            assert value == pytest.approx(spend.get(label, 0.0), abs=0.01)
        top = {(e.feature, e.value) for f in findings if f.flagged for e in f.evidence}
        for name, value in i.numbers.items():
            if name.startswith("evidence."):
                assert (name.removeprefix("evidence."), value) in top, (i.key, name)


def check_plans(engine: Any, brief: Brief, budgets: Path | None) -> None:
    statuses = {}
    if budgets is not None:
        statuses = {
            f"budget:{s.budget.scope}:{s.budget.name}": s
            for s in check_budgets(engine, load_budgets(budgets), as_of=brief.window.date)
        }
    plan = plan_envelope(FLEET_SPEC)[0]
    pools = {p.pool: p for p in plan.pools}
    workloads = {w.workload: w for w in plan.workloads}
    for i in brief.insights:
        n = i.numbers
        if i.key.startswith("budget:"):
            s = statuses[i.key]
            assert (n["spent_usd"], n["forecast_p50_usd"], n["monthly_usd"]) == (
                s.spent_usd,
                s.forecast_p50_usd,
                s.budget.monthly_usd,
            )
        elif i.key.startswith("fleet:binding:"):
            p = pools[i.key.rsplit(":", 1)[1]]
            assert n["shadow_price_usd_per_accelerator_hour"] == p.shadow_price_usd_per_accelerator_hour
            assert i.impact_usd_per_month == pytest.approx(
                (p.shadow_price_usd_per_accelerator_hour or 0) * 0.1 * p.accelerator_hours
            )
        elif i.key.startswith("fleet:floor:"):
            assert n["floor_usd_per_accelerator_hour"] == plan.development_floor_cost_usd_per_accelerator_hour
        elif i.key.startswith("fleet:gap:"):
            w = workloads[i.key.rsplit(":", 1)[1]]
            assert i.impact_usd_per_month == pytest.approx(w.unmet_units * w.value_usd_per_unit)


def test_small_ledger_numbers(small_ledger: Path, tmp_path: Path) -> None:
    con = open_ledger(small_ledger)
    brief = build_brief(con, BriefInputs(date=dt.date(2026, 3, 15), fleet_spec=FLEET_SPEC))
    con.close()
    assert {i.layer for i in brief.insights} == {"ledger", "fleet"}
    printed_numbers_are_the_numbers(brief)
    engine = connect_engine("duckdb", db=small_ledger)
    check_ledger(engine, brief)
    check_plans(engine, brief, None)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("period", "date", "budgets"),
    [
        ("day", ORG.start + dt.timedelta(days=ORG.bot_start_day), None),
        ("week", ORG.start + dt.timedelta(days=ORG.bot_start_day + 6), GOLDEN / "demo-budgets.toml"),
    ],
)
def test_demo_numbers(
    demo_copy: Path, tmp_path: Path, period: str, date: dt.date, budgets: Path | None
) -> None:
    con = open_ledger(demo_copy)
    brief = build_brief(
        con, BriefInputs(period=period, date=date, budgets=budgets, fleet_spec=FLEET_SPEC, top=20)
    )
    con.close()
    assert len(brief.insights) >= 5
    printed_numbers_are_the_numbers(brief)
    engine = connect_engine("duckdb", db=demo_copy)
    check_ledger(engine, brief)
    check_plans(engine, brief, budgets)
    check_integrity(demo_copy, brief, tmp_path)
