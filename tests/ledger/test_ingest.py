"""Ingest: reconciliation, idempotency, quarantine, --strict, errors, prompt privacy, interrupted runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import count_of, open_ledger

from .conftest import GOOD, write_jsonl


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return con.execute(sql).fetchall()


def test_counts_reconcile_and_bad_rows_are_quarantined_with_file_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(GOOD)
        + "\n"
        + json.dumps({**GOOD, "ts": "last tuesday"})
        + "\n"
        + "{not json\n"
        + json.dumps({**GOOD, "model": None})
        + "\n"
        + json.dumps({**GOOD, "output_tokens": -5})
        + "\n"
        + json.dumps({**GOOD, "user": "bob"})
        + "\n"
        + json.dumps({**GOOD, "reasoning_tokens": 900})
        + "\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path])
    assert (r.rows_read, r.rows_stored, r.rows_quarantined, r.rows_duplicate) == (7, 2, 5, 0)
    assert r.reconciles
    bad = _rows(con, "SELECT source_file, source_line, field, reason FROM quarantine ORDER BY source_line")
    assert [(b[1], b[2]) for b in bad] == [
        (2, "ts"),
        (3, None),
        (4, "model"),
        (5, "output_tokens"),
        (7, "reasoning_tokens"),
    ]
    assert all(b[0] == str(path) for b in bad)
    assert "not a timestamp" in str(bad[0][3]) and "JSON" in str(bad[1][3])
    assert "output includes reasoning" in str(bad[4][3])
    raw = _rows(con, "SELECT raw FROM quarantine WHERE source_line = 2")[0][0]
    assert "last tuesday" in str(raw)  # nothing is lost
    stored = _rows(con, "SELECT * FROM ingests WHERE ingest_id = ?".replace("?", f"'{r.ingest_id}'"))
    assert stored and stored[0][3] == "committed"


def test_reingesting_the_same_data_changes_nothing(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD, {**GOOD, "user": "bob"}, {**GOOD, "ts": "bad"}])
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [path])
    cost = _rows(con, "SELECT sum(cost_usd) FROM events")[0][0]
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(path.read_bytes())
    second = ingest_files(con, [path, copy])
    assert (first.rows_stored, first.rows_quarantined) == (2, 1)
    assert (second.rows_read, second.rows_stored, second.rows_duplicate, second.rows_quarantined) == (
        6,
        0,
        4,
        2,
    )
    assert _rows(con, "SELECT count(*), sum(cost_usd) FROM events")[0] == (2, cost)
    # the same bad row of the same file is not quarantined twice
    assert (
        _rows(con, "SELECT count(*) FROM quarantine WHERE source_file = ?".replace("?", f"'{path}'"))[0][0]
        == 1
    )
    assert _rows(con, "SELECT sum(events) FROM rollup_daily")[0][0] == 2


def test_identical_rows_inside_one_file_are_distinct_events(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD, GOOD, GOOD, {**GOOD, "user": "bob"}])
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [path]).rows_stored == 4
    again = ingest_files(con, [path])
    assert (again.rows_stored, again.rows_duplicate) == (0, 4)
    # a renamed copy beside the original in one run: the same four events, not eight
    copy = tmp_path / "b.jsonl"
    copy.write_bytes(path.read_bytes())
    other = open_ledger(tmp_path / "m.duckdb")
    both = ingest_files(other, [path, copy])
    assert (both.rows_read, both.rows_stored, both.rows_duplicate) == (8, 4, 4)
    assert _rows(other, "SELECT count(DISTINCT event_id), min(source_file) FROM events") == [(4, str(path))]


def test_request_ids_deduplicate_across_files_and_formats(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{**GOOD, "request_id": "r1"}, {**GOOD, "request_id": "r2"}])
    # the same requests exported again by another tool, with a different column order and extra field
    b = tmp_path / "b.csv"
    b.write_text(
        "request_id,ts,model,provider,input_tokens,output_tokens,note\n"
        "r1,2026-03-02T10:00:00Z,claude-sonnet-4-5,anthropic,1000,500,x\n"
        "r3,2026-03-02T10:00:00Z,claude-sonnet-4-5,anthropic,1000,500,x\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [a]).rows_stored == 2
    r = ingest_files(con, [b])
    assert (r.rows_stored, r.rows_duplicate) == (1, 1)
    assert sorted(x[0] for x in _rows(con, "SELECT request_id FROM events")) == ["r1", "r2", "r3"]


def test_a_batch_overlapping_the_ledger_stores_only_its_new_events_once(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    rid = lambda r: {**GOOD, "request_id": r}  # noqa: E731
    assert ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [rid("r1"), rid("r2")])]).rows_stored == 2
    # stored r1 twice, new r3 twice, new r4, stored r2, and a row without an id
    batch = [rid("r1"), rid("r3"), rid("r1"), rid("r3"), rid("r4"), rid("r2"), {**GOOD, "user": "carol"}]
    r = ingest_files(con, [write_jsonl(tmp_path / "b.jsonl", batch)])
    assert (r.rows_read, r.rows_stored, r.rows_duplicate, r.reconciles) == (7, 3, 4, True)
    ids = _rows(con, "SELECT request_id, count(*) FROM events GROUP BY 1 ORDER BY 1 NULLS LAST")
    assert ids == [("r1", 1), ("r2", 1), ("r3", 1), ("r4", 1), (None, 1)]
    assert _rows(con, "SELECT sum(events), sum(requests) FROM rollup_daily") == [(5, 5)]


def test_strict_stores_nothing_and_names_the_first_bad_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD, {**GOOD, "ts": "nope"}])
    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(InputError, match=r"--strict: 1 bad row.*a\.jsonl:2"):
        ingest_files(con, [path], strict=True)
    assert _rows(con, "SELECT count(*) FROM events")[0][0] == 0
    assert _rows(con, "SELECT count(*) FROM quarantine")[0][0] == 0
    assert _rows(con, "SELECT status FROM ingests")[0][0] == "failed"


def test_wrong_map_and_missing_file_are_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("when,m,toks\n2026-03-02T10:00:00Z,gpt-5,100\n", encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(InputError, match=r"no column 'tokens'.*its columns are: when, m, toks"):
        ingest_files(con, [path], mapping={"ts": "when", "model": "m", "input_tokens": "tokens"})
    with pytest.raises(UnknownNameError, match="did you mean 'input_tokens'"):
        ingest_files(con, [path], mapping={"input_token": "toks"})
    with pytest.raises(InputError, match="no such file"):
        ingest_files(con, [tmp_path / "missing.jsonl"])
    r = ingest_files(
        con,
        [path],
        mapping={"ts": "when", "model": "m", "input_tokens": "toks"},
        fixed={"provider": "openai", "team": "web"},
    )
    assert r.rows_stored == 1
    assert _rows(con, "SELECT team, provider, input_tokens, priced FROM events") == [
        ("web", "openai", 100, True)
    ]


def test_input_including_cache_is_split_never_double_counted(tmp_path: Path) -> None:
    path = tmp_path / "openai_style.csv"
    path.write_text(
        "ts,model,provider,input_tokens,cache_read_tokens,output_tokens\n"
        "2026-03-02T10:00:00Z,gpt-5,openai,10000,8000,100\n"
        "2026-03-02T10:00:01Z,gpt-5,openai,100,800,100\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path], input_includes_cache=True)
    assert (r.rows_stored, r.rows_quarantined) == (1, 1)
    assert _rows(con, "SELECT input_tokens, cache_read_tokens FROM events") == [(2000, 8000)]
    assert "cache tokens exceed input" in str(_rows(con, "SELECT reason FROM quarantine")[0][0])


def test_output_excluding_reasoning_gets_it_added(tmp_path: Path) -> None:
    """Gemini counts its thoughts apart from its candidates, and bills both as output."""
    path = write_jsonl(
        tmp_path / "gemini.jsonl",
        [
            {
                "time": "2026-11-03T10:00:00Z",
                "response": {
                    "modelVersion": "gemini-2.5-pro",
                    "usageMetadata": {
                        "promptTokenCount": 10_000,
                        "cachedContentTokenCount": 8_000,
                        "candidatesTokenCount": 500,
                        "thoughtsTokenCount": 1_500,
                    },
                },
            }
        ],
    )
    usage = "response.usageMetadata"
    mapping = {
        "ts": "time",
        "model": "response.modelVersion",
        "input_tokens": f"{usage}.promptTokenCount",
        "cache_read_tokens": f"{usage}.cachedContentTokenCount",
        "output_tokens": f"{usage}.candidatesTokenCount",
        "reasoning_tokens": f"{usage}.thoughtsTokenCount",
    }
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(
        con,
        [path],
        mapping=mapping,
        fixed={"provider": "google"},
        input_includes_cache=True,
        output_excludes_reasoning=True,
    )
    assert (r.rows_stored, r.rows_quarantined) == (1, 0)
    assert _rows(
        con, "SELECT input_tokens, cache_read_tokens, output_tokens, reasoning_tokens FROM events"
    ) == [(2_000, 8_000, 2_000, 1_500)]
    # without the flag the reasoning is more than the output: a row said to be wrong, not priced low
    other = open_ledger(tmp_path / "m.duckdb")
    plain = ingest_files(
        other, [path], mapping=mapping, fixed={"provider": "google"}, input_includes_cache=True
    )
    assert plain.rows_quarantined == 1


def test_no_prompt_text_reaches_the_database_unless_asked(tmp_path: Path) -> None:
    secret = "Summarise the confidential merger memo for Project Bluebird"
    path = write_jsonl(tmp_path / "a.jsonl", [{**GOOD, "prompt": secret}])
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [path], fingerprint_key=b"k")
    assert _rows(con, "SELECT prompt, fp_template_hash IS NOT NULL, fp_minhash IS NOT NULL FROM events") == [
        (None, True, True)
    ]
    con.execute("CHECKPOINT")
    con.close()
    blob = db.read_bytes() + (
        db.with_suffix(".duckdb.wal").read_bytes() if db.with_suffix(".duckdb.wal").exists() else b""
    )
    assert b"Bluebird" not in blob and b"merger memo" not in blob
    con = open_ledger(tmp_path / "kept.duckdb")
    ingest_files(con, [path], keep_prompts=True)
    assert _rows(con, "SELECT prompt FROM events") == [(secret,)]


def test_no_prompt_text_reaches_the_quarantine_unless_asked(tmp_path: Path) -> None:
    """Bad rows are kept as read, but without their prompt: escaped, broken, mapped or in attributes."""
    secrets = ["Kündigung von Herrn Müller", "confidential merger memo", "TOP SECRET acquisition", 'say "hi"']
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(
        json.dumps({"model": "gpt-5", "input_tokens": 5, "prompt": secrets[0]})
        + "\n"  # no ts; \u00fc escapes
        + '{"ts": "2026-03-02T10:00:00Z", "model": "gpt-5", "prompt": "'
        + secrets[1]
        + "\n",  # broken JSON
        encoding="utf-8",
    )
    litellm = tmp_path / "spend.jsonl"
    litellm.write_text(
        '{"request_id": "r1", "model": "gpt-5", "messages": [{"role": "user", "content": "'
        + secrets[2]
        + "\n",
        encoding="utf-8",
    )
    csv_path = tmp_path / "u.csv"
    csv_path.write_text(f'when,m,toks,text\nnope,gpt-5,3,"{secrets[3].replace(chr(34), chr(34) * 2)}"\n')
    otel = tmp_path / "spans.json"
    span = {
        "traceId": "0" * 31 + "1",
        "spanId": "0" * 15 + "1",
        "name": "chat",
        "startTimeUnixNano": "not a time",
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-5"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}},
            {"key": "gen_ai.prompt", "value": {"stringValue": secrets[1] + " again"}},
        ],
    }
    otel.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    results = [
        ingest_files(con, [jsonl], format="jsonl"),
        ingest_files(con, [litellm], format="litellm"),
        ingest_files(
            con, [csv_path], mapping={"ts": "when", "model": "m", "input_tokens": "toks", "prompt": "text"}
        ),
        ingest_files(con, [otel], format="otel"),
    ]
    assert [r.rows_quarantined for r in results] == [2, 1, 1, 1]
    raws = [r for (r,) in _rows(con, "SELECT raw FROM quarantine ORDER BY source_file, source_line")]
    assert sum("[prompt withheld]" in r for r in raws) == 4, raws  # the span's raw leaves text out itself
    assert any('"model": "gpt-5"' in r or '"model":"gpt-5"' in r for r in raws)  # the rest is kept
    con.execute("CHECKPOINT")
    con.close()
    blob = db.read_bytes()
    for secret in (*secrets, "Herrn M", "merger memo", "acquisition"):
        assert secret.encode() not in blob and json.dumps(secret)[1:-1].encode() not in blob, secret
    con = open_ledger(tmp_path / "kept.duckdb")
    ingest_files(con, [jsonl], format="jsonl", keep_prompts=True)
    kept = " ".join(r for (r,) in _rows(con, "SELECT raw FROM quarantine"))
    assert secrets[1] in kept and "K\\u00fcndigung" in kept


_INGEST_SCRIPT = """
import sys
from flopledger.ledger.store import open_ledger
from flopledger.ledger.ingest import ingest_files
con = open_ledger(sys.argv[1])
def slow(done, total):
    import time
    print("progress", done, flush=True)
    time.sleep(0.3)
