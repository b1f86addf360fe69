"""The ledger CLI end to end on real ledger files: demo, ingest, report, prices, quarantine, reprice."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.ledger.schema import BILLED_CLASSES, COST_COLUMNS, TOKEN_COLUMNS
from flopledger.synthetic.demo import build_demo_ledger
from flopledger.synthetic.organisation import TEAMS, DemoOrganisation, write_demo_logs

SMALL = DemoOrganisation(
    engineers=60,
    days=9,
    bots=2,
    bot_start_day=4,
    bot_gap_s=600.0,
    start=__import__("datetime").date(2026, 10, 20),
)


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_default_organisation_has_the_shape_the_demo_promises() -> None:
    org = DemoOrganisation()
    assert len(org.teams) >= 20 and org.engineers >= 500 and org.days >= 30 and org.bots >= 3
    assert org.teams == TEAMS


def test_demo_logs_are_deterministic(tmp_path: Path) -> None:
    a = write_demo_logs(tmp_path / "a", SMALL)
    b = write_demo_logs(tmp_path / "b", SMALL)
    c = write_demo_logs(tmp_path / "c", dataclasses.replace(SMALL, seed=1))
    for step_a, step_b in zip(a.steps, b.steps, strict=True):
        assert step_a.paths[0].read_bytes() == step_b.paths[0].read_bytes()
    assert a.steps[0].paths[0].read_bytes() != c.steps[0].paths[0].read_bytes()


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    result = build_demo_ledger(db, org=SMALL)
    assert all(r.reconciles for r in result.ingests)
    assert [r.rows_quarantined for r in result.ingests] == [0, 0, 0, 0, 3]  # the CSV's three bad rows
    return db


def test_report_json_has_dimension_token_and_cost_keys(small_ledger: Path) -> None:
    rows = json.loads(run("report", "--db", str(small_ledger), "--by", "team,model", "--format", "json"))
    assert rows and {"team", "model", "requests", "cost_usd"} <= rows[0].keys()
    assert set(TOKEN_COLUMNS) <= rows[0].keys() and set(COST_COLUMNS) <= rows[0].keys()
    for r in rows:  # the classes add up to the total; reasoning is inside output and never added again
        parts = sum(r[cost] for _, cost in BILLED_CLASSES)
        assert r["cost_usd"] == pytest.approx(parts, abs=1e-4)
        assert {"web_search_requests", "web_search_cost_usd"} <= r.keys()
    # the demo's Anthropic report rows ran web searches, priced at $10 per thousand, less the demo's
    # 12% discount on Anthropic from a date in the month
    searched = [r for r in rows if r["web_search_requests"]]
    assert searched and all(r["model"].startswith("claude") for r in searched)
    for r in searched:
        at_list = r["web_search_requests"] * 0.01
        assert 0.88 * at_list - 1e-9 <= r["web_search_cost_usd"] <= at_list + 1e-9
    teams = {r["team"] for r in rows}
    assert {"research", "data-platform", "support-tools"} <= teams
    csv_out = run("report", "--db", str(small_ledger), "--by", "day", "--format", "csv")
    assert csv_out.splitlines()[0].startswith("day,requests,input_tokens")
    assert len(csv_out.splitlines()) == SMALL.days + 1
    days = [line.split(",")[0] for line in csv_out.splitlines()[1:]]
    assert days == sorted(days)  # time in time order, not by cost
    by_team_day = json.loads(run("report", "--db", str(small_ledger), "--by", "team,day", "-f", "json"))
    order = [r["day"] for r in by_team_day]
    assert order == sorted(order)  # the day first, then the costliest team within it
    first_day = [r["cost_usd"] for r in by_team_day if r["day"] == order[0]]
    assert first_day == sorted(first_day, reverse=True)
    # a limit keeps the costliest days, shown in time order
    every = json.loads(run("report", "--db", str(small_ledger), "--by", "day", "-f", "json"))
    top = json.loads(run("report", "--db", str(small_ledger), "--by", "day", "--limit", "3", "-f", "json"))
    costliest = sorted(every, key=lambda r: -r["cost_usd"])[:3]
    assert [r["day"] for r in top] == sorted(r["day"] for r in costliest)


def test_per_active_hour_and_since_until(small_ledger: Path) -> None:
    rows = json.loads(
        run(
            "report",
            "--db",
            str(small_ledger),
            "--by",
            "user",
            "--per-active-hour",
            "--since",
            "2026-10-21",
            "--until",
            "2026-10-21",
            "--format",
            "json",
        )
    )
    assert rows
    import duckdb

    con = duckdb.connect(str(small_ledger), read_only=True)
    hourly = {  # per user: hours with a request, and the cost of those requests (no usage-report rows)
        user: (hours, cost)
        for user, hours, cost in con.execute(
            """SELECT "user", count(DISTINCT date_trunc('hour', ts)), sum(coalesce(cost_usd, 0)) FROM events
               WHERE ts >= TIMESTAMP '2026-10-21' AND ts < TIMESTAMP '2026-10-22'
                 AND source_format NOT IN ('anthropic', 'openai') GROUP BY 1"""
        ).fetchall()
    }
    con.close()
    for r in rows:
        hours, cost = hourly.get(r["user"], (0, 0.0))
        assert r["active_hours"] == hours and hours <= 24
        if hours == 0:  # only usage-report rows (daily buckets): no hours to spread over
            assert r["cost_usd_per_active_hour"] is None
        else:
            assert r["cost_usd_per_active_hour"] == pytest.approx(cost / hours, abs=2e-6)
    assert sum(r["active_hours"] == 0 for r in rows) < len(rows)  # most users have hours


def test_headline_versus_real(small_ledger: Path) -> None:
    view = json.loads(run("report", "--db", str(small_ledger), "--headline", "--format", "json"))
    assert view["all_as_output_cost_usd"] > view["all_input_uncached_cost_usd"] > view["real_cost_usd"] > 0
    shares = {c["token_class"]: c for c in view["classes"]}
    assert shares["cache_read_tokens"]["token_share"] > 0.5  # coding agents mostly read their cache
    assert sum(c["cost_share"] for c in view["classes"] if c["billed_apart"]) == pytest.approx(1.0, abs=0.01)
    table = run("report", "--db", str(small_ledger), "--headline")
    assert "Headline versus real" in table and "overstates the real bill" in table
    rows = list(
        csv.DictReader(io.StringIO(run("report", "--db", str(small_ledger), "--headline", "-f", "csv")))
    )
    bills = {r["item"]: float(r["cost_usd"]) for r in rows if r["kind"] == "bill"}
    assert bills["all_as_output"] == pytest.approx(view["all_as_output_cost_usd"])
    assert bills["real"] == pytest.approx(view["real_cost_usd"])
    assert [r["item"] for r in rows if r["kind"] == "token_class"] == [
        c["token_class"] for c in view["classes"]
    ]
    # the CSV holds what the table and the JSON say besides the bills
    (output,) = [r for r in rows if r["item"] == "all_as_output"]
    assert float(output["overstatement_x"]) == pytest.approx(view["overstatement_x"])
    (unpriced,) = [r for r in rows if r["kind"] == "unpriced"]
    assert int(unpriced["tokens"]) == view["unpriced_tokens"]
    both = CliRunner().invoke(app, ["report", "--db", str(small_ledger), "--headline", "--by", "model"])
    assert both.exit_code != 0 and "--headline is the whole bill" in str(both.exception)


def test_report_window_with_an_offset_is_read_in_utc_and_bad_values_are_refused(small_ledger: Path) -> None:
    def cost(*window: str) -> float:
        rows = json.loads(run("report", "--db", str(small_ledger), "--by", "day", *window, "-f", "json"))
        return float(sum(r["cost_usd"] for r in rows))

    utc = cost("--since", "2026-10-21T00:00:00Z", "--until", "2026-10-22T00:00:00Z")
    offset = cost("--since", "2026-10-21T05:00:00+05:00", "--until", "2026-10-22T05:00:00+05:00")
    assert offset == pytest.approx(utc) and utc > 0
    empty = run("report", "--db", str(small_ledger), "--since", "2030-01-01", "-f", "csv")
    assert empty.splitlines()[0].startswith("team,requests,input_tokens") and len(empty.splitlines()) == 1
    negative = CliRunner().invoke(app, ["report", "--db", str(small_ledger), "--limit", "-1"])
    assert negative.exit_code == 2 and "greater than or equal to 0" in negative.output
    negative = CliRunner().invoke(app, ["quarantine", "list", "--db", str(small_ledger), "--limit", "-1"])
    assert negative.exit_code == 2
    twice = CliRunner().invoke(app, ["forecast", "--db", str(small_ledger), "--by", "team,team"])
    assert twice.exit_code != 0 and "names a dimension twice" in str(twice.exception)
    both = CliRunner().invoke(app, ["forecast", "--db", str(small_ledger), "--changes", "--backtest"])
    assert both.exit_code != 0 and "one at a time" in str(both.exception)


def test_unknown_dimension_suggests_the_closest(small_ledger: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--db", str(small_ledger), "--by", "teams"])
    assert result.exit_code != 0
    assert "did you mean 'team'" in str(result.exception) or "did you mean 'team'" in result.output


def test_prices_missing_quarantine_and_reprice(
    small_ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOPLEDGER_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # no default ledger here: prices show reads the catalog alone
    assert json.loads(run("prices", "missing", "--db", str(small_ledger), "--format", "json")) == []
    bad = json.loads(run("quarantine", "list", "--db", str(small_ledger), "--format", "json"))
    assert {b["field"] for b in bad} == {"ts", "model", "input_tokens"}
    assert all(b["source_file"].endswith("selfhosted_inference.csv") and b["source_line"] > 1 for b in bad)
    shown = json.loads(
        run("prices", "show", "claude-sonnet-4-5", "--provider", "anthropic", "--format", "json")
    )
    assert {r["variant"] for r in shown} >= {"standard", "batch"}
    assert any(r["tier_above_tokens"] == 200_000 for r in shown)
    # a new negotiated discount reaches history through reprice
    copy = tmp_path / "l.duckdb"
    copy.write_bytes(small_ledger.read_bytes())
    before = json.loads(run("report", "--db", str(copy), "--by", "provider", "--format", "json"))
    overrides = tmp_path / "p.toml"
    overrides.write_text(
        '[[discount]]\nprovider = "openai"\npercent = 50\n'
        '[[model]]\nprovider = "self-hosted"\nmodel = "acme-coder-70b"\n'
        "input_usd_per_mtok = 0.4\noutput_usd_per_mtok = 0.9\n"
    )
    out = json.loads(run("reprice", "--db", str(copy), "--overrides", str(overrides), "--format", "json"))
    assert out[0]["changed"] > 0
    after = json.loads(run("report", "--db", str(copy), "--by", "provider", "--format", "json"))
    cost = {r["provider"]: r["cost_usd"] for r in before}
    new = {r["provider"]: r["cost_usd"] for r in after}
    assert new["openai"] == pytest.approx(cost["openai"] / 2, rel=1e-6)
    assert new["anthropic"] > cost["anthropic"]  # the demo's 12% Anthropic discount is no longer in force


def test_prices_show_with_a_ledger_says_which_rows_price_its_events(tmp_path: Path) -> None:
    base = {"ts": "2026-03-02T10:00:00Z", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    events = [
        {**base, "input_tokens": 1000, "output_tokens": 100},
        {**base, "input_tokens": 2000, "cache_read_tokens": 50_000, "output_tokens": 100},
        {**base, "input_tokens": 10_000, "cache_read_tokens": 240_000, "output_tokens": 100},  # > 200k
        {**base, "input_tokens": 5000, "output_tokens": 100, "service_tier": "batch"},
        {**base, "model": "gpt-5", "provider": "openai", "input_tokens": 5000, "output_tokens": 100},
    ]
    src = tmp_path / "u.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    db = tmp_path / "l.duckdb"
    run("ingest", str(src), "--db", str(db))
    rows = json.loads(run("prices", "show", "claude-sonnet-4-5", "--db", str(db), "--format", "json"))
    used = {(r["variant"], r["tier_above_tokens"], r["valid_from"]): r["events"] for r in rows if r["events"]}
    assert used == {("standard", None, None): 2, ("standard", 200_000, None): 1, ("batch", None, None): 1}
    assert all(r["tier_upto_tokens"] in (200_000, None) for r in rows)  # open bounds are None

    from flopledger.ledger.store import open_ledger

    con = open_ledger(db, read_only=True)
    stored = con.execute(
        "SELECT sum(cost_usd) FROM events WHERE price_model = 'anthropic/claude-sonnet-4-5'"
    ).fetchone()
    con.close()
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(stored[0], rel=1e-12)
    assert sum(r["tokens"] for r in rows) == 1100 + 52_100 + 250_100 + 5100
    # priced with these very rows: what the ledger holds is what they give
    assert all(r["stored_cost_usd"] == pytest.approx(r["cost_usd"], abs=1e-9) for r in rows)
    assert {(r["stored_otherwise"], r["stored_price_version"]) for r in rows} == {(0, None)}
    missing = CliRunner().invoke(
        app, ["prices", "show", "claude-sonnet-4-5", "--db", str(tmp_path / "no.duckdb")]
    )
    assert missing.exit_code != 0 and "no ledger at this path" in str(missing.exception)
    # a ledger an older flopledger wrote, without the newest column, is read as it is (not upgraded)
    con = open_ledger(db)
    con.execute("ALTER TABLE events DROP COLUMN max_request_input_tokens")
    con.close()
    older = json.loads(run("prices", "show", "claude-sonnet-4-5", "--db", str(db), "--format", "json"))
    assert older == rows
    con = open_ledger(db, read_only=True)
    columns = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    con.close()
    assert "max_request_input_tokens" not in columns  # read around, not upgraded


def test_reprice_without_the_overrides_file_that_priced_the_ledger_is_refused(tmp_path: Path) -> None:
    """Repricing with no overrides file would drop every discount and private price the ledger holds:
    refused, saying how to pass the file; --without-overrides prices at catalog rates on purpose."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens\n"
        "2026-03-01T10:00:00Z,anthropic,claude-sonnet-4-5,100000\n"
        "2026-03-01T10:00:00Z,internal,house-llm,100000\n"
    )
    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[discount]]\nprovider = "anthropic"\npercent = 50\n'
        '[[model]]\nprovider = "internal"\nmodel = "house-llm"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 2.0\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db, "--overrides", str(overrides))

    def cost() -> float:
        return sum(
            r["cost_usd"] for r in json.loads(run("report", "--db", db, "--by", "model", "-f", "json"))
        )

    assert cost() == pytest.approx(0.15 + 0.1)
    refused = CliRunner().invoke(app, ["reprice", "--db", db])
    assert refused.exit_code != 0 and cost() == pytest.approx(0.25)  # nothing repriced
    said = " ".join(str(refused.exception).split())
    assert "2 of the ledger's events were priced with an overrides file" in said
    assert "--overrides" in said and "--without-overrides" in said
    run("reprice", "--db", db, "--overrides", str(overrides))  # the same file: allowed, nothing moves
    assert cost() == pytest.approx(0.25)
    both = CliRunner().invoke(
        app, ["reprice", "--db", db, "--without-overrides", "--overrides", str(overrides)]
    )
    assert both.exit_code != 0 and "takes no overrides file" in str(both.exception)
    catalog = json.loads(run("reprice", "--db", db, "--without-overrides", "-f", "json"))
    # at list price, and house-llm unpriced
    assert catalog[0]["unpriced_events"] == 1 and cost() == pytest.approx(0.3)
    run("reprice", "--db", db)  # priced without a file now: nothing to drop


