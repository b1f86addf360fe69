"""The daily rollup always equals the events summed afresh: after ingests that add to days it has,
after a reprice, and when an older flopledger's rollup (without the price segment) is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from flopledger.catalog.overrides import load_overrides
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.repricing import reprice
from flopledger.ledger.rollups import ROLLUP_TABLE, rollup_is_current, rollup_select, rollup_state
from flopledger.ledger.store import open_ledger
from flopledger.web.queries import rollup_source


def _event(day: int, hour: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "ts": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "team": "core",
        "user": "ann",
        "input_tokens": 1000 + day,
        "cache_read_tokens": 20000,
        "output_tokens": 500 + hour,
    }
    return {**row, **over}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    return path


def _assert_rollup_is_the_events(con: duckdb.DuckDBPyConnection) -> None:
    assert rollup_is_current(con)
    order = "ORDER BY ALL"
    kept = con.execute(f"SELECT * FROM {ROLLUP_TABLE} {order}").fetchall()
    fresh = con.execute(f"SELECT * FROM ({rollup_select()}) {order}").fetchall()
    assert len(kept) == len(fresh) > 0
    for a, b in zip(kept, fresh, strict=True):
        exact = [(x, y) for x, y in zip(a, b, strict=True) if not isinstance(y, float)]
        assert all(x == y for x, y in exact), (a, b)
        assert [x for x in a if isinstance(x, float)] == pytest.approx([y for y in b if isinstance(y, float)])


def test_ingests_that_touch_the_same_days_keep_the_rollup_equal_to_the_events(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    first = [_event(d, h) for d in (1, 2, 3) for h in (9, 15)]
    ingest_files(con, [_write(tmp_path / "a.jsonl", first)])
    _assert_rollup_is_the_events(con)
    # Days 2 and 3 again (one repeated event, new ones), a new day, a batch tier, an unknown model.
    second = [first[3], _event(2, 11), _event(3, 11, user="bob"), _event(4, 8)]
    second += [_event(3, 12, service_tier="batch"), _event(2, 13, model="no-such-model-xyz")]
    result = ingest_files(con, [_write(tmp_path / "b.jsonl", second)])
    assert result.rows_duplicate == 1 and result.unpriced_rows == 1
    _assert_rollup_is_the_events(con)
    segments = con.execute(f"SELECT DISTINCT price_model, priced FROM {ROLLUP_TABLE} ORDER BY ALL").fetchall()
    assert segments == [("anthropic/claude-sonnet-4-5", True), (None, False)]
    prices = tmp_path / "prices.toml"
    prices.write_text("[[discount]]\npercent = 10\nvalid_from = 2026-03-03\n")
    reprice(con, load_overrides(prices))
    _assert_rollup_is_the_events(con)


def test_an_older_rollup_is_read_around_then_rebuilt_once_without_double_counting(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_write(tmp_path / "a.jsonl", [_event(d, 9) for d in (1, 2)])])
    con.execute(f"ALTER TABLE {ROLLUP_TABLE} DROP COLUMN price_model")  # as flopledger kept it before
    assert not rollup_is_current(con)
    assert rollup_source(con) != ROLLUP_TABLE  # readers sum the events meanwhile
    ingest_files(con, [_write(tmp_path / "b.jsonl", [_event(2, 10), _event(3, 9)])])
    _assert_rollup_is_the_events(con)
    assert con.execute(f"SELECT sum(events) FROM {ROLLUP_TABLE}").fetchone() == (4,)


def test_opening_an_upgraded_ledger_for_writing_rebuilds_its_rollup(tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [_write(tmp_path / "a.jsonl", [_event(d, 9) for d in (1, 2, 3)])])
    con.execute(f"ALTER TABLE {ROLLUP_TABLE} DROP COLUMN priced")
    con.close()
    reader = open_ledger(db, read_only=True)
    assert rollup_state(reader) == "outdated"  # a reader cannot mend it, and sums the events meanwhile
    reader.close()
    writer = open_ledger(db)
    _assert_rollup_is_the_events(writer)
    assert writer.execute(f"SELECT sum(events) FROM {ROLLUP_TABLE}").fetchone() == (3,)