ingest_files(con, [sys.argv[2]], progress=slow)
"""


def test_an_ingest_killed_half_way_leaves_the_ledger_consistent_and_a_rerun_completes(tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    earlier = write_jsonl(tmp_path / "earlier.jsonl", [GOOD])
    con = open_ledger(db)
    ingest_files(con, [earlier])
    con.close()
    rows = [{**GOOD, "user": f"u{i}", "ts": f"2026-03-02T{i % 24:02d}:00:00Z"} for i in range(120_000)]
    # a LiteLLM-style record file is staged in batches, so the process can be killed between them
    path = tmp_path / "spend.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "request_id": f"req-{i}",
                    "spend": 0,
                    "startTime": r["ts"],
                    "model": r["model"],
                    "custom_llm_provider": "anthropic",
                    "user": r["user"],
                    "prompt_tokens": 100,
                    "completion_tokens": 10,
                }
            )
            + "\n"
            for i, r in enumerate(rows)
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _INGEST_SCRIPT, str(db), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first batch is staged: the run is under way
    assert line.startswith("progress"), line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    time.sleep(0.1)
    con = open_ledger(db)
    assert _rows(con, "SELECT count(*) FROM events")[0][0] == 1  # only the earlier, committed run
    assert _rows(con, "SELECT status FROM ingests ORDER BY started_at") == [("committed",), ("running",)]
    r = ingest_files(con, [path])
    assert r.rows_stored == 120_000 and r.reconciles
    assert _rows(con, "SELECT status FROM ingests ORDER BY started_at") == [
        ("committed",),
        ("interrupted",),
        ("committed",),
    ]
    assert _rows(con, "SELECT count(*) FROM events")[0][0] == 120_001


def test_a_run_whose_commit_was_torn_is_taken_out_and_a_re_run_stores_it_whole(tmp_path: Path) -> None:
    """A process killed while its commit is written may leave its bulk insert of events recovered
    without the rest of its transaction: the run still 'running', its rollup days and quarantine
    rows missing. The next ingest takes those events out, sums their days again, and the re-run
    stores the run whole, its rollup matching its events."""
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    earlier = ingest_files(con, [write_jsonl(tmp_path / "earlier.jsonl", [GOOD])])
    rows = [{**GOOD, "user": f"u{i}", "ts": f"2026-03-0{1 + i % 3}T{i % 24:02d}:00:00Z"} for i in range(300)]
    path = write_jsonl(tmp_path / "usage.jsonl", rows)
    torn = ingest_files(con, [path])
    # what such a recovery leaves: the events, and neither the run's record nor its rollup
    con.execute("UPDATE ingests SET status = 'running' WHERE ingest_id = ?", [torn.ingest_id])
    con.execute("DELETE FROM rollup_daily WHERE day BETWEEN DATE '2026-03-01' AND DATE '2026-03-03'")
    again = ingest_files(con, [path])
    assert (again.rows_stored, again.rows_duplicate) == (300, 0) and again.reconciles
    (status, message) = _rows(
        con, f"SELECT status, message FROM ingests WHERE ingest_id = '{torn.ingest_id}'"
    )[0]
    assert status == "interrupted" and "the 300 event(s) it left were removed" in str(message)
    assert _rows(con, "SELECT count(*), sum(cost_usd) FROM events") == _rows(
        con, "SELECT sum(events), sum(cost_usd) FROM rollup_daily"
    )
    assert count_of(con, "SELECT count(*) FROM events") == 301
    assert earlier.rows_stored == 1


class _InterruptedAfterCommit:
    """A connection whose COMMIT is written and then interrupted (Ctrl-C landing as it finishes)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._run_committed = False

    def execute(self, sql: str, *args: object) -> object:
        out = self._con.execute(sql, *args)
        self._run_committed |= sql.lstrip().startswith("UPDATE ingests") and "status = 'committed'" in sql
        if sql.strip().upper() == "COMMIT" and self._run_committed:  # the run's own commit
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def test_an_interrupt_after_the_commit_leaves_the_run_committed_and_undoable(tmp_path: Path) -> None:
    from flopledger.ledger.runs import undo_run

    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(KeyboardInterrupt):
        ingest_files(_InterruptedAfterCommit(con), [write_jsonl(tmp_path / "u.jsonl", [GOOD])])  # type: ignore[arg-type]
    ((run, status),) = _rows(con, "SELECT ingest_id, status FROM ingests")
    assert status == "committed" and count_of(con, "SELECT count(*) FROM events") == 1
    assert undo_run(con, str(run)).events_removed == 1  # not "failed: it stored nothing"


class _KilledAfterFirstPriceRows(_InterruptedAfterCommit):
    """A connection interrupted right after the first chunk of price rows is inserted."""

    def execute(self, sql: str, *args: object) -> object:
        out = self._con.execute(sql, *args)
        if sql.lstrip().startswith("INSERT INTO prices"):
            raise KeyboardInterrupt
        return out


def test_a_run_stopped_while_storing_price_rows_leaves_no_model_half_priced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flopledger.ledger.price_table as price_table

    monkeypatch.setattr(price_table, "_ROWS_PER_INSERT", 1)  # every price row a chunk of its own
    path = write_jsonl(tmp_path / "u.jsonl", [GOOD, {**GOOD, "input_tokens": 300_000, "user": "bo"}])
    clean = open_ledger(tmp_path / "clean.duckdb")
    ingest_files(clean, [path])
    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(KeyboardInterrupt):
        ingest_files(_KilledAfterFirstPriceRows(con), [path])  # type: ignore[arg-type]
    assert count_of(con, "SELECT count(*) FROM prices") == 0  # the chunk went with the rest
    ingest_files(con, [path])
    prices = "SELECT count(*) FROM prices"
    assert count_of(con, prices) == count_of(clean, prices) > 1
    cost = "SELECT sum(cost_usd) FROM events"
    assert _rows(con, cost) == _rows(clean, cost)


def test_a_file_rewritten_with_changed_rows_is_said_to_count_them_twice(tmp_path: Path) -> None:
    """Rows without ids are known by their content: a log rewritten with corrected counts gives new
    events beside the old ones. The run says how many and which run stored the old ones; a log that
    only grew (or was trimmed at its head) says nothing."""
    rows = [{**GOOD, "user": f"u{i}", "ts": f"2026-03-02T{i:02d}:00:00Z"} for i in range(10)]
    path = write_jsonl(tmp_path / "usage.jsonl", rows)
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [path])
    grown = ingest_files(con, [write_jsonl(path, [*rows, {**GOOD, "user": "new"}])])
    assert (grown.rows_stored, grown.rows_changed_in_place) == (1, 0)
    trimmed = ingest_files(
        con, [write_jsonl(path, [*rows[3:], {**GOOD, "user": "new"}, {**GOOD, "user": "n2"}])]
    )
    assert (trimmed.rows_stored, trimmed.rows_changed_in_place) == (1, 0)
    fixed = [{**r, "output_tokens": r["output_tokens"] + 1} for r in rows[:4]] + rows[4:]
    rewritten = ingest_files(con, [write_jsonl(path, fixed)])
    assert (rewritten.rows_stored, rewritten.rows_changed_in_place) == (4, 4)
    assert rewritten.changed_runs == (first.ingest_id,)
    # a row of a source id read at another time than before (an older flopledger read a zone one row
    # named into the rows after it): the same request at another time is a new event, and said
    ided = [{**GOOD, "request_id": f"req-{i}", "ts": f"2026-03-03T0{i}:00:00Z"} for i in range(3)]
    ingest_files(con, [write_jsonl(path, ided)])
    moved = ingest_files(con, [write_jsonl(path, [{**r, "ts": r["ts"].replace("T0", "T1")} for r in ided])])
    assert (moved.rows_stored, moved.rows_changed_in_place) == (3, 3)
    con.close()
    said = CliRunner().invoke(
        app,
        [
            "ingest",
            str(write_jsonl(path, [{**r, "input_tokens": 7} for r in rows])),
            "--db",
            str(tmp_path / "l.duckdb"),
        ],
    )
    assert "row(s) of this run's files changed in place" in " ".join(said.stderr.split())


