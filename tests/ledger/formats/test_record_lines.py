"""Rows are numbered by the line they start on: CSV rows after quoted newlines and blank lines, the
records of a whole-document JSON spend log."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopledger.errors import InputError
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


_HEADER = "ts,model,team,input_tokens,output_tokens\n"


def _lines_of(tmp_path: Path, text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    path = tmp_path / "u.csv"
    path.write_text(_HEADER + text)
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path])
    assert result.reconciles
    stored = con.execute("SELECT source_line, team FROM events ORDER BY 1").fetchall()
    quarantined = con.execute("SELECT source_line, raw FROM quarantine ORDER BY 1").fetchall()
    con.close()
    return stored, quarantined


def test_a_stray_quote_in_a_value_beside_a_ragged_record_keeps_every_line(tmp_path: Path) -> None:
    """A quote inside an unquoted value (5" screen) is read as it is; with a record rejected beside
    it, each row still has its own line and the rejected record its own text."""
    stored, quarantined = _lines_of(
        tmp_path,
        "2026-03-01T10:00:00Z,gpt-4o,a,100,10\n"
        "2026-03-01T10:01:00Z,gpt-4o,b,100\n"
        '2026-03-01T10:02:00Z,gpt-4o,5" screen,100,10\n'
        "2026-03-01T10:04:00Z,gpt-4o,e,100,10\n",
    )
    assert stored == [(2, "a"), (4, '5" screen'), (5, "e")]
    assert quarantined == [(3, "2026-03-01T10:01:00Z,gpt-4o,b,100")]


def test_a_stray_quote_beside_quoted_newlines_keeps_every_line(tmp_path: Path) -> None:
    """A quote inside an unquoted value (5" screen) does not pair with the next one: the values that
    hold newlines after it still move the lines of the rows below them, stored and quarantined."""
    path = tmp_path / "u.csv"
    path.write_text(
        "ts,model,team,input_tokens\n"
        '2026-03-01T10:00:00Z,gpt-5,5" screen,1\n'
        '2026-03-01T10:01:00Z,gpt-5,"two\nlines",2\n'
        "2026-03-01T10:02:00Z,gpt-5,c,bad\n"
        '2026-03-01T10:03:00Z,gpt-5,"three\n\nlines",5\n'
        "2026-03-01T10:04:00Z,gpt-5,d,worse\n"
    )
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [path])
    assert con.execute("SELECT source_line, input_tokens FROM events ORDER BY 1").fetchall() == [
        (2, 1),
        (3, 2),
        (6, 5),
    ]
    assert con.execute("SELECT source_line FROM quarantine ORDER BY 1").fetchall() == [(5,), (9,)]
    con.close()


def test_a_record_whose_quotes_do_not_close_is_quarantined_near_the_start_too(tmp_path: Path) -> None:
    """A value "b"x within the first rows (where DuckDB's sniffer would look) is one bad record, not
    a file refused whole."""
    stored, quarantined = _lines_of(
        tmp_path, '2026-03-01T10:00:00Z,gpt-4o,a,100,10\n2026-03-01T10:01:00Z,gpt-4o,"b"x,100,10\n'
    )
    assert stored == [(2, "a")] and [line for line, _ in quarantined] == [3]


def test_a_quote_never_closed_fails_the_file_with_its_line(tmp_path: Path) -> None:
    """An opened quote reads every line after it as one value: the records there cannot be counted,
    so the file is one clear error, nothing stored, rather than its rest lost in one bad row."""
    path = tmp_path / "u.csv"
    rows = [f"2026-03-01T10:00:00Z,gpt-4o,t{i},100,10" for i in range(3000)]
    rows[2500] = rows[2500].replace(",t2500", ',"t2500')  # past the rows a sniffer would sample
    path.write_text(_HEADER + "\n".join(rows) + "\n")
    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(InputError, match=r"line 2502: a quoted value is never closed"):
        ingest_files(con, [path])
    assert con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine)"
    ).fetchone() == (
        0,
        0,
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="the file is empty: a CSV needs a header row"):
        ingest_files(con, [empty], format="csv")
    # a header below blank lines, and bytes that are not text, are said as such
    below = tmp_path / "below.csv"
    below.write_text("\n\n" + _HEADER + "2026-03-02T10:00:00Z,gpt-5,1,1\n")
    with pytest.raises(InputError, match=r"the first line is blank: .* remove the blank lines before it"):
        ingest_files(con, [below], format="csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\xff\xfets,model\n")
    with pytest.raises(InputError, match="the header is not UTF-8 text"):
        ingest_files(con, [binary], format="csv")
    con.close()
