"""The overview's compact frame: the rollup summed to day x team x model, rebuilt when the ledger changes.

At 10M events the rollup holds about a million rows; the overview's five aggregates over that many
rows take too long for a page. Summed to day x team x model it is a few thousand rows, which every
overview query (scoped by team like any other) reads in milliseconds. The frame is an immutable
Arrow table swapped whole: a reader sees one version or the next, never half of one. It is rebuilt
by the OTLP intake right after it commits, and by any reader that finds the ledger changed while no
rebuild is under way (meanwhile readers keep the previous frame, at most one ingest behind).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from flopledger.web.queries import overview_frame_sql
from flopledger.web.state import ServerState

__all__ = ["current_frame", "ledger_version", "rebuild_frame"]

_KEY = "overview_frame"
_BUILDING = threading.Lock()


@dataclass(frozen=True)
class _Frame:
    version: tuple[Any, ...]
    table: pa.Table


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


def rebuild_frame(state: ServerState) -> pa.Table:
    """Build the frame for the ledger as it is now and make it current."""
    with _BUILDING:
        version = ledger_version(state)
        cached = state.cache.get(_KEY)
        if isinstance(cached, _Frame) and cached.version == version:
            return cached.table
        with state.cursor() as cur:
            table = cur.execute(overview_frame_sql(cur)).to_arrow_table()
        state.cache[_KEY] = _Frame(version, table)
        return table


def current_frame(state: ServerState) -> pa.Table:
    """The frame for the current ledger, or the previous one while another thread rebuilds it."""
    cached = state.cache.get(_KEY)
    if isinstance(cached, _Frame):
        if cached.version == ledger_version(state):
            return cached.table
        if _BUILDING.locked():
            return cached.table
    return rebuild_frame(state)
