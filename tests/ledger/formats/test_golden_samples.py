"""Golden vendor samples: each file in ``samples/`` is ingested into a real ledger file and the stored
canonical rows and quarantine are compared with ``expected/<name>.json``.

An expected file names its ``sample``, the ``format`` it must be detected as, optional ``ingest``
options (``mapping``, ``fixed``, ``input_includes_cache``), the reconciliation ``counts``, the canonical
``rows`` stored and the ``quarantine`` entries (line, field, a substring of the reason). In a row, a
dimension left out is NULL, a token count (or web searches, NULL read as 0) left out is 0,
``requests`` defaults to 1 and ``service_tier`` to standard; ``tags`` lists keys the stored tags must contain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flopledger.ledger.formats import detect_format
from flopledger.ledger.ingest import IngestResult, ingest_files
from flopledger.ledger.schema import TOKEN_COLUMNS
from flopledger.ledger.store import open_ledger

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
CASES = sorted((HERE / "expected").glob("*.json"))

DIMENSIONS = ("provider", "model", "org", "project", "team", "user", "api_key")
DIMENSIONS += ("min_request_input_tokens", "max_request_input_tokens")
TOKENS = (*TOKEN_COLUMNS, "web_search_requests")
COLUMNS = ("ts", *DIMENSIONS, "service_tier", "requests", *TOKENS, "source_line")


def _case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _expected_row(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(row) - set(COLUMNS) - {"tags"}
    assert not unknown, f"expected row has unknown keys {unknown}"
    out: dict[str, Any] = {c: None for c in ("ts", *DIMENSIONS, "source_line")}
    out.update({c: 0 for c in TOKENS})
    out.update({"service_tier": "standard", "requests": 1})
    out.update({k: v for k, v in row.items() if k != "tags"})
    return out


def _ingest(con: Any, case: Mapping[str, Any]) -> IngestResult:
    options = case.get("ingest", {})
    return ingest_files(
        con,
        [SAMPLES / case["sample"]],
        mapping=options.get("mapping"),
        fixed=options.get("fixed"),
        input_includes_cache=options.get("input_includes_cache", False),
    )


def _stored(con: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    cols = ", ".join(f'coalesce("{c}", 0)' if c == "web_search_requests" else f'"{c}"' for c in COLUMNS)
    rows = con.execute(f"SELECT {cols}, tags FROM events").fetchall()
    out = []
    for r in rows:
        row = dict(zip(COLUMNS, r[:-1], strict=True))
        row["ts"] = row["ts"].isoformat()
        out.append((row, json.loads(r[-1]) if r[-1] else {}))
    return out


def _key(row: Mapping[str, Any]) -> str:
    return json.dumps([row[c] for c in COLUMNS], default=str)


@pytest.mark.parametrize("case_path", CASES, ids=[p.stem for p in CASES])
def test_sample_is_detected_and_ingested_as_the_golden_rows(case_path: Path, tmp_path: Path) -> None:
    case = _case(case_path)
    sample = SAMPLES / case["sample"]
    assert detect_format(sample).name == case["format"]

    con = open_ledger(tmp_path / "l.duckdb")
    result = _ingest(con, case)

    counts = case["counts"]
    assert (result.rows_read, result.rows_stored, result.rows_quarantined, result.rows_duplicate) == (
        counts["read"],
        counts["stored"],
        counts["quarantined"],
        counts["duplicate"],
    )
    assert result.reconciles
    assert result.rows_read == result.rows_stored + result.rows_quarantined + result.rows_duplicate

    expected = sorted(((_expected_row(r), r.get("tags", {})) for r in case["rows"]), key=lambda p: _key(p[0]))
    stored = sorted(_stored(con), key=lambda p: _key(p[0]))
    assert [row for row, _ in stored] == [row for row, _ in expected]
    for (row, tags), (_, wanted_tags) in zip(stored, expected, strict=True):
        assert {k: tags.get(k) for k in wanted_tags} == wanted_tags, row

    quarantined = con.execute(
        "SELECT source_line, field, reason, raw, source_file, source_format FROM quarantine"
        " ORDER BY source_line"
    ).fetchall()
    assert len(quarantined) == counts["quarantined"]
    unmatched = [dict(q) for q in case["quarantine"]]
    for line, field, reason, raw, source_file, source_format in quarantined:
        assert source_file == str(sample)
        assert source_format == case["format"]
        assert raw, f"quarantined line {line} lost its raw text"
        match = next(
            (q for q in unmatched if q["line"] == line and q["field"] == field and q["reason"] in reason),
            None,
        )
        assert match is not None, f"unexpected quarantine entry: line {line}, field {field!r}: {reason}"
        unmatched.remove(match)
    assert not unmatched, f"expected quarantine entries not found: {unmatched}"


@pytest.mark.parametrize("case_path", CASES, ids=[p.stem for p in CASES])
def test_ingesting_the_same_sample_twice_stores_nothing_new(case_path: Path, tmp_path: Path) -> None:
    case = _case(case_path)
    con = open_ledger(tmp_path / "l.duckdb")
    first = _ingest(con, case)
    events = con.execute("SELECT count(*), sum(input_tokens + output_tokens) FROM events").fetchone()
    quarantine = con.execute("SELECT count(*) FROM quarantine").fetchone()

    again = _ingest(con, case)

    assert again.rows_read == first.rows_read
    assert again.rows_stored == 0
    assert again.rows_duplicate == first.rows_stored + first.rows_duplicate
    assert again.reconciles
    assert con.execute("SELECT count(*), sum(input_tokens + output_tokens) FROM events").fetchone() == events
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == quarantine


def test_pretty_printed_pages_one_after_another_are_each_read(tmp_path: Path) -> None:
    """``jq . page1.json page2.json > all.json``: two documents, each a page, not lines of JSON to
    quarantine one by one; a page cut short fails the file with one error, storing nothing."""
    from flopledger.errors import InputError

    page = json.dumps(json.loads((SAMPLES / "anthropic_messages_report.json").read_text()), indent=2) + "\n"
    one = tmp_path / "one.json"
    one.write_text(page)
    both = tmp_path / "all.json"
    both.write_text(page + page)
    con = open_ledger(tmp_path / "a.duckdb")
    alone = ingest_files(con, [one])
    again = ingest_files(open_ledger(tmp_path / "b.duckdb"), [both])
    assert alone.rows_stored > 0 and again.reconciles
    assert (again.rows_read, again.rows_stored, again.rows_quarantined, again.rows_duplicate) == (
        2 * alone.rows_read,
        alone.rows_stored,
        2 * alone.rows_quarantined,
        alone.rows_stored,
    )
    second = page.count("\n") + 1  # the line the second page starts on
    lines = open_ledger(tmp_path / "b.duckdb").execute(
        "SELECT DISTINCT source_line FROM quarantine ORDER BY 1"
    )
    assert [r[0] for r in lines.fetchall()] == [1, second]
    cut = tmp_path / "cut.json"
    cut.write_text(page[: len(page) // 2])
    fresh = open_ledger(tmp_path / "c.duckdb")
    with pytest.raises(InputError, match=r"not valid JSON at line \d+ column \d+ .*cut short or damaged"):
        ingest_files(fresh, [cut], format="anthropic")
    assert fresh.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert fresh.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_json_lines_whose_first_line_is_a_stray_brace_keep_their_records(tmp_path: Path) -> None:
    """A lone ``{`` first line, then whole records: JSON Lines with one bad line, not a document."""
    record = json.loads((SAMPLES / "litellm_spend_logs.jsonl").read_text().split("\n")[0])
    path = tmp_path / "spend.jsonl"
    path.write_text("{\n" + json.dumps(record) + "\n" + json.dumps({**record, "request_id": "other"}) + "\n")
    result = ingest_files(open_ledger(tmp_path / "l.duckdb"), [path], format="litellm")
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (3, 2, 1)


def test_pretty_printed_spend_logs_one_after_another_number_each_record_by_its_line(tmp_path: Path) -> None:
    records = [
        json.loads(line) for line in (SAMPLES / "litellm_spend_logs.jsonl").read_text().split("\n")[2:4]
    ]
    first = json.dumps([records[0], {"not": "a record"}], indent=2) + "\n"
    second = json.dumps([{"not": "a record"}, records[1]], indent=2) + "\n"
    path = tmp_path / "spend.json"
    path.write_text(first + second)
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path], format="litellm")
    assert result.reconciles and result.rows_read == 4
    # each record, stored or quarantined, on the line its object opens: in the second document too
    opens = [n for n, line in enumerate(path.read_text().split("\n"), start=1) if line == "  {"]
    rows = "SELECT source_line FROM events UNION ALL SELECT source_line FROM quarantine ORDER BY 1"
    assert [r[0] for r in con.execute(rows).fetchall()] == opens
    assert len(opens) == 4 and opens[2] > first.count("\n")


DOCS = HERE.parents[2] / "docs" / "ingest.md"


def _documented_ingests() -> dict[str, list[str]]:
    """The ``flopledger ingest SAMPLE ...`` commands of docs/ingest.md's shell blocks, as argv, by sample."""
    import re
    import shlex

    found = {}
    for block in re.findall(r"```sh\n(.*?)```", DOCS.read_text("utf-8"), flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(command, comments=True)
            if argv[:2] == ["flopledger", "ingest"]:
                found[argv[2]] = argv[3:]
    return found


def test_the_documented_table_ingests_are_the_golden_samples_options() -> None:
    """docs/ingest.md shows how to ingest two response logs: its commands carry exactly the options
    the golden samples are ingested with (so what the page promises is what the goldens check)."""
    from flopledger.cli.ledger import _pairs

    documented = _documented_ingests()
    samples = {"anthropic_messages_responses.jsonl", "openai_chat_completions.jsonl"}
    assert samples <= set(documented)
    checked = set()
    for case in (_case(p) for p in CASES):
        if case["sample"] not in samples:
            continue
        checked.add(case["sample"])
        argv = documented[case["sample"]]
        options = case["ingest"]
        values = {flag: [argv[i + 1] for i, a in enumerate(argv) if a == flag] for flag in ("--map", "--set")}
        assert _pairs(values["--map"], "--map") == options["mapping"]
        assert _pairs(values["--set"], "--set") == options["fixed"]
        assert ("--input-includes-cache" in argv) == options.get("input_includes_cache", False)
        assert (
            set(argv) - {"--map", "--set", "--input-includes-cache", *values["--map"], *values["--set"]}
            == set()
        )
    assert checked == samples  # each has its golden case
