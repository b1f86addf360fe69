"""The priced rollup gives the same rows on a local PySpark session as on DuckDB (marked ``slow``).

Events cross every kind of breakpoint: off-peak hours, a long-context tier (per request and by a
usage report's stated lower bound), a discount starting mid-morning and a date price change.
Skipped off CI without a Java runtime, as the Spark parity suite is.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
from pathlib import Path
from typing import Any

import ibis
import pytest

from flopledger.catalog.overrides import load_overrides
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.rollup_pricing import price_breaks, priced_rollup
from flopledger.ledger.spark import Engine, local_spark_session
from flopledger.ledger.store import open_ledger

from .conftest import write_jsonl

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("java") or os.environ.get("JAVA_HOME") or os.environ.get("CI")),
        reason="no Java runtime: PySpark needs a JVM (install Java 17)",
    ),
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

_MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("deepseek", "deepseek-chat"),
    ("openai", "gpt-5-mini"),
    ("acme", "unknown-model"),
]


def _events() -> list[dict[str, Any]]:
    rows = []
    start = dt.datetime(2026, 3, 11)
    for i in range(120):
        provider, model = _MODELS[i % len(_MODELS)]
        rows.append(
            {
                "ts": (start + dt.timedelta(minutes=47 * i)).isoformat() + "Z",  # across 3 days, all hours
                "provider": provider,
                "model": model,
                "team": "ab"[i % 2],
                "service_tier": "batch" if i % 5 == 0 else "standard",
                "requests": 1 + i % 3,
                "input_tokens": (i * 7_919) % 450_000,
                "cache_read_tokens": (i * 3_571) % 120_000,
                "cache_write_5m_tokens": (i * 911) % 30_000,
                "output_tokens": (i * 577) % 20_000,
                "min_request_input_tokens": 200_001 if i % 11 == 0 else None,
            }
        )
    return rows


def test_priced_rollup_on_spark_equals_duckdb(tmp_path: Path) -> None:
    overrides = tmp_path / "p.toml"
    overrides.write_text(
        '[[discount]]\nprovider = "anthropic"\npercent = 10\nvalid_from = 2026-03-11T06:30:00\n'
    )
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [write_jsonl(tmp_path / "e.jsonl", _events())], overrides=load_overrides(overrides))
    version = con.execute("SELECT max(price_version) FROM events").fetchone()[0]  # type: ignore[index]
    for table in ("events", "prices", "model_map"):
        con.execute(f"COPY (SELECT * FROM {table}) TO '{tmp_path / table}.parquet' (FORMAT parquet)")
    duck = ibis.duckdb.from_connection(con)
    session = local_spark_session("local[1]", {"spark.sql.shuffle.partitions": "1"})
    session.sparkContext.setLogLevel("ERROR")
    try:
        for table in ("events", "prices", "model_map"):
            session.read.parquet(str(tmp_path / f"{table}.parquet")).createOrReplaceTempView(f"rp_{table}")
        spark = ibis.pyspark.connect(session)
        results = []
        engines = (Engine("duckdb", duck), Engine("spark", spark, session=session))
        for engine, prefix in zip(engines, ("", "rp_"), strict=True):
            backend = engine.backend
            prices = backend.table(f"{prefix}prices").filter(lambda p: p.price_version == version)
            model_map = backend.table(f"{prefix}model_map").filter(lambda m: m.price_version == version)
            ev = backend.table(f"{prefix}events")
            breaks = price_breaks(prices, engine.rows, model_map)
            assert breaks.provider_follows_model  # the rollup joins each model's provider to its groups
            assert breaks.tod_s and breaks.tier_tokens
            by_day = priced_rollup(ev, prices, model_map, breaks, [ev.team, ev.ts.date().name("day")])
            by_team = priced_rollup(ev, prices, model_map, breaks, [ev.team])  # the rollup adds its own day
            results.append([_sorted(engine.rows(by_day)), _sorted(engine.rows(by_team))])
    finally:
        session.stop()
    (duck_rows, spark_rows) = results
    for left, right in zip(duck_rows, spark_rows, strict=True):
        assert len(left) == len(right) > 0
        for a, b in zip(left, right, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], float):
                    assert math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12), (k, a, b)
                else:
                    assert a[k] == b[k], (k, a, b)
    assert any(r["cost_usd"] > 0 for r in duck_rows[0])


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in ("team", "day") if k in r))
