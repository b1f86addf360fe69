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
from flopledger.ledger.rollups import (
    ROLLUP_KEYS,
    ROLLUP_TABLE,
    rollup_is_current,
    rollup_select,
    rollup_state,
)
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


def _summed(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple[object, ...]]:
    """``source``'s rows summed by the rollup's keys, ordered: what every reader of the rollup sees."""
    sql = f"SELECT * EXCLUDE (compacted) FROM {ROLLUP_TABLE} LIMIT 0"
    names = [d[0] for d in con.execute(sql).description]
    measures = [n for n in names if n not in ROLLUP_KEYS]
    keys = ", ".join(f'"{k}"' for k in ROLLUP_KEYS)
    sums = ", ".join(f'sum("{m}")' for m in measures)
    return con.execute(f"SELECT {keys}, {sums} FROM {source} GROUP BY ALL ORDER BY ALL").fetchall()


def _assert_rollup_is_the_events(con: duckdb.DuckDBPyConnection) -> None:
    assert rollup_is_current(con)
    kept, fresh = _summed(con, ROLLUP_TABLE), _summed(con, f"({rollup_select()})")
    assert len(kept) == len(fresh) > 0
    for a, b in zip(kept, fresh, strict=True):
        exact = [(x, y) for x, y in zip(a, b, strict=True) if not isinstance(y, float)]
        assert all(x == y for x, y in exact), (a, b)
        assert [x for x in a if isinstance(x, float)] == pytest.approx([y for y in b if isinstance(y, float)])


def _rows_by_kind(con: duckdb.DuckDBPyConnection, day: str) -> tuple[int, int]:
    """(compacted, appended) rollup rows of ``day``."""
    row = con.execute(
        f"SELECT count(*) FILTER (compacted), count(*) FILTER (NOT compacted) "
        f"FROM {ROLLUP_TABLE} WHERE day = ?",
        [day],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


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


def test_small_ingests_into_a_day_are_appended_then_compacted_once_they_outnumber_it(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    users = [f"u{i}" for i in range(6)]
    ingest_files(con, [_write(tmp_path / "a.jsonl", [_event(2, 9, user=u) for u in users])])
    assert _rows_by_kind(con, "2026-03-02") == (6, 0)  # a new day is stored compacted
    # One event per ingest into the same day and groups: appended, not rewritten, while appended
    # rows (with the batch) do not outnumber the compacted ones.
    for i, u in enumerate(users[:6]):
        one = [_event(2, 10 + i % 3, user=u, input_tokens=7 + i)]
        ingest_files(con, [_write(tmp_path / f"b{i}.jsonl", one)])
        _assert_rollup_is_the_events(con)
        assert _rows_by_kind(con, "2026-03-02") == (6, i + 1)
    # The seventh would make 7 appended rows against 6 compacted: the day is summed again.
    ingest_files(con, [_write(tmp_path / "c.jsonl", [_event(2, 16, user="u0", input_tokens=99)])])
    assert _rows_by_kind(con, "2026-03-02") == (6, 0)
    _assert_rollup_is_the_events(con)
    assert con.execute(f"SELECT sum(events) FROM {ROLLUP_TABLE}").fetchone() == (13,)


def test_one_batch_is_appended_to_one_day_compacts_another_and_starts_a_third(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    first = [_event(1, 9, user=f"u{i}") for i in range(5)] + [_event(2, 9, user="u0")]
    ingest_files(con, [_write(tmp_path / "a.jsonl", first)])
    # day 1: one event against 5 compacted rows (appended); day 2: 3 against 1 (compacted); day 3 new
    second = [_event(1, 11, user="u1"), *(_event(2, 10 + h, user="u0") for h in range(3)), _event(3, 9)]
    ingest_files(con, [_write(tmp_path / "b.jsonl", second)])
    assert [_rows_by_kind(con, f"2026-03-0{d}") for d in (1, 2, 3)] == [(5, 1), (1, 0), (1, 0)]
    _assert_rollup_is_the_events(con)


def test_a_rollup_made_before_appended_rows_gains_its_column_without_a_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [_write(tmp_path / "a.jsonl", [_event(d, 9) for d in (1, 2)])])
    con.execute(f"ALTER TABLE {ROLLUP_TABLE} DROP COLUMN compacted")  # as flopledger kept it before
    con.execute(f"UPDATE {ROLLUP_TABLE} SET events = events * 10")  # a marker a rebuild would undo
    con.close()
    reader = open_ledger(db, read_only=True)
    assert rollup_state(reader) == "current" and rollup_source(reader) == ROLLUP_TABLE  # read as it is
    reader.close()
    writer = open_ledger(db)
    assert writer.execute(f"SELECT sum(events), bool_and(compacted) FROM {ROLLUP_TABLE}").fetchone() == (
        20,
        True,
    )
    writer.execute(f"UPDATE {ROLLUP_TABLE} SET events = events / 10")
    ingest_files(writer, [_write(tmp_path / "b.jsonl", [_event(2, 10)])])
    _assert_rollup_is_the_events(writer)
    assert _rows_by_kind(writer, "2026-03-02") == (1, 1)