_ts = st.datetimes(
    min_value=__import__("datetime").datetime(2024, 1, 1),
    max_value=__import__("datetime").datetime(2027, 1, 1),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "ts": _ts.map(lambda t: t.isoformat() + "Z"),
                    "model": st.sampled_from(["gpt-5", "claude-haiku-4-5", "no-such-model"]),
                    "input_tokens": st.integers(0, 10**7),
                    "output_tokens": st.integers(0, 10**6),
                    "team": st.text(min_size=1, max_size=8),
                }
            ),
            st.fixed_dictionaries(
                {
                    "ts": st.sampled_from(["", "soon", "2026-13-45"]),
                    "model": st.just("gpt-5"),
                    "input_tokens": st.integers(0, 10),
                }
            ),
            st.fixed_dictionaries(
                {
                    "ts": st.just("2026-01-01T00:00:00Z"),
                    "model": st.just("gpt-5"),
                    "input_tokens": st.sampled_from([-1, 1.5, "many"]),
                }
            ),
        ),
        max_size=30,
    )
)
def test_reconciliation_holds_for_any_mix_of_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, object]]
) -> None:
    tmp = tmp_path_factory.mktemp("rec")
    path = write_jsonl(tmp / "rows.jsonl", rows or [{"ts": "x"}])
    con = open_ledger(tmp / "l.duckdb")
    first = ingest_files(con, [path])
    again = ingest_files(con, [path])
    assert first.reconciles and again.reconciles
    assert again.rows_stored == 0 and again.rows_duplicate == first.rows_stored
    stored = _rows(con, "SELECT count(*), coalesce(sum(input_tokens), 0) FROM events")[0]
    good = [
        r
        for r in rows
        if isinstance(r.get("input_tokens"), int)
        and int(r["input_tokens"]) >= 0  # type: ignore[call-overload]
        and r.get("team") is not None
    ]
    assert stored[0] == first.rows_stored == len(good)
    assert stored[1] == sum(int(r["input_tokens"]) for r in good)  # type: ignore[call-overload]


def test_a_large_table_file_is_stored_whole(tmp_path: Path) -> None:
    """Large enough for DuckDB's parallel CSV scan and optimistic writes (a lost-insert regression)."""
    n = 150_000
    path = tmp_path / "big.jsonl"
    line = json.dumps({**GOOD, "user": "u{}"})
    path.write_text("".join(line.replace("u{}", f"u{i}") + "\n" for i in range(n)), encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path])
    assert (r.rows_read, r.rows_stored) == (n, n)
    assert _rows(con, "SELECT count(*), count(DISTINCT user) FROM events")[0] == (n, n)


def test_line_numbers_follow_the_file_in_a_large_file_with_blank_lines(tmp_path: Path) -> None:
    """Bad rows deep in a file read in parallel keep their own line numbers, and good rows theirs."""
    n = 120_000
    bad_at = {7, 64_000, 119_999}  # line numbers (1-based) of bad lines
    blank_at = {3, 90_000}
    lines = []
    for number in range(1, n + 1):
        if number in blank_at:
            lines.append("")
        elif number in bad_at:
            lines.append(json.dumps({**GOOD, "user": f"u{number}", "output_tokens": -1}))
        else:
            lines.append(json.dumps({**GOOD, "user": f"u{number}"}))
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path])
    assert (r.rows_read, r.rows_stored, r.rows_quarantined) == (n - 2, n - 5, 3)
    quarantined = _rows(con, "SELECT source_line, raw FROM quarantine ORDER BY source_line")
    assert [q[0] for q in quarantined] == sorted(bad_at)
    assert all(f'"u{line}"' in str(raw) for line, raw in quarantined)
    sample = _rows(
        con, "SELECT source_line, user FROM events WHERE source_line IN (1, 2, 4, 89999, 90001, 120000)"
    )
    assert sorted(sample) == [
        (1, "u1"),
        (2, "u2"),
        (4, "u4"),
        (89_999, "u89999"),
        (90_001, "u90001"),
        (120_000, "u120000"),
    ]


def test_timestamps_without_an_offset_are_utc_whatever_the_session_time_zone(tmp_path: Path) -> None:
    rows = [
        {**GOOD, "ts": "2026-03-02 10:00:00", "user": "naive"},
        {**GOOD, "ts": "2026-03-02T12:00:00+02:00", "user": "offset"},
        {**GOOD, "ts": "2026-03-02T10:00:00Z", "user": "zulu"},
        {**GOOD, "ts": 1772445600, "user": "epoch"},
    ]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    con = open_ledger(tmp_path / "l.duckdb")
    con.execute("SET TimeZone = 'America/New_York'")
    assert ingest_files(con, [path]).rows_stored == 4
    stamps = {u: str(t) for u, t in _rows(con, "SELECT user, ts FROM events")}
    assert set(stamps.values()) == {"2026-03-02 10:00:00"}, stamps
    assert _rows(con, "SELECT current_setting('TimeZone')") == [("America/New_York",)]  # the caller's, kept


def test_a_zone_named_in_one_row_does_not_move_the_rows_after_it(tmp_path: Path) -> None:
    """DuckDB's zoned parser, over a batch, carries a zone one row names on to the rows after it
    that name none: those are read as UTC on their own."""
    path = tmp_path / "tz.csv"
    path.write_text(
        "ts,model,user,input_tokens\n"
        "2026-11-03 10:00:00 Europe/Berlin,gpt-4o,berlin,1\n"
        "2026-11-03 10:00:00,gpt-4o,naive,2\n"
        "2026-11-03 10:00:00.5,gpt-4o,fraction,3\n"
        "2026-11-03T10:00:00-05:00,gpt-4o,offset,4\n"
        "2026-11-03,gpt-4o,day,5\n"
        "2026-11-03 10:00:00 UTC,gpt-4o,utc,6\n"
        "2026-11-03T10:00:00+05:30:00,gpt-4o,offset_seconds,7\n"
        "2026-11-03 10:00:00.+05:30,gpt-4o,empty_fraction,8\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [path]).rows_stored == 8
    assert {u: str(t) for u, t in _rows(con, "SELECT user, ts FROM events")} == {
        "offset_seconds": "2026-11-03 04:30:00",
        "empty_fraction": "2026-11-03 04:30:00",
        "berlin": "2026-11-03 09:00:00",
        "naive": "2026-11-03 10:00:00",
        "fraction": "2026-11-03 10:00:00.500000",
        "offset": "2026-11-03 15:00:00",
        "day": "2026-11-03 00:00:00",
        "utc": "2026-11-03 10:00:00",
    }


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "1e30", "2.5", "4.9999999999999999", "100.0000000000000001", "1e-400", "5e-1"],
)
def test_counts_that_are_not_whole_finite_numbers_are_quarantined(tmp_path: Path, value: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        f"ts,model,input_tokens,output_tokens\n2026-03-02T10:00:00Z,m,{value},5\n2026-03-02T10:00:00Z,m,1,5\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path])
    assert (r.rows_stored, r.rows_quarantined) == (1, 1)
    assert _rows(con, "SELECT source_line, field FROM quarantine") == [(2, "input_tokens")]
    assert value in str(_rows(con, "SELECT raw FROM quarantine")[0][0])


@pytest.mark.parametrize(("value", "count"), [("5.000", 5), ("1e3", 1000), ("0e5", 0), ("0.0", 0), ("+7", 7)])
def test_whole_counts_written_otherwise_are_read_as_such(tmp_path: Path, value: str, count: int) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        f"ts,model,input_tokens,output_tokens\n2026-03-02T10:00:00Z,m,{value},5\n", encoding="utf-8"
    )
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [path]).rows_stored == 1
    assert _rows(con, "SELECT input_tokens FROM events") == [(count,)]


def test_a_ledger_with_bare_content_hash_ids_is_not_counted_twice(tmp_path: Path) -> None:
    """Some earlier versions gave a row without a source id its bare content hash as id (the first
    occurrence only); re-ingesting into a ledger they wrote must still find those events."""
    from flopledger.ledger.formats.tabular import Jsonl
    from flopledger.ledger.validate import checked_sql

    path = tmp_path / "twice.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    source = Jsonl().source(con, path, {}, {}, "_probe")
    sql = checked_sql(source.sql, fidx="0", incl_cache="false", raw="NULL")
    ((content_hash, first_id),) = set(con.execute(f"SELECT _content_hash, event_id FROM ({sql})").fetchall())
    con.execute("DROP TABLE _probe")
    one = tmp_path / "once.jsonl"
    one.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    assert ingest_files(con, [one]).rows_stored == 1
    # as those versions stored it
    con.execute("UPDATE events SET event_id = ? WHERE event_id = ?", [content_hash, first_id])
    again = ingest_files(con, [path])  # the same row, then a second identical one: only that is new
    assert (again.rows_stored, again.rows_duplicate) == (1, 1)
    assert ingest_files(con, [path]).rows_duplicate == 2
    assert _rows(con, "SELECT count(*) FROM events")[0][0] == 2


def test_a_litellm_proxy_cache_hit_costs_nothing(tmp_path: Path) -> None:
    """A response LiteLLM served from its own cache never reached the vendor (its spend is 0)."""
    base = {
        "request_id": "r-hit",
        "spend": 0.0,
        "prompt_tokens": 2600,
        "completion_tokens": 400,
        "startTime": "2026-03-03T08:00:00+00:00",
        "model": "claude-haiku-4-5",
        "custom_llm_provider": "anthropic",
        "cache_hit": "True",
    }
    path = tmp_path / "spend.jsonl"
    path.write_text(
        json.dumps(base) + "\n" + json.dumps({**base, "request_id": "r-miss", "cache_hit": "False"}) + "\n"
    )
    con = open_ledger(":memory:")
    assert ingest_files(con, [path], format="litellm").rows_stored == 2
    rows = _rows(
        con,
        "SELECT request_id, requests, input_tokens + output_tokens, cost_usd > 0, tags FROM events "
        "ORDER BY 1",
    )
    assert rows[1][:4] == ("r-miss", 1, 3000, True)
    hit_id, requests, tokens, costs, tags = rows[0]
    assert (hit_id, requests, tokens, costs) == ("r-hit", 0, 0, False)
    assert json.loads(tags)["proxy_cache_hit"] is True and json.loads(tags)["cached_prompt_tokens"] == 2600


