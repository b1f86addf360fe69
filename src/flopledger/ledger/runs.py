"""The ledger's ingest runs: each run's reconciliation, and undoing a run that stored what it should not.

Every ingest records a run in ``ingests`` (read = stored + quarantined + duplicates skipped). A run
ingested with the wrong ``--set`` or ``--map``, or of the wrong file, is undone whole: its events
leave the ledger, the rollup days they were in are summed again, and the run stays listed as
``undone``. Its files can then be ingested again, as new. The bad rows it quarantined stay in the
quarantine: they were read, and another run may have read them too (a row is quarantined once).

>>> from flopledger.ledger.store import open_ledger
>>> con = open_ledger(":memory:")
>>> list_runs(con)
[]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.columns import table_columns
from flopledger.ledger.rollups import refresh_rollups
from flopledger.ledger.transaction import transaction

__all__ = ["RUN_COLUMNS", "UndoResult", "list_runs", "remove_run_events", "resolve_run", "undo_run"]

RUN_COLUMNS: tuple[str, ...] = (
    "ingest_id",
    "started_at",
    "finished_at",
    "status",
    "source_format",
    "files",
    "rows_read",
    "rows_stored",
    "rows_quarantined",
    "rows_duplicate",
    "rows_restated",
    "rows_superseded",
    "rows_overlapping",
    "price_version",
    "message",
)
"""What a run's listing shows: the ``ingests`` table's columns."""

_MIN_PREFIX = 4
"""The fewest leading characters of a run's id that name it (when no other run's id starts so)."""


def list_runs(con: duckdb.DuckDBPyConnection, limit: int | None = None) -> list[dict[str, Any]]:
    """The ingest runs, newest first (at most ``limit``). Of a ledger an older flopledger wrote, read
    without upgrading it, a count it did not keep is None."""
    present = table_columns(con, "ingests")
    cols = ", ".join(f'"{c}"' if c in present else f'NULL AS "{c}"' for c in RUN_COLUMNS)
    sql = f"SELECT {cols} FROM ingests ORDER BY started_at DESC, ingest_id"
    params: list[object] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in con.execute(sql, params).fetchall()]


@dataclass(frozen=True)
class UndoResult:
    """What undoing a run removed."""

    ingest_id: str
    events_removed: int
    days_summed_again: int
    rows_replaced: int  # stored rows the run had replaced (restated or superseded): not brought back
    later_runs: tuple[str, ...] = ()  # later runs that skipped duplicates: maybe of this run's events

    def as_row(self) -> dict[str, object]:
        return {
            "ingest_id": self.ingest_id,
            "events_removed": self.events_removed,
            "days_summed_again": self.days_summed_again,
            "rows_replaced": self.rows_replaced,
            "later_runs_with_duplicates": len(self.later_runs),
        }


def resolve_run(con: duckdb.DuckDBPyConnection, run: str) -> tuple[str, str, int]:
    """The id, status and replaced rows of the run ``run`` names (its id, or a unique prefix of it)."""
    run = run.strip()
    if len(run) < _MIN_PREFIX:
        raise InputError(
            f"run {run!r}: give at least {_MIN_PREFIX} characters of its id (see `flopledger ingests list`)"
        )
    found = con.execute(
        "SELECT ingest_id, status, coalesce(rows_restated, 0) + coalesce(rows_superseded, 0) FROM ingests "
        "WHERE starts_with(ingest_id, ?) ORDER BY ingest_id",
        [run],
    ).fetchall()
    if not found:
        raise InputError(f"no ingest run {run!r} in this ledger; see `flopledger ingests list`")
    if len(found) > 1:
        ids = ", ".join(str(r[0]) for r in found[:5])
        raise InputError(f"run {run!r} is ambiguous ({ids}); give more of its id")
    ingest_id, status, replaced = found[0]
    return str(ingest_id), str(status), int(replaced)


def remove_run_events(con: duckdb.DuckDBPyConnection, ingest_id: str) -> tuple[int, list[dt.date]]:
    """Delete the events run ``ingest_id`` stored (its remote agents' spans leave the index with
    them) and sum their rollup days again: how many, and the days (the caller holds the transaction)."""
    days = [
        d
        for (d,) in con.execute(
            "SELECT DISTINCT CAST(ts AS DATE) FROM events WHERE ingest_id = ? ORDER BY 1", [ingest_id]
        ).fetchall()
    ]
    if not days:
        return 0, []
    con.execute(
        "DELETE FROM agent_spans WHERE event_id IN (SELECT event_id FROM events WHERE ingest_id = ?)",
        [ingest_id],
    )
    (removed,) = con.execute("DELETE FROM events WHERE ingest_id = ?", [ingest_id]).fetchone() or (0,)
    refresh_rollups(con, days)
    return int(removed), days


def undo_run(con: duckdb.DuckDBPyConnection, run: str, *, force: bool = False) -> UndoResult:
    """Remove what run ``run`` (its id, or a unique prefix) stored, in one transaction.

    Its events go, the rollup days they were in are summed again, and the run is marked ``undone``.
    Undone only with ``force``, as the ledger cannot be put back as it would have been without it:

    * a run that replaced stored rows (usage-report buckets it restated, requests it gave their web
      searches, remote agents' spans their model calls superseded): those rows are gone, and come
      back only when the files that held them are ingested again;
    * a run after which a later run skipped duplicates: they may have been this run's events, which
      then go with it, and come back only when that later run's files are ingested again.
    """
    with transaction(con):
        ingest_id, status, replaced = resolve_run(con, run)
        if status == "undone":
            raise InputError(f"run {ingest_id} is already undone")
        if status != "committed":
            raise InputError(f"run {ingest_id} is {status}: it stored nothing, so there is nothing to undo")
        if replaced and not force:
            raise InputError(
                f"run {ingest_id} replaced {replaced} stored row(s) (usage-report buckets pulled again, "
                "requests that came again with their web searches, or remote agents' spans whose model "
                "calls came): undoing it cannot bring them back. "
                "Pass --force to undo it anyway, then ingest again the files those rows came from"
            )
        later = tuple(
            str(r)
            for (r,) in con.execute(
                """SELECT ingest_id FROM ingests
                   WHERE status = 'committed' AND coalesce(rows_duplicate, 0) > 0
                     AND started_at > (SELECT started_at FROM ingests WHERE ingest_id = ?)
                   ORDER BY started_at""",
                [ingest_id],
            ).fetchall()
        )
        if later and not force:
            raise InputError(
                f"later run(s) {', '.join(later[:5])} skipped rows as duplicates, which may be run "
                f"{ingest_id}'s events: undoing it removes them too. Pass --force to undo it anyway, "
                "then ingest those runs' files again (what they skipped is stored then)"
            )
        removed, days = remove_run_events(con, ingest_id)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con.execute(
            "UPDATE ingests SET status = 'undone', message = ? WHERE ingest_id = ?",
            [
                f"undone at {now.isoformat(timespec='seconds')}Z: its {removed} event(s) were removed; "
                "ingest its files again to store them anew",
                ingest_id,
            ],
        )
    return UndoResult(ingest_id, int(removed), len(days), replaced, later)
