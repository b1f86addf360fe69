"""Ingest runs: listing their reconciliation, and undoing one (events, quarantine, rollup, index)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.runs import list_runs, undo_run
from flopledger.ledger.store import open_ledger

from .conftest import GOOD as ROW
from .conftest import write_jsonl

_EVENTS = (
    "SELECT team, count(*), sum(input_tokens), round(sum(cost_usd), 9) FROM events GROUP BY 1 ORDER BY 1"
)
_ROLLUP = (
    "SELECT team, sum(events), sum(input_tokens), round(sum(cost_usd), 9) FROM rollup_daily "
    "GROUP BY 1 ORDER BY 1"
)


def _usage(tmp_path: Path) -> Path:
    rows = [ROW, {**ROW, "ts": "2026-03-03T09:00:00Z", "user": "bob"}, {**ROW, "model": ""}]
    return write_jsonl(tmp_path / "usage.jsonl", rows)


def _same(con: duckdb.DuckDBPyConnection, other: duckdb.DuckDBPyConnection, sql: str) -> bool:
    return con.execute(sql).fetchall() == other.execute(sql).fetchall()


def test_undoing_a_run_ingested_with_the_wrong_set_leaves_the_ledger_as_before_it(tmp_path: Path) -> None:
    """The same file ingested again under another ``--set`` is new content, so it counts twice:
    undoing that run removes its events and sums its days again; the quarantine keeps its bad row
    (quarantined once, by the first run)."""
    path = _usage(tmp_path)
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [path])
    wrong = ingest_files(con, [path], fixed={"team": "ops"})
    assert (wrong.rows_stored, wrong.rows_quarantined) == (2, 1)  # counted twice
    before = open_ledger(tmp_path / "before.duckdb")
    ingest_files(before, [path])
    done = undo_run(con, wrong.ingest_id[:6])
    assert done.as_row() == {
        "ingest_id": wrong.ingest_id,
        "events_removed": 2,
        "days_summed_again": 2,
        "rows_replaced": 0,
        "later_runs_with_duplicates": 0,
    }
    assert _same(con, before, _EVENTS) and _same(con, before, _ROLLUP)
    assert con.execute("SELECT ingest_id, field FROM quarantine").fetchall() == [(first.ingest_id, "model")]
    runs = {r["ingest_id"]: r for r in list_runs(con)}
    assert runs[wrong.ingest_id]["status"] == "undone" and "2 event(s)" in runs[wrong.ingest_id]["message"]
    assert [r["ingest_id"] for r in list_runs(con)] == [wrong.ingest_id, first.ingest_id]  # newest first
    # its file ingested again, rightly: stored anew, once
    right = ingest_files(con, [path], fixed={"team": "platform"})
    assert (right.rows_stored, right.rows_duplicate) == (2, 0)
    assert ingest_files(con, [path], fixed={"team": "platform"}).rows_duplicate == 2
    teams = [t for t, *_ in con.execute(_EVENTS).fetchall()]
    assert teams == ["core", "platform"] and _same(con, con, _ROLLUP)
    assert con.execute(_ROLLUP).fetchall() == con.execute(_EVENTS).fetchall()


def test_only_a_committed_run_named_once_is_undone(tmp_path: Path) -> None:
    path = _usage(tmp_path)
    con = open_ledger(tmp_path / "l.duckdb")
    run = ingest_files(con, [path])
    for name, message in (
        ("ab", "at least 4 characters"),
        ("ffffffff", "no ingest run 'ffffffff'"),
    ):
        with pytest.raises(InputError, match=message):
            undo_run(con, name)
    failed = run.ingest_id[:8] + "00000000"  # a run that shares the first 8 characters
    con.execute("INSERT INTO ingests (ingest_id, status) VALUES (?, 'failed')", [failed])
    with pytest.raises(InputError, match="ambiguous"):
        undo_run(con, run.ingest_id[:8])
    with pytest.raises(InputError, match="is failed: it stored nothing"):
        undo_run(con, failed)
    undo_run(con, run.ingest_id)
    with pytest.raises(InputError, match="already undone"):
        undo_run(con, run.ingest_id)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_a_run_that_replaced_stored_rows_is_undone_only_when_forced(tmp_path: Path) -> None:
    """A usage-report pull that restated an earlier pull's bucket: undoing it cannot bring the
    earlier row back, so it is refused unless forced, and the earlier file can then be ingested again."""
    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    partial = json.loads(sample.read_text())
    partial["data"][0]["results"][0]["num_model_requests"] = 1
    early, final = tmp_path / "early.json", tmp_path / "final.json"
    early.write_text(json.dumps(partial))
    final.write_text(sample.read_text())
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [early], format="openai")
    grown = ingest_files(con, [final], format="openai")
    assert grown.rows_restated == 1
    with pytest.raises(InputError, match="replaced 1 stored row"):
        undo_run(con, grown.ingest_id)
    assert con.execute("SELECT status FROM ingests WHERE ingest_id = ?", [grown.ingest_id]).fetchone() == (
        "committed",
    )
    assert undo_run(con, grown.ingest_id, force=True).rows_replaced == 1
    again = ingest_files(con, [early], format="openai")  # the replaced row comes back from its file
    assert (again.rows_stored, again.rows_duplicate) == (1, again.rows_read - again.rows_quarantined - 1)
    fresh = open_ledger(tmp_path / "fresh.duckdb")
    ingest_files(fresh, [early], format="openai")
    assert _same(con, fresh, _EVENTS) and _same(con, fresh, _ROLLUP)


def test_a_run_whose_events_a_later_run_skipped_as_duplicates_is_undone_only_when_forced(
    tmp_path: Path,
) -> None:
    """Undoing a run removes its events, among them those a later run read again and skipped: the
    later run's file is then to be ingested again, which stores them."""
    days = [{**ROW, "ts": f"2026-03-0{d}T10:00:00Z"} for d in range(2, 6)]
    early = write_jsonl(tmp_path / "early.jsonl", days[:2])
    later = write_jsonl(tmp_path / "later.jsonl", days)
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [early])
    second = ingest_files(con, [later])
    assert (second.rows_stored, second.rows_duplicate) == (2, 2)
    with pytest.raises(InputError, match=f"later run\\(s\\) {second.ingest_id} skipped rows as duplicates"):
        undo_run(con, first.ingest_id)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (4,)  # nothing undone
    done = undo_run(con, first.ingest_id, force=True)
    assert (done.events_removed, done.later_runs) == (2, (second.ingest_id,))
    assert ingest_files(con, [later]).rows_stored == 2  # what the later run skipped is stored now
    fresh = open_ledger(tmp_path / "fresh.duckdb")
    ingest_files(fresh, [later])
    assert _same(con, fresh, _EVENTS) and _same(con, fresh, _ROLLUP)


