"""Auto-detection: every golden sample is recognised from its content, and a file that is unknown or
ambiguous is one clear InputError that names the file and says to pass --format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flopledger.errors import InputError
from flopledger.ledger.formats import detect_format
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

SAMPLES = Path(__file__).resolve().parent / "samples"
VENDOR_JSON = {
    "anthropic_messages_report.json": "anthropic",
    "anthropic_report_pages.json": "anthropic",
    "anthropic_report_pages.jsonl": "anthropic",
    "openai_usage_completions.json": "openai",
    "otel_collector_traces.jsonl": "otel",
    "otel_http_request.json": "otel",
    "litellm_spend_logs.json": "litellm",
    "litellm_spend_logs.jsonl": "litellm",
}


@pytest.mark.parametrize(("name", "fmt"), sorted(VENDOR_JSON.items()))
def test_vendor_json_is_recognised_by_its_content_whatever_the_file_is_called(
    name: str, fmt: str, tmp_path: Path
) -> None:
    renamed = tmp_path / "export.txt"
    shutil.copy(SAMPLES / name, renamed)
    assert detect_format(SAMPLES / name).name == fmt
    assert detect_format(renamed).name == fmt


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("litellm_spend_logs.csv", "litellm"),
        ("gateway_usage.csv", "csv"),
        ("agent_events.jsonl", "jsonl"),
        ("warehouse_usage.parquet", "parquet"),
    ],
)
def test_tables_are_recognised_and_a_vendor_table_beats_the_generic_reader(name: str, fmt: str) -> None:
    assert detect_format(SAMPLES / name).name == fmt


def test_a_report_too_long_to_decode_from_its_head_is_still_recognised(tmp_path: Path) -> None:
    page = json.loads((SAMPLES / "anthropic_messages_report.json").read_text(encoding="utf-8"))
    page["data"] = page["data"][:2] * 200  # far past the 64 KiB the detector reads
    path = tmp_path / "big.json"
    path.write_text(json.dumps(page, indent=2), encoding="utf-8")
    assert path.stat().st_size > 200_000
    assert detect_format(path).name == "anthropic"

    usage = json.loads((SAMPLES / "openai_usage_completions.json").read_text(encoding="utf-8"))
    usage["data"] = usage["data"][:2] * 200
    path.write_text(json.dumps(usage, indent=2), encoding="utf-8")
    assert detect_format(path).name == "openai"


def _single_clear_error(exc: InputError, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message
    assert str(path) in message
    assert "--format" in message
    return message


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("notes.txt", "Token usage for March: about 4M tokens, mostly cache reads.\n"),
        ("rows.json", json.dumps([10, 12])),  # (an array of records is told how to become JSON Lines)
        ("empty.json", ""),
        ("export.log", '{"level": "info", "msg": "started"}\n'),
    ],
)
def test_an_unknown_file_is_one_clear_error_saying_to_pass_format(
    name: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        detect_format(path)
    message = _single_clear_error(info.value, path)
    assert "cannot tell the format" in message


def _ambiguous(tmp_path: Path) -> Path:
    """A JSONL file whose first line is an Anthropic report page and whose second is an OTLP request."""
    page = json.loads((SAMPLES / "anthropic_report_pages.jsonl").read_text(encoding="utf-8").splitlines()[0])
    otlp = json.loads((SAMPLES / "otel_collector_traces.jsonl").read_text(encoding="utf-8").splitlines()[0])
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(page) + "\n" + json.dumps(otlp) + "\n", encoding="utf-8")
    return path


def test_an_ambiguous_file_names_the_candidates_and_nothing_is_ingested(tmp_path: Path) -> None:
    path = _ambiguous(tmp_path)
    with pytest.raises(InputError) as info:
        detect_format(path)
    message = _single_clear_error(info.value, path)
    assert "anthropic" in message and "otel" in message

    con = open_ledger(tmp_path / "l.duckdb")
    with pytest.raises(InputError, match="--format"):
        ingest_files(con, [path])
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_passing_format_resolves_the_ambiguity_and_the_other_records_are_quarantined(tmp_path: Path) -> None:
    path = _ambiguous(tmp_path)
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path], format="anthropic")
    assert (result.rows_stored, result.rows_quarantined) == (1, 1)
    reason = con.execute("SELECT source_line, field, reason FROM quarantine").fetchone()
    assert reason == (2, "data", "a page without a 'data' list")


@pytest.mark.parametrize(
    "name", ["anthropic_messages_report.json", "openai_usage_completions.json", "litellm_spend_logs.csv"]
)
def test_a_file_saved_with_a_byte_order_mark_reads_as_without(name: str, tmp_path: Path) -> None:
    """Some Windows tools begin UTF-8 files with a BOM: detection and parsing look past it."""
    marked = tmp_path / name
    marked.write_bytes(b"\xef\xbb\xbf" + (SAMPLES / name).read_bytes())
    assert detect_format(marked).name == detect_format(SAMPLES / name).name
    events = "SELECT request_id, model, input_tokens, output_tokens, cost_usd FROM events ORDER BY ALL"
    stored = []
    for path in (marked, SAMPLES / name):
        con = open_ledger(":memory:")
        result = ingest_files(con, [path])
        stored.append((result.rows_stored, result.rows_quarantined, con.execute(events).fetchall()))
    assert stored[0] == stored[1] and stored[0][0] > 0  # the same events, request ids and all