def test_prices_show_says_when_the_ledger_holds_other_prices_than_it_shows(tmp_path: Path) -> None:
    """After a reprice with a discount, `prices show` without it shows the catalog's rows beside the
    costs the ledger holds, names the price version they came from and says what to do; with the
    same overrides file, all agrees and nothing is said."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens,output_tokens\n"
        "2026-03-01T10:00:00Z,anthropic,claude-sonnet-4-5,100000,0\n"
        "2026-03-01T11:00:00Z,anthropic,claude-sonnet-4-5,0,100000\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[discount]]\nprovider = "anthropic"\npercent = 25\n')
    run("reprice", "--db", db, "--overrides", str(overrides))
    shown = CliRunner().invoke(app, ["prices", "show", "claude-sonnet-4-5", "--db", db, "-f", "json"])
    assert shown.exit_code == 0, shown.output
    rows = [r for r in json.loads(shown.stdout) if r["events"]]
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(0.3 + 1.5)  # the catalog's $3 and $15
    assert sum(r["stored_cost_usd"] for r in rows) == pytest.approx((0.3 + 1.5) * 0.75)
    assert sum(r["stored_otherwise"] for r in rows) == 2
    from flopledger.catalog.overrides import load_overrides

    digest = load_overrides(overrides).digest
    assert all(f"overrides {digest}" in r["stored_price_version"] for r in rows)
    said = " ".join(shown.stderr.split())
    assert "holds 2 of these events priced with other prices" in said and f"overrides {digest}" in said
    assert "stored $1.35, with these rows $1.80" in said and "Pass the overrides file" in said
    table = CliRunner().invoke(app, ["prices", "show", "claude-sonnet-4-5", "--db", db])
    assert "stored_co" in table.stdout  # the column where the costs differ (its name cut to fit)
    same = CliRunner().invoke(
        app, ["prices", "show", "claude-sonnet-4-5", "--db", db, "--overrides", str(overrides)]
    )
    assert same.exit_code == 0 and "other prices" not in same.stderr and "stored_co" not in same.stdout


def test_prices_show_tells_a_rows_hours_of_the_day(tmp_path: Path) -> None:
    """DeepSeek's off-peak prices are rows of their own hours: the table says which hours each holds."""
    db = _ingested(
        tmp_path, "ts,provider,model,input_tokens\n2026-05-01T10:00:00Z,deepseek,deepseek-chat,5\n"
    )
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["prices", "show", "deepseek-chat", "--db", db])
    standard = [ln for ln in result.stdout.splitlines() if "│ standard" in ln]
    assert [ln.split("│")[6].strip() for ln in standard] == ["00:00-00:30", "00:30-16:30", "16:30-00:00"]
    assert "hours_utc" in result.stdout
    plain = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["prices", "show", "gpt-5", "--provider", "openai"])
    assert plain.exit_code == 0 and "hours_utc" not in plain.stdout  # a price that holds all day
    assert "output_reason" not in plain.stdout  # reasoning is output like the rest
    deep = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["prices", "show", "sonar-deep-research", "--provider", "perplexity", "-f", "json"]
    )
    rows = json.loads(deep.stdout)
    assert {(r["output_usd_per_mtok"], r["output_reasoning_usd_per_mtok"]) for r in rows} == {(8.0, 3.0)}


def test_prices_show_counts_events_by_their_current_mapping_and_those_no_row_covers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOPLEDGER_DB", raising=False)
    base = {"provider": "internal", "model": "llama-x", "input_tokens": 1000, "output_tokens": 10}
    gpt = {"ts": "2026-03-10T09:00:00Z", "provider": "openai", "model": "gpt-5", "input_tokens": 10}
    events = [{**base, "ts": "2026-03-02T09:00:00Z"}, {**base, "ts": "2026-03-10T09:00:00Z"}, gpt]
    src = tmp_path / "u.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    db = tmp_path / "l.duckdb"
    run("ingest", str(src), "--db", str(db))  # llama-x has no price yet: stored unpriced
    prices = tmp_path / "p.toml"
    prices.write_text(
        '[[model]]\nprovider = "internal"\nmodel = "llama-x"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 2.0\nvalid_from = 2026-03-05\n"
        '[[model]]\nprovider = "openai"\nmodel = "gpt-5"\ninput_usd_per_mtok = 100.0\n'
        "output_usd_per_mtok = 200.0\n"
    )
    show = (
        "prices",
        "show",
        "llama-x",
        "--provider",
        "internal",
        "--overrides",
        str(prices),
        "--db",
        str(db),
    )
    result = CliRunner().invoke(app, [*show, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    # Mapped as reprice would map it now, though stored unpriced; the March 2 event predates the price.
    assert [(r["variant"], r["events"]) for r in rows if r["events"]] == [("standard", 1), (None, 1)]
    assert rows[-1]["input_usd_per_mtok"] is None and "no price row covers" in result.stderr
    # gpt-5 declared private: its event counts under the private rows, at their price.
    private = ("prices", "show", "gpt-5", "--provider", "openai", "--overrides", str(prices), "--db", str(db))
    rows = json.loads(run(*private, "--format", "json"))
    assert sum(r["events"] for r in rows) == 1 and sum(r["cost_usd"] for r in rows) == pytest.approx(1e-3)
    # The default ledger is used when it can be read; when it cannot, the catalog alone is shown.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flopledger.duckdb").write_text("not a ledger")
    result = CliRunner().invoke(app, ["prices", "show", "gpt-5", "--format", "json"])
    assert result.exit_code == 0 and "the catalog alone" in result.stderr
    assert "events" not in json.loads(result.stdout)[0]
    result = CliRunner().invoke(app, ["prices", "show", "gpt-5", "--db", "flopledger.duckdb"])
    assert result.exit_code != 0 and "cannot read the ledger" in str(result.exception)


def test_tables_print_values_as_they_are_and_align_by_the_first_filled_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime as dt
    import io

    from rich.console import Console

    from flopledger.cli import output

    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=200, color_system=None))
    midnight, later = dt.datetime(2026, 10, 14), dt.datetime(2026, 3, 2, 9, 15)
    rows = [
        {"valid_to": midnight, "seen": midnight, "tier_above_tokens": None},
        {"valid_to": None, "seen": later, "tier_above_tokens": 200_000},
    ]
    output.render_rows(rows, output.OutputFormat.table)
    first, second = (line.split("│")[1:4] for line in out.getvalue().splitlines() if line.startswith("│"))
    assert first[0].strip() == "2026-10-14 00:00:00"  # a midnight is a time like any other (report --by hour)
    assert (first[1].strip(), second[1].strip()) == ("2026-10-14 00:00:00", "2026-03-02 09:15:00")
    assert second[2].endswith("200,000 ")  # right-aligned, though the first row's tier is blank
    # no rows: said, not a blank line; JSON and CSV stay a list and a header
    out.truncate(0)
    out.seek(0)
    output.render_rows([], output.OutputFormat.table, title="Cost by team")
    assert out.getvalue().strip() == "Cost by team: none"