def test_the_runs_of_a_ledger_an_older_flopledger_wrote_are_listed_without_upgrading_it(
    tmp_path: Path,
) -> None:
    con = open_ledger(tmp_path / "old.duckdb")
    run = ingest_files(con, [_usage(tmp_path)])
    con.execute("ALTER TABLE ingests DROP COLUMN rows_superseded")
    con.execute("ALTER TABLE ingests DROP COLUMN rows_restated")
    con.execute("ALTER TABLE ingests DROP COLUMN rows_overlapping")
    con.close()
    old = open_ledger(tmp_path / "old.duckdb", read_only=True)
    (listed,) = list_runs(old)
    assert (listed["ingest_id"], listed["rows_stored"], listed["rows_restated"]) == (run.ingest_id, 2, None)
    assert listed["rows_overlapping"] is None
    old.close()
    listed_cli = CliRunner().invoke(
        app, ["ingests", "list", "--db", str(tmp_path / "old.duckdb"), "-f", "json"]
    )
    assert listed_cli.exit_code == 0, listed_cli.output
    assert json.loads(listed_cli.stdout)[0]["rows_superseded"] is None
    # opened to write, the ledger gains the columns, and the next run records its counts
    upgraded = open_ledger(tmp_path / "old.duckdb")
    again = ingest_files(upgraded, [_usage(tmp_path)])
    newest, oldest = list_runs(upgraded)
    assert (
        (newest["rows_overlapping"], oldest["rows_overlapping"])
        == (again.rows_overlapping, None)
        == (0, None)
    )
    upgraded.close()


