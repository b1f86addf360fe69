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
