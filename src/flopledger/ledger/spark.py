"""Engine selection: the same Ibis expressions on the DuckDB ledger file or on a Spark session.

The forecast, budget and export analytics are Ibis expressions over the ``events`` table, so they
run unchanged where the logs already live. DuckDB is the default; ``--engine spark`` reads the
priced events as Parquet (``flopledger export --format parquet``) or as a table in the session's
catalog. See ``docs/spark.md`` for pointing it at a cluster.

>>> engine = connect_engine("duckdb", db=":memory:")
>>> engine.rows(events_table(engine).count().name("n").as_table())
[{'n': 0}]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.schema import LATER_COLUMNS
from flopledger.ledger.store import open_ledger

__all__ = [
    "ENGINES",
    "SPARK_DEFAULT_CONF",
    "Engine",
    "connect_engine",
    "events_table",
    "local_spark_session",
    "spark_engine",
]

SPARK_DEFAULT_CONF: Mapping[str, str] = {
    # Reports are small aggregates: a handful of shuffle partitions beats Spark's default of 200.
    "spark.sql.shuffle.partitions": "4",
    # Timestamps in the ledger are UTC; Spark must not shift them to the JVM's zone.
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # a progress bar would garble --format json/csv output
}


@dataclass(frozen=True)
class Engine:
    """An Ibis backend plus where the events live on it."""

    name: str
    backend: Any
    events_source: str = "events"
    session: Any = field(default=None, repr=False)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        """Run ``expr`` and return an Arrow table (Spark: straight to Arrow, no pandas detour)."""
        if self.session is not None:
            return self.session.sql(str(self.backend.compile(expr))).toArrow()
        return expr.to_pyarrow()

    def rows(self, expr: ir.Table) -> list[dict[str, Any]]:
        """Run ``expr`` and return its rows as dictionaries."""
        result: list[dict[str, Any]] = self.to_arrow(expr).to_pylist()
        return result


def _duckdb_engine(db: str | Path, source: str | None, master: str | None) -> Engine:
    con = open_ledger(db, read_only=str(db) != ":memory:")
    return Engine("duckdb", ibis.duckdb.from_connection(con), source or "events")


def local_spark_session(master: str | None = "local[1]", conf: Mapping[str, str] | None = None) -> Any:
    """A Spark session with flopledger's settings: local for tests and laptops by default; ``master``
    None leaves the master to the environment (``spark-submit``, a cluster's defaults)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError("the spark engine needs pyspark: pip install 'pyspark>=4.0,<4.1'") from exc
    builder = SparkSession.builder.appName("flopledger")
    if master is not None:
        builder = builder.master(master)
    for key, value in {**SPARK_DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_engine(db: str | Path, source: str | None, master: str | None) -> Engine:
    if source is None:
        raise InputError("the spark engine needs --source: a Parquet path or a table name", field="source")
    _check_local_path(source)
    return spark_engine(local_spark_session(master), source)


def spark_engine(session: Any, source: str) -> Engine:
    """An engine over an existing Spark session; ``source`` is a Parquet path or a table name."""
    backend = ibis.pyspark.connect(session)
    name = source
    if _looks_like_path(source):
        _check_local_path(source)
        name = "flopledger_events"
        session.read.parquet(source).createOrReplaceTempView(name)
    return Engine("spark", backend, name, session)


def _check_local_path(source: str) -> None:
    if _looks_like_path(source) and "://" not in source and not Path(source).exists():
        raise InputError(f"no Parquet events at {source}", path=source)


def _looks_like_path(source: str) -> bool:
    return "/" in source or source.endswith(".parquet") or os.sep in source


ENGINES: Mapping[str, Callable[[str | Path, str | None, str | None], Engine]] = {
    "duckdb": _duckdb_engine,
    "spark": _spark_engine,
}
"""Engines by name; each takes the ledger file, an optional events source and a Spark master."""


def connect_engine(
    name: str, *, db: str | Path, source: str | None = None, master: str | None = None
) -> Engine:
    """Connect the named engine: ``duckdb`` reads the ledger file ``db``; ``spark`` reads ``source``."""
    factory = ENGINES.get(name)
    if factory is None:
        raise UnknownNameError("engine", name, list(ENGINES))
    return factory(db, source, master)


def events_table(engine: Engine) -> ir.Table:
    """The priced events as an Ibis table on ``engine``; a column an older ledger or export lacks
    (:data:`~flopledger.ledger.schema.LATER_COLUMNS`) reads as NULL."""
    t = engine.backend.table(engine.events_source)
    missing = {
        c.name: ibis.null(_IBIS_TYPES[c.duckdb_type]) for c in LATER_COLUMNS if c.name not in t.columns
    }
    return t.mutate(**missing) if missing else t


_IBIS_TYPES = {"BIGINT": "int64", "DOUBLE": "float64", "VARCHAR": "string"}
