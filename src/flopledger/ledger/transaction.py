"""One DuckDB transaction around a block: committed when it ends, rolled back when it raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

__all__ = ["transaction"]


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction on ``con``: all of it is stored, or, if it raises (an
    interrupt too), none of it.

    >>> con = duckdb.connect()
    >>> with transaction(con):
    ...     _ = con.execute("CREATE TABLE t AS SELECT 1 AS x")
    >>> con.execute("SELECT x FROM t").fetchall()
    [(1,)]
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
