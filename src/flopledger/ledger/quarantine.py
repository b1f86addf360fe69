"""The quarantine: rows an ingest could not store, kept with file, line, field, reason and raw text.

A quarantined row is *mended* when a later run read its file (the same file, whatever way its path
was typed) and did not find that bad row in it: the file was fixed, or the row taken out, and
ingested again. A run that reads the bad row again says so (``last_seen_at``), so the row stays
open. Rows quarantined before runs recorded their files are never taken for mended.
``list_quarantine`` selects rows by run, by file and by whether they are open or mended;
``clear_quarantine`` removes the rows a selection names. The runs' own reconciliation (``ingests``)
keeps the counts it had: clearing removes the rows, not the history of having read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.runs import resolve_run

__all__ = ["QuarantineSelection", "clear_quarantine", "list_quarantine"]


def _selected(con: duckdb.DuckDBPyConnection) -> str:
    """The quarantine as ``q``, with ``mended``: a run after the row was last seen read its file.

    The latest run that read each file is joined, not asked for in a correlated EXISTS (DuckDB 1.5
    answers one over a join with more than one outer column wrongly). A ledger an older flopledger
    wrote, read as it is, lacks the columns that tell: its rows are open."""
    have = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name IN ('quarantine', 'ingests')"
        ).fetchall()
    }
    if not {("quarantine", "file_key"), ("quarantine", "last_seen_at"), ("ingests", "file_keys")} <= have:
        return (
            "(SELECT q.*, q.quarantined_at AS last_seen_at, false AS mended, NULL::VARCHAR AS file_key "
            "FROM quarantine q) q"
        )
    return (
        "(SELECT q.*, coalesce(r.last_read > q.last_seen_at, false) AS mended FROM quarantine q "
        "LEFT JOIN (SELECT file_key, max(started_at) AS last_read FROM (SELECT started_at, "
        "unnest(from_json(file_keys, '[\"VARCHAR\"]')) AS file_key FROM ingests "
        "WHERE status IN ('committed', 'undone') AND file_keys IS NOT NULL) GROUP BY ALL) r "
        "ON r.file_key = q.file_key) q"
    )


def _without_dot_slash(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


@dataclass(frozen=True)
class QuarantineSelection:
    """Which quarantined rows: of one run (its id or a unique prefix), of one file (its path from
    here, as it was named to the ingest, or its last path components), and only those still open
    (``open_only``) or only those mended (``mended_only``)."""

    ingest: str | None = None
    file: str | None = None
    open_only: bool = False
    mended_only: bool = False

    def where(self, con: duckdb.DuckDBPyConnection) -> tuple[str, list[Any]]:
        """The SQL condition over :func:`_selected` and its parameters."""
        if self.open_only and self.mended_only:
            raise InputError("--open and --mended exclude each other: give one")
        conditions, params = ["TRUE"], []
        if self.ingest is not None:
            conditions.append("q.ingest_id = ?")
            params.append(resolve_run(con, self.ingest)[0])
        if self.file is not None:
            name = self.file.strip()
            conditions.append("(q.source_file = ? OR q.file_key = ? OR ends_with(q.source_file, '/' || ?))")
            params += [name, str(Path(name).resolve()), _without_dot_slash(name)]
        if self.open_only:
            conditions.append("NOT q.mended")
        if self.mended_only:
            conditions.append("q.mended")
        return " AND ".join(conditions), params

    @property
    def any(self) -> bool:
        return self.ingest is not None or self.file is not None or self.open_only or self.mended_only


def list_quarantine(
    con: duckdb.DuckDBPyConnection, selection: QuarantineSelection, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The selected rows, oldest first (at most ``limit``), and how many the selection has in all."""
    where, params = selection.where(con)
    selected = _selected(con)
    total = con.execute(f"SELECT count(*) FROM {selected} WHERE {where}", params).fetchone()
    cur = con.execute(
        "SELECT q.source_file, q.source_line, q.field, q.reason, q.source_format, q.ingest_id, "
        f"q.quarantined_at, q.last_seen_at, q.mended, q.raw FROM {selected} WHERE {where} "
        "ORDER BY q.quarantined_at, q.source_file, q.source_line LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return rows, int(total[0]) if total else 0


def clear_quarantine(
    con: duckdb.DuckDBPyConnection, selection: QuarantineSelection, *, everything: bool = False
) -> dict[str, int]:
    """Remove the selected rows (``everything``: all of them), in one transaction; how many went,
    by file."""
    if not selection.any and not everything:
        raise InputError(
            "say which quarantined rows to clear: --mended (those whose file was fixed and ingested "
            "again), --ingest RUN, --file FILE, --open, or --all"
        )
    where, params = selection.where(con)
    selected = _selected(con)
    con.execute("BEGIN TRANSACTION")
    try:
        gone = con.execute(
            f"SELECT q.source_file, count(*) FROM {selected} WHERE {where} GROUP BY 1 ORDER BY 1", params
        ).fetchall()
        con.execute(
            f"DELETE FROM quarantine WHERE row_key IN (SELECT q.row_key FROM {selected} WHERE {where})",
            params,
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {str(f): int(n) for f, n in gone}
