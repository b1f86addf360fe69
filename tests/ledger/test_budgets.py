"""Budgets: config validation, statuses, drivers and the cron-friendly exit code."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flopledger.cli import ledger_finops
from flopledger.errors import ConfigError
from flopledger.ledger.budgets import check_budgets, load_budgets
from flopledger.ledger.spark import connect_engine

from .conftest import FINOPS_GOLDEN, finops_ledger

GOLDEN = FINOPS_GOLDEN
AS_OF = dt.date(2026, 2, 14)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finops_ledger(tmp_path_factory.mktemp("budgets") / "ledger.duckdb")


def test_budget_statuses_golden(ledger: Path) -> None:
    statuses = check_budgets(
        connect_engine("duckdb", db=ledger), load_budgets(GOLDEN / "budgets.toml"), as_of=AS_OF
    )
    rows = json.loads(json.dumps([s.as_row() for s in statuses], default=str))
    path = GOLDEN / "budgets_2026-02-14.json"
    if os.environ.get("FLOPLEDGER_UPDATE_GOLDEN"):
        path.write_text(json.dumps(rows, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert [(r["scope"], r["name"], r["status"]) for r in rows] == [
        (r["scope"], r["name"], r["status"]) for r in expected
    ]
    for got, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            assert got[key] == (pytest.approx(value, abs=0.02) if isinstance(value, float) else value), key
    by_name = {s.budget.name: s for s in statuses}
    assert [by_name[n].status for n in ("agents", "research", "platform", "nightly-etl", "key-evals")] == [
        "at risk",
        "over",
        "ok",
        "over",
        "ok",
    ]


def test_alert_names_the_driver(ledger: Path) -> None:
    statuses = check_budgets(
        connect_engine("duckdb", db=ledger), load_budgets(GOLDEN / "budgets.toml"), as_of=AS_OF
    )
    agents = next(s for s in statuses if s.budget.name == "agents")
    assert agents.driver is not None
    assert (agents.driver.user, agents.driver.model, agents.driver.token_class) == (
        "leaderboard-bot",
        "claude-sonnet-4-5",
        "output_tokens",
    )
    assert agents.alert is not None
    for word in ("team agents is at risk", "user leaderboard-bot", "claude-sonnet-4-5", "output tokens"):
        assert word in agents.alert
    etl = next(s for s in statuses if s.budget.name == "nightly-etl")
    assert etl.alert is not None and "cap of $10" in etl.alert
    assert all(s.alert is None and s.driver is None for s in statuses if s.status == "ok")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[team.a]\nmonthly_usd = -5\n", "team.a.monthly_usd: Input should be greater than 0"),
        ("[team.a]\nmontly_usd = 5\n", "team.a.monthly_usd: Field required"),
        ("[team.a]\nmonthly_usd = 5\nmontly_usd = 5\n", "team.a.montly_usd: Extra inputs are not permitted"),
        ("[teams.a]\nmonthly_usd = 5\n", "teams: Extra inputs are not permitted"),
        (
            "[team.a]\nmonthly_usd = 5\ndaily_cap_usd = 'lots'\n",
            "team.a.daily_cap_usd: Input should be a valid",
        ),
        ("[team.a\n", "not valid TOML"),
        ('# budgets\n\n[api_key."k-1"]\nmonthly_usd = 0\n', "budgets.toml:4: api_key.k-1.monthly_usd: Input"),
        (
            "[team.a]\nmonthly_usd = 5\n\n[team.b]\ndaily_cap_usd = 1\n",
            "budgets.toml:4: team.b.monthly_usd: Field",
        ),
        ("[team.a]\nmonthly_usd = 5\n[teams.b]\nmonthly_usd = 5\n", "budgets.toml:3: teams: Extra inputs"),
        ("# nothing yet\n", "no budgets; add a table such as [team.agents]"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"budgets\.toml") as info:
        load_budgets(path)
    assert message in str(info.value)


def test_earlier_cap_breaks_put_a_budget_at_risk(ledger: Path, tmp_path: Path) -> None:
    # agents spent 216, 225 and 230 USD on 10-12 Feb and 115 on the as-of day, the 14th.
    path = tmp_path / "budgets.toml"
    path.write_text("[team.agents]\nmonthly_usd = 50_000\ndaily_cap_usd = 210\n")
    (status,) = check_budgets(connect_engine("duckdb", db=ledger), load_budgets(path), as_of=AS_OF)
    assert status.status == "at risk"
    assert status.alert is not None and "the daily cap was broken on 3 earlier days" in status.alert
    assert status.overrun_chance_pct == 0.0


def test_budget_for_an_unknown_name_says_so(ledger: Path, tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text("[team.agnets]\nmonthly_usd = 100\n[project.nowhere]\nmonthly_usd = 100\n")
    statuses = check_budgets(connect_engine("duckdb", db=ledger), load_budgets(path), as_of=AS_OF)
    assert [(s.status, s.spent_usd) for s in statuses] == [("ok", 0.0), ("ok", 0.0)]
    assert (
        statuses[0].note == "no priced spend for team 'agnets' in the ledger so far; did you mean 'agents'?"
    )
    assert statuses[1].note == "no priced spend for project 'nowhere' in the ledger so far"


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such budgets file"):
        load_budgets(tmp_path / "nope.toml")


def test_a_folder_or_a_file_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    from flopledger.catalog.overrides import load_overrides

    with pytest.raises(ConfigError, match="is a folder, not a budgets file"):
        load_budgets(tmp_path)
    with pytest.raises(ConfigError, match="is a folder, not an overrides file"):
        load_overrides(tmp_path, required=True)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe[team.a]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_budgets(binary)


def _cli() -> typer.Typer:
    app = typer.Typer()
    ledger_finops.register(app)
    return app


def test_cli_exit_code_for_cron(ledger: Path, tmp_path: Path) -> None:
    args = ["budgets", "check", "--db", str(ledger), "--as-of", "2026-02-14"]
    over = CliRunner().invoke(_cli(), [*args, "--budgets", str(GOLDEN / "budgets.toml")])
    assert over.exit_code == ledger_finops.EXIT_BUDGET_OVER, over.output
    assert "leaderboard-bot" in over.output  # the alert lines
    ok = tmp_path / "ok.toml"
    ok.write_text("[team.agents]\nmonthly_usd = 50_000\n")
    fine = CliRunner().invoke(_cli(), [*args, "--config", str(ok), "-f", "json"])  # the older name
    assert fine.exit_code == 0, fine.output
    assert json.loads(fine.output)[0]["status"] == "ok"
    # a mistyped option is the CLI's usage error (2), an error 1: neither reads as an overspend
    typo = CliRunner().invoke(_cli(), [*args, "--budget", str(GOLDEN / "budgets.toml")])
    assert typo.exit_code == 2 != ledger_finops.EXIT_BUDGET_OVER
    missing = CliRunner().invoke(_cli(), [*args, "--budgets", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1


def test_an_as_of_day_past_the_ledgers_spend_is_judged_at_its_last_day(ledger: Path) -> None:
    """A cron job passing today while ingest lags must not read the missing days as no spend."""
    engine = connect_engine("duckdb", db=ledger)
    budgets = load_budgets(GOLDEN / "budgets.toml")
    latest = check_budgets(engine, budgets)
    last = latest[0].as_of
    later = check_budgets(engine, budgets, as_of=last + dt.timedelta(days=5))
    assert [(s.as_of, s.status, s.forecast_p50_usd) for s in later] == [
        (s.as_of, s.status, s.forecast_p50_usd) for s in latest
    ]
    assert all(s.note and f"spend ends on {last}" in s.note for s in later)
    assert not any(s.note and "spend ends on" in s.note for s in latest)


def test_a_quiet_as_of_day_inside_the_ledger_is_judged_as_that_day(tmp_path: Path) -> None:
    """A day without spend before the ledger's last day is a day without spend, not ingest lag."""
    import shutil

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    from .conftest import write_jsonl

    row = {"provider": "openai", "model": "gpt-5", "team": "agents", "input_tokens": 1_000_000}
    days = ("2026-03-02", "2026-03-03", "2026-03-06")  # nothing on the 4th and 5th
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [{**row, "ts": f"{d}T10:00:00Z"} for d in days])])
    con.close()
    shutil.copy(GOLDEN / "budgets.toml", tmp_path / "budgets.toml")
    budgets = [b for b in load_budgets(tmp_path / "budgets.toml") if b.scope == "team" and b.name == "agents"]
    engine = connect_engine("duckdb", db=db)
    (quiet,) = check_budgets(engine, budgets, as_of=dt.date(2026, 3, 5))
    assert (
        quiet.as_of == dt.date(2026, 3, 5)
        and quiet.day_usd == 0
        and not (quiet.note and "ends on" in quiet.note)
    )
    assert quiet.spent_usd == pytest.approx(2 * 1.25)  # the 2nd and 3rd
    (later,) = check_budgets(engine, budgets, as_of=dt.date(2026, 4, 2))
    assert later.as_of == dt.date(2026, 3, 6) and later.note and "spend ends on 2026-03-06" in later.note
    assert later.spent_usd == pytest.approx(3 * 1.25)