def test_a_ledger_held_by_another_process_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    open_ledger(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('ready'); "
            "sys.stdout.flush(); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(
            InputError,
            match=rf"in use by another process \(PID {holder.pid}\).*another `flopledger ingest`.*wait for it"
            ".*flopledger serve",
        ):
            open_ledger(db, read_only=True)
    finally:
        holder.kill()
        holder.communicate()  # reaps it and closes its pipe


def test_a_usage_report_bucket_pulled_again_replaces_the_earlier_pull(tmp_path: Path) -> None:
    """A bucket pulled before it closed comes back with its final counts: they replace the first ones,
    the rollup follows, and pulling the final report again changes nothing."""
    from flopledger.ledger.rollups import ROLLUP_TABLE

    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    full = json.loads(sample.read_text())
    partial = json.loads(sample.read_text())
    first = partial["data"][0]["results"][0]
    # Mid-day: not all counted yet, and less of it read from the cache (so its uncached part is larger).
    first["input_tokens"], first["input_cached_tokens"], first["num_model_requests"] = 1_000_000, 200_000, 300
    partial_path = tmp_path / "partial.json"
    partial_path.write_text(json.dumps(partial))
    full_path = tmp_path / "full.json"
    full_path.write_text(json.dumps(full))
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [partial_path], format="openai")
    again = ingest_files(con, [full_path], format="openai")
    assert again.reconciles and (again.rows_stored, again.rows_restated) == (1, 1)
    assert again.rows_duplicate == again.rows_read - again.rows_quarantined - 1
    fresh = open_ledger(tmp_path / "fresh.duckdb")
    ingest_files(fresh, [full_path], format="openai")
    totals = "SELECT count(*), sum(requests), sum(input_tokens), round(sum(cost_usd), 9) FROM events"
    assert _rows(con, totals) == _rows(fresh, totals)
    rollup = f"SELECT sum(requests), sum(input_tokens), round(sum(cost_usd), 9) FROM {ROLLUP_TABLE}"
    assert _rows(con, rollup) == _rows(fresh, rollup)
    third = ingest_files(con, [full_path], format="openai")
    assert (third.rows_stored, third.rows_restated, third.rows_duplicate) == (0, 0, again.rows_duplicate + 1)
    assert _rows(con, "SELECT rows_restated FROM ingests ORDER BY started_at") == [(0,), (1,), (0,)]
    # An older pull after the final one, alone or with it in one run, leaves the final counts.
    for paths in ([partial_path], [partial_path, full_path], [full_path, partial_path]):
        late = ingest_files(con, paths, format="openai")
        assert late.reconciles and (late.rows_stored, late.rows_restated) == (0, 0), paths
        assert _rows(con, totals) == _rows(fresh, totals) and _rows(con, rollup) == _rows(fresh, rollup)
    # Both pulls in the first run of a fresh ledger: the final counts are the ones stored.
    both = open_ledger(tmp_path / "both.duckdb")
    ingest_files(both, [full_path, partial_path], format="openai")
    assert _rows(both, totals) == _rows(fresh, totals)


def test_of_two_pages_of_one_document_the_pull_with_grown_output_is_kept(tmp_path: Path) -> None:
    """Pages of one JSON document share a line: the larger pull wins on output too, not by read order."""
    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    page = json.loads(sample.read_text())
    bucket = dict(page["data"][0], results=[page["data"][0]["results"][0]])
    early = dict(page, data=[bucket])
    grown = json.loads(json.dumps(early))
    grown["data"][0]["results"][0]["output_tokens"] += 1000
    first = tmp_path / "early.json"
    first.write_text(json.dumps(early))
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [first], format="openai")
    (before,) = _rows(con, "SELECT output_tokens FROM events")
    for pages in ([early, grown], [grown, early]):
        path = tmp_path / "pages.json"
        path.write_text(json.dumps(pages))  # a list of pages: every row of it is on line 1
        result = ingest_files(con, [path], format="openai")
        assert result.reconciles
        assert _rows(con, "SELECT output_tokens FROM events") == [(before[0] + 1000,)], pages
        assert _rows(con, "SELECT sum(output_tokens) FROM rollup_daily") == [(before[0] + 1000,)]


def test_an_anthropic_bucket_pulled_again_with_more_web_searches_restates_its_row(tmp_path: Path) -> None:
    """A bucket's searches may grow while its token totals do not (a later pull of an open day): it
    restates the row, whichever page comes first; fewer searches with grown tokens restate it too."""
    sample = Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json"
    page = json.loads(sample.read_text())
    bucket = dict(page["data"][0], results=[page["data"][0]["results"][0]])
    early = dict(page, data=[bucket], has_more=False, next_page=None)
    searched = json.loads(json.dumps(early))
    searched["data"][0]["results"][0]["server_tool_use"]["web_search_requests"] += 8  # 12 -> 20
    first = tmp_path / "early.json"
    first.write_text(json.dumps(early))
    searches = "SELECT web_search_requests, round(web_search_cost_usd, 6) FROM events"
    for i, pages in enumerate(([searched], [early, searched], [searched, early])):
        con = open_ledger(tmp_path / f"l{i}.duckdb")  # each order into a ledger holding the first pull
        ingest_files(con, [first], format="anthropic")
        assert _rows(con, searches) == [(12, 0.12)]
        path = tmp_path / "again.json"
        path.write_text(json.dumps(pages[0] if len(pages) == 1 else pages))
        result = ingest_files(con, [path], format="anthropic")
        assert result.reconciles and result.rows_restated == 1, pages
        assert _rows(con, searches) == [(20, 0.2)], pages
        assert _rows(con, "SELECT sum(web_search_requests) FROM rollup_daily") == [(20,)]
    # grown tokens with fewer searches: the later pull still restates the row
    later = json.loads(json.dumps(early))
    later["data"][0]["results"][0]["output_tokens"] += 1000
    path = tmp_path / "later.json"
    path.write_text(json.dumps(later))
    assert ingest_files(con, [path], format="anthropic").rows_restated == 1
    assert _rows(con, searches) == [(12, 0.12)]


def test_requests_ingested_again_with_their_web_searches_gain_them(tmp_path: Path) -> None:
    """Rows stored without searches (by an older flopledger, or a log written before the tool's
    result) that come again saying them replace the stored rows, with or without a source id; a row
    that differs in more than its searches stays a duplicate, and fewer searches change nothing."""
    plain = [
        {**GOOD, "request_id": "req-1"},
        {**GOOD, "input_tokens": 2000},  # no id of its own: its content's hash
        {**GOOD, "input_tokens": 3000, "request_id": "req-3"},
    ]
    searched = [
        {**plain[0], "web_search_requests": 4},
        {**plain[1], "web_search_requests": 2},
        {**plain[2], "web_search_requests": 5, "team": "other"},  # another team too: a duplicate
    ]
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", plain)])
    assert first.rows_stored == 3
    again = ingest_files(con, [write_jsonl(tmp_path / "b.jsonl", searched)])
    assert again.reconciles
    assert (again.rows_stored, again.rows_restated, again.rows_duplicate) == (2, 2, 1)
    by_input = "SELECT input_tokens, team, web_search_requests, round(web_search_cost_usd, 6) FROM events"
    assert _rows(con, by_input + " ORDER BY input_tokens") == [
        (1000, "core", 4, 0.04),
        (2000, "core", 2, 0.02),
        (3000, "core", None, 0.0),
    ]
    fresh = open_ledger(tmp_path / "fresh.duckdb")
    ingest_files(fresh, [write_jsonl(tmp_path / "c.jsonl", [*searched[:2], plain[2]])])
    totals = "SELECT count(*), sum(web_search_requests), round(sum(cost_usd), 9) FROM events"
    assert _rows(con, totals) == _rows(fresh, totals)
    rollup = "SELECT sum(requests), sum(web_search_requests), round(sum(cost_usd), 9) FROM rollup_daily"
    assert _rows(con, rollup) == _rows(fresh, rollup)
    # the first file again, or a repeat of one request saying fewer searches: nothing changes
    for rows in (plain, [{**plain[0], "web_search_requests": 1}]):
        late = ingest_files(con, [write_jsonl(tmp_path / "d.jsonl", rows)])
        assert (late.rows_stored, late.rows_restated, late.rows_duplicate) == (0, 0, len(rows))
        assert _rows(con, totals) == _rows(fresh, totals)
    # one row of the request the stored one but for its searches, another of another team with more:
    # the request is not restated (the row kept would be the other team's), and the stored row stays
    mixed = [{**plain[2], "web_search_requests": 2}, {**plain[2], "web_search_requests": 5, "team": "x"}]
    late = ingest_files(con, [write_jsonl(tmp_path / "m.jsonl", mixed)])
    assert (late.rows_stored, late.rows_restated, late.rows_duplicate) == (0, 0, 2)
    assert _rows(con, by_input + " WHERE input_tokens = 3000") == [(3000, "core", None, 0.0)]
    # two rows of one request in one run: the one saying its searches is kept, whatever the order
    for i, rows in enumerate(([plain[0], searched[0]], [searched[0], plain[0]])):
        both = open_ledger(tmp_path / f"both{i}.duckdb")
        result = ingest_files(both, [write_jsonl(tmp_path / "e.jsonl", rows)])
        assert (result.rows_stored, result.rows_duplicate) == (1, 1)
        assert _rows(both, "SELECT web_search_requests FROM events") == [(4,)], rows


