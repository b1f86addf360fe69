"""Every JSON endpoint, in process, against figures computed independently from the events table."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import ibis
import pytest

from flopledger.ledger.forecast import forecast_month
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS
from flopledger.ledger.spark import Engine
from flopledger.web.state import ServerState

if TYPE_CHECKING:
    from tests.web.conftest import Api, Fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleet"


def _events(state: ServerState, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with state.cursor() as cur:
        return cur.execute(sql, params or []).fetchall()


def _ledger_copy(golden: Fixture, tmp_path: Path, rows: str = "", overrides: Path | None = None) -> Path:
    """A copy of the web fixture's ledger, with ``rows`` (JSON lines) ingested into it."""
    import shutil

    from flopledger.catalog.overrides import load_overrides
    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    copy = tmp_path / "ledger.duckdb"
    shutil.copy(golden.path, copy)
    if rows:
        extra = tmp_path / "extra.jsonl"
        extra.write_text(rows)
        con = open_ledger(copy)
        try:
            ingest_files(con, [extra], overrides=load_overrides(overrides) if overrides else None)
        finally:
            con.close()
    return copy


def test_overview_matches_the_events(api: Api, golden: Fixture, state: ServerState) -> None:
    r = api.get("/api/v1/overview", token=golden.tokens["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    ((cost, requests),) = _events(state, "SELECT sum(cost_usd), sum(requests) FROM events")
    assert body["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert body["totals"]["requests"] == requests
    daily = _events(
        state, "SELECT CAST(ts AS DATE)::VARCHAR, sum(output_tokens_cost_usd) FROM events GROUP BY 1"
    )
    by_day = {d["day"]: d for d in body["daily"]}
    assert set(by_day) == {d for d, _ in daily}
    for day, output_cost in daily:
        assert by_day[day]["output_tokens_cost_usd"] == pytest.approx(output_cost, rel=1e-9)
        classes = (
            sum(by_day[day][f"{c}_cost_usd"] for c in BILLED_TOKEN_COLUMNS)
            + by_day[day]["web_search_cost_usd"]
            + by_day[day]["request_fees_usd"]
        )
        assert classes == pytest.approx(by_day[day]["cost_usd"], rel=1e-9)
    teams = _events(state, "SELECT team, sum(cost_usd) FROM events GROUP BY 1 ORDER BY 2 DESC")
    assert [t["name"] for t in body["top_teams"]] == [t for t, _ in teams]
    assert body["top_models"][0]["name"] in {"claude-sonnet-4-5", "claude-opus-4-1"}
    fc = body["forecast"]
    assert (
        fc["month"] == "2026-03"
        and fc["total"]["p10_usd"] <= fc["total"]["p50_usd"] <= fc["total"]["p90_usd"]
    )
    assert fc["total"]["spent_usd"] == pytest.approx(cost, abs=0.01)  # rounded to cents
    # the dashboard reads the rollup, yet shows `flopledger forecast`: history re-priced per segment
    as_of = dt.date.fromisoformat(fc["as_of"])
    with state.cursor() as cur:
        engine = Engine("duckdb", ibis.duckdb.from_connection(cur), "events")
        (total,) = forecast_month(engine, by=(), as_of=as_of)
        teams = {
            dict(g.group)["team"]: g.projection for g in forecast_month(engine, by=("team",), as_of=as_of)
        }
    assert (fc["total"]["p50_usd"], fc["total"]["p90_usd"]) == pytest.approx(
        (total.projection.p50_usd, total.projection.p90_usd), abs=0.01
    )
    for row in fc["teams"]:
        assert row["p50_usd"] == pytest.approx(teams[row["team"]].p50_usd, abs=0.01)
    assert body["budgets"]["configured"] is False and "--budgets" in body["budgets"]["hint"]
    assert body["rollup"] == "rollup_daily"


def test_date_range_filters(api: Api, golden: Fixture, state: ServerState) -> None:
    r = api.get("/api/v1/overview?since=2026-03-05&until=2026-03-06", token=golden.tokens["admin"])
    assert r.status_code == 200
    ((cost,),) = _events(
        state, "SELECT sum(cost_usd) FROM events WHERE CAST(ts AS DATE) BETWEEN '2026-03-05' AND '2026-03-06'"
    )
    assert r.json()["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert {d["day"] for d in r.json()["daily"]} == {"2026-03-05", "2026-03-06"}
    assert api.get("/api/v1/overview?since=yesterday", token=golden.tokens["admin"]).status_code == 422
    backwards = api.get("/api/v1/teams?since=2026-03-06&until=2026-03-05", token=golden.tokens["admin"])
    assert backwards.status_code == 400 and "is after until" in backwards.json()["detail"]


def test_pages_show_the_days_asked_for_as_their_json_twins_do(api: Api, golden: Fixture) -> None:
    import json
    import re

    admin = golden.tokens["admin"]
    window = "since=2026-03-05&until=2026-03-06"
    for page, twin in (("/", "/api/v1/overview"), ("/teams", "/api/v1/teams"), ("/models", "/api/v1/models")):
        html = api.get(f"{page}?{window}", token=admin)
        assert html.status_code == 200
        embedded = re.search(r'<script type="application/json" id="payload">(.*?)</script>', html.text, re.S)
        assert embedded is not None
        assert json.loads(embedded.group(1)) == api.get(f"{twin}?{window}", token=admin).json(), page
        assert 'name="since" value="2026-03-05"' in html.text and 'href="?">all days' in html.text
    whole = api.get("/teams", token=admin).text
    assert 'name="since" value=""' in whole and "all days" not in whole
    for bad, said in (
        ("since=March", "is not a day"),
        ("since=2026-03-06&until=2026-03-05", "is after until"),
    ):
        page = api.get(f"/teams?{bad}", token=admin)
        assert page.status_code == 400 and said in page.text and 'name="since"' in page.text  # a page


def test_teams_team_and_user_drill_down(api: Api, golden: Fixture, state: ServerState) -> None:
    admin = golden.tokens["admin"]
    teams = api.get("/api/v1/teams", token=admin).json()["teams"]
    assert sorted(t["name"] for t in teams) == ["agents", "infra", "research", "search"]
    team = api.get("/api/v1/teams/agents", token=admin).json()
    ((cost, users),) = _events(
        state, "SELECT sum(cost_usd), count(DISTINCT \"user\") FROM events WHERE team='agents'"
    )
    assert team["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert len(team["users"]) == users
    top = team["users"][0]["name"]
    user = api.get(f"/api/v1/teams/agents/users/{top}", token=admin).json()
    ((ucost,),) = _events(state, "SELECT sum(cost_usd) FROM events WHERE team='agents' AND \"user\"=?", [top])
    assert user["totals"]["cost_usd"] == pytest.approx(ucost, rel=1e-9)
    assert user["api_keys"] and user["daily"]
    assert api.get("/api/v1/teams/nope", token=admin).status_code == 404
    assert api.get("/api/v1/teams/agents/users/nobody", token=admin).status_code == 404
    outsider = next(t["name"] for t in api.get("/api/v1/teams/search", token=admin).json()["users"])
    assert api.get(f"/api/v1/teams/agents/users/{outsider}", token=admin).status_code == 404


def test_models_mix_cache_rate_and_prices(api: Api, golden: Fixture, state: ServerState) -> None:
    body = api.get("/api/v1/models", token=golden.tokens["admin"]).json()
    rows = {m["name"]: m for m in body["models"]}
    ((read, inp, w5, w1),) = _events(
        state,
        "SELECT sum(cache_read_tokens), sum(input_tokens), sum(cache_write_5m_tokens), "
        "sum(cache_write_1h_tokens) "
        "FROM events WHERE model = 'claude-sonnet-4-5'",
    )
    assert rows["claude-sonnet-4-5"]["cache_hit_rate"] == pytest.approx(
        read / (read + inp + w5 + w1), abs=1e-4
    )
    assert sum(v for v in rows["claude-sonnet-4-5"]["token_mix"].values()) == pytest.approx(1.0, abs=1e-3)
    prices = {p["model"]: p for p in body["prices"]}
    assert set(prices) == set(rows)
    assert (
        prices["claude-opus-4-1"]["output_usd_per_mtok"]
        > prices["claude-sonnet-4-5"]["output_usd_per_mtok"]
        > 0
    )


def test_model_prices_come_from_the_version_that_priced_each_model_last(
    golden: Fixture, tmp_path: Path, api_for: type[Api]
) -> None:
    """An ingest of one model under other overrides leaves the other models' prices on the page."""
    from flopledger.catalog.overrides import load_overrides
    from flopledger.ledger.repricing import reprice
    from flopledger.ledger.store import open_ledger
    from flopledger.web import WebConfig

    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[discount]]\nprovider = "anthropic"\npercent = 50\n')
    row = '{"ts": "2026-03-05T10:00:00Z", "provider": "openai", "model": "gpt-4.1-mini", "team": "agents",'
    copy = _ledger_copy(golden, tmp_path, row + ' "input_tokens": 1000}\n', overrides)

    def prices() -> dict[str, dict[str, object]]:
        s = ServerState.open(WebConfig(db=copy))
        try:
            body = api_for(s).get("/api/v1/models", token=golden.tokens["admin"]).json()
        finally:
            s.close()
        assert {p["model"] for p in body["prices"]} == {m["name"] for m in body["models"]}
        return {p["model"]: p for p in body["prices"]}

    before = prices()
    assert before["gpt-4.1-mini"]["discount_pct"] == 0 and before["claude-sonnet-4-5"]["discount_pct"] == 0
    con = open_ledger(copy)
    reprice(con, load_overrides(overrides))  # now every model is priced at these overrides
    con.close()
    after = prices()
    assert after["claude-sonnet-4-5"]["discount_pct"] == 50
    assert (
        after["claude-sonnet-4-5"]["input_usd_per_mtok"] == before["claude-sonnet-4-5"]["input_usd_per_mtok"]
    )


def test_integrity_flags_the_campaign_with_evidence(api: Api, golden: Fixture) -> None:
    body = api.get("/api/v1/integrity", token=golden.tokens["admin"]).json()
    labels = golden.traffic.labels
    distill = [f for f in body["flagged"] if f["kind"] == "distillation"]
    assert distill, body
    hits = sum(labels.get(f["account"]) == "distillation" for f in distill)
    assert hits / len(distill) >= 0.5
    assert all(f["evidence"] for f in body["flagged"])
    assert all(e.keys() == {"feature", "value", "baseline"} for f in body["flagged"] for e in f["evidence"])
    assert any(c["accounts"] >= 2 for c in body["clusters"])


def test_fleet_empty_state_names_the_command(api: Api, golden: Fixture) -> None:
    body = api.get("/api/v1/fleet", token=golden.tokens["admin"]).json()
    assert body["allocation"]["available"] is False
    assert "flopledger fleet allocate" in body["allocation"]["how_to_fill"]
    assert "flopledger fleet capacity" in body["capacity"]["how_to_fill"]


def test_fleet_reads_a_saved_allocation_from_meta(api: Api, golden: Fixture, state: ServerState) -> None:
    from typer.testing import CliRunner

    from flopledger.cli import app

    out = CliRunner().invoke(
        app, ["fleet", "allocate", str(EXAMPLES / "three_vendor_envelope.yaml"), "-f", "json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    with state.write_lock, state.cursor() as cur:
        cur.execute("INSERT INTO meta VALUES ('fleet.allocation', ?)", [json.dumps(doc)])
    try:
        body = api.get("/api/v1/fleet", token=golden.tokens["admin"]).json()
    finally:
        with state.write_lock, state.cursor() as cur:
            cur.execute("DELETE FROM meta WHERE key = 'fleet.allocation'")
    alloc = body["allocation"]
    assert alloc["available"] is True and alloc["source"] == "ledger meta fleet.allocation"
    assert [p["pool"] for p in alloc["pools"]] == [p["pool"] for p in doc["pools"]]
    assert any(p["shadow_price_usd_per_accelerator_hour"] is not None for p in alloc["pools"])


def test_openapi_lists_every_json_twin(api: Api) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for p in (
        "overview",
        "teams",
        "teams/{team}",
        "teams/{team}/users/{user}",
        "models",
        "integrity",
        "fleet",
    ):
        assert f"/api/v1/{p}" in paths
    assert "/v1/traces" in paths


def test_rollup_absent_falls_back_to_events(golden: Fixture, tmp_path: Path, api_for: type[Api]) -> None:
    import shutil

    from flopledger.web import WebConfig

    copy = tmp_path / "ledger.duckdb"
    shutil.copy(golden.path, copy)
    con = duckdb.connect(str(copy))
    con.execute("DROP TABLE rollup_daily")
    ((cost,),) = con.execute("SELECT sum(cost_usd) FROM events").fetchall()
    con.close()
    s = ServerState.open(WebConfig(db=copy))
    try:
        body = api_for(s).get("/api/v1/overview", token=golden.tokens["admin"]).json()
    finally:
        s.close()
    assert body["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert body["rollup"].startswith("aggregated from events")


@contextlib.contextmanager
def _served_with_budgets(
    golden: Fixture, tmp_path: Path, api_for: type[Api], text: str
) -> Iterator[tuple[Api, Path]]:
    """An API over a copy of the golden ledger, served with a budgets file holding ``text``."""
    from flopledger.web import WebConfig

    budgets = tmp_path / "budgets.toml"
    budgets.write_text(text, "utf-8")
    s = ServerState.open(WebConfig(db=_ledger_copy(golden, tmp_path), budgets=budgets))
    try:
        yield api_for(s), budgets
    finally:
        s.close()


def _touch_later(path: Path) -> None:
    """Move a file's stamp on: a coarse clock could leave an edited file's stamp as it was."""
    import os

    later = path.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(later, later))


def test_budgets_use_the_ledgers_budget_check(golden: Fixture, tmp_path: Path, api_for: type[Api]) -> None:
    text = "[team.infra]\nmonthly_usd = 100\n\n[team.research]\nmonthly_usd = 100000\n"
    with _served_with_budgets(golden, tmp_path, api_for, text) as (api, _):
        admin = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["budgets"]
        viewer = api.get("/api/v1/overview", token=golden.tokens["research"]).json()["budgets"]
    rows = {r["name"]: r for r in admin["rows"]}
    assert rows["infra"]["status"] == "over" and "driver" in rows["infra"]["alert"]
    assert rows["research"]["status"] == "ok"
    assert [r["name"] for r in viewer["rows"]] == ["research"]


def test_an_edited_budgets_file_counts_at_once(golden: Fixture, tmp_path: Path, api_for: type[Api]) -> None:
    """The overview keeps its budget check per ledger version, and per budgets file as last changed."""
    with _served_with_budgets(golden, tmp_path, api_for, "[team.infra]\nmonthly_usd = 100\n") as (
        api,
        budgets,
    ):
        before = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["budgets"]["rows"]
        budgets.write_text("[team.infra]\nmonthly_usd = 1000000000\n", "utf-8")
        _touch_later(budgets)
        after = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["budgets"]["rows"]
    assert [(r["name"], r["status"], r["monthly_usd"]) for r in before] == [("infra", "over", 100)]
    assert [(r["name"], r["status"], r["monthly_usd"]) for r in after] == [("infra", "ok", 1_000_000_000)]


def test_a_budgets_file_broken_while_serving_leaves_the_overview_up(
    golden: Fixture, tmp_path: Path, api_for: type[Api]
) -> None:
    """The budgets section says what is wrong with the file; the rest of the overview still shows."""
    with _served_with_budgets(golden, tmp_path, api_for, "[team.infra]\nmonthly_usd = 100\n") as (
        api,
        budgets,
    ):
        budgets.write_text("[team.infra]\nmonthly_usd = -5\n", "utf-8")
        _touch_later(budgets)
        broken = api.get("/api/v1/overview", token=golden.tokens["admin"])
        page = api.get("/", token=golden.tokens["admin"])
        budgets.unlink()
        gone = api.get("/api/v1/overview", token=golden.tokens["admin"])
    assert broken.status_code == 200 and broken.json()["totals"]["cost_usd"] > 0
    assert "monthly_usd" in broken.json()["budgets"]["error"] and broken.json()["budgets"]["rows"] == []
    assert (
        page.status_code == 200 and "monthly_usd" in page.text and "reads the budgets file again" in page.text
    )
    assert gone.status_code == 200 and gone.json()["budgets"]["error"]


def test_an_older_rollup_is_read_around_and_said_so(golden: Fixture, tmp_path: Path) -> None:
    """A reader of a ledger whose rollup an older flopledger made sums the events, and the page says so."""
    from flopledger.ledger.store import open_ledger
    from flopledger.web import WebConfig
    from flopledger.web.dashboard import overview_page
    from flopledger.web.queries import Scope

    copy = _ledger_copy(golden, tmp_path)
    con = duckdb.connect(str(copy))
    con.execute("ALTER TABLE rollup_daily DROP COLUMN price_model")  # as flopledger kept it before
    ((cost,),) = con.execute("SELECT sum(cost_usd) FROM events").fetchall()
    con.close()
    reader = open_ledger(copy, read_only=True)  # a reader cannot rebuild it
    try:
        body = overview_page(reader, Scope(None), WebConfig(db=copy))
    finally:
        reader.close()
    assert body["rollup"].startswith("aggregated from events") and "older flopledger" in body["rollup"]
    assert body["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)


def test_a_team_quiet_this_month_sees_this_months_forecast(
    golden: Fixture, tmp_path: Path, api_for: type[Api]
) -> None:
    from flopledger.ledger.store import open_ledger
    from flopledger.web import WebConfig
    from flopledger.web.tokens import create_token

    row = '{"ts": "2026-02-10T10:00:00Z", "provider": "openai", "model": "gpt-5", "team": "oldteam",'
    copy = _ledger_copy(golden, tmp_path, row + ' "input_tokens": 100000}\n')
    con = open_ledger(copy)
    viewer = create_token(con, role="viewer", team="oldteam").secret
    con.close()
    s = ServerState.open(WebConfig(db=copy))
    try:
        admin = api_for(s).get("/api/v1/overview", token=golden.tokens["admin"]).json()["forecast"]
        quiet = api_for(s).get("/api/v1/overview", token=viewer).json()["forecast"]
    finally:
        s.close()
    assert admin["month"] == "2026-03"
    assert (quiet["month"], quiet["as_of"]) == (admin["month"], admin["as_of"])
    assert quiet["total"]["month"] == "2026-03" and quiet["total"]["spent_usd"] == 0
    assert [t["team"] for t in quiet["teams"]] == ["oldteam"]


def test_names_with_a_slash_have_pages(golden: Fixture, tmp_path: Path, api_for: type[Api]) -> None:
    from urllib.parse import quote

    from flopledger.web import WebConfig

    row = '{"ts": "2026-03-05T10:00:00Z", "provider": "openai", "model": "gpt-5", "team": "infra/ml",'
    copy = _ledger_copy(golden, tmp_path, row + ' "user": "team/bob", "input_tokens": 1000}\n')
    s = ServerState.open(WebConfig(db=copy))
    try:
        api = api_for(s)
        admin = golden.tokens["admin"]
        team, user = quote("infra/ml", safe=""), quote("team/bob", safe="")
        body = api.get(f"/api/v1/teams/{team}", token=admin)
        assert body.status_code == 200 and body.json()["totals"]["input_tokens"] == 1000
        body = api.get(f"/api/v1/teams/{team}/users/{user}", token=admin)
        assert body.status_code == 200 and body.json()["totals"]["input_tokens"] == 1000
        assert api.get(f"/teams/{team}/users/{user}", token=admin).status_code == 200
        assert api.get(f"/teams/{team}", token=admin).status_code == 200
        assert api.get("/api/v1/teams/agents", token=admin).status_code == 200  # plain names still
    finally:
        s.close()


def test_names_holding_the_users_separator_have_pages(
    golden: Fixture, tmp_path: Path, api_for: type[Api]
) -> None:
    """A team named "a/users/b" and a user named "x/users/y", sent encoded, are read from the path
    as sent: the team's page is the team's, not user "b" of team "a"."""
    from urllib.parse import quote

    from flopledger.web import WebConfig

    rows = [
        '{"ts": "2026-03-05T10:00:00Z", "provider": "openai", "model": "gpt-5", "team": "a/users/b", '
        '"user": "x/users/y", "input_tokens": 1000}',
        '{"ts": "2026-03-05T11:00:00Z", "provider": "openai", "model": "gpt-5", "team": "a", '
        '"user": "b", "input_tokens": 7}',
        '{"ts": "2026-03-05T12:00:00Z", "provider": "openai", "model": "gpt-5", "team": "a/users/b", '
        '"user": "c", "input_tokens": 5}',
    ]
    s = ServerState.open(WebConfig(db=_ledger_copy(golden, tmp_path, "\n".join(rows) + "\n")))
    try:
        api = api_for(s)
        admin = golden.tokens["admin"]
        team, user = quote("a/users/b", safe=""), quote("x/users/y", safe="")
        body = api.get(f"/api/v1/teams/{team}", token=admin)
        assert body.status_code == 200 and body.json()["totals"]["input_tokens"] == 1005
        body = api.get(f"/api/v1/teams/{team}/users/{user}", token=admin)
        assert body.status_code == 200 and body.json()["totals"]["input_tokens"] == 1000
        assert api.get("/api/v1/teams/a/users/b", token=admin).json()["totals"]["input_tokens"] == 7
        for path, shown in ((f"/teams/{team}", "1,005"), (f"/teams/{team}/users/{user}", "1,000")):
            page = api.get(path, token=admin)
            assert page.status_code == 200 and shown in page.text, path
        # the user page links back to its team, encoded
        assert f'href="/teams/{team}"' in api.get(f"/teams/{team}/users/{user}", token=admin).text
        # sent unencoded, the last "/users/" separates team and user, as the routes read it
        plain = api.get("/api/v1/teams/a/users/b/users/c", token=admin)
        assert plain.status_code == 200 and plain.json()["totals"]["input_tokens"] == 5
    finally:
        s.close()


def test_request_fees_are_the_stored_fees(golden: Fixture, tmp_path: Path, api_for: type[Api]) -> None:
    """Daily fees, totals and per-team figures are the fees the events were priced with."""
    from flopledger.web import WebConfig

    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[model]]\nprovider = "internal"\nmodel = "fee-model"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 2.0\nusd_per_request = 0.25\n"
    )
    rows = "".join(
        f'{{"ts": "2026-03-0{d}T10:00:00Z", "provider": "internal", "model": "fee-model", "team": "{t}",'
        f' "requests": {n}, "input_tokens": 1000}}\n'
        for d, t, n in ((5, "agents", 4), (5, "search", 2), (6, "agents", 1))
    )
    s = ServerState.open(WebConfig(db=_ledger_copy(golden, tmp_path, rows, overrides)))
    try:
        api = api_for(s)
        body = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()
        teams = api.get("/api/v1/teams", token=golden.tokens["admin"]).json()["teams"]
        per_team = dict(_events(s, "SELECT team, sum(request_cost_usd) FROM events GROUP BY 1"))
        per_day = dict(
            _events(s, "SELECT CAST(ts AS DATE)::VARCHAR, sum(request_cost_usd) FROM events GROUP BY 1")
        )
    finally:
        s.close()
    assert body["totals"]["request_cost_usd"] == pytest.approx(7 * 0.25)
    assert {t["name"]: t["request_cost_usd"] for t in teams} == pytest.approx(per_team)
    fees = {d["day"]: d["request_fees_usd"] for d in body["daily"]}
    assert fees["2026-03-05"] == pytest.approx(1.5) and fees["2026-03-06"] == pytest.approx(0.25)
    assert all(
        fees[day] == pytest.approx(per_day.get(day, 0.0), abs=1e-12) and fees[day] >= 0 for day in fees
    )
