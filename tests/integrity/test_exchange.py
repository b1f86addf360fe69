"""STIX export carries no raw text or identifier, a partner lab matches it; outcomes; leaderboard; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError
from flopledger.integrity.leaderboard import leaderboard
from flopledger.integrity.outcomes import ingest_outcomes
from flopledger.integrity.stix import export_stix, match_indicators
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.campaigns import LabelledTraffic, build_traffic, store_traffic

from .conftest import KEY, SMALL

CONSORTIUM = b"consortium-secret"


def test_stix_bundle_has_no_prompt_text_and_no_raw_identifier(
    tmp_path: Path, ledger: duckdb.DuckDBPyConnection, traffic: LabelledTraffic
) -> None:
    out = tmp_path / "bundle.json"
    count = export_stix(ledger, out, consortium_key=CONSORTIUM, lab_name="Example Lab")
    assert count >= 2
    text = out.read_text()
    bundle = json.loads(text)
    kinds = {o["type"] for o in bundle["objects"]}
    assert {"identity", "indicator", "sighting"} <= kinds
    assert all(o.get("object_marking_refs") for o in bundle["objects"])
    events = traffic.events
    identifiers = {
        str(v) for c in ("user", "api_key", "org", "event_id") for v in events.column(c).to_pylist()
    }
    identifiers |= {json.loads(t).get("payment_fp", "") for t in events.column("tags").to_pylist()} - {""}
    for value in identifiers:
        assert value not in text, value
    for prompt in set(events.column("prompt").to_pylist()):
        words = prompt.split()
        for i in range(0, max(1, len(words) - 3), 4):
            assert " ".join(words[i : i + 4]) not in text
    # Fingerprints themselves are re-keyed: no local hash appears either.
    local = ledger.execute("SELECT DISTINCT fp_template_hash::VARCHAR FROM events LIMIT 500").fetchall()
    assert not any(v[0] in text for v in local)


def test_partner_lab_matches_the_campaign_accounts(
    tmp_path: Path, ledger: duckdb.DuckDBPyConnection, traffic: LabelledTraffic
) -> None:
    out = tmp_path / "bundle.json"
    export_stix(ledger, out, consortium_key=CONSORTIUM, lab_name="Lab A")
    partner_traffic = build_traffic(SMALL, seed=99)  # the same campaigns' templates, different accounts
    partner = open_ledger(":memory:")
    store_traffic(partner, partner_traffic.events, KEY)
    matches = match_indicators(partner, out, consortium_key=CONSORTIUM)
    matched = {m.account for m in matches}
    campaign = {a for a, label in partner_traffic.labels.items() if label == "distillation"}
    assert len(matched & campaign) >= 0.9 * len(campaign)
    benign = {
        a for a, label in partner_traffic.labels.items() if label in ("human", "heavy_human", "service")
    }
    assert len(matched & benign) <= 0.02 * len(benign)
    assert not match_indicators(partner, out, consortium_key=b"wrong key")


def test_outcomes_ingest_is_idempotent_and_reports_bad_rows(tmp_path: Path) -> None:
    csv_path = tmp_path / "outcomes.csv"
    csv_path.write_text(
        "user,ts,kind,weight\n"
        "human-0001,2026-03-02T10:00:00Z,commit,1\n"
        "human-0001,2026-03-02T11:00:00Z,merged change,2\n"
        "human-0002,not a time,commit,1\n"
        "human-0003,2026-03-02T11:00:00,coffee,1\n"
    )
    jsonl = tmp_path / "outcomes.jsonl"
    jsonl.write_text('{"user": "human-0002", "ts": "2026-03-03T09:00:00", "kind": "closed_ticket"}\n{oops\n')
    con = open_ledger(":memory:")
    first = ingest_outcomes(con, [csv_path, jsonl])
    assert (first.read, first.stored, first.quarantined, first.duplicates) == (6, 3, 3, 0)
    assert {(r.line, r.path.endswith(".csv")) for r in first.rejected} == {(4, True), (5, True), (2, False)}
    assert "ts" in first.rejected[0].reason
    kept = con.execute(
        "SELECT source_format, source_line, field, raw FROM quarantine ORDER BY source_file, source_line"
    ).fetchall()
    assert kept == [
        ("outcomes", 4, "ts", "human-0002,not a time,commit,1"),
        ("outcomes", 5, "kind", "human-0003,2026-03-02T11:00:00,coffee,1"),
        ("outcomes", 2, None, "{oops"),
    ]
    again = ingest_outcomes(con, [csv_path])
    assert (again.stored, again.duplicates) == (0, 2)
    assert con.execute("SELECT sum(weight) FROM outcomes").fetchone() == (4.0,)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (3,)  # not kept twice


def test_outcome_rows_are_numbered_by_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(
        'user,ts,kind,weight\n\nana,2026-03-02T10:00:00Z,"merged\nchange",1\nbob,never,commit,1\n'
    )
    result = ingest_outcomes(open_ledger(":memory:"), [path])
    assert [(r.line, r.field) for r in result.rejected] == [(3, "kind"), (5, "ts")]


def test_leaderboard_ranks_by_outcomes_per_dollar_and_marks_burners(
    tmp_path: Path, ledger: duckdb.DuckDBPyConnection, traffic: LabelledTraffic
) -> None:
    people = sorted(a for a, label in traffic.labels.items() if label in ("human", "heavy_human", "burn_bot"))
    rows = "\n".join(f"{a},2026-03-0{1 + i % 9}T12:00:00,commit,{1 + i % 5}" for i, a in enumerate(people))
    path = tmp_path / "o.csv"
    path.write_text("user,ts,kind,weight\n" + rows + "\n")
    con = open_ledger(":memory:")
    store_traffic(con, traffic.events, KEY)
    ingest_outcomes(con, [path])
    board = leaderboard(con, limit=1000)
    per_usd = [r.outcomes_per_usd or 0.0 for r in board]
    assert per_usd == sorted(per_usd, reverse=True)
    burners = {r.account for r in board if r.flagged}
    bots = {a for a, label in traffic.labels.items() if label == "burn_bot"}
    assert bots <= burners
    # A 24/7 service with Poisson arrivals and no outcomes of its own may cross the line; at most one.
    assert len(burners - bots) <= 1
    assert all("beacon_score" in r.why for r in board if r.flagged)
    top_token = min(board, key=lambda r: r.token_rank)
    assert top_token.flagged  # the biggest token spender is a bot, and the board says so


@pytest.mark.parametrize("command", ["scan", "leaderboard"])
def test_cli_renders_json(ledger_path: Path, command: str) -> None:
    result = CliRunner().invoke(app, ["integrity", command, "--db", str(ledger_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and isinstance(rows, list)


def test_cli_export_and_match(tmp_path: Path, ledger_path: Path) -> None:
    out = tmp_path / "b.json"
    runner = CliRunner()
    exported = runner.invoke(
        app, ["integrity", "export-stix", str(out), "--db", str(ledger_path), "--consortium-key", "s"]
    )
    assert exported.exit_code == 0, exported.output
    matched = runner.invoke(
        app, ["integrity", "match", str(out), "--db", str(ledger_path), "--consortium-key", "s", "-f", "json"]
    )
    assert matched.exit_code == 0, matched.output
    assert json.loads(matched.output)


@pytest.mark.parametrize(
    ("bundle", "says"),
    [
        ("[1, 2]", "expected an object with an 'objects' list"),
        ('{"objects": 5}', "expected an object with an 'objects' list"),
        ('{"objects": [{"type": "indicator", "pattern": "[x:y = \'z\']"}]}', "has no id"),
    ],
)
def test_a_malformed_partner_bundle_is_one_clear_error(
    tmp_path: Path, ledger_path: Path, bundle: str, says: str
) -> None:
    partner = tmp_path / "partner.json"
    partner.write_text(bundle)
    con = open_ledger(ledger_path, read_only=True)
    try:
        with pytest.raises(InputError, match=says):
            match_indicators(con, partner, consortium_key=CONSORTIUM)
    finally:
        con.close()


def test_export_into_a_missing_folder_is_refused_before_the_scan(tmp_path: Path, ledger_path: Path) -> None:
    con = open_ledger(ledger_path, read_only=True)
    try:
        with pytest.raises(InputError, match="no such folder"):
            export_stix(con, tmp_path / "nope" / "b.json", consortium_key=CONSORTIUM, lab_name="lab")
    finally:
        con.close()