def test_json_lines_read_anthropic_nested_web_searches_when_no_map_names_them(tmp_path: Path) -> None:
    base = {"ts": "2026-11-02T10:00:00Z", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    top = write_jsonl(
        tmp_path / "top.jsonl",
        [
            {**base, "request_id": "a", "input_tokens": 1000, "server_tool_use": {"web_search_requests": 3}},
            {**base, "request_id": "b", "input_tokens": 1000, "server_tool_use": {}},
            {
                **base,
                "request_id": "c",
                "input_tokens": 1000,
                "server_tool_use": {"web_search_requests": "x"},
            },
        ],
    )
    con = open_ledger(tmp_path / "top.duckdb")
    r = ingest_files(con, [top])
    assert (r.rows_stored, r.rows_quarantined) == (2, 1)
    assert _rows(con, "SELECT request_id, web_search_requests FROM events ORDER BY 1") == [
        ("a", 3),
        ("b", None),
    ]
    assert _rows(con, "SELECT round(sum(web_search_cost_usd), 6) FROM events") == [(0.03,)]  # $10 per 1,000
    assert _rows(con, "SELECT field FROM quarantine") == [("web_search_requests",)]
    # a logged Messages response: the searches sit beside the token counts the map reads
    logged = write_jsonl(
        tmp_path / "logged.jsonl",
        [
            {
                **base,
                "id": "msg_1",
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "server_tool_use": {"web_search_requests": 2},
                },
            }
        ],
    )
    con2 = open_ledger(tmp_path / "logged.duckdb")
    mapping = {
        "request_id": "id",
        "input_tokens": "usage.input_tokens",
        "output_tokens": "usage.output_tokens",
    }
    ingest_files(con2, [logged], mapping=mapping)
    assert _rows(con2, "SELECT web_search_requests FROM events") == [(2,)]
    # a map or a --set that names them wins, and a top-level column of the canonical name is read as it is
    own = write_jsonl(
        tmp_path / "own.jsonl",
        [
            {**base, "id": "m1", "usage": {"input_tokens": 1, "output_tokens": 1}, "web_search_requests": 3},
            {**base, "id": "m2", "usage": {"input_tokens": 1, "server_tool_use": {"web_search_requests": 4}}},
        ],
    )
    con5 = open_ledger(tmp_path / "own.duckdb")
    ingest_files(con5, [own], mapping=mapping)  # a line's own field first, else the nested one
    assert _rows(con5, "SELECT request_id, web_search_requests FROM events ORDER BY 1") == [
        ("m1", 3),
        ("m2", 4),
    ]
    con3 = open_ledger(tmp_path / "set.duckdb")
    ingest_files(con3, [logged], mapping=mapping, fixed={"web_search_requests": "0"})
    assert _rows(con3, "SELECT web_search_requests FROM events") == [(0,)]
    both = write_jsonl(
        tmp_path / "both.jsonl",
        [
            {
                **base,
                "input_tokens": 1,
                "web_search_requests": 7,
                "server_tool_use": {"web_search_requests": 2},
            }
        ],
    )
    con4 = open_ledger(tmp_path / "both.duckdb")
    ingest_files(con4, [both])
    assert _rows(con4, "SELECT web_search_requests FROM events") == [(7,)]


def test_dotted_maps_reach_into_parquet_structs_and_json_text_and_read_nested_searches(
    tmp_path: Path,
) -> None:
    """A Parquet struct column and a CSV column of JSON text are read by dotted path, as a JSON line is;
    Anthropic's nested web searches in them are read where no map names them."""
    pq = tmp_path / "responses.parquet"
    duckdb.execute(
        f"""COPY (SELECT * FROM (VALUES
            ('msg_1', TIMESTAMP '2026-11-02 10:00:00', {{'input_tokens': 100, 'output_tokens': 50,
              'server_tool_use': {{'web_search_requests': 3}}, 'cache': {{'read': 20}}}}),
            ('msg_2', TIMESTAMP '2026-11-02 10:01:00', {{'input_tokens': 7, 'output_tokens': 1,
              'server_tool_use': {{'web_search_requests': NULL}}, 'cache': {{'read': NULL}}}})
        ) AS t(id, ts, usage)) TO '{pq}'"""
    )
    mapping = {
        "request_id": "id",
        "input_tokens": "usage.input_tokens",
        "output_tokens": "usage.output_tokens",
        "cache_read_tokens": "usage.cache.read",
    }
    fixed = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    con = open_ledger(tmp_path / "pq.duckdb")
    r = ingest_files(con, [pq], mapping=mapping, fixed=fixed)
    assert (r.rows_read, r.rows_stored, r.rows_quarantined) == (2, 2, 0)
    got = "SELECT request_id, input_tokens, output_tokens, cache_read_tokens, web_search_requests FROM events"
    assert _rows(con, got + " ORDER BY 1") == [("msg_1", 100, 50, 20, 3), ("msg_2", 7, 1, 0, None)]
    assert _rows(con, "SELECT round(sum(web_search_cost_usd), 6) FROM events") == [(0.03,)]
    # a misspelt field is one error naming the fields there are, and nothing is stored
    with pytest.raises(InputError, match=r"'usage.cache' has no field 'reads'; its fields are: read"):
        ingest_files(
            open_ledger(tmp_path / "typo.duckdb"),
            [pq],
            mapping={**mapping, "cache_read_tokens": "usage.cache.reads"},
        )
    # a CSV column of JSON text, read by path; its top-level server_tool_use read with no map
    csv_file = tmp_path / "log.csv"
    csv_file.write_text(
        "ts,model,provider,usage,server_tool_use\n"
        '2026-11-02T10:00:00Z,claude-sonnet-4-5,anthropic,"{""input_tokens"": 40}",'
        '"{""web_search_requests"": 2}"\n'
        '2026-11-02T10:01:00Z,claude-sonnet-4-5,anthropic,"{""input_tokens"": 9}",\n',
        encoding="utf-8",
    )
    con2 = open_ledger(tmp_path / "csv.duckdb")
    r2 = ingest_files(con2, [csv_file], mapping={"input_tokens": "usage.input_tokens"})
    assert (r2.rows_stored, r2.rows_quarantined) == (2, 0)
    assert _rows(con2, "SELECT input_tokens, web_search_requests FROM events ORDER BY ts") == [
        (40, 2),
        (9, None),
    ]
    # a cell that is not JSON quarantines its row, under the column read from it; an implicit
    # server_tool_use that is plain text reads no searches; a key beyond ASCII is read as written
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "ts,model,provider,usage,server_tool_use\n"
        '2026-11-02T10:00:00Z,claude-sonnet-4-5,anthropic,"{""input_tokens"": 5, ""tökens"": 8}",yes\n'
        "2026-11-02T10:01:00Z,claude-sonnet-4-5,anthropic,not json,\n",
        encoding="utf-8",
    )
    con_odd = open_ledger(tmp_path / "odd.duckdb")
    r_odd = ingest_files(
        con_odd, [odd], mapping={"input_tokens": "usage.input_tokens", "output_tokens": "usage.tökens"}
    )
    assert (r_odd.rows_read, r_odd.rows_stored, r_odd.rows_quarantined) == (2, 1, 1)
    assert _rows(con_odd, "SELECT input_tokens, output_tokens, web_search_requests FROM events") == [
        (5, 8, None)
    ]
    assert _rows(con_odd, "SELECT source_line, field, reason FROM quarantine") == [
        (3, "input_tokens", "usage is not valid JSON, so input_tokens cannot be read from it")
    ]
    # JSON text inside a struct is named by its path; blank text is no value, not bad JSON
    meta = tmp_path / "meta.parquet"
    duckdb.execute(
        f"""COPY (SELECT * FROM (VALUES (TIMESTAMP '2026-11-02 10:00:00', {{'Usage': '{{"in": 4}}'}}, 1),
            (TIMESTAMP '2026-11-02 10:01:00', {{'Usage': 'nope'}}, 1),
            (TIMESTAMP '2026-11-02 10:02:00', {{'Usage': ''}}, 2)) AS t(ts, meta, output_tokens))
            TO '{meta}'"""
    )
    con_meta = open_ledger(tmp_path / "meta.duckdb")
    r_meta = ingest_files(con_meta, [meta], mapping={"input_tokens": "meta.usage.in"}, fixed=fixed)
    assert (r_meta.rows_stored, r_meta.rows_quarantined) == (2, 1)
    assert _rows(con_meta, "SELECT reason FROM quarantine") == [
        ("meta.usage is not valid JSON, so input_tokens cannot be read from it",)
    ]
    # struct fields are matched as DuckDB names them, case-blind; a list is said to be one
    case = {**mapping, "input_tokens": "usage.Input_Tokens"}
    assert (
        ingest_files(open_ledger(tmp_path / "case.duckdb"), [pq], mapping=case, fixed=fixed).rows_stored == 2
    )
    listed = tmp_path / "listed.parquet"
    duckdb.execute(
        f"COPY (SELECT TIMESTAMP '2026-11-02 10:00:00' AS ts, [{{'input_tokens': 5}}] AS calls) TO '{listed}'"
    )
    with pytest.raises(InputError, match=r"'calls' is a list \(STRUCT\(input_tokens INTEGER\)\[\]\)"):
        ingest_files(
            open_ledger(tmp_path / "listed.duckdb"), [listed], mapping={"input_tokens": "calls.input_tokens"}
        )
    # a Parquet file whose structs have no searches reads none, and a --set still wins
    flat = tmp_path / "flat.parquet"
    duckdb.execute(
        f"COPY (SELECT TIMESTAMP '2026-11-02 10:00:00' AS ts, {{'input_tokens': 5}} AS usage) TO '{flat}'"
    )
    con3 = open_ledger(tmp_path / "flat.duckdb")
    ingest_files(con3, [flat], mapping={"input_tokens": "usage.input_tokens"}, fixed=fixed)
    ingest_files(con3, [pq], mapping=mapping, fixed={**fixed, "web_search_requests": "1"})
    assert _rows(con3, "SELECT input_tokens, web_search_requests FROM events ORDER BY 1") == [
        (5, None),
        (7, 1),
        (100, 1),
    ]


