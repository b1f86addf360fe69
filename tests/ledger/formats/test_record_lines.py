"""Rows are numbered by the line they start on: CSV rows after quoted newlines and blank lines, the
records of a whole-document JSON spend log."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

_TEXT = st.text(alphabet='ab ,"\n', min_size=1, max_size=8).filter(lambda t: t.strip() != "")


def _write(records: list[tuple[str, bool]], blank_after: list[bool]) -> tuple[str, list[int], list[int]]:
    """The CSV text, the lines good records start on and those bad ones (no model) start on."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts", "model", "team", "input_tokens"])
    good, bad = [], []
    for (team, ok), blank in zip(records, blank_after, strict=True):
        line = out.getvalue().count("\n") + 1
        (good if ok else bad).append(line)
        writer.writerow(["2026-03-01T10:00:00Z", "gpt-5" if ok else "", team, "7"])
        if blank:
            out.write("\n")
    return out.getvalue(), good, bad


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.tuples(_TEXT, st.booleans()), min_size=1, max_size=12),
    blanks=st.data(),
)
def test_each_row_has_the_line_it_starts_on(
    tmp_path_factory: pytest.TempPathFactory, records: list[tuple[str, bool]], blanks: st.DataObject
) -> None:
    blank_after = blanks.draw(st.lists(st.booleans(), min_size=len(records), max_size=len(records)))
    text, good, bad = _write(records, blank_after)
    tmp = tmp_path_factory.mktemp("csv")
    (tmp / "u.csv").write_text(text)
    con = open_ledger(tmp / "l.duckdb")
    result = ingest_files(con, [tmp / "u.csv"])
    assert (result.rows_stored, result.rows_quarantined) == (len(good), len(bad))
    stored = sorted(r[0] for r in con.execute("SELECT source_line FROM events").fetchall())
    quarantined = sorted(r[0] for r in con.execute("SELECT source_line FROM quarantine").fetchall())
    assert (stored, quarantined) == (good, bad)
    con.close()


_KINDS = st.sampled_from(["good", "no model", "short", "long"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(_TEXT, _KINDS, st.booleans()), min_size=1, max_size=12))
def test_a_record_of_too_few_or_too_many_fields_is_quarantined_and_the_rest_stored(
    tmp_path_factory: pytest.TempPathFactory, records: list[tuple[str, str, bool]]
) -> None:
    """A record of fewer or more fields than the header (an unquoted 1,000) never stops the file nor
    is cut to the header's width: it is quarantined on the line it starts on, the rest stored."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts", "model", "team", "input_tokens"])
    lines: dict[str, list[int]] = {"good": [], "no model": [], "short": [], "long": []}
    for team, kind, blank in records:
        lines[kind].append(out.getvalue().count("\n") + 1)
        row = ["2026-03-01T10:00:00Z", "" if kind == "no model" else "gpt-5", team, "7"]
        writer.writerow(row[:3] if kind == "short" else [*row, "9"] if kind == "long" else row)
        if blank:
            out.write("\n")
    tmp = tmp_path_factory.mktemp("csv")
    (tmp / "u.csv").write_text(out.getvalue())
    con = open_ledger(tmp / "l.duckdb")
    result = ingest_files(con, [tmp / "u.csv"])
    ragged = sorted(lines["short"] + lines["long"])
    bad = sorted(lines["no model"] + ragged)
    assert result.reconciles and (result.rows_stored, result.rows_quarantined) == (
        len(lines["good"]),
        len(bad),
    )
    stored = con.execute("SELECT source_line, input_tokens FROM events ORDER BY source_line").fetchall()
    assert stored == [(line, 7) for line in lines["good"]]
    said = con.execute(
        "SELECT source_line FROM quarantine WHERE reason LIKE '%field(s) where the header has 4%' ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in said] == ragged
    assert sorted(r[0] for r in con.execute("SELECT source_line FROM quarantine").fetchall()) == bad
    con.close()


def test_a_ragged_csv_says_each_bad_record_and_keeps_its_text(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,model,provider,input_tokens,output_tokens\n"
        "2026-11-02T09:00:00Z,gpt-5,openai,100,10\n"
        "2026-11-02T09:01:00Z,gpt-5,openai,100\n"
        '2026-11-02T09:02:00Z,gpt-5,"open\nai",1,000,10\n'
        "   \n"
        "2026-11-02T09:05:00Z,gpt-5,openai,100,10\n"
    )
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path])
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (5, 2, 3)
    got = con.execute(
        "SELECT source_line, field, reason, raw FROM quarantine ORDER BY source_line"
    ).fetchall()
    assert got == [
        (
            3,
            "output_tokens",
            "the record has 4 field(s) where the header has 5",
            "2026-11-02T09:01:00Z,gpt-5,openai,100",
        ),
        (
            4,
            None,
            'the record has 6 field(s) where the header has 5; quote a value that holds a comma ("1,000")',
            '2026-11-02T09:02:00Z,gpt-5,"open\nai",1,000,10',
        ),
        (6, "model", "the record has 1 field(s) where the header has 5", "   "),
    ]
    assert con.execute("SELECT source_line FROM events ORDER BY 1").fetchall() == [(2,), (7,)]
    assert ingest_files(con, [path]).rows_stored == 0  # the good rows once; the bad ones stay quarantined
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (3,)
    con.close()


def test_a_quoted_newline_moves_the_lines_of_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,model,team,input_tokens\n"
        '2026-03-01T10:00:00Z,gpt-5,"two\nlines",10\n'
        "\n"
        "2026-03-01T11:00:00Z,gpt-5,c,x\n"
        "2026-03-01T12:00:00Z,,c,1\n"
    )
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [path])
    rows = con.execute("SELECT source_line, field FROM quarantine ORDER BY 1").fetchall()
    assert rows == [(5, "input_tokens"), (6, "model")]
    assert con.execute("SELECT source_line, team FROM events").fetchall() == [(2, "two\nlines")]
    # read the same way again: nothing new, the quarantined rows recognised
    again = ingest_files(con, [path])
    assert (again.rows_stored, again.rows_duplicate, again.rows_quarantined) == (0, 1, 2)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (2,)
    con.close()


def test_a_whole_document_spend_log_numbers_records_by_their_first_line(tmp_path: Path) -> None:
    import json

    records = [
        {"request_id": f"r{i}", "model": "gpt-4o", "startTime": "2026-03-01T10:00:00", "prompt_tokens": n}
        for i, n in enumerate((10, "n/a", 30))
    ]
    for doc in (records, {"data": records, "total": 3}):
        path = tmp_path / "spend.json"
        path.write_text(json.dumps(doc, indent=2))
        lines = path.read_text().splitlines()
        starts = [n for n, text in enumerate(lines, start=1) if '"request_id"' in text]
        con = open_ledger(tmp_path / f"l{len(str(doc))}.duckdb")
        ingest_files(con, [path], format="litellm")
        # the line each record's object opens on: the one before its first key
        stored = sorted(r[0] for r in con.execute("SELECT source_line FROM events").fetchall())
        (bad,) = con.execute("SELECT source_line FROM quarantine").fetchone() or (None,)
        assert stored == [starts[0] - 1, starts[2] - 1] and bad == starts[1] - 1
        con.close()
