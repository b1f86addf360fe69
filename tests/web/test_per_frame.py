"""The overview's per-frame results are computed once per frame, however many readers arrive at once."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from flopledger.web.dashboard import _per_frame


def test_concurrent_readers_of_a_new_frame_compute_its_result_once() -> None:
    frame = pa.table({"x": [1]})
    calls: list[int] = []

    def slow() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"p50": 42}

    results: list[object] = []
    readers = [
        threading.Thread(target=lambda: results.append(_per_frame(frame, "fc", None, slow))) for _ in range(6)
    ]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    assert results == [{"p50": 42}] * 6 and len(calls) == 1
    # Another frame (the next ledger version) is computed afresh.
    assert _per_frame(pa.table({"x": [2]}), "fc", None, lambda: {"p50": 7}) == {"p50": 7}


def test_a_failed_computation_leaves_the_next_reader_to_compute() -> None:
    frame = pa.table({"x": [3]})

    def broken() -> object:
        raise RuntimeError("ledger busy")

    with pytest.raises(RuntimeError):
        _per_frame(frame, "fc", None, broken)
    assert _per_frame(frame, "fc", None, lambda: "ok") == "ok"


def test_a_reader_waiting_on_a_failed_computation_computes_it_itself() -> None:
    frame = pa.table({"x": [4]})
    started = threading.Event()

    def broken() -> object:
        started.set()
        time.sleep(0.2)
        raise RuntimeError("ledger busy")

    failures: list[BaseException] = []

    def first() -> None:
        try:
            _per_frame(frame, "fc", None, broken)
        except RuntimeError as exc:
            failures.append(exc)

    t = threading.Thread(target=first)
    t.start()
    started.wait()
    assert _per_frame(frame, "fc", None, lambda: "mine") == "mine"  # waited, then computed
    t.join()
    assert len(failures) == 1


def test_a_late_result_of_an_older_frame_keeps_the_newer_frames_result() -> None:
    oldest, older, newer = pa.table({"x": [5]}), pa.table({"x": [6]}), pa.table({"x": [7]})
    assert _per_frame(oldest, "fc", None, lambda: "oldest") == "oldest"
    assert _per_frame(newer, "fc", None, lambda: "new") == "new"
    assert _per_frame(older, "fc", None, lambda: "old") == "old"  # a slow reader of an older frame
    assert _per_frame(newer, "fc", None, lambda: "recomputed") == "new"
    assert _per_frame(oldest, "fc", None, lambda: "again") == "again"  # only the last frames are kept