def test_a_misspelt_key_in_json_a_map_reads_is_an_error_naming_the_keys(tmp_path: Path) -> None:
    """A --map path into JSON text, a Parquet map or a JSON line's object must name keys the file's
    first rows have: a misspelt key, or a path on past a value that is no object, is one error
    naming what is there, and nothing is stored. Where the first rows hold no object, nothing is
    known, and the path stands."""
    lines = tmp_path / "u.jsonl"
    lines.write_text(
        '{"ts": "2026-11-02T10:00:00Z", "model": "gpt-4o", "meta": {"team": "a", "Env": "x"}, '
        '"usage": {"in": 5}}\n'
        '{"ts": "2026-11-02T10:01:00Z", "model": "gpt-4o", "meta": null, "usage": {"in": 7}}\n',
        encoding="utf-8",
    )
    mapping = {"input_tokens": "usage.in"}
    db = tmp_path / "l.duckdb"
    with pytest.raises(
        InputError, match=r"no object at 'meta' has a key 'tema'; the keys there are: Env, team"
    ):
        ingest_files(open_ledger(db), [lines], mapping={**mapping, "team": "meta.tema"})
    with pytest.raises(InputError, match=r"key 'env' \(keys are case-sensitive: 'Env'\)"):
        ingest_files(open_ledger(db), [lines], mapping={**mapping, "team": "meta.env"})
    with pytest.raises(InputError, match=r"'meta.team' holds text values, not objects"):
        ingest_files(open_ledger(db), [lines], mapping={**mapping, "team": "meta.team.name"})
    assert _rows(open_ledger(db), "SELECT count(*) FROM events") == [(0,)]
    r = ingest_files(open_ledger(db), [lines], mapping={**mapping, "team": "meta.team"})
    assert (r.rows_stored, r.rows_quarantined) == (2, 0)
    # a CSV column of JSON text; a Parquet map; and a field no first row has an object for
    text = tmp_path / "log.csv"
    text.write_text(
        "ts,model,meta,input_tokens,extra\n"
        '2026-11-02T10:00:00Z,gpt-4o,"{""team"": ""a""}",5,\n'
        "2026-11-02T10:01:00Z,gpt-4o,,6,\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"no object at 'meta' has a key 'tema'; the keys there are: team"):
        ingest_files(open_ledger(tmp_path / "csv.duckdb"), [text], mapping={"team": "meta.tema"})
    sparse = ingest_files(open_ledger(tmp_path / "csv.duckdb"), [text], mapping={"team": "extra.team"})
    assert sparse.rows_stored == 2
    mapped = tmp_path / "tags.parquet"
    duckdb.execute(
        f"""COPY (SELECT TIMESTAMP '2026-11-02 10:00:00' AS ts, 'gpt-4o' AS model, 5 AS input_tokens,
                  MAP {{'team': 'a', 'env': 'prod'}} AS labels) TO '{mapped}'"""
    )
    with pytest.raises(
        InputError, match=r"no object at 'labels' has a key 'tema'; the keys there are: env, team"
    ):
        ingest_files(open_ledger(tmp_path / "map.duckdb"), [mapped], mapping={"team": "labels.tema"})


def test_fields_and_keys_first_seen_late_in_a_file_are_read(tmp_path: Path) -> None:
    """A field or key the first thousand rows lack is still read (web searches, a --map path), and a
    --map is refused only when no row of the whole file has it."""
    rows = []
    for i in range(1200):
        row: dict[str, object] = {
            "ts": "2026-11-02T10:00:00Z",
            "model": "claude-sonnet-4-5",
            "request_id": f"r{i}",
        }
        usage: dict[str, object] = {"in": 10, "out": 1}
        if i >= 1100:
            row["meta"] = {"team": "late"}
            usage["server_tool_use"] = {"web_search_requests": 2}
            row["server_tool_use"] = {"web_search_requests": 3}
        rows.append({**row, "usage": usage})
    lines = tmp_path / "late.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    searches = "SELECT sum(web_search_requests), count(team) FROM events"
    con = open_ledger(tmp_path / "a.duckdb")  # the top-level searches, with no map
    flat = {k: v for k, v in rows[-1].items() if k != "usage"} | {"input_tokens": 10}
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        "".join(
            json.dumps(
                {**flat, "request_id": f"p{i}"}
                if i >= 1100
                else {k: v for k, v in flat.items() if k not in ("server_tool_use", "meta")}
                | {"request_id": f"p{i}"}
            )
            + "\n"
            for i in range(1200)
        ),
        encoding="utf-8",
    )
    ingest_files(con, [plain], fixed={"provider": "anthropic"})
    assert _rows(con, searches) == [(300, 0)]
    con2 = open_ledger(tmp_path / "b.duckdb")  # beside the mapped token counts, and a late --map path
    mapping = {"input_tokens": "usage.in", "output_tokens": "usage.out", "team": "meta.team"}
    ingest_files(con2, [lines], mapping=mapping, fixed={"provider": "anthropic"})
    assert _rows(con2, searches) == [(200, 100)]
    mapped = {**mapping, "web_search_requests": "usage.server_tool_use.web_search_requests"}
    con3 = open_ledger(tmp_path / "c.duckdb")
    ingest_files(con3, [lines], mapping=mapped, fixed={"provider": "anthropic"})
    assert _rows(con3, searches) == [(200, 100)]
    # the same as CSV with a column of JSON text
    text = tmp_path / "late.csv"
    with text.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ts", "model", "request_id", "usage"])
        out.writerows([r["ts"], r["model"], r["request_id"], json.dumps(r["usage"])] for r in rows)
    con4 = open_ledger(tmp_path / "d.duckdb")
    ingest_files(
        con4,
        [text],
        mapping={"input_tokens": "usage.in", "output_tokens": "usage.out"},
        fixed={"provider": "anthropic"},
    )
    assert _rows(con4, searches) == [(200, 0)]
    with pytest.raises(
        InputError, match=r"no object at 'usage' has a key 'server_tool'; the keys there are: in, out"
    ):
        ingest_files(
            open_ledger(tmp_path / "e.duckdb"),
            [text],
            mapping={"input_tokens": "usage.in", "web_search_requests": "usage.server_tool.n"},
        )
    with pytest.raises(InputError, match=r"no line has a field 'metadata'"):
        ingest_files(
            open_ledger(tmp_path / "e.duckdb"), [lines], mapping={**mapping, "team": "metadata.team"}
        )


def test_an_anthropic_report_row_of_no_context_window_is_priced_below_the_long_context_tier(
    tmp_path: Path,
) -> None:
    """A report not grouped by context window sums a day's requests of both windows, and names no
    count of them: its 2.3M tokens of input are not one long-context request."""
    result = {
        "uncached_input_tokens": 300_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "cache_read_input_tokens": 2_000_000,
        "output_tokens": 50_000,
        "model": "claude-sonnet-4-5-20250929",
        "service_tier": "standard",
        "context_window": None,
    }
    bucket = {"starting_at": "2026-03-05T00:00:00Z", "ending_at": "2026-03-06T00:00:00Z", "results": [result]}
    page = tmp_path / "report.json"
    page.write_text(json.dumps({"data": [bucket], "has_more": False, "next_page": None}), encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [page])
    # 300k x $3 + 2M x $0.30 + 50k x $15, per million (the long-context tier would double input)
    assert _rows(con, "SELECT round(cost_usd, 6) FROM events") == [(2.25,)]


def test_a_parquet_map_or_struct_of_tags_is_stored_as_json(tmp_path: Path) -> None:
    """Tags as a Parquet map or struct (the natural shape of labels there) are stored as the JSON
    object they are, not quarantined for DuckDB's own notation of them."""
    src = tmp_path / "tagged.parquet"
    duckdb.execute(
        f"""COPY (SELECT * FROM (VALUES
              (TIMESTAMP '2026-11-02 10:00:00', 5, MAP {{'env': 'prod'}}, {{'team': 'a', 'n': 1}}),
              (TIMESTAMP '2026-11-02 10:01:00', 6, MAP {{}}::MAP(VARCHAR, VARCHAR), NULL))
            AS t(ts, input_tokens, tags, labels)) TO '{src}'"""
    )
    fixed = {"provider": "openai", "model": "gpt-4o"}
    con = open_ledger(tmp_path / "a.duckdb")
    r = ingest_files(con, [src], fixed=fixed)
    assert (r.rows_stored, r.rows_quarantined) == (2, 0)
    assert _rows(con, "SELECT tags FROM events ORDER BY ts") == [('{"env":"prod"}',), ("{}",)]
    con2 = open_ledger(tmp_path / "b.duckdb")
    r2 = ingest_files(con2, [src], mapping={"tags": "labels"}, fixed=fixed)
    assert (r2.rows_stored, r2.rows_quarantined) == (2, 0)
    assert _rows(con2, "SELECT tags FROM events ORDER BY ts") == [('{"team":"a","n":1}',), (None,)]


def test_an_export_of_a_report_row_with_more_web_searches_restates_nothing(tmp_path: Path) -> None:
    """Report rows restate only from a usage report: an export of events saying more searches for a
    stored bucket is a duplicate, as its grown tokens would be."""
    sample = Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json"
    page = json.loads(sample.read_text())
    bucket = dict(page["data"][0], results=[page["data"][0]["results"][0]])
    searched = dict(page, data=[bucket], has_more=False, next_page=None)
    fewer = json.loads(json.dumps(searched))
    fewer["data"][0]["results"][0]["server_tool_use"]["web_search_requests"] = 0
    source = tmp_path / "source.duckdb"
    (tmp_path / "searched.json").write_text(json.dumps(searched))
    ingest_files(open_ledger(source), [tmp_path / "searched.json"], format="anthropic")
    export = tmp_path / "events.csv"
    out = CliRunner().invoke(app, ["export", str(export), "-f", "csv", "--db", str(source)])
    assert out.exit_code == 0, out.output
    con = open_ledger(tmp_path / "l.duckdb")
    (tmp_path / "fewer.json").write_text(json.dumps(fewer))
    ingest_files(con, [tmp_path / "fewer.json"], format="anthropic")
    run = ingest_files(con, [export])
    assert (run.rows_stored, run.rows_restated, run.rows_duplicate) == (0, 0, 1)
    assert _rows(con, "SELECT web_search_requests FROM events") == [(0,)]


def test_times_to_the_minute_are_read_and_dates_without_dashes_are_refused(tmp_path: Path) -> None:
    rows = [
        {**GOOD, "ts": "2026-03-02T09:00Z"},
        {**GOOD, "ts": "2026-03-02T09:00+02:00", "input_tokens": 11},
        {**GOOD, "ts": "20260302", "input_tokens": 12},  # would be 1970-08-23 as Unix seconds
    ]
    con = open_ledger(":memory:")
    result = ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", rows)])
    assert (result.rows_stored, result.rows_quarantined) == (2, 1)
    assert _rows(con, "SELECT CAST(ts AS VARCHAR), input_tokens FROM events ORDER BY input_tokens") == [
        ("2026-03-02 07:00:00", 11),
        ("2026-03-02 09:00:00", 1000),
    ]
    (reason,) = _rows(con, "SELECT reason FROM quarantine")[0]
    assert "before 2000" in reason and "ISO 8601" in reason


def test_a_bad_row_is_quarantined_once_however_its_files_path_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [GOOD, {**GOOD, "ts": "never"}])
    con = open_ledger(tmp_path / "l.duckdb")
    monkeypatch.chdir(tmp_path)
    ingest_files(con, ["a.jsonl"])
    ingest_files(con, [path])
    ingest_files(con, [tmp_path / "." / "a.jsonl"])
    assert _rows(con, "SELECT count(*), min(source_file) FROM quarantine") == [(1, "a.jsonl")]


