"""Through the real ingest path (a JSONL file with prompts): no prompt text reaches the ledger file,
neither for stored rows nor for rows sent to quarantine, unless --keep-prompts is asked for."""

from __future__ import annotations

import json
from pathlib import Path

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

PROMPTS = [
    "Summarise the onboarding handbook for the tangerine migration squad please",
    "Draft a polite refusal to the walrus procurement committee about Tuesday",
    "Explain step by step why the saffron cache invalidation keeps failing overnight",
]


def _write(path: Path, *, bad_row: bool) -> None:
    rows = [
        {
            "ts": f"2026-03-02T10:0{i}:00Z",
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "user": f"user-{i}",
            "input_tokens": 100,
            "output_tokens": 50,
            "prompt": prompt,
        }
        for i, prompt in enumerate(PROMPTS)
    ]
    if bad_row:
        rows.append(
            {"ts": "not a time", "model": "claude-sonnet-4-5", "prompt": "Quarantined pelican secret"}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _ingested_bytes(tmp_path: Path, *, bad_row: bool) -> bytes:
    source = tmp_path / "usage.jsonl"
    _write(source, bad_row=bad_row)
    db = tmp_path / "ledger.duckdb"
    con = open_ledger(db)
    ingest_files(con, [source], format="jsonl", fingerprint_key=b"k")
    assert con.execute("SELECT count(*), count(prompt), count(fp_minhash) FROM events").fetchone() == (
        3,
        0,
        3,
    )
    con.execute("CHECKPOINT")
    con.close()
    return db.read_bytes()


def test_ingest_stores_fingerprints_and_no_prompt_text(tmp_path: Path) -> None:
    stored = _ingested_bytes(tmp_path, bad_row=False)
    for fragment in ("tangerine migration", "walrus procurement", "saffron cache"):
        assert fragment.encode() not in stored, fragment


def test_quarantined_rows_keep_no_prompt_text(tmp_path: Path) -> None:
    stored = _ingested_bytes(tmp_path, bad_row=True)
    assert b"pelican secret" not in stored


def test_keep_prompts_keeps_them(tmp_path: Path) -> None:
    source = tmp_path / "usage.jsonl"
    _write(source, bad_row=False)
    con = open_ledger(tmp_path / "kept.duckdb")
    ingest_files(con, [source], format="jsonl", fingerprint_key=b"k", keep_prompts=True)
    assert sorted(r[0] for r in con.execute("SELECT prompt FROM events").fetchall()) == sorted(PROMPTS)
