"""The quarantine: rows an ingest could not store, kept with file, line, field, reason and raw text.

A quarantined row is *stored since* when a later ingest run stored an event from the same file and
line: the file was mended and ingested again. ``list_quarantine`` selects rows by run, by file and by
whether they are still open; ``clear_quarantine`` removes the rows a selection names, once they are
dealt with. The runs' own reconciliation (``ingests``) keeps the counts it had: clearing removes the
rows, not the history of having read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.runs import resolve_run

__all__ = ["QuarantineSelection", "clear_quarantine", "list_quarantine"]

_SELECTED = (
    # the latest run that stored an event from each quarantined file and line, joined, not a
    # correlated EXISTS (DuckDB 1.5 answers one over a join with more than one outer column wrongly)
    "(SELECT q.*, coalesce(s.last_stored > q.quarantined_at, false) AS stored_since FROM quarantine q "
    "LEFT JOIN (SELECT e.source_file, e.source_line, max(r.started_at) AS last_stored FROM events e "
    "JOIN ingests r ON r.ingest_id = e.ingest_id "
    "WHERE e.source_file IN (SELECT DISTINCT source_file FROM quarantine) GROUP BY ALL) s "
    "ON s.source_file = q.source_file AND s.source_line = q.source_line) q"
)
"""The quarantine as ``q``, with ``stored_since``: a run after the row's stored an event from its
file and line."""


@dataclass(frozen=True)
class QuarantineSelection:
    """Which quarantined rows: of one run (its id or a unique prefix), of one file (as it was named to
    the ingest, or its last path components), and only those no later run stored (``open_only``) or
    only those one did (``stored_only``)."""

    ingest: str | None = None
    file: str | None = None
    open_only: bool = False
    stored_only: bool = False

    def where(self, con: duckdb.DuckDBPyConnection) -> tuple[str, list[Any]]:
        """The SQL condition over :data:`_SELECTED` and its parameters."""
        if self.open_only and self.stored_only:
            raise InputError("--open and --stored exclude each other: give one")
        conditions, params = ["TRUE"], []
        if self.ingest is not None:
            conditions.append("q.ingest_id = ?")
            params.append(resolve_run(con, self.ingest)[0])
        if self.file is not None:
            name = self.file.strip()
            conditions.append("(q.source_file = ? OR ends_with(q.source_file, '/' || ?))")
            params += [name, name.lstrip("./")]
        if self.open_only:
            conditions.append("NOT q.stored_since")
        if self.stored_only:
            conditions.append("q.stored_since")
        return " AND ".join(conditions), params

    @property
    def any(self) -> bool:
        return self.ingest is not None or self.file is not None or self.open_only or self.stored_only


def list_quarantine(
    con: duckdb.DuckDBPyConnection, selection: QuarantineSelection, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The selected rows, oldest first (at most ``limit``), and how many the selection has in all."""
    where, params = selection.where(con)
    total = con.execute(f"SELECT count(*) FROM {_SELECTED} WHERE {where}", params).fetchone()
    cur = con.execute(
        "SELECT q.source_file, q.source_line, q.field, q.reason, q.source_format, q.ingest_id, "
        f"q.quarantined_at, q.stored_since, q.raw FROM {_SELECTED} WHERE {where} "
        "ORDER BY q.quarantined_at, q.source_file, q.source_line LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return rows, int(total[0]) if total else 0


def clear_quarantine(
    con: duckdb.DuckDBPyConnection, selection: QuarantineSelection, *, everything: bool = False
) -> int:
    """Remove the selected rows (``everything``: all of them), in one transaction; how many went."""
    if not selection.any and not everything:
        raise InputError(
            "say which quarantined rows to clear: --stored (those a later run stored), --ingest RUN, "
            "--file FILE, --open, or --all"
        )
    where, params = selection.where(con)
    con.execute("BEGIN TRANSACTION")
    try:
        keys = f"SELECT q.row_key FROM {_SELECTED} WHERE {where}"
        gone = con.execute(f"SELECT count(*) FROM ({keys})", params).fetchone()
        con.execute(f"DELETE FROM quarantine WHERE row_key IN ({keys})", params)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(gone[0]) if gone else 0
