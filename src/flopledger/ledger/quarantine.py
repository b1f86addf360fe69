"""The quarantine: rows an ingest could not store, kept with file, line, field, reason and raw text.

A quarantined row is *gone* from its file when a later run read the same file (whatever way its path
was typed) and did not find that bad row in it: the file was fixed and ingested again, or it was
replaced (a log rotated, a pull written over the last one). A run that reads the bad row again says
so (``last_seen_at``), so the row stays *open*. Only runs that committed count, and only files read
from disk (a request sent to the OTLP endpoint is read once). Rows quarantined before runs recorded
their files are open. ``list_quarantine`` selects rows by run, by file and by state;
``clear_quarantine`` removes the rows a selection names. A run's rows are those it quarantined and
those it read again (``quarantine_reads``). The runs' own reconciliation (``ingests``)
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
    """The quarantine as ``q``, with ``gone``: a run after the row was last seen read its file.

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
            "(SELECT q.*, q.quarantined_at AS last_seen_at, false AS gone, NULL::VARCHAR AS file_key "
            "FROM quarantine q) q"
        )
    return (
        "(SELECT q.*, coalesce(r.last_read > q.last_seen_at, false) AS gone FROM quarantine q "
        "LEFT JOIN (SELECT file_key, max(started_at) AS last_read FROM (SELECT started_at, "
        "unnest(from_json(file_keys, '[\"VARCHAR\"]')) AS file_key FROM ingests "
        "WHERE status = 'committed' AND file_keys IS NOT NULL) GROUP BY ALL) r "
        "ON r.file_key = q.file_key) q"
    )


def _has_reads(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ledger records the runs that read each quarantined row (one an older flopledger
    wrote, opened read-only, does not)."""
    return "quarantine_reads" in {t for (t,) in con.execute("SHOW TABLES").fetchall()}


def _run_of(con: duckdb.DuckDBPyConnection, run: str) -> str:
    """The ingest run ``run`` names (its id or a unique prefix), or a run of outcomes, which records
    no ingest run, by the id its quarantined rows bear (``outcomes-...``)."""
    if run.strip().startswith("outcomes-"):
        found = [
            i
            for (i,) in con.execute(
                "SELECT DISTINCT ingest_id FROM quarantine WHERE starts_with(ingest_id, ?) ORDER BY 1",
                [run.strip()],
            ).fetchall()
        ]
        if len(found) == 1:
            return str(found[0])
        if found:
            raise InputError(f"run {run!r} is ambiguous ({', '.join(found[:5])}); give more of its id")
        raise InputError(f"no run of outcomes {run!r} has quarantined rows in this ledger")
    return resolve_run(con, run)[0]


def _without_dot_slash(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


@dataclass(frozen=True)
class QuarantineSelection:
    """Which quarantined rows: of one run (its id or a unique prefix), of one file (its path from
    here, as it was named to the ingest, or its last path components), and only those still open
    (``open_only``) or only those gone from their file (``gone_only``)."""

    ingest: str | None = None
    file: str | None = None
    open_only: bool = False
    gone_only: bool = False

    def where(self, con: duckdb.DuckDBPyConnection) -> tuple[str, list[Any]]:
        """The SQL condition over :func:`_selected` and its parameters."""
        if self.open_only and self.gone_only:
            raise InputError("--open and --gone exclude each other: give one")
        conditions, params = ["TRUE"], []
        if self.ingest is not None:  # the rows it quarantined, and those it read again
            run = _run_of(con, self.ingest)
            reads = _has_reads(con)
            again = " OR q.row_key IN (SELECT row_key FROM quarantine_reads WHERE ingest_id = ?)"
            conditions.append(f"(q.ingest_id = ?{again if reads else ''})")
            params += [run, run] if reads else [run]
        if self.file is not None:
            name = self.file.strip()
            conditions.append(
                "(q.source_file = ? OR q.file_key = ? OR ends_with(q.source_file, '/' || ?) "
                "OR ends_with(q.file_key, '/' || ?))"
            )
            tail = _without_dot_slash(name)
            params += [name, str(Path(name).resolve()), tail, tail]
        if self.open_only:
            conditions.append("NOT q.gone")
        if self.gone_only:
            conditions.append("q.gone")
        return " AND ".join(conditions), params

    @property
    def any(self) -> bool:
        return self.ingest is not None or self.file is not None or self.open_only or self.gone_only


def list_quarantine(
    con: duckdb.DuckDBPyConnection, selection: QuarantineSelection, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The selected rows, oldest first (at most ``limit``), and how many the selection has in all."""
    where, params = selection.where(con)
    selected = _selected(con)
    total = con.execute(f"SELECT count(*) FROM {selected} WHERE {where}", params).fetchone()
    cur = con.execute(
        "SELECT q.source_file, q.source_line, q.field, q.reason, q.source_format, q.ingest_id, "
        f"q.quarantined_at, q.last_seen_at, CASE WHEN q.gone THEN 'gone from its file' ELSE 'open' END "
        f"AS state, q.raw FROM {selected} WHERE {where} "
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
            "say which quarantined rows to clear: --gone (those a later run of their file did not find: "
            "the file fixed, or replaced), --ingest RUN, --file FILE, --open, or --all"
        )
    where, params = selection.where(con)
    selected = _selected(con)
    con.execute("BEGIN TRANSACTION")
    try:
        gone = con.execute(
            f"SELECT q.source_file, count(*) FROM {selected} WHERE {where} GROUP BY 1 ORDER BY 1", params
        ).fetchall()
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _cleared AS SELECT q.row_key FROM {selected} WHERE {where}", params
        )
        con.execute("DELETE FROM quarantine WHERE row_key IN (SELECT row_key FROM _cleared)")
        if _has_reads(con):
            con.execute("DELETE FROM quarantine_reads WHERE row_key IN (SELECT row_key FROM _cleared)")
        con.execute("DROP TABLE _cleared")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {str(f): int(n) for f, n in gone}
