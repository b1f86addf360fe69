"""Spark parity and timing: the forecast, FOCUS and change expressions on DuckDB and on local PySpark.

    .venv/bin/python bench/ledger_spark.py                 # ~1M events (the fixture x 1,300)
    .venv/bin/python bench/ledger_spark.py --copies 130    # ~100k events

Replicates the FinOps test fixture (``tests/ledger/golden/finops/events.csv.gz``) into a DuckDB
ledger, exports it to Parquet, then runs each report on DuckDB (the ledger file) and on a
``local[2]`` Spark session reading the Parquet, checks the rows agree (floats to 1e-9 relative) and
prints the times. Needs Java 17.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flopledger.ledger.budgets import check_budgets, load_budgets
from flopledger.ledger.focus import export_ledger, focus_charges
from flopledger.ledger.forecast import daily_spend, forecast_month
from flopledger.ledger.spark import Engine, connect_engine, events_table, local_spark_session, spark_engine
from flopledger.ledger.spend_change import spend_change
from flopledger.ledger.store import open_ledger

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "ledger" / "golden" / "finops"
AS_OF = dt.date(2026, 2, 14)


def build_ledger(db: Path, copies: int) -> int:
    """The fixture's events ``copies`` times over, spread across 40 teams and many users."""
    con = open_ledger(db)
    con.execute(
        f"""INSERT INTO events BY NAME
        SELECT e.* REPLACE (e.event_id || '-' || r AS event_id, e.team || '-' || (r % 10) AS team,
                            e."user" || '-' || r AS "user")
        FROM read_csv('{FIXTURE / "events.csv.gz"}') AS e CROSS JOIN range({copies}) AS copies(r)"""
    )
    row = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    return int(row[0]) if row else 0


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(v) for v in r.values())

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        for k in x:
            u, v = x[k], y[k]
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif str(u).replace("+00:00", "") != str(v).replace("+00:00", ""):
                return False
    return True


REPORTS: dict[str, Callable[[Engine], list[dict[str, Any]]]] = {
    "daily spend by team, model": lambda e: e.rows(daily_spend(events_table(e), ("team", "model"))),
    "FOCUS charges (all days)": lambda e: e.rows(focus_charges(events_table(e))),
    "forecast by team (as of 14 Feb)": lambda e: [
        g.as_row() for g in forecast_month(e, by=["team"], as_of=AS_OF)
    ],
    "change vs last month by team": lambda e: [c.as_row() for c in spend_change(e, by=["team"], as_of=AS_OF)],
    "budgets check": lambda e: [
        s.as_row() for s in check_budgets(e, load_budgets(FIXTURE / "budgets.toml"), as_of=AS_OF)
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=1300)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db, parquet = Path(tmp) / "ledger.duckdb", Path(tmp) / "events.parquet"
        t0 = time.perf_counter()
        n = build_ledger(db, args.copies)
        duck = connect_engine("duckdb", db=db)
        export_ledger(duck, parquet, "parquet")
        print(f"{n:,} events built and exported to Parquet in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        session = local_spark_session(args.master)
        session.sparkContext.setLogLevel("ERROR")
        spark = spark_engine(session, str(parquet))
        print(f"Spark session ({args.master}) started in {time.perf_counter() - t0:.1f} s")
        print("\n| report | rows | DuckDB s | Spark s | identical |")
        print("|---|---:|---:|---:|---|")
        for name, report in REPORTS.items():
            report(spark)  # warm the JVM's code paths once; the second run is timed
            t0 = time.perf_counter()
            left = report(duck)
            t_duck = time.perf_counter() - t0
            t0 = time.perf_counter()
            right = report(spark)
            t_spark = time.perf_counter() - t0
            same = "yes" if _same(left, right) else "NO"
            print(f"| {name} | {len(left):,} | {t_duck:.2f} | {t_spark:.2f} | {same} |")
        session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