def test_figures_as_of_a_ledger_whose_usage_ended_days_ago_say_so(tmp_path: Path) -> None:
    """Without --as-of, budgets and the forecast are as of the ledger's last day of usage: when that
    is days before today, stderr says so (a cron job would report one stale month unseen); usage of
    yesterday, or a day given with --as-of, says nothing (but a forecast as of a day after the
    ledger's last says it is as of that last day)."""
    from flopledger.cli import app

    today = dt.datetime.now(dt.UTC).date()
    budgets = tmp_path / "b.toml"
    budgets.write_text("[team.web]\nmonthly_usd = 1000\n")

    def run_on(last: dt.date, *extra: str) -> list[str]:
        src = tmp_path / f"u-{last}.csv"
        src.write_text(
            f"ts,team,provider,model,input_tokens\n{last}T10:00:00Z,web,anthropic,claude-sonnet-4-5,1000\n"
        )
        db = str(tmp_path / f"l-{last}.duckdb")
        assert CliRunner().invoke(app, ["ingest", str(src), "--db", db]).exit_code == 0
        said = []
        for command in (["budgets", "check", "--budgets", str(budgets)], ["forecast"]):
            result = CliRunner().invoke(app, [*command, "--db", db, *extra])
            assert result.exit_code == 0, result.output
            said.append(" ".join(result.stderr.split()))
        return said

    ended = today - dt.timedelta(days=9)
    for said in run_on(ended):
        assert f"the ledger's usage ends on {ended}, 9 days before today (UTC)" in said
        assert "ingest the newer usage" in said
    assert all("usage ends on" not in said for said in run_on(today - dt.timedelta(days=1)))
    day = ended - dt.timedelta(days=3)
    assert all("usage ends on" not in s for s in run_on(day, "--as-of", str(day)))
    # an --as-of after the ledger's last day: the forecast is as of that day, and says so
    budget, forecast = run_on(ended - dt.timedelta(days=1), "--as-of", str(ended))
    assert "usage ends on" not in budget  # a budget's own note says it
    assert f"the ledger's usage ends on {ended - dt.timedelta(days=1)}, before --as-of {ended}" in forecast
