"""Event ids are stable across versions: a re-ingest after an upgrade must never count an event twice.

``event_ids.json`` holds the (line, id) pairs every golden sample got from an earlier flopledger,
including spans without ids of their own, whose ids hash their staged fields. Regenerate it only
for a deliberate change of ids, with a migration for the ledgers that hold the old ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "event_ids.json").read_text(encoding="utf-8"))


def _source(name: str) -> tuple[Path, dict[str, Any]]:
    for case_path in (HERE / "expected").glob("*.json"):
        case = json.loads(case_path.read_text(encoding="utf-8"))
        if case["sample"] == name:
            return HERE / "samples" / name, case.get("ingest", {})
    return HERE / "id_samples" / name, {"format": "otel"}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_each_sample_gets_the_ids_it_always_got(name: str, tmp_path: Path) -> None:
    path, options = _source(name)
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(
        con,
        [path],
        format=options.get("format"),
        mapping=options.get("mapping"),
        fixed=options.get("fixed"),
        input_includes_cache=bool(options.get("input_includes_cache", False)),
    )
    got = con.execute("SELECT source_line, event_id FROM events ORDER BY source_line, event_id").fetchall()
    assert [list(r) for r in got] == GOLDEN[name]


def test_every_sample_is_pinned() -> None:
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in (HERE / "expected").glob("*.json")]
    samples = {c["sample"] for c in cases} | {p.name for p in (HERE / "id_samples").iterdir()}
    assert samples == set(GOLDEN)