def _span(span_id: str, operation: str, *, kind: int | None = None) -> dict[str, object]:
    attrs = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 900,
        "gen_ai.usage.output_tokens": 100,
    }
    span: dict[str, object] = {
        "traceId": "c4" * 16,
        "spanId": span_id,
        "name": f"{operation} planner",
        "startTimeUnixNano": "1772445600000000000",
        "endTimeUnixNano": "1772445601000000000",
        "attributes": [
            {"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}}
            for k, v in attrs.items()
        ],
    }
    if kind is not None:
        span["kind"] = kind
    return span


def _spans(path: Path, *spans: dict[str, object]) -> Path:
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}))
    return path


def test_an_undone_runs_remote_agents_leave_the_index(tmp_path: Path) -> None:
    path = _spans(tmp_path / "spans.json", _span("c4119b7ec3c1b0ff", "invoke_agent", kind=3))
    con = open_ledger(tmp_path / "l.duckdb")
    run = ingest_files(con, [path], format="otel")
    assert run.rows_stored == 1 and con.execute("SELECT count(*) FROM agent_spans").fetchone() == (1,)
    undo_run(con, run.ingest_id)
    assert con.execute("SELECT count(*) FROM agent_spans").fetchone() == (0,)
    assert ingest_files(con, [path], format="otel").rows_stored == 1  # stored anew, listed again
    assert con.execute("SELECT count(*) FROM agent_spans").fetchone() == (1,)


def test_a_run_whose_model_calls_superseded_a_remote_agent_is_undone_only_when_forced(tmp_path: Path) -> None:
    agent = _spans(tmp_path / "agent.json", _span("c4119b7ec3c1b0ff", "invoke_agent", kind=3))
    made = [_span("c4119b7ec3c1b001", "chat"), _span("c4119b7ec3c1b002", "chat")]
    for call in made:  # under the agent's span, by way of its service's own
        call["parentSpanId"] = "c4119b7ec3c1b0aa"
    calls = _spans(tmp_path / "calls.json", *made)
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [agent], format="otel")
    replacing = ingest_files(con, [calls], format="otel")
    assert replacing.rows_superseded == 1
    with pytest.raises(InputError, match="replaced 1 stored row"):
        undo_run(con, replacing.ingest_id)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (2,)  # the calls, not undone
    assert undo_run(con, replacing.ingest_id, force=True).rows_replaced == 1
    # the calls are gone and the agent's span, which they replaced, is not brought back ...
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM rollup_daily").fetchone() == (0,)
    # ... until its file is ingested again
    assert ingest_files(con, [agent], format="otel").rows_stored == 1


def test_ingests_list_and_undo_on_the_command_line(tmp_path: Path) -> None:
    path, db = _usage(tmp_path), str(tmp_path / "l.duckdb")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--db", db]).exit_code == 0
    listed = runner.invoke(app, ["ingests", "list", "--db", db, "-f", "json"])
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.stdout)
    counts = (run["status"], run["rows_read"], run["rows_stored"], run["rows_quarantined"])
    assert counts == ("committed", 3, 2, 1)
    assert run["files"] == [str(path)]  # which run read which file: a list, not JSON text
    undone = runner.invoke(app, ["ingests", "undo", run["ingest_id"][:5], "--db", db, "-f", "json"])
    assert undone.exit_code == 0, undone.output
    assert json.loads(undone.stdout)[0]["events_removed"] == 2
    again = runner.invoke(app, ["ingests", "undo", run["ingest_id"], "--db", db])
    assert again.exit_code != 0 and "already undone" in str(again.exception)
    quarantined = runner.invoke(app, ["quarantine", "list", "--db", db, "-f", "json"])
    assert [r["field"] for r in json.loads(quarantined.stdout)] == ["model"]  # bad rows stay listed
    table = runner.invoke(app, ["ingests", "list", "--db", db])
    assert table.exit_code == 0 and "undone" in table.stdout
    assert path.name in " ".join(table.stdout.split())  # the table names the files too