def test_a_mapped_prompt_is_withheld_from_bad_rows_and_counts_are_kept(tmp_path: Path) -> None:
    """Under --map prompt=question the prompt is withheld in broken JSON and in any escaping; a
    quarantined row keeps its counts, even in columns named input and output, and a short prompt
    is not cut out of other words."""
    broken = tmp_path / "a.jsonl"
    broken.write_text(
        '{"when": "2026-03-02T10:00:00Z", "m": "gpt-5", "toks": 5, "question": "SECRET-GAMMA plans\n'
        '{"when": "never", "m": "gpt-5", "toks": 5,'
        ' "question": "SECRET-DELTA https:\\/\\/x.example \\u00FC"}\n'
        '{"when": "never", "model_e": "gpt-5", "toks": 5, "question": "e"}\n'
    )
    table = tmp_path / "u.csv"
    table.write_text("when,model,input,output\nnope,gpt-5,1200,300\n")
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    mapping = {"ts": "when", "model": "m", "input_tokens": "toks", "prompt": "question"}
    assert ingest_files(con, [broken], format="jsonl", mapping=mapping).rows_quarantined == 3
    csv_map = {"ts": "when", "input_tokens": "input", "output_tokens": "output"}
    assert ingest_files(con, [table], mapping=csv_map).rows_quarantined == 1
    raws = [r for (r,) in _rows(con, "SELECT raw FROM quarantine ORDER BY source_file, source_line")]
    assert sum("[prompt withheld]" in r for r in raws) == 3
    assert any('"model_e"' in r for r in raws)  # a one-letter prompt left the other text alone
    assert any('"input":"1200"' in r and '"output":"300"' in r for r in raws)  # counts kept
    con.execute("CHECKPOINT")
    con.close()
    blob = db.read_bytes()
    assert b"SECRET-GAMMA" not in blob and b"SECRET-DELTA" not in blob


def test_a_ledger_from_before_the_upper_bound_gets_it_from_the_context_window(tmp_path: Path) -> None:
    """Anthropic 0-200k rows stored before ``max_request_input_tokens`` existed get it on opening,
    and ``reprice`` then prices them below the long-context tier."""
    from flopledger.catalog.overrides import PriceOverrides
    from flopledger.ledger.repricing import reprice

    report = {
        "data": [
            {
                "starting_at": "2026-03-02T00:00:00Z",
                "ending_at": "2026-03-03T00:00:00Z",
                "results": [
                    {
                        "uncached_input_tokens": 5_000_000,
                        "output_tokens": 100_000,
                        "model": "claude-sonnet-4-5-20250929",
                        "context_window": "0-200k",
                    }
                ],
            }
        ],
        "has_more": False,
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [path])
    ((cost,),) = con.execute("SELECT cost_usd FROM events").fetchall()
    assert cost == pytest.approx(16.5, rel=1e-12)  # 5M x $3 + 100k x $15: below the tier, however large
    # as an older flopledger stored it: no bound, priced as one request of 5M tokens
    con.execute("ALTER TABLE events DROP COLUMN max_request_input_tokens")
    con.execute("UPDATE events SET cost_usd = cost_usd * 2")
    con.close()
    con = open_ledger(db)
    assert con.execute("SELECT max_request_input_tokens FROM events").fetchall() == [(200_000,)]
    reprice(con, PriceOverrides.empty())
    assert con.execute("SELECT cost_usd FROM events").fetchall() == [(pytest.approx(cost, rel=1e-12),)]
    con.close()


def test_a_table_file_without_the_required_columns_is_one_clear_error(tmp_path: Path) -> None:
    """Not every row quarantined as 'ts is missing': the file is refused, naming its columns."""
    semi = tmp_path / "semi.csv"
    semi.write_text("ts;model;input_tokens\n2026-03-01T10:00:00Z;gpt-4o;10\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("when,model_name,input_tokens\n2026-03-01T10:00:00Z,gpt-4o,10\n")
    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(InputError, match="separated by something other than commas"):
        ingest_files(con, [semi])
    outcomes = tmp_path / "outcomes.csv"  # commits and merged changes, given without --format outcomes
    outcomes.write_text("user,ts,kind,weight\nann,2026-03-01T10:00:00Z,commit,1\n")
    with pytest.raises(InputError, match=r"looks like outcomes .*: ingest it with --format outcomes"):
        ingest_files(con, [outcomes])
    with pytest.raises(InputError, match="--map input_tokens=nope: the file has no column 'nope'"):
        ingest_files(con, [plain], mapping={"input_tokens": "nope"})  # a wrong --map is named first
    with pytest.raises(InputError, match=r"no column for ts or model; its columns are: when, model_name"):
        ingest_files(con, [plain])
    result = ingest_files(con, [plain], mapping={"ts": "when", "model": "model_name"})
    assert result.rows_stored == 1
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    con.close()


def _storage(con: duckdb.DuckDBPyConnection) -> str:
    here = "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    (tags,) = con.execute(here).fetchone() or ({},)
    return str(tags.get("storage_version"))


def test_a_new_ledger_is_written_in_the_newer_storage_and_an_older_file_keeps_its_own(tmp_path: Path) -> None:
    sample = Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json"
    con = open_ledger(tmp_path / "new.duckdb")
    assert _storage(con).startswith("v1.5")
    con.close()
    old = tmp_path / "old.duckdb"
    duckdb.connect(str(old)).close()  # what DuckDB writes by default, as ledgers were before
    con = open_ledger(old)
    assert _storage(con).startswith("v1.0")
    assert ingest_files(con, [sample]).rows_stored > 0
    con.close()
    con = open_ledger(old, read_only=True)
    assert _storage(con).startswith("v1.0") and count_of(con, "SELECT count(*) FROM events") > 0


def test_names_are_stored_without_surrounding_whitespace_and_keep_their_ids(tmp_path: Path) -> None:
    """``web `` is team ``web`` and a model with a stray space finds its price; a blank name is no
    name. The id stays the one earlier versions gave the row as written (golden), so re-ingesting a
    file into a ledger they filled finds its events."""
    row = {**GOOD, "provider": " OpenAI\t", "model": "gpt-5 ", "team": " web ", "user": "\tann\n"}
    row |= {"project": "  ", "api_key": " key-1\x0b", "org": "acme\x0c\r"}
    path = write_jsonl(tmp_path / "pad.jsonl", [row, {**GOOD, "team": "web", "ts": "2026-03-02T11:00:00Z"}])
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [path]).rows_stored == 2
    stored = _rows(
        con,
        'SELECT event_id, team, "user", project, api_key, org, model, priced FROM events '
        "WHERE provider = 'openai'",
    )
    golden_id = "9b05db8b659eff17f875f8ae7a7b99b7"  # as the version before names were trimmed gave it
    assert stored == [(golden_id, "web", "ann", None, "key-1", "acme", "gpt-5", True)]
    assert _rows(con, "SELECT count(DISTINCT team) FROM events") == [(1,)]
    assert ingest_files(con, [path]).rows_duplicate == 2
    # a service tier is read the same way: trimmed of any whitespace, blank is standard
    tiers = [{**GOOD, "service_tier": "Batch\t"}, {**GOOD, "service_tier": " \n", "output_tokens": 7}]
    assert ingest_files(con, [write_jsonl(tmp_path / "tiers.jsonl", tiers)]).rows_stored == 2
    assert _rows(
        con,
        "SELECT service_tier FROM events WHERE ingest_id = (SELECT max_by(ingest_id, started_at) "
        "FROM ingests) ORDER BY output_tokens",
    ) == [("standard",), ("batch",)]


def test_a_model_of_whitespace_is_missing_and_the_row_quarantined(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "blank.jsonl", [{**GOOD, "model": "\t \n"}])
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path])
    assert (result.rows_stored, result.rows_quarantined) == (0, 1)
    assert _rows(con, "SELECT field, reason FROM quarantine") == [
        ("model", "model is missing; every row needs a model")
    ]


def test_reprice_prices_a_model_name_an_older_version_stored_with_spaces(tmp_path: Path) -> None:
    from flopledger.catalog.overrides import PriceOverrides
    from flopledger.ledger.repricing import reprice

    path = write_jsonl(tmp_path / "a.jsonl", [{**GOOD, "provider": "openai", "model": "gpt-5"}])
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [path])
    (cost,) = con.execute("SELECT cost_usd FROM events").fetchone() or (None,)
    # as an older flopledger stored it: the name as written, unpriced
    con.execute("UPDATE events SET model = 'gpt-5 ', priced = false, cost_usd = NULL, price_version = 'old'")
    reprice(con, PriceOverrides.empty())
    assert _rows(con, "SELECT model, priced, cost_usd FROM events") == [("gpt-5 ", True, cost)]


def test_a_private_model_is_matched_without_surrounding_whitespace(tmp_path: Path) -> None:
    from flopledger.catalog.overrides import load_overrides

    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[model]]\nprovider = "internal"\nmodel = " llama-x "\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 2.0\n",
        encoding="utf-8",
    )
    row = {**GOOD, "provider": "internal", "model": "llama-x ", "input_tokens": 1_000_000, "output_tokens": 0}
    path = write_jsonl(tmp_path / "a.jsonl", [{**row, "cache_read_tokens": 0}])
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [path], overrides=load_overrides(overrides))
    assert _rows(con, "SELECT model, priced, cost_usd FROM events") == [("llama-x", True, 1.0)]
    # as an older flopledger stored it, with the space: reprice still finds the private model
    con.execute("UPDATE events SET model = 'llama-x ', priced = false, cost_usd = NULL")
    from flopledger.ledger.repricing import reprice

    reprice(con, load_overrides(overrides))
    assert _rows(con, "SELECT model, priced, cost_usd FROM events") == [("llama-x ", True, 1.0)]