def test_ingest_cli_prints_the_reconciliation_and_fails_clearly(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_text("when,m,toks\n2026-03-02T10:00:00Z,gpt-5,100\nnope,gpt-5,1\n", encoding="utf-8")
    db = str(tmp_path / "l.duckdb")
    out = json.loads(
        run(
            "ingest",
            str(src),
            "--db",
            db,
            "--map",
            "ts=when,model=m,input_tokens=toks",
            "--set",
            "provider=openai",
            "-o",
            "json",
        )
    )
    assert out[0]["rows_read"] == 2 and out[0]["rows_stored"] == 1 and out[0]["rows_quarantined"] == 1
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--db", db])
    assert result.exit_code != 0 and "no such file" in str(result.exception)
    result = CliRunner().invoke(app, ["ingest", str(src), "--db", db, "--map", "ts=when,model=nosuch"])
    assert result.exit_code != 0 and "no column 'nosuch'" in str(result.exception)


@pytest.mark.slow
def test_flopledger_demo_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    out = run("demo", "--db", str(db))
    assert "Top 10 teams by cost" in out and "Cost by model" in out and "Headline versus real" in out
    rows = json.loads(run("report", "--db", str(db), "--by", "team", "--format", "json"))
    assert len(rows) >= 20
    users = json.loads(run("report", "--db", str(db), "--by", "user", "--format", "json"))
    assert len(users) >= 500
    models = {
        r["model"] for r in json.loads(run("report", "--db", str(db), "--by", "model", "--format", "json"))
    }
    assert len(models) >= 5
    result = CliRunner().invoke(app, ["demo", "--db", str(db)])
    assert result.exit_code != 0  # never overwrites an existing ledger


def test_the_demo_bots_are_what_the_integrity_scan_flags(tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path_factory.mktemp("bots") / "demo.duckdb"
    org = dataclasses.replace(SMALL, engineers=120, days=14, bots=3, bot_start_day=5, bot_gap_s=300.0)
    result = build_demo_ledger(db, org=org)
    flagged = json.loads(run("integrity", "scan", "--db", str(db), "--format", "json"))
    assert {f["account"] for f in flagged if f["kind"] == "token_burn"} == set(result.files.bot_users)
    assert not [f for f in flagged if f["kind"] == "distillation"]


def test_engine_names_of_the_cli_are_the_engines_there_are() -> None:
    from flopledger.cli.ledger_finops import EngineName
    from flopledger.ledger.spark import ENGINES

    assert {e.value for e in EngineName} == set(ENGINES)


def test_cli_start_up_leaves_the_analytics_libraries_unloaded() -> None:
    """Every command pays the CLI's import time: Ibis, scipy and stix2 load when a command needs them."""
    import subprocess
    import sys

    heavy = ("ibis", "scipy", "stix2", "pandas")
    code = f"import sys, flopledger.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_names_and_messages_with_brackets_print_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich would read "[infra]" or "[[model]]" as markup and drop it: tables and errors print text."""
    from flopledger.cli import main

    src = tmp_path / "u.jsonl"
    src.write_text(
        '{"ts": "2026-03-02T10:00:00Z", "provider": "openai", "model": "gpt-5", "team": "[infra]",'
        ' "input_tokens": 100}\n',
        encoding="utf-8",
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    table = run("report", "--by", "team", "--db", db)
    assert "[infra]" in table
    with pytest.raises(SystemExit) as stop:
        main(["prices", "show", "no-such-model", "--db", db])
    assert stop.value.code == 1
    assert "add it as a [[model]] in the overrides file" in capsys.readouterr().err


def test_an_overrides_file_the_user_names_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped --overrides would reprice history without its negotiated prices: it is an error."""
    src = tmp_path / "u.jsonl"
    src.write_text(
        '{"ts": "2026-03-02T10:00:00Z", "provider": "openai", "model": "gpt-5", "input_tokens": 100}\n',
        encoding="utf-8",
    )
    db = str(tmp_path / "l.duckdb")
    monkeypatch.chdir(tmp_path)  # no ./flopledger-prices.toml here: the default means no overrides
    monkeypatch.delenv("FLOPLEDGER_OVERRIDES", raising=False)
    run("ingest", str(src), "--db", db)
    run("reprice", "--db", db)
    typo = CliRunner().invoke(app, ["reprice", "--db", str(tmp_path / "typo.duckdb")])
    assert typo.exit_code != 0 and "no ledger at" in str(typo.exception)
    assert not (tmp_path / "typo.duckdb").exists()
    missing = tmp_path / "prices.tml"
    result = CliRunner().invoke(app, ["reprice", "--db", db, "--overrides", str(missing)])
    assert result.exit_code != 0 and "no such overrides file" in str(result.exception)
    monkeypatch.setenv("FLOPLEDGER_OVERRIDES", str(missing))
    result = CliRunner().invoke(app, ["ingest", str(src), "--db", db])
    assert result.exit_code != 0 and "no such overrides file" in str(result.exception)


def test_ingest_format_outcomes_reconciles_in_every_output(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("user,ts,kind,weight\nana,2026-03-02T10:00:00Z,commit,1\nbob,yesterday,commit,1\n")
    db = str(tmp_path / "l.duckdb")
    (row,) = json.loads(run("ingest", str(path), "--format", "outcomes", "--db", db, "-o", "json"))
    assert row == {"rows_read": 2, "rows_stored": 1, "rows_quarantined": 1, "rows_duplicate": 0}
    (bad,) = json.loads(run("quarantine", "list", "--db", db, "--format", "json"))
    assert (bad["source_format"], bad["source_line"], bad["field"]) == ("outcomes", 3, "ts")
    assert "1 row(s) quarantined" in run("ingest", str(path), "--format", "outcomes", "--db", db)
    # the run of outcomes is named by the id its quarantined rows bear (it records no ingest run)
    by_run = json.loads(
        run("quarantine", "list", "--db", db, "--ingest", bad["ingest_id"][:14], "-f", "json")
    )
    assert [r["source_line"] for r in by_run] == [3]
    unknown = CliRunner().invoke(app, ["quarantine", "list", "--db", db, "--ingest", "outcomes-ffff"])
    assert unknown.exit_code != 0 and "no run of outcomes 'outcomes-ffff'" in str(unknown.exception)


def test_serve_and_tokens_refuse_bad_setups_before_they_start(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.toml"
    bad.write_text("[team.research]\nmonthly_usd = -5\n")
    db = str(tmp_path / "l.duckdb")
    result = CliRunner().invoke(app, ["serve", "--db", db, "--budgets", str(bad), "--port", "8"])
    assert result.exit_code != 0 and "budgets.toml" in str(result.exception)
    assert "monthly_usd" in str(result.exception)
    result = CliRunner().invoke(app, ["serve", "--db", db, "--port", "99999"])
    assert result.exit_code == 2 and "65535" in result.output
    for command in (["tokens", "list"], ["tokens", "revoke", "abc"]):
        result = CliRunner().invoke(app, [*command, "--db", str(tmp_path / "typo.duckdb")])
        assert result.exit_code != 0 and "no ledger at" in str(result.exception), command
    assert not (tmp_path / "typo.duckdb").exists()


def test_per_active_hour_leaves_out_usage_report_rows_which_have_no_hours(tmp_path: Path) -> None:
    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    requests = tmp_path / "r.jsonl"
    requests.write_text(
        "".join(
            json.dumps(
                {
                    "ts": f"2026-03-02T{h:02d}:10:00Z",
                    "provider": "openai",
                    "model": "gpt-5",
                    "user": "user-Xy7pQ2wE9rT4uI1o",
                    "input_tokens": 1_000_000,
                }
            )
            + "\n"
            for h in (9, 9, 14)
        )
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(sample), "--db", db)
    run("ingest", str(requests), "--db", db)
    rows = json.loads(run("report", "--db", db, "--by", "user", "--per-active-hour", "-f", "json"))
    mixed = next(r for r in rows if r["user"] == "user-Xy7pQ2wE9rT4uI1o")
    assert mixed["active_hours"] == 2  # 09:00 and 14:00; the report's daily bucket has no hour
    assert mixed["cost_usd_per_active_hour"] == pytest.approx(3 * 1.25 / 2)  # the requests' cost only
    only_report = [r for r in rows if r["user"] != "user-Xy7pQ2wE9rT4uI1o"]
    assert only_report and all(
        r["active_hours"] == 0 and r["cost_usd_per_active_hour"] is None for r in only_report
    )


def test_prices_show_prints_its_midnight_bounds_as_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOPLEDGER_DB", raising=False)
    table = run("prices", "show", "gpt-5")
    assert "2026-10-12" in table and "2026-10-12 00:00:00" not in table
    (row, *_) = json.loads(run("prices", "show", "gpt-5", "-f", "json"))
    assert str(row["valid_to"]).startswith("2026-10-12T00:00:00")  # machines keep the instant


def test_ingest_says_when_a_usage_report_file_ends_before_its_last_page(tmp_path: Path) -> None:
    samples = Path(__file__).parent / "formats" / "samples"
    short = samples / "anthropic_messages_report.json"  # one page of several: has_more, a next_page
    db = str(tmp_path / "l.duckdb")
    result = CliRunner().invoke(app, ["ingest", str(short), "--db", db, "-o", "json"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert f"{short}: its last page says more pages follow" in said and "no file of this run has them" in said
    assert "from page=page_MjAyNi0wMy0wNFQwMDowMDowMFo=" in said and "this run's rows are kept" in said
    assert json.loads(result.stdout)[0]["rows_stored"] > 0  # the page's rows are stored all the same
    # pages up to the last (has_more false on it), a JSON Lines file of pages, an OpenAI page: nothing said
    for whole in (
        "anthropic_report_pages.json",
        "anthropic_report_pages.jsonl",
        "openai_usage_completions.json",
    ):
        other = str(tmp_path / f"{whole}.duckdb")
        done = CliRunner().invoke(app, ["ingest", str(samples / whole), "--db", other, "-o", "json"])
        assert done.exit_code == 0 and "more pages follow" not in done.stderr, done.stderr
    # the two pages of a report in two files, or in a list out of order: the run has the page after
    first, second = json.loads((samples / "anthropic_report_pages.json").read_text())
    (tmp_path / "p1.json").write_text(json.dumps(first))
    (tmp_path / "p2.json").write_text(json.dumps(second))
    (tmp_path / "turned.json").write_text(json.dumps([second, first]))
    for run_files in ([tmp_path / "p1.json", tmp_path / "p2.json"], [tmp_path / "turned.json"]):
        other = str(tmp_path / f"{run_files[0].stem}.duckdb")
        done = CliRunner().invoke(app, ["ingest", *map(str, run_files), "--db", other, "-o", "json"])
        assert done.exit_code == 0 and "more pages follow" not in done.stderr, done.stderr
    alone = CliRunner().invoke(app, ["ingest", str(tmp_path / "p1.json"), "--db", str(tmp_path / "a.duckdb")])
    assert f"{tmp_path / 'p1.json'}: its last page says more pages follow" in " ".join(alone.stderr.split())
    # a page that says more follow, downloaded twice into one file; a report of later days beside
    # one cut short: each still short of its pages
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps([first, first]))
    said = CliRunner().invoke(app, ["ingest", str(twice), "--db", str(tmp_path / "t.duckdb")]).stderr
    assert f"{twice}: its last page says more pages follow" in " ".join(said.split())
    later = json.loads(json.dumps(second))
    for bucket in later["data"]:
        bucket["starting_at"] = bucket["starting_at"].replace("2026-03-", "2026-04-")
        bucket["ending_at"] = bucket["ending_at"].replace("2026-03-", "2026-04-")
    (tmp_path / "april.json").write_text(json.dumps(later))
    both = CliRunner().invoke(
        app,
        [
            "ingest",
            str(tmp_path / "p1.json"),
            str(tmp_path / "april.json"),
            "--db",
            str(tmp_path / "b.duckdb"),
        ],
    )
    assert f"{tmp_path / 'p1.json'}: its last page says more pages follow" in " ".join(both.stderr.split())
    # an OpenAI page with more to come, its format named
    page = json.loads((samples / "openai_usage_completions.json").read_text())
    page |= {"has_more": True, "next_page": None}
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(page))
    told = CliRunner().invoke(app, ["ingest", str(cut), "--db", db, "--format", "openai"])
    assert told.exit_code == 0 and "more pages follow (has_more) and no file" in " ".join(told.stderr.split())


def test_prices_show_says_which_tier_prices_apply_before_the_catalog_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOPLEDGER_DB", raising=False)
    result = CliRunner().invoke(app, ["prices", "show", "gpt-5"])
    assert result.exit_code == 0, result.output
    told = " ".join(result.stderr.split())
    assert "priority from 2026-10-12" in told and "batch from 2026-10-14" in told, told
    rows = json.loads(run("prices", "show", "gpt-5", "-f", "json"))
    first = {r["variant"]: r for r in rows if r["valid_from"] is None}
    assert first["priority"]["input_usd_per_mtok"] == 2 * first["standard"]["input_usd_per_mtok"]
    assert "priority price listed from 2026-10-12 applied before it" in first["priority"]["source"]
    assert first["standard"]["source"].startswith("genai-prices") and "; " not in first["standard"]["source"]
    latest = [r for r in rows if r["valid_to"] is None]
    assert all("applied before it" not in r["source"] for r in latest)  # listed: the catalog's own


def test_a_report_with_unpriced_tokens_says_their_cost_counts_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,provider,model,input_tokens,output_tokens\n"
        "2026-03-01T10:00:00Z,vllm,llama-3.1-70b,1000,10\n"
        "2026-03-01T10:00:00Z,openai,gpt-4o,1000,10\n"
        "2026-03-02T10:00:00Z,openai,gpt-4o,1000,10\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(path), "--db", db)
    for fmt in ("table", "json", "csv"):
        result = CliRunner().invoke(app, ["report", "--db", db, "--by", "model", "-f", fmt])
        assert result.exit_code == 0
        assert "1,010 tokens have no price" in result.stderr and "prices missing" in result.stderr
        assert "no price" not in result.stdout  # JSON and CSV stay whole
    # a window with priced rows only: rows, and no word of unpriced tokens
    priced = CliRunner().invoke(
        app, ["report", "--db", db, "--by", "model", "--since", "2026-03-02", "-f", "json"]
    )
    assert priced.exit_code == 0 and [r["model"] for r in json.loads(priced.stdout)] == ["gpt-4o"]
    assert "no price" not in priced.stderr
    # --limit shows the costliest row, priced: the window's unpriced tokens are still told
    top = CliRunner().invoke(app, ["report", "--db", db, "--by", "model", "--limit", "1", "-f", "json"])
    assert top.exit_code == 0 and [r["model"] for r in json.loads(top.stdout)] == ["gpt-4o"]
    assert "1,010 tokens have no price (0 in the rows shown)" in top.stderr
    whole = CliRunner().invoke(app, ["report", "--db", db, "--by", "model", "--limit", "5", "-f", "json"])
    assert "1,010 tokens have no price:" in whole.stderr  # every row shown: nothing more to say
    later = ["report", "--db", db, "--by", "model", "--since", "2026-03-02", "--limit", "1", "-f", "json"]
    assert "no price" not in CliRunner().invoke(app, later).stderr  # the window's unpriced tokens only


def test_prices_show_of_a_model_priced_by_overrides_names_the_overrides_it_needs(tmp_path: Path) -> None:
    overrides = tmp_path / "ov.toml"
    overrides.write_text(
        '[[model]]\nprovider = "vllm"\nmodel = "llama-3.1-70b"\n'
        "input_usd_per_mtok = 0.4\noutput_usd_per_mtok = 0.8\n"
    )
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,provider,model,input_tokens,output_tokens\n2026-03-01T10:00:00Z,vllm,llama-3.1-70b,1000,10\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(path), "--db", db, "--overrides", str(overrides))
    without = CliRunner().invoke(app, ["prices", "show", "llama-3.1-70b", "--db", db])
    assert without.exit_code != 0
    message = str(without.exception)
    assert "the ledger's 1 events of it were priced with" in message and "--overrides" in message
    shown = run("prices", "show", "llama-3.1-70b", "--db", db, "--overrides", str(overrides), "-f", "json")
    assert {r["input_usd_per_mtok"] for r in json.loads(shown)} == {0.4}
    unknown = CliRunner().invoke(app, ["prices", "show", "no-such-model", "--db", db])
    assert "add it as a [[model]]" in str(unknown.exception)


def test_ingest_says_when_an_organisations_rows_are_taken_for_rows_stored_without_one(tmp_path: Path) -> None:
    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(sample), "--db", db)
    labelled = CliRunner().invoke(app, ["ingest", str(sample), "--db", db, "--set", "org=globex"])
    assert labelled.exit_code == 0
    assert "taken for rows stored without an organisation" in labelled.stderr
    assert "flopledger ingests undo" in labelled.stderr and "--set org" in labelled.stderr
    again = CliRunner().invoke(app, ["ingest", str(sample), "--db", db])  # none said: nothing to tell
    assert again.exit_code == 0 and "organisation" not in again.stderr


def test_a_db_that_is_a_data_file_or_in_no_folder_is_one_clear_error(tmp_path: Path) -> None:
    """``--db`` naming the CSV to ingest would open it as an empty database in memory and lose the
    run; a folder that does not exist is said, not DuckDB's IO error. Neither file is touched."""
    src = tmp_path / "u.csv"
    src.write_text("ts,model,input_tokens\n2026-03-02T10:00:00Z,gpt-5,100\n", encoding="utf-8")
    before = src.read_bytes()
    for command in (["ingest", str(src), "--db", str(src)], ["report", "--by", "model", "--db", str(src)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code != 0 and "is not a DuckDB ledger" in str(result.exception), command
        assert "give --db a ledger's path" in str(result.exception)
    assert src.read_bytes() == before
    nowhere = tmp_path / "no" / "l.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(src), "--db", str(nowhere)])
    assert result.exit_code != 0 and f"its folder {nowhere.parent} does not exist" in str(result.exception)
    assert not nowhere.parent.exists()
    run("ingest", str(src), "--db", str(tmp_path / "l.duckdb"))  # a real ledger still opens, and again
    run("report", "--by", "model", "--db", str(tmp_path / "l.duckdb"))


@pytest.mark.parametrize(
    ("flag", "given", "said"),
    [
        ("--map", "timestamp=Time Stamp", "e.g. --map ts=Time Stamp"),  # the source's name for ts
        ("--map", "Time Stamp=ts", "e.g. --map ts=Time Stamp"),  # the two sides swapped
        ("--map", "prompt_tokens=p", "e.g. --map input_tokens=p"),
        # a file column named like a canonical one (prompt: its input counts) on the right side
        ("--map", "tokens_in=prompt", "e.g. --map input_tokens=prompt"),
        ("--map", "prompt_tokens=input_tokens", "e.g. --map input_tokens=prompt_tokens"),  # swapped
        ("--map", "prompt_cache_miss_tokens=m", "e.g. --map input_tokens=m"),  # uncached input
        ("--map", "completion_reasoning_tokens=r", "e.g. --map reasoning_tokens=r"),
        (
            "--map",
            "input_audio_tokens=a",
            "unknown canonical column in --map 'input_audio_tokens'",
        ),  # no guess
        (
            "--set",
            "time=2026-03-02T10:00:00Z",
            "--set takes canonical=value, e.g. --set ts=2026-03-02T10:00:00Z",
        ),
        ("--map", "modle=m", "did you mean 'model'"),
    ],
)
def test_a_wrong_canonical_name_says_the_right_one(tmp_path: Path, flag: str, given: str, said: str) -> None:
    src = tmp_path / "u.csv"
    src.write_text("ts,model,input_tokens\n2026-03-02T10:00:00Z,gpt-5,100\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(src), "--db", str(tmp_path / "l.duckdb"), flag, given])
    assert result.exit_code != 0 and said in str(result.exception), str(result.exception)
    if "e.g." in said:
        assert "Canonical columns: ts, request_id, provider, model" in str(result.exception)
    assert "e.g. --map input_tokens=a" not in str(result.exception)  # audio is no text input


def test_web_searches_are_priced_and_audio_tokens_said_to_have_no_price(tmp_path: Path) -> None:
    """The golden Anthropic report's 15 web searches are billed per search into cost_usd; the OpenAI
    report's audio tokens have no price of flopledger's own: the ingest and `prices missing` say so."""
    samples = Path(__file__).parent / "formats" / "samples"
    db = str(tmp_path / "l.duckdb")
    files = [str(samples / "openai_usage_completions.json"), str(samples / "anthropic_messages_report.json")]
    ingested = CliRunner().invoke(app, ["ingest", *files, "--db", db, "-o", "json"])
    assert ingested.exit_code == 0, ingested.output
    said = "5,000 input audio tokens, 3,000 output audio tokens: cost_usd leaves them out"
    assert f"In this run's events, {said}" in ingested.stderr
    assert "web search" not in ingested.stderr  # priced: nothing to say
    assert json.loads(ingested.stdout)[0]["rows_stored"] > 0  # stdout stays the reconciliation
    con = duckdb.connect(db, read_only=True)
    searches, cost, others = con.execute(
        "SELECT sum(web_search_requests), sum(web_search_cost_usd), "
        "sum(cost_usd - web_search_cost_usd - input_tokens_cost_usd - cache_read_tokens_cost_usd "
        "- cache_write_5m_tokens_cost_usd - cache_write_1h_tokens_cost_usd - output_tokens_cost_usd "
        "- request_cost_usd) FROM events"
    ).fetchone()
    con.close()
    assert (searches, cost) == (15, pytest.approx(0.15)) and others == pytest.approx(0.0, abs=1e-9)
    again = CliRunner().invoke(app, ["ingest", *files, "--db", db])
    assert again.exit_code == 0 and "cost_usd leaves them out" not in again.stderr  # nothing stored anew
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", db, "-f", "json"])
    assert listed.exit_code == 0 and said in listed.stderr
    audio = json.loads(listed.stdout)  # one list on stdout: the usage no cost covers, with what to do
    assert [(r["usage"], r["amount"], r["tokens"]) for r in audio] == [
        ("input_audio_tokens", 5000, None),
        ("output_audio_tokens", 3000, None),
    ]
    assert all(r["what_to_do"].startswith("flopledger has no price of its own") for r in audio)
    assert all(r["first_seen"] and r["first_seen"] <= r["last_seen"] for r in audio)
    as_csv = CliRunner().invoke(app, ["prices", "missing", "--db", db, "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["usage"], r["amount"]) for r in rows] == [
        ("input_audio_tokens", "5000"),
        ("output_audio_tokens", "3000"),
    ]
    table = run("prices", "missing", "--db", db)
    assert "Every event has a price for its tokens." in table
    assert any("input_audio_tokens" in line and "5,000" in line for line in table.splitlines())
    assert "web_search_requests" not in table


def test_web_searches_no_price_covers_are_listed(tmp_path: Path) -> None:
    """A table's web_search_requests column is read and priced; a private model whose price has
    none for searches prices them at 0, and `prices missing` says so (then an override prices them)."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens,web_search_requests\n"
        "2026-03-01T10:00:00Z,anthropic,claude-sonnet-4-5,1000,4\n"
        "2026-03-01T10:01:00Z,internal,house-llm,1000,6\n"
        "2026-03-01T10:02:00Z,internal,house-llm,1000,\n"
    )
    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[model]]\nprovider = "internal"\nmodel = "house-llm"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 2.0\n"
    )
    db = str(tmp_path / "l.duckdb")
    ingested = CliRunner().invoke(app, ["ingest", str(src), "--db", db, "--overrides", str(overrides)])
    assert ingested.exit_code == 0, ingested.output
    assert "In this run's events, 6 web search requests: cost_usd leaves them out" in ingested.stderr
    assert "usd_per_web_search" in ingested.stderr  # what to do
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", db, "-f", "json"])
    assert "6 web search requests" in listed.stderr
    (searched,) = json.loads(listed.stdout)
    assert (searched["model"], searched["usage"], searched["amount"], searched["events"]) == (
        "house-llm",
        "web_search_requests",
        6,
        1,
    )
    assert "usd_per_web_search" in searched["what_to_do"]
    with_price = overrides.read_text() + "usd_per_web_search = 0.02\n"
    overrides.write_text(with_price)
    run("reprice", "--db", db, "--overrides", str(overrides))
    report = json.loads(run("report", "--db", db, "--by", "model", "-f", "json"))
    by_model = {r["model"]: r for r in report}
    assert by_model["claude-sonnet-4-5"]["web_search_cost_usd"] == pytest.approx(0.04)
    assert by_model["house-llm"]["web_search_requests"] == 6
    assert by_model["house-llm"]["web_search_cost_usd"] == pytest.approx(0.12)
    assert by_model["house-llm"]["cost_usd"] == pytest.approx(0.002 + 0.12)
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", db])
    assert listed.exit_code == 0 and "web_search_requests" not in listed.output
    # the headline's bills all carry the searches, and they are a class of the real bill
    view = json.loads(run("report", "--db", db, "--headline", "-f", "json"))
    (searched,) = [c for c in view["classes"] if c["token_class"] == "web_search_requests"]
    assert (searched["searches"], searched["cost_usd"]) == (10, pytest.approx(0.16))
    assert sum(c["cost_share"] for c in view["classes"] if c["billed_apart"]) == pytest.approx(1.0, abs=1e-5)
    tokens_as_output = (1000 * 15 + 2000 * 2) / 1e6  # at output rates: claude $15, house-llm $2
    assert view["all_as_output_cost_usd"] == pytest.approx(tokens_as_output + 0.16)
    assert "10 searches" in run("report", "--db", db, "--headline")
    rows = list(csv.DictReader(io.StringIO(run("report", "--db", db, "--headline", "-f", "csv"))))
    (as_csv,) = [r for r in rows if r["item"] == "web_search_requests"]
    assert (as_csv["searches"], as_csv["tokens"], float(as_csv["cost_usd"])) == (
        "10",
        "",
        pytest.approx(0.16),
    )


def test_a_discount_that_matches_nothing_and_history_priced_two_ways_are_said(tmp_path: Path) -> None:
    """A typo in a discount would price at list without a word; an ingest without the overrides a
    reprice used leaves the ledger on two price versions. Both are said on stderr."""
    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[discount]]\nprovider = "anthropc"\nmodel = "claude-sonet*"\npercent = 10\n'
        '[[discount]]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\npercent = 20\n'
    )
    db = str(tmp_path / "l.duckdb")
    day1, day2 = tmp_path / "d1.csv", tmp_path / "d2.csv"
    for path, day in ((day1, "02"), (day2, "03")):
        path.write_text(
            f"ts,provider,model,input_tokens\n2026-03-{day}T10:00:00Z,anthropic,claude-sonnet-4-5,1000\n"
        )
    first = CliRunner().invoke(app, ["ingest", str(day1), "--db", db])
    assert first.exit_code == 0 and "price versions" not in first.stderr
    repriced = CliRunner().invoke(app, ["reprice", "--db", db, "--overrides", str(overrides)])
    assert repriced.exit_code == 0
    assert repriced.stderr.count("matches no catalog model") == 1
    assert "provider=anthropc model='claude-sonet*' (10%) matches no catalog model" in repriced.stderr
    drifted = CliRunner().invoke(app, ["ingest", str(day2), "--db", db])
    assert drifted.exit_code == 0
    assert "now priced by 2 price versions: this run's 'genai-prices" in drifted.stderr
    assert "overrides none" in drifted.stderr and "(1 event(s))" in drifted.stderr
    again = CliRunner().invoke(app, ["reprice", "--db", db, "--overrides", str(overrides)])
    assert again.exit_code == 0
    costs = CliRunner().invoke(app, ["report", "--by", "day", "--db", db, "-f", "json"])
    assert [round(r["cost_usd"], 6) for r in json.loads(costs.stdout)] == [0.0024, 0.0024]  # 20% off $3
    day3 = tmp_path / "d3.csv"
    day3.write_text(day2.read_text().replace("2026-03-03", "2026-03-04"))
    kept = CliRunner().invoke(
        app, ["ingest", str(day3), "--db", db, "--overrides", str(overrides), "-o", "json"]
    )
    assert kept.exit_code == 0 and json.loads(kept.stdout)[0]["rows_stored"] == 1
    assert "price versions" not in kept.stderr  # one version: nothing said


def test_an_empty_window_and_a_column_given_twice_are_errors(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_text("ts,model,Team,input_tokens\n2026-03-02T10:00:00Z,gpt-5,web,100\n", encoding="utf-8")
    db = str(tmp_path / "l.duckdb")
    both = CliRunner().invoke(
        app, ["ingest", str(src), "--db", db, "--map", "team=Team", "--set", "team=core"]
    )
    assert both.exit_code != 0
    assert "--map team=Team and --set team=core both give team" in str(both.exception)
    run("ingest", str(src), "--db", db, "--map", "team=Team")
    window = ["--since", "2026-03-03", "--until", "2026-03-02"]
    for extra in (["--by", "team"], ["--headline"]):
        result = CliRunner().invoke(app, ["report", "--db", db, *window, *extra])
        said = str(result.exception)
        assert result.exit_code != 0 and "is not before the window's end, 2026-03-03 00:00:00" in said, extra
    # a day given to --until is the window's last day, as export --until and the API's until take it
    day = json.loads(
        run("report", "--db", db, "--since", "2026-03-02", "--until", "2026-03-02", "-f", "json")
    )
    assert [(r["team"], r["input_tokens"]) for r in day] == [("web", 100)]
    # a time given to --until ends the window before it
    before = CliRunner().invoke(
        app, ["report", "--db", db, "--since", "2026-03-02", "--until", "2026-03-02T00:00", "-f", "json"]
    )
    assert before.exit_code != 0 and "the window is empty" in str(before.exception)
    # a window with no events says where the ledger's events are, whatever the format
    for extra in (["-f", "json"], ["--headline"]):
        later = CliRunner().invoke(app, ["report", "--db", db, "--since", "2026-04-01", *extra])
        assert later.exit_code == 0, later.output
        assert (
            "No events from 2026-04-01 00:00 UTC: the ledger's 1 events run from 2026-03-02 10:00 to "
            "2026-03-02 10:00 UTC (--since 2026-03-02 --until 2026-03-02 covers them)." in later.stderr
        ), extra
    assert json.loads(run("report", "--db", db, "--since", "2026-04-01", "-f", "json")) == []
    from flopledger.ledger.store import open_ledger

    open_ledger(tmp_path / "fresh.duckdb").close()
    fresh = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "fresh.duckdb")])
    assert "The ledger has no events: ingest usage first" in fresh.stderr
    assert "No events" not in CliRunner().invoke(app, ["report", "--db", db, "--limit", "0"]).stderr
    # a window whose events have no tokens (web searches alone) is not said to be empty
    searches = tmp_path / "s.csv"
    searches.write_text(
        "ts,model,provider,input_tokens,web_search_requests\n2026-03-05T10:00:00Z,claude-sonnet-4-5,anthropic,0,4\n",
        encoding="utf-8",
    )
    run("ingest", str(searches), "--db", db)
    only = CliRunner().invoke(app, ["report", "--db", db, "--headline", "--since", "2026-03-05"])
    assert only.exit_code == 0 and "No events" not in only.stderr, only.stderr
    # a day in the basic form is a day too, the whole of it
    basic = json.loads(run("report", "--db", db, "--since", "20260302", "--until", "20260302", "-f", "json"))
    assert [r["input_tokens"] for r in basic] == [100]
    bad = CliRunner().invoke(app, ["report", "--db", db, "--until", "March"])
    assert bad.exit_code != 0 and "--until 'March' is not a day or a time: give YYYY-MM-DD" in str(
        bad.exception
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            "requests=abc",
            "--set requests=abc: requests 'abc' is not a whole, non-negative number; nothing stored",
        ),
        ("service_tier=turbo", "service_tier 'turbo' is not one of standard, batch, priority, flex"),
        ("ts=yesterday", "--set ts=yesterday: ts 'yesterday' is not a timestamp"),
    ],
)
def test_a_set_value_every_row_refuses_is_one_error(tmp_path: Path, given: str, said: str) -> None:
    src = tmp_path / "u.csv"
    src.write_text("ts,model,input_tokens\n2026-03-02T10:00:00Z,gpt-5,100\n2026-03-02T11:00:00Z,gpt-5,7\n")
    db = tmp_path / "l.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(src), "--db", str(db), "--set", given])
    assert result.exit_code != 0 and said in str(result.exception), str(result.exception)
    # nothing of the run is stored, nor quarantined row by row
    con = duckdb.connect(str(db))
    assert con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)"
    ).fetchone() == (0, 0)
    con.close()


def test_usage_no_price_covers_is_counted_by_kind_and_window_times_compare_in_utc(tmp_path: Path) -> None:
    from flopledger.ledger.repricing import unpriced_usage
    from flopledger.ledger.store import open_ledger

    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens,tags\n"
        '2026-03-01T10:00:00Z,openai,gpt-4o,100,"{""input_audio_tokens"":500}"\n'
        '2026-03-01T10:01:00Z,openai,gpt-4o,100,"{""input_audio_tokens"":500}"\n'
        '2026-03-01T10:02:00Z,openai,gpt-4o,100,"{""output_audio_tokens"":3}"\n'
    )
    db = tmp_path / "l.duckdb"
    run("ingest", str(src), "--db", str(db))
    con = open_ledger(db, read_only=True)
    got = [(r["usage"], r["amount"], r["events"]) for r in unpriced_usage(con)]
    con.close()
    assert got == [("input_audio_tokens", 1000, 2), ("output_audio_tokens", 3, 1)]
    # a time with an offset and one without (UTC) compare as times: 11:30+02:00 is 09:30 UTC
    mixed = ["--since", "2026-03-01T11:30:00+02:00", "--until", "2026-03-01T10:01:30"]
    rows = json.loads(run("report", "--db", str(db), *mixed, "-f", "json"))
    assert sum(r["input_tokens"] for r in rows) == 200
    empty = CliRunner().invoke(
        app,
        ["report", "--db", str(db), "--since", "2026-03-01T13:00:00+02:00", "--until", "2026-03-01T10:00"],
    )
    assert empty.exit_code != 0 and "--since 2026-03-01 11:00:00 UTC is not before" in str(empty.exception)


def test_a_set_column_a_ragged_record_lacks_is_not_blamed_on_the_flag(tmp_path: Path) -> None:
    """Records of fewer fields than the header are bad rows of the file, whatever --set gives."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,model,input_tokens,team\n2026-03-01T10:00:00Z,gpt-4o,100\n2026-03-01T10:01:00Z,gpt-4o,7\n"
    )
    out = json.loads(
        run("ingest", str(src), "--db", str(tmp_path / "l.duckdb"), "--set", "team=ml", "-o", "json")
    )
    assert (out[0]["rows_stored"], out[0]["rows_quarantined"]) == (0, 2)


def test_prices_missing_says_when_the_catalog_prices_a_model_now(tmp_path: Path) -> None:
    """Events an earlier catalog or flopledger left unpriced (Bedrock's regional Claude) are told to
    reprice, not to add an override for a name that is right."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens\n"
        "2026-11-02T09:00:00Z,bedrock,us.anthropic.claude-sonnet-4-5-20250929-v1:0,1000000\n"
        "2026-11-02T09:00:00Z,acme,no-such-model-x1,1000\n"
    )
    db = tmp_path / "l.duckdb"
    run("ingest", str(src), "--db", str(db))
    con = duckdb.connect(str(db))
    con.execute("UPDATE events SET priced = false, cost_usd = NULL, price_model = NULL")  # as left before
    con.close()
    missing = {
        r["model"]: r["what_to_do"]
        for r in json.loads(run("prices", "missing", "--db", str(db), "-f", "json"))
    }
    assert missing["us.anthropic.claude-sonnet-4-5-20250929-v1:0"].startswith(
        "the catalog has prices for it (as aws/regional.anthropic.claude-sonnet-4-5-20250929-v1:0): run "
        "`flopledger reprice`"
    )
    assert missing["no-such-model-x1"].startswith("add a [[model]] price to the overrides file")
    run("reprice", "--db", str(db))
    left = json.loads(run("prices", "missing", "--db", str(db), "-f", "json"))
    assert [r["model"] for r in left] == ["no-such-model-x1"]


def test_prices_missing_says_when_a_models_own_price_does_not_cover_its_dates(tmp_path: Path) -> None:
    """A [[model]] whose entries end before an event: widen its dates, not "add a [[model]]"."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens\n2026-11-09T10:00:00Z,vllm,llama-x,1000\n2026-12-10T10:00:00Z,vllm,llama-x,1000\n"
    )
    toml = tmp_path / "p.toml"
    toml.write_text(
        '[[model]]\nprovider = "vllm"\nmodel = "llama-x"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 4.0\nvalid_from = 2026-11-01\nvalid_to = 2026-12-01\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db, "--overrides", str(toml))
    (missing,) = json.loads(run("prices", "missing", "--db", db, "-f", "json"))
    assert missing["model"] == "llama-x" and missing["events"] == 1
    assert missing["what_to_do"].startswith(
        "the overrides file has a [[model]] for it, but no entry of it covers these events' times "
        "(2026-12-10 10:00 to 2026-12-10 10:00 UTC)"
    )


def test_a_ledger_written_before_web_searches_were_priced_is_read_then_upgraded(tmp_path: Path) -> None:
    """An older ledger kept an Anthropic row's web searches in its tags, out of cost_usd. Read as it
    is, reports work and `prices missing` counts the tagged searches; opened for writing, the column
    is filled from the tags; `reprice` then prices them, and nothing is said any more."""
    from flopledger.ledger.store import open_ledger

    sample = Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json"
    db = tmp_path / "l.duckdb"
    run("ingest", str(sample), "--db", str(db))
    con = open_ledger(db)
    (priced_now,) = con.execute("SELECT sum(cost_usd) FROM events").fetchone() or (0.0,)
    # as an older flopledger stored the rows: the searches in the tags, no cost for them
    con.execute(
        """UPDATE events SET tags = json_merge_patch(coalesce(tags, '{}'),
               json_object('web_search_requests', web_search_requests)),
             cost_usd = cost_usd - web_search_cost_usd, list_cost_usd = list_cost_usd - web_search_cost_usd
           WHERE web_search_requests > 0"""
    )
    for table in ("events", "prices", "model_map"):  # priced by the older flopledger's price version
        con.execute(f"UPDATE {table} SET price_version = 'older'")
    for table, column in [
        ("events", "web_search_requests"),
        ("events", "web_search_cost_usd"),
        ("prices", "usd_per_web_search"),
        ("rollup_daily", "web_search_requests"),
        ("rollup_daily", "web_search_cost_usd"),
    ]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.close()
    old_cost = priced_now - 0.15
    report = json.loads(run("report", "--db", str(db), "--by", "model", "-f", "json"))
    assert sum(r["cost_usd"] for r in report) == pytest.approx(old_cost)
    assert all(r["web_search_requests"] is None for r in report)  # read around, not upgraded
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", str(db), "-f", "json"])
    assert "15 web search requests" in listed.stderr
    assert sum(r["amount"] for r in json.loads(listed.stdout) if r["usage"] == "web_search_requests") == 15
    con = open_ledger(db)  # opened for writing: the column is filled from the tags
    assert con.execute("SELECT sum(web_search_requests) FROM events").fetchone() == (15,)
    con.close()
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", str(db), "-f", "json"])
    assert "15 web search requests" in listed.stderr and "flopledger reprice" in listed.stderr
    run("reprice", "--db", str(db))
    report = json.loads(run("report", "--db", str(db), "--by", "model", "-f", "json"))
    assert sum(r["cost_usd"] for r in report) == pytest.approx(priced_now)
    assert sum(r["web_search_cost_usd"] for r in report) == pytest.approx(0.15)
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", str(db), "-f", "json"])
    assert "web search" not in listed.stderr


def test_a_report_shows_web_searches_where_there_are_any(tmp_path: Path) -> None:
    """A group without searches has 0 of them (not NULL); the table shows a searches column only
    when a row has any."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,team,model,input_tokens,web_search_requests\n"
        "2026-03-01T10:00:00Z,anthropic,search,claude-sonnet-4-5,1000,7\n"
        "2026-03-01T10:01:00Z,openai,quiet,gpt-4.1-mini,1000,\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    by_team = {r["team"]: r for r in json.loads(run("report", "--db", db, "--by", "team", "-f", "json"))}
    assert (by_team["search"]["web_search_requests"], by_team["quiet"]["web_search_requests"]) == (7, 0)
    table = run("report", "--db", db, "--by", "team")
    header = next(line for line in table.splitlines() if "output_tokens" in line)
    assert "web_search_requests" in header and header.index("output_tokens") < header.index("web_search")
    none = run("report", "--db", db, "--by", "team", "--since", "2026-03-01T10:01:00Z")
    assert "quiet" in none and "web_search_requests" not in none


def test_web_searches_in_tags_are_read_and_a_full_discount_is_no_missing_price(tmp_path: Path) -> None:
    """Web searches an older flopledger's export kept in the tags are the row's own where it gives
    none; a search discounted to $0 has a price, so `prices missing` does not list it."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens,tags\n"
        '2026-03-01T10:00:00Z,anthropic,claude-sonnet-4-5,1000,"{""web_search_requests"":3}"\n'
        '2026-03-01T10:01:00Z,anthropic,claude-sonnet-4-5,1000,"{""web_search_requests"":1.5}"\n'
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    con = duckdb.connect(db, read_only=True)
    got = con.execute(
        "SELECT web_search_requests, web_search_cost_usd FROM events ORDER BY source_line"
    ).fetchall()
    con.close()
    # a tag that is no count stays in the tags alone (a free-form tag fails no row)
    assert got[0] == (3, pytest.approx(0.03)) and got[1] == (None, 0.0)
    free = tmp_path / "prices.toml"
    free.write_text('[[discount]]\nprovider = "anthropic"\npercent = 100\n')
    run("reprice", "--db", db, "--overrides", str(free))
    listed = CliRunner().invoke(app, ["prices", "missing", "--db", db, "-f", "json"])
    assert listed.exit_code == 0 and "web search" not in listed.stderr and json.loads(listed.stdout) == []


def test_the_report_table_shows_one_hour_cache_writes(tmp_path: Path) -> None:
    """One-hour cache writes cost twice the input rate: the table shows them beside the 5-minute ones."""
    src = tmp_path / "u.csv"
    src.write_text(
        "ts,provider,model,input_tokens,cache_write_1h_tokens\n"
        "2026-03-01T10:00:00Z,anthropic,claude-sonnet-4-5,1000,123457\n"
    )
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    header, row = (
        line for line in run("report", "--db", db, "--by", "model").splitlines() if "┃" in line or "│" in line
    )
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    names = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert dict(zip(names, cells, strict=True))["cache_write_1h_tokens"] == "123,457"


def test_quarantined_rows_are_told_gone_listed_by_run_and_file_and_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "u.csv"
    header = "ts,model,provider,input_tokens\n"
    good = "2026-03-02T10:00:00Z,gpt-5,openai,100\n"
    src.write_text(
        header + good + "bad,gpt-5,openai,5\n2026-03-02T10:02:00Z,gpt-5,openai,-3\n", encoding="utf-8"
    )
    other = tmp_path / "v.csv"
    other.write_text(header + "2026-03-02T11:00:00Z,gpt-5,openai,x\n", encoding="utf-8")
    db = str(tmp_path / "l.duckdb")
    first = json.loads(run("ingest", str(src), str(other), "--db", db, "-o", "json"))[0]["ingest_id"]

    def listed(*flags: str) -> list[tuple[str, int, bool]]:
        rows = json.loads(run("quarantine", "list", "--db", db, "-f", "json", *flags))
        return [(Path(r["source_file"]).name, r["source_line"], r["state"] != "open") for r in rows]

    assert listed() == [("u.csv", 3, False), ("u.csv", 4, False), ("v.csv", 2, False)]
    # the file fixed and ingested again, under another spelling of its path: its line 3 is gone,
    # line 4, read again as bad, stays open
    src.write_text(src.read_text().replace("bad,", "2026-03-02T10:01:00Z,"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    again = json.loads(run("ingest", "u.csv", "--db", db, "-o", "json"))[0]
    assert (again["rows_stored"], again["rows_duplicate"], again["rows_quarantined"]) == (1, 1, 1)
    assert listed() == [("u.csv", 3, True), ("u.csv", 4, False), ("v.csv", 2, False)]
    assert listed("--open") == [("u.csv", 4, False), ("v.csv", 2, False)]
    assert listed("--gone") == [("u.csv", 3, True)]
    assert listed("--file", "v.csv") == [("v.csv", 2, False)]  # a file by its path from here
    assert listed("--file", str(other)) == [("v.csv", 2, False)]  # or as it was named
    assert listed("--file", "./v.csv") == [("v.csv", 2, False)]
    assert listed("--ingest", first[:6], "--file", "u.csv", "--open") == [("u.csv", 4, False)]
    # a file of the same name elsewhere is another file: its run mends nothing here
    elsewhere = tmp_path / "day2"
    elsewhere.mkdir()
    (elsewhere / "v.csv").write_text(header + "2026-03-02T11:00:00Z,gpt-5,openai,7\n", encoding="utf-8")
    run("ingest", str(elsewhere / "v.csv"), "--db", db)
    assert listed("--file", str(other)) == [("v.csv", 2, False)]
    # a run undone reads as never run: what it did not find is open again
    fixed_other = json.loads(run("ingest", str(other), "--db", db, "-o", "json"))[0]["ingest_id"]
    assert listed("--file", str(other)) == [("v.csv", 2, False)]  # read again, still bad
    other.write_text(header + "2026-03-02T11:00:00Z,gpt-5,openai,9\n", encoding="utf-8")
    undone = json.loads(run("ingest", str(other), "--db", db, "-o", "json"))[0]["ingest_id"]
    assert listed("--file", str(other)) == [("v.csv", 2, True)]
    run("ingests", "undo", undone, "--db", db)
    assert listed("--file", str(other)) == [("v.csv", 2, False)] and fixed_other != undone
    shown = CliRunner().invoke(app, ["quarantine", "list", "--db", db, "--limit", "1", "-f", "json"])
    assert len(json.loads(shown.stdout)) == 1
    assert "1 of 3 quarantined rows shown: raise --limit" in shown.stderr
    both = CliRunner().invoke(app, ["quarantine", "list", "--db", db, "--open", "--gone"])
    assert both.exit_code != 0 and "--open and --gone exclude each other" in str(both.exception)
    unsaid = CliRunner().invoke(app, ["quarantine", "clear", "--db", db])
    assert unsaid.exit_code != 0 and "say which quarantined rows to clear: --gone" in str(unsaid.exception)
    nobody = CliRunner().invoke(app, ["quarantine", "clear", "--db", db, "--ingest", "ffffff"])
    assert nobody.exit_code != 0 and "no ingest run 'ffffff'" in str(nobody.exception)
    cleared = run("quarantine", "clear", "--db", db, "--gone")
    assert f"{src}: 1 row(s)" in cleared and "1 quarantined row(s) cleared; 2 left." in cleared
    assert listed() == [("u.csv", 4, False), ("v.csv", 2, False)]
    assert "1 quarantined row(s) cleared; 1 left." in run(
        "quarantine", "clear", "--db", db, "--file", "v.csv"
    )
    # the runs keep the counts they had: clearing removes rows, not the history of reading them
    runs = json.loads(run("ingests", "list", "--db", db, "-f", "json"))
    assert sorted(r["rows_quarantined"] for r in runs) == [0, 0, 1, 1, 3]
    assert "1 quarantined row(s) cleared; 0 left." in run("quarantine", "clear", "--db", db, "--all")


def test_a_bad_row_that_moves_in_its_file_is_the_same_row_and_each_run_lists_what_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A still-bad row on another line (a row above it fixed away, a log trimmed at its head) stays
    one open row, at its new line; a run lists the bad rows it read again as well as those it
    quarantined; a file given twice in one run quarantines its bad rows once, the rest repeats."""
    folder = tmp_path / "logs"
    folder.mkdir()
    src = folder / "app.csv"
    header = "ts,model,provider,input_tokens\n"
    good = "2026-03-02T10:00:00Z,gpt-5,openai,100\n"
    twice = "2026-03-02T10:05:00Z,gpt-5,openai,-1\n"  # the same bad text on two lines
    src.write_text(
        header + good + "lots,gpt-5,openai,5\n" + twice + "2026-03-02T10:02:00Z,gpt-5,openai,-4\n" + twice
    )
    db = str(tmp_path / "l.duckdb")
    first = json.loads(run("ingest", str(src), str(src), "--db", db, "-o", "json"))[0]
    assert (first["rows_read"], first["rows_stored"], first["rows_quarantined"], first["rows_duplicate"]) == (
        10,
        1,
        4,
        5,
    )

    def listed(*flags: str) -> list[tuple[int, str, str]]:
        rows = json.loads(run("quarantine", "list", "--db", db, "-f", "json", *flags))
        return sorted((r["source_line"], r["raw"].split(",")[-1], r["state"]) for r in rows)

    assert listed() == [
        (3, '"input_tokens":"5"}', "open"),
        (4, '"input_tokens":"-1"}', "open"),
        (5, '"input_tokens":"-4"}', "open"),
        (6, '"input_tokens":"-1"}', "open"),
    ]
    # line 3 deleted: the rows below it move up a line, and are the same rows
    src.write_text(header + good + twice + "2026-03-02T10:02:00Z,gpt-5,openai,-4\n" + twice)
    again = json.loads(run("ingest", str(src), "--db", db, "-o", "json"))[0]
    assert (again["rows_quarantined"], again["rows_duplicate"]) == (3, 1)
    assert listed() == [
        (3, '"input_tokens":"-1"}', "open"),
        (3, '"input_tokens":"5"}', "gone from its file"),
        (4, '"input_tokens":"-4"}', "open"),
        (5, '"input_tokens":"-1"}', "open"),
    ]
    # the second run's rows: the three it read again, none of which it quarantined first
    assert [line for line, _, _ in listed("--ingest", again["ingest_id"])] == [3, 4, 5]
    assert [line for line, _, _ in listed("--ingest", first["ingest_id"])] == [3, 3, 4, 5]
    # a file by the last parts of its path, from anywhere
    monkeypatch.chdir(tmp_path.parent)
    assert len(listed("--file", "logs/app.csv")) == 4
    run("quarantine", "clear", "--db", db, "--ingest", again["ingest_id"])
    assert listed() == [(3, '"input_tokens":"5"}', "gone from its file")]
    assert listed("--ingest", again["ingest_id"]) == []


def test_a_renamed_or_moved_file_keeps_its_bad_rows_and_a_copy_has_its_own(tmp_path: Path) -> None:
    """A file renamed or moved (its old path gone) is the same data: its events are duplicates, and so
    are its bad rows, listed at the new path. A copy beside a file still there (a rotated log) is
    another file, with bad rows of its own."""
    src = tmp_path / "a.csv"
    src.write_text(
        "ts,model,provider,input_tokens\n2026-03-02T10:00:00Z,gpt-5,openai,100\n"
        "2026-03-02T10:01:00Z,gpt-5,openai,-3\n"
    )
    db = str(tmp_path / "l.duckdb")
    first = json.loads(run("ingest", str(src), "--db", db, "-o", "json"))[0]
    (tmp_path / "sub").mkdir()
    moved = tmp_path / "sub" / "a_renamed.csv"
    src.rename(moved)
    again = json.loads(run("ingest", str(moved), "--db", db, "-o", "json"))[0]
    assert (again["rows_stored"], again["rows_duplicate"], again["rows_quarantined"]) == (0, 1, 1)
    rows = json.loads(run("quarantine", "list", "--db", db, "-f", "json"))
    assert [(r["source_file"], r["source_line"], r["state"], r["ingest_id"]) for r in rows] == [
        (str(moved), 3, "open", first["ingest_id"])
    ]
    listed = json.loads(run("quarantine", "list", "--db", db, "--ingest", again["ingest_id"], "-f", "json"))
    assert len(listed) == 1  # the run that read it again, at its new path
    # a copy of a file that is still there: its own bad row
    copy = tmp_path / "a.1.csv"
    copy.write_text(moved.read_text())
    run("ingest", str(copy), "--db", db)
    rows = json.loads(run("quarantine", "list", "--db", db, "-f", "json"))
    assert sorted(Path(r["source_file"]).name for r in rows) == ["a.1.csv", "a_renamed.csv"]


def test_a_bad_record_read_again_on_a_shared_line_stays_open(tmp_path: Path) -> None:
    """A one-line JSON page holds a good result and a bad one; pulled again with the good one grown,
    the good one is restated and the bad one, read again, stays open."""
    page = {
        "object": "page",
        "has_more": False,
        "data": [
            {
                "object": "bucket",
                "start_time": 1772409600,
                "end_time": 1772496000,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": n,
                        "output_tokens": 1,
                        "input_cached_tokens": c,
                        "num_model_requests": 1,
                        "model": m,
                    }
                    for n, c, m in [(100, 0, "gpt-5"), (10, 50, "gpt-5-mini")]
                ],
            }
        ],
    }
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(page), encoding="utf-8")
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db)
    page["data"][0]["results"][0]["input_tokens"] = 200
    src.write_text(json.dumps(page), encoding="utf-8")
    again = json.loads(run("ingest", str(src), "--db", db, "-o", "json"))[0]
    assert (again["rows_restated"], again["rows_quarantined"]) == (1, 1)
    rows = json.loads(run("quarantine", "list", "--db", db, "-f", "json"))
    assert [(r["source_line"], r["state"]) for r in rows] == [(1, "open")]


def _ingested(tmp_path: Path, rows: str, *flags: str) -> str:
    """A ledger holding the CSV ``rows`` (header first), ingested with ``flags``; its path."""
    src = tmp_path / "u.csv"
    src.write_text(rows, encoding="utf-8")
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(src), "--db", db, *flags)
    return db


def test_a_report_table_ends_with_its_total_and_json_and_csv_are_the_groups_alone(tmp_path: Path) -> None:
    db = _ingested(
        tmp_path,
        "ts,model,provider,team,user,input_tokens,output_tokens\n"
        "2026-03-02T10:00:00Z,gpt-5,openai,web,ana,1000000,0\n"
        "2026-03-02T11:00:00Z,gpt-5,openai,web,bo,0,100000\n"
        "2026-03-02T11:30:00Z,gpt-5,openai,core,bo,2000000,0\n",
    )

    def total_row(*flags: str) -> list[str]:
        out = run("report", "--db", db, *flags)
        (line,) = [ln for ln in out.splitlines() if ln.startswith("│ total")]
        return [c.strip() for c in line.split("│")[1:-1]]

    # $1.25 + $1.00 + $2.50 (gpt-5: $1.25 in, $10 out per million)
    by_team = total_row("--by", "team")
    assert by_team[:3] == ["total", "3", "3,000,000"] and by_team[-2:] == ["4.75", "0"]
    # the cost per active hour of them all: $4.75 over the two engineer-hours (ana at 10h, bo at 11h)
    per_hour = total_row("--by", "user", "--per-active-hour")
    assert per_hour[-2:] == ["2", "2.38"]
    assert total_row("--by", "team,user", "--limit", "2")[0] == "total shown"
    # hours add up over users only: bo's 11h is an hour of each of his two teams, and one of his
    by_team = total_row("--by", "team", "--per-active-hour")
    assert by_team[-2:] == ["", ""] and by_team[-4] == "4.75"  # no hours in the total
    for fmt in ("json", "csv"):
        assert "total" not in run("report", "--db", db, "--by", "team", "-f", fmt)
    one = run("report", "--db", db, "--by", "provider")
    assert "│ total" not in one  # one row is its own total


def test_a_named_source_read_once_never_takes_a_bad_row_for_gone(tmp_path: Path) -> None:
    """Requests to the OTLP endpoint all bear one name; the next request is not the first read again."""
    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    bad.write_text('{"ts": "2026-03-02T10:00:00Z", "model": "gpt-5", "input_tokens": -5}\n', encoding="utf-8")
    good.write_text('{"ts": "2026-03-02T10:01:00Z", "model": "gpt-5", "input_tokens": 5}\n', encoding="utf-8")
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    for request in (bad, good):
        ingest_files(con, [request], format="jsonl", source_names=["POST /v1/traces"])
    con.close()
    rows = json.loads(run("quarantine", "list", "--db", str(db), "-f", "json"))
    assert [(r["source_file"], r["state"]) for r in rows] == [("POST /v1/traces", "open")]


def test_a_quarantine_an_older_flopledger_wrote_is_listed_then_upgraded(tmp_path: Path) -> None:
    from flopledger.ledger.store import open_ledger

    src = tmp_path / "u.csv"
    src.write_text(
        "ts,model,provider,input_tokens\nbad,gpt-5,openai,5\n2026-03-02T10:00:00Z,gpt-5,openai,1\n"
    )
    db = tmp_path / "l.duckdb"
    run("ingest", str(src), "--db", str(db))
    con = open_ledger(db)
    for table, column in [
        ("quarantine", "file_key"),
        ("quarantine", "last_seen_at"),
        ("ingests", "file_keys"),
    ]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.close()
    read = json.loads(run("quarantine", "list", "--db", str(db), "-f", "json"))  # read as it is
    assert [(r["source_line"], r["state"], r["last_seen_at"] == r["quarantined_at"]) for r in read] == [
        (2, "open", True)
    ]
    con = open_ledger(db)  # opened for writing: the columns are added, last seen when quarantined
    assert con.execute("SELECT last_seen_at = quarantined_at, file_key FROM quarantine").fetchall() == [
        (True, None)
    ]
    con.close()
    src.write_text(src.read_text().replace("bad,", "2026-03-02T09:00:00Z,"))
    run("ingest", str(src), "--db", str(db))
    # which file it came from was not recorded: it stays open
    rows = json.loads(run("quarantine", "list", "--db", str(db), "-f", "json"))
    assert [r["state"] for r in rows] == ["open"]


def test_a_discount_for_one_service_tier_prices_that_tier_alone(tmp_path: Path) -> None:
    from flopledger.ledger.store import open_ledger

    overrides = tmp_path / "p.toml"
    overrides.write_text('[[discount]]\nprovider = "openai"\nservice_tier = "batch"\npercent = 20\n')
    db = _ingested(
        tmp_path,
        "ts,model,provider,service_tier,input_tokens\n"
        "2026-03-02T10:00:00Z,gpt-5,openai,standard,1000000\n"
        "2026-03-02T10:01:00Z,gpt-5,openai,batch,1000000\n",
        "--overrides",
        str(overrides),
    )
    con = open_ledger(db, read_only=True)
    got = con.execute("SELECT service_tier, cost_usd, list_cost_usd FROM events ORDER BY 1").fetchall()
    con.close()
    # gpt-5: $1.25 per million in, batch at half of it; 20% off the batch request only
    assert got == [("batch", pytest.approx(0.5), pytest.approx(0.625)), ("standard", 1.25, 1.25)]


def test_a_report_by_service_tier_splits_the_bill_by_tier(tmp_path: Path) -> None:
    db = _ingested(
        tmp_path,
        "ts,model,provider,service_tier,input_tokens\n"
        "2026-03-02T10:00:00Z,gpt-5,openai,standard,1000000\n"
        "2026-03-02T10:01:00Z,gpt-5,openai,batch,1000000\n"
        "2026-03-02T10:02:00Z,gpt-5,openai,,2000000\n",
    )
    rows = json.loads(run("report", "--db", db, "--by", "provider,service_tier", "-f", "json"))
    # a row that names no tier is standard, as it is priced: gpt-5 at $1.25 per million in, batch half
    assert [(r["service_tier"], r["input_tokens"], r["cost_usd"]) for r in rows] == [
        ("standard", 3_000_000, pytest.approx(3.75)),
        ("batch", 1_000_000, pytest.approx(0.625)),
    ]
    typo = CliRunner().invoke(app, ["report", "--db", db, "--by", "tier"])
    assert (
        typo.exit_code != 0
        and "did you mean" in str(typo.exception)
        and "service_tier" in str(typo.exception)
    )


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (
            duckdb.InterruptException("INTERRUPT Error: Interrupted!"),
            130,
            "interrupted: what a command had not",
        ),
        (RuntimeError("Query interrupted"), 130, "`flopledger ingests list` says whether"),
        (duckdb.IOException("IO Error: No space left on device"), 1, "No space left on device (what was not"),
    ],
)
def test_an_interrupt_or_a_full_disk_is_one_line_not_a_traceback(
    raised: Exception,
    code: int,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import flopledger.cli as cli

    def stopped(**_: object) -> None:
        raise raised

    monkeypatch.setattr(cli, "app", stopped)
    with pytest.raises(SystemExit) as stop:
        cli.main(["report"])
    assert stop.value.code == code
    err = capsys.readouterr().err
    assert said in " ".join(err.split()) and "Traceback" not in err
    monkeypatch.setattr(cli, "app", lambda **_: (_ for _ in ()).throw(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):  # anything else is a bug: its traceback is kept
        cli.main(["report"])


def test_hours_of_usage_report_rows_are_said_to_be_their_buckets_start(tmp_path: Path) -> None:
    """A daily usage report's rows have no hours: grouped by hour (or cut by a time of day) they all
    sit at 00:00, and stderr says so; grouped by day nothing needs saying."""
    samples = Path(__file__).parent / "formats" / "samples"
    db = str(tmp_path / "l.duckdb")
    run("ingest", str(samples / "anthropic_messages_report.json"), "--db", db)
    by_hour = CliRunner().invoke(app, ["report", "--by", "hour", "--db", db, "-f", "json"])
    assert by_hour.exit_code == 0, by_hour.output
    assert "usage-report rows" in by_hour.stderr and "counted in the hour it starts" in by_hour.stderr
    assert {r["hour"][11:] for r in json.loads(by_hour.stdout)} == {"00:00:00"}
    timed = CliRunner().invoke(app, ["report", "--by", "model", "--since", "2000-01-01T06:00", "--db", db])
    assert "by the time its bucket starts" in timed.stderr
    by_day = CliRunner().invoke(app, ["report", "--by", "day", "--db", db, "-f", "json"])
    assert by_day.exit_code == 0 and "usage-report rows" not in by_day.stderr


def test_a_canonical_column_mapped_twice_to_different_sources_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_text("ts,model,a,b\n2026-03-02T10:00:00Z,gpt-4o,1,2\n")
    db = str(tmp_path / "l.duckdb")
    twice = CliRunner().invoke(
        app, ["ingest", str(src), "--db", db, "--map", "input_tokens=a", "--map", "input_tokens=b"]
    )
    assert twice.exit_code != 0 and "--map gives input_tokens twice, as 'a' and as 'b'" in str(
        twice.exception
    )
    run("ingest", str(src), "--db", db, "--map", "input_tokens=a,input_tokens=a")  # the same twice: fine
