"""Which columns the tables of a DuckDB database have: what schema upgrades, and readers of a ledger
an older flopledger wrote, look up before naming a column."""

from __future__ import annotations

import duckdb

__all__ = ["columns_by_table", "table_columns"]


def columns_by_table(con: duckdb.DuckDBPyConnection, database: str | None = None) -> dict[str, set[str]]:
    """The columns of every table in the ``main`` schema of ``database`` (default: the current one),
    by table, in one lookup."""
    where = "database_name = ?" if database is not None else "database_name = current_database()"
    out: dict[str, set[str]] = {}
    for table, column in con.execute(
        f"SELECT table_name, column_name FROM duckdb_columns() WHERE {where} AND schema_name = 'main'",
        [database] if database is not None else [],
    ).fetchall():
        out.setdefault(str(table), set()).add(str(column))
    return out


def table_columns(con: duckdb.DuckDBPyConnection, table: str, database: str | None = None) -> set[str]:
    """The columns of ``table`` (empty when there is no such table)."""
    return columns_by_table(con, database).get(table, set())