def _one_bucket(tmp_path: Path, name: str, output_tokens: int) -> Path:
    """An OpenAI usage report of one bucket and group (grouped by model only), its output set."""
    sample = Path(__file__).parent / "formats" / "samples" / "openai_usage_completions.json"
    page = json.loads(sample.read_text())
    result = dict(page["data"][0]["results"][0], output_tokens=output_tokens)
    for key in ("project_id", "user_id", "api_key_id"):
        result[key] = None
    doc = dict(page, data=[dict(page["data"][0], results=[result])], has_more=False, next_page=None)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _by_org(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return _rows(con, "SELECT org, sum(output_tokens) FROM events GROUP BY org ORDER BY org NULLS FIRST")


def test_two_organisations_reports_of_one_bucket_are_told_apart_by_their_org(tmp_path: Path) -> None:
    """Rows of one bucket and groups from two organisations' reports share an id; ``--set org``
    keeps both, and each organisation's later pulls restate its row only."""
    a, b = _one_bucket(tmp_path, "a.json", 500), _one_bucket(tmp_path, "b.json", 700)
    con = open_ledger(tmp_path / "l.duckdb")
    assert ingest_files(con, [a], fixed={"org": "acme"}).rows_stored == 1
    second = ingest_files(con, [b], fixed={"org": "globex"})
    assert (second.rows_stored, second.rows_duplicate, second.rows_restated) == (1, 0, 0)
    assert _by_org(con) == [("acme", 500), ("globex", 700)]
    for path, org in ((a, "acme"), (b, "globex")):  # pulled again: duplicates
        again = ingest_files(con, [path], fixed={"org": org})
        assert (again.rows_stored, again.rows_duplicate) == (0, 1)
    # globex's bucket grows: its row is restated, acme's is left as it is
    grown = ingest_files(con, [_one_bucket(tmp_path, "b2.json", 900)], fixed={"org": "globex"})
    assert (grown.rows_stored, grown.rows_restated) == (1, 1)
    assert _by_org(con) == [("acme", 500), ("globex", 900)]
    # a pull without an organisation cannot say whose it is: a duplicate, nothing replaced or lost
    blind = ingest_files(con, [_one_bucket(tmp_path, "c.json", 2000)])
    assert (blind.rows_stored, blind.rows_duplicate, blind.rows_restated) == (0, 1, 0)
    assert _by_org(con) == [("acme", 500), ("globex", 900)]
    from flopledger.catalog.overrides import PriceOverrides
    from flopledger.ledger.repricing import reprice

    assert reprice(con, PriceOverrides.empty()).changed == 0  # each row matched to itself, once


def test_a_report_ingested_with_and_without_its_organisation_is_one_row(tmp_path: Path) -> None:
    """A row without an organisation stands for any: the same pull ingested with and without
    ``--set org`` counts once, either way round, and a grown pull restates it."""
    first, grown = _one_bucket(tmp_path, "a.json", 500), _one_bucket(tmp_path, "a2.json", 800)
    # a ledger filled without the organisation, then pulled with it
    con = open_ledger(tmp_path / "l.duckdb")
    blind = ingest_files(con, [first])
    labelled = ingest_files(con, [first], fixed={"org": "acme"})
    assert labelled.rows_duplicate == 1
    # taken for the row stored without one: said, with the run that stored it
    assert (labelled.rows_matched_unlabelled, labelled.unlabelled_runs) == (1, (blind.ingest_id,))
    assert ingest_files(con, [grown], fixed={"org": "acme"}).rows_restated == 1
    assert _by_org(con) == [("acme", 800)]
    # the other way round: the grown pull without it restates the row, which keeps its organisation
    other = open_ledger(tmp_path / "other.duckdb")
    ingest_files(other, [first], fixed={"org": "acme"})
    assert ingest_files(other, [first]).rows_duplicate == 1
    assert ingest_files(other, [grown]).rows_restated == 1
    assert _by_org(other) == [("acme", 800)]


def test_another_organisations_rows_stored_without_one_are_told_and_mended_by_undo(tmp_path: Path) -> None:
    """A ledger filled without ``--set org`` (one organisation's, as before organisations were told
    apart), then a second organisation's reports with theirs: its rows are taken for the stored ones,
    which the run says; undoing the first run and ingesting it again with its own org mends it."""
    from flopledger.ledger.runs import undo_run

    acme, globex = _one_bucket(tmp_path, "a.json", 500), _one_bucket(tmp_path, "g.json", 300)
    con = open_ledger(tmp_path / "l.duckdb")
    old = ingest_files(con, [acme])
    hidden = ingest_files(con, [globex], fixed={"org": "globex"})
    assert (hidden.rows_stored, hidden.rows_matched_unlabelled, hidden.unlabelled_runs) == (
        0,
        1,
        (old.ingest_id,),
    )
    undo_run(con, old.ingest_id, force=True)  # forced: the later run skipped rows as its duplicates
    ingest_files(con, [acme], fixed={"org": "acme"})
    again = ingest_files(con, [globex], fixed={"org": "globex"})
    assert (again.rows_stored, again.rows_matched_unlabelled) == (1, 0)
    assert _by_org(con) == [("acme", 500), ("globex", 300)]


def test_an_organisation_is_matched_trimmed_and_in_any_case(tmp_path: Path) -> None:
    """``--set org=" Acme"`` is the organisation stored as ``acme `` by an older flopledger: a
    duplicate, not a second organisation's row."""
    path = _one_bucket(tmp_path, "a.json", 500)
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [path], fixed={"org": "acme"})
    con.execute("UPDATE events SET org = 'acme '")  # as written before names were trimmed
    again = ingest_files(con, [path], fixed={"org": " Acme"})
    assert (again.rows_stored, again.rows_duplicate, again.rows_matched_unlabelled) == (0, 1, 0)
    grown = ingest_files(con, [_one_bucket(tmp_path, "b.json", 800)], fixed={"org": "ACME"})
    assert (grown.rows_stored, grown.rows_restated) == (1, 1)
    assert _rows(con, "SELECT count(*), sum(output_tokens) FROM events") == [(1, 800)]


def test_two_grown_pulls_of_one_bucket_in_one_run_restate_it_once(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_one_bucket(tmp_path, "a.json", 500)])
    both = [_one_bucket(tmp_path, "b.json", 800), _one_bucket(tmp_path, "c.json", 900)]
    run = ingest_files(con, both)
    assert run.reconciles and (run.rows_stored, run.rows_restated, run.rows_duplicate) == (1, 1, 1)
    assert _rows(con, "SELECT count(*), sum(output_tokens) FROM events") == [(1, 900)]


@pytest.mark.parametrize("name", ["usage.json.gz", "usage.json", "usage.csv.gz", "usage.zip"])
def test_a_compressed_file_is_one_clear_error_and_nothing_is_stored(tmp_path: Path, name: str) -> None:
    """A gzip or zip file is refused whole, saying how to unpack it, rather than read as text (its
    every line quarantined) or its format not told."""
    import gzip
    import zipfile

    report = (Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json").read_bytes()
    path = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("usage.json", report)
    else:
        path.write_bytes(gzip.compress(report))
    db = tmp_path / "l.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", str(db), "--format", "anthropic"])
    assert result.exit_code != 0
    said = str(result.exception)
    assert ("gzip-compressed" in said or "a zip archive" in said) and "unpack it first" in said
    con = open_ledger(db)
    assert _rows(con, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)") == [(0, 0)]


@pytest.mark.parametrize("name", ["records.json", "records.jsonl"])
def test_a_json_array_of_records_is_told_how_to_become_json_lines(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps([GOOD, {**GOOD, "user": "bo"}], indent=1), encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    for fmt in (None, "jsonl"):
        with pytest.raises(InputError, match=r"one JSON array of records, not JSON Lines.*jq -c '\.\[\]'"):
            ingest_files(con, [path], format=fmt)


def test_tags_as_a_list_of_labels_are_kept_as_the_labels_of_an_object(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "ts,model,input_tokens,tags\n"
        '2026-03-02T10:00:00Z,gpt-4o,1,"[""prod"",""agent""]"\n'
        '2026-03-02T10:00:00Z,gpt-4o,2,"{""env"":""prod""}"\n'
        "2026-03-02T10:00:00Z,gpt-4o,3,5\n",
        encoding="utf-8",
    )
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [path])
    assert (r.rows_stored, r.rows_quarantined) == (2, 1)
    tags = dict(_rows(con, "SELECT input_tokens, tags FROM events"))
    assert json.loads(str(tags[1])) == {"labels": ["prod", "agent"]} and json.loads(str(tags[2])) == {
        "env": "prod"
    }
    assert _rows(con, "SELECT reason FROM quarantine") == [
        ("tags must be a JSON object (or a list of labels)",)
    ]
    # tags that are no JSON at all quarantine their row only; a list after whitespace is a list
    other = tmp_path / "t.jsonl"
    write_jsonl(other, [{**GOOD, "tags": '"env": "prod"'}, {**GOOD, "user": "bo", "tags": '\n["x"]'}])
    again = ingest_files(con, [other])
    assert (again.rows_stored, again.rows_quarantined) == (1, 1)
    assert _rows(con, "SELECT tags FROM events WHERE \"user\" = 'bo'") == [('{"labels":["x"]}',)]


def test_a_json_lines_field_holding_json_text_is_read_into(tmp_path: Path) -> None:
    """CloudWatch keeps a Bedrock invocation log as JSON text in its ``message``: a path goes on into
    it as into an object (the two ways in one file alike)."""
    log = {
        "modelId": "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "input": {"inputTokenCount": 1000, "cacheReadInputTokenCount": 200},
        "output": {"outputTokenCount": 50},
    }
    path = write_jsonl(
        tmp_path / "cw.jsonl",
        [
            {"timestamp": 1762164000123, "message": json.dumps(log)},
            {"timestamp": 1762164001123, "message": log},
        ],
    )
    con = open_ledger(tmp_path / "l.duckdb")
    mapping = {
        "ts": "timestamp",
        "model": "message.modelId",
        "input_tokens": "message.input.inputTokenCount",
        "cache_read_tokens": "message.input.cacheReadInputTokenCount",
        "output_tokens": "message.output.outputTokenCount",
    }
    r = ingest_files(con, [path], mapping=mapping, fixed={"provider": "aws"})
    assert (r.rows_stored, r.rows_quarantined) == (2, 0)
    assert _rows(
        con, "SELECT DISTINCT input_tokens, cache_read_tokens, output_tokens, priced FROM events"
    ) == [(1000, 200, 50, True)]
    with pytest.raises(InputError, match="no object at 'message' has a key 'modelid'"):
        ingest_files(con, [path], mapping={**mapping, "model": "message.modelid"}, fixed={"provider": "aws"})


def test_canonical_columns_in_upper_case_are_read_as_theirs(tmp_path: Path) -> None:
    """A warehouse export names columns in upper case (Snowflake's TS, MODEL, INPUT_TOKENS)."""
    csv_path = tmp_path / "up.csv"
    csv_path.write_text(
        "TS,MODEL,PROVIDER,INPUT_TOKENS,OUTPUT_TOKENS,Team\n2026-11-03T10:00:00Z,gpt-4o,openai,100,10,web\n",
        encoding="utf-8",
    )
    lines = write_jsonl(tmp_path / "up.jsonl", [{k.upper(): v for k, v in GOOD.items()}])
    con = open_ledger(tmp_path / "l.duckdb")
    r = ingest_files(con, [csv_path, lines])
    assert (r.rows_stored, r.rows_quarantined) == (2, 0)
    assert sorted(_rows(con, "SELECT team, model, input_tokens FROM events")) == sorted(
        [("web", "gpt-4o", 100), (GOOD["team"], GOOD["model"], GOOD["input_tokens"])]
    )
    # a file that has what a row needs under the exact names keeps reading only those (its stored rows'
    # ids, of their content, stay as they were): a "Team" beside them is not read as the team
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("ts,model,input_tokens,Team\n2026-11-03T10:00:00Z,gpt-4o,7,web\n", encoding="utf-8")
    ingest_files(con, [mixed])
    assert _rows(con, "SELECT team FROM events WHERE input_tokens = 7") == [(None,)]
