"""The overview's compact frame: the rollup summed to day x team x model, rebuilt when the ledger changes.

At 10M events the rollup holds about a million rows; the overview's five aggregates over that many
rows take too long for a page. Summed to day x team x model it is a few thousand rows, which every
overview query (scoped by team like any other) reads in milliseconds. The frame is an immutable
Arrow table swapped whole: a reader sees one version or the next, never half of one. It is rebuilt
by the OTLP intake right after it commits, and by any reader that finds the ledger changed while no
rebuild is under way (meanwhile readers keep the previous frame, at most one ingest behind).

A frame also carries what is computed once per ledger version (the forecast, the budget check):
:meth:`Frame.once`. Those results live and go with their frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from flopledger.ledger.rollups import rollup_state
from flopledger.web.queries import overview_frame_sql
from flopledger.web.state import ServerState

__all__ = ["Frame", "current_frame", "ledger_version", "rebuild_frame"]

_KEY = "overview_frame"
_BUILDING = threading.Lock()
WAIT_S = 30.0
"""How long a reader waits for another's computation of the same result before computing its own."""


@dataclass(eq=False)
class Frame:
    """One ledger version's overview frame, and the results computed once for it."""

    version: tuple[Any, ...]
    table: pa.Table
    rollup: str  # the rollup's state when the frame was built (rollups.rollup_state)
    _results: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    _computing: dict[Hashable, threading.Event] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def once(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result for ``key`` on this frame, computed by one reader only.

        The forecast and the budget check read the whole month whatever the page's date range, and
        cost far more than the page's other queries; while an ingest changes the ledger every second,
        every reader would otherwise recompute them. Readers that arrive while one computes wait for
        its result (up to :data:`WAIT_S`) rather than computing it too; after a failure the next
        reader computes. Results are shared: read them, never change them.
        """
        while True:
            with self._lock:
                if key in self._results:
                    return self._results[key]
                underway = self._computing.get(key)
                if underway is None:
                    done = self._computing[key] = threading.Event()
                    break
            if not underway.wait(WAIT_S):  # the one computing is stuck: do not queue behind it
                return compute()
        try:
            value = compute()
            with self._lock:
                self._results[key] = value
            return value
        finally:
            with self._lock:
                del self._computing[key]
            done.set()


def ledger_version(state: ServerState) -> tuple[Any, ...]:
    """Changes whenever an ingest or reprice commits (the ``ingests`` table is small)."""
    with state.cursor() as cur:
        row = cur.execute(
            "SELECT count(*), max(finished_at), max(ingest_id) FROM ingests WHERE status = 'committed'"
        ).fetchone()
        rollup = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'rollup_daily'"
        ).fetchone()
    return (*(row or ()), *(rollup or ()))


def rebuild_frame(state: ServerState) -> Frame:
    """Build the frame for the ledger as it is now and make it current."""
    with _BUILDING:
        version = ledger_version(state)
        cached = state.cache.get(_KEY)
        if isinstance(cached, Frame) and cached.version == version:
            return cached
        with state.cursor() as cur:
            table = cur.execute(overview_frame_sql(cur)).to_arrow_table()
            rollup = rollup_state(cur)
        frame = state.cache[_KEY] = Frame(version, table, rollup)
        return frame


def current_frame(state: ServerState) -> Frame:
    """The frame for the current ledger, or the previous one while another thread rebuilds it."""
    cached = state.cache.get(_KEY)
    if isinstance(cached, Frame) and (cached.version == ledger_version(state) or _BUILDING.locked()):
        return cached
    return rebuild_frame(state)
