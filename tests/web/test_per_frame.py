"""A frame's results are computed once per frame, however many readers arrive at once."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from flopledger.web.overview_frame import Frame


def _frame(n: int) -> Frame:
    return Frame((n,), pa.table({"x": [n]}), "current")


def test_concurrent_readers_of_a_new_frame_compute_its_result_once() -> None:
    frame = _frame(1)
    calls: list[int] = []

    def slow() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"p50": 42}

    results: list[object] = []
    readers = [threading.Thread(target=lambda: results.append(frame.once("fc", slow))) for _ in range(6)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    assert results == [{"p50": 42}] * 6 and len(calls) == 1
    assert frame.once(("fc", "team-a"), lambda: {"p50": 1}) == {"p50": 1}  # another key: computed
    # Another frame (the next ledger version) is computed afresh; the old frame keeps its own.
    assert _frame(2).once("fc", lambda: {"p50": 7}) == {"p50": 7}
    assert frame.once("fc", lambda: {"p50": 0}) == {"p50": 42}


def test_a_failed_computation_leaves_the_next_reader_to_compute() -> None:
    frame = _frame(3)

    def broken() -> object:
        raise RuntimeError("ledger busy")

    with pytest.raises(RuntimeError):
        frame.once("fc", broken)
    assert frame.once("fc", lambda: "ok") == "ok"


def test_a_reader_waiting_on_a_failed_computation_computes_it_itself() -> None:
    frame = _frame(4)
    started = threading.Event()
    order: list[str] = []

    def broken() -> object:
        started.set()
        time.sleep(0.2)
        order.append("failed")
        raise RuntimeError("ledger busy")

    def mine() -> str:
        order.append("computed")
        return "mine"

    failures: list[BaseException] = []

    def first() -> None:
        try:
            frame.once("fc", broken)
        except RuntimeError as exc:
            failures.append(exc)

    t = threading.Thread(target=first)
    t.start()
    started.wait()
    assert frame.once("fc", mine) == "mine"
    t.join()
    assert len(failures) == 1
    assert order == ["failed", "computed"]  # it waited for the failure, then computed, once


def test_a_reader_stops_waiting_on_a_stuck_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    import flopledger.web.overview_frame as of

    monkeypatch.setattr(of, "WAIT_S", 0.05)
    frame, started, release = _frame(5), threading.Event(), threading.Event()

    def stuck_computation() -> str:
        started.set()
        release.wait(5)
        return "late"

    stuck = threading.Thread(target=lambda: frame.once("fc", stuck_computation))
    stuck.start()
    started.wait(5)
    t0 = time.perf_counter()
    assert frame.once("fc", lambda: "own") == "own"
    assert time.perf_counter() - t0 < 2
    release.set()
    stuck.join()
    assert frame.once("fc", lambda: "again") == "late"  # the stuck one's result is kept when it lands
