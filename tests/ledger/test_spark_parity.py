"""Spark parity: the same Ibis expressions on DuckDB and on a local PySpark session give the same rows.

The fixture ledger is exported to Parquet (``flopledger export --format parquet``) and read by a
``local[1]`` Spark session, as ``--engine spark --source`` would. Runs in CI (marked ``slow``). Off CI
it is skipped when no Java runtime is installed, since PySpark needs a JVM; on CI (``CI`` set) a
missing Java fails the session start instead of skipping, so parity is never silently untested.
One Spark session serves the whole module. Floats are compared to 1e-9 relative: Spark and DuckDB
add the same doubles in a different order.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flopledger.ledger.budgets import check_budgets, load_budgets
from flopledger.ledger.focus import export_ledger, focus_charges, focus_table
from flopledger.ledger.forecast import backtest_ledger, daily_spend, forecast_month
from flopledger.ledger.report import headline, report
from flopledger.ledger.spark import Engine, connect_engine, events_table, local_spark_session, spark_engine
from flopledger.ledger.spend_change import spend_change

from .conftest import FINOPS_GOLDEN, finops_ledger

GOLDEN = FINOPS_GOLDEN
AS_OF = dt.date(2026, 2, 14)

_HAS_JAVA = shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))
_ON_CI = bool(os.environ.get("CI"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (_HAS_JAVA or _ON_CI), reason="no Java runtime: PySpark needs a JVM (install Java 17)"
    ),
    # py4j leaves its gateway sockets to the garbage collector, which reports them as unraisable
    # ResourceWarnings; the sockets are PySpark's, not ours to close.
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Engine]]:
    tmp = tmp_path_factory.mktemp("spark")
    db = finops_ledger(tmp / "ledger.duckdb")
    duck = connect_engine("duckdb", db=db)
    parquet = tmp / "events.parquet"
    export_ledger(duck, parquet, "parquet")
    session = local_spark_session("local[1]", {"spark.sql.shuffle.partitions": "1"})
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield duck, spark_engine(session, str(parquet))
    finally:
        session.stop()


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)  # Spark hands back UTC-aware times, DuckDB naive UTC
    return value


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else str(_normal(v))) for v in row.values())


def assert_same_rows(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> None:
    assert len(left) == len(right) > 0
    for a, b in zip(sorted(left, key=_sort_key), sorted(right, key=_sort_key), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            x, y = _normal(a[key]), _normal(b[key])
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (
                    key,
                    x,
                    y,
                )
            else:
                assert x == y, (key, x, y)


def test_daily_spend(engines: tuple[Engine, Engine]) -> None:
    duck, spark = engines
    by = ("team", "model", "api_key", "user")  # the finest grouping: every coarser one sums from it
    assert_same_rows(
        duck.rows(daily_spend(events_table(duck), by)), spark.rows(daily_spend(events_table(spark), by))
    )


def test_focus_charges_and_table(engines: tuple[Engine, Engine]) -> None:
    duck, spark = engines
    window = {"since": dt.date(2026, 1, 15), "until": dt.date(2026, 2, 14)}
    assert_same_rows(
        duck.rows(focus_charges(events_table(duck), **window)),
        spark.rows(focus_charges(events_table(spark), **window)),
    )
    assert focus_table(duck, **window).equals(focus_table(spark, **window))


@pytest.mark.parametrize(
    ("by", "window"),
    [
        (("team",), {}),
        (("team", "model", "day"), {"since": dt.date(2026, 1, 25), "until": dt.date(2026, 2, 3)}),
        (("user",), {"per_active_hour": True}),
    ],
)
def test_cost_report(engines: tuple[Engine, Engine], by: tuple[str, ...], window: dict[str, Any]) -> None:
    duck, spark = engines
    left = report(duck, by, **window)
    assert_same_rows(left, report(spark, by, **window))
    assert sum(r["unpriced_tokens"] for r in left) > 0  # the private model: counted, never free


def test_headline(engines: tuple[Engine, Engine]) -> None:
    duck, spark = engines
    left, right = headline(duck).as_dict(), headline(spark).as_dict()
    classes = (left.pop("classes"), right.pop("classes"))
    assert_same_rows([left], [right])
    assert_same_rows(*classes)
    assert left["all_as_output_cost_usd"] > left["real_cost_usd"] > 0


def test_reports_are_identical(engines: tuple[Engine, Engine]) -> None:
    duck, spark = engines
    for finops_report in (
        lambda e: [g.as_row() for g in forecast_month(e, by=["team", "model"], as_of=AS_OF)],
        lambda e: [c.as_row() for c in spend_change(e, by=["team"], as_of=AS_OF)],
        lambda e: backtest_ledger(e, by=["team"]),
        lambda e: [s.as_row() for s in check_budgets(e, load_budgets(GOLDEN / "budgets.toml"), as_of=AS_OF)],
    ):
        left = finops_report(duck)
        assert left and left == finops_report(spark)


# USD per million tokens: input, cache read, cache write 5m, cache write 1h, output (the fixture's).
_RATES = {
    ("anthropic", "claude-sonnet-4-5"): (3.0, 0.30, 3.75, 6.0, 15.0),
    ("anthropic", "claude-opus-4-1"): (15.0, 1.50, 18.75, 30.0, 75.0),
    ("openai", "gpt-5"): (1.25, 0.125, 0.0, 0.0, 10.0),
    ("openai", "gpt-5-mini"): (0.25, 0.025, 0.0, 0.0, 2.0),
}


def _price_tables(tmp: Path) -> tuple[Path, Path]:
    """A small dated price table (batch at half price, a 10% Anthropic discount from February)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    periods = [
        (dt.datetime(2020, 1, 1), dt.datetime(2026, 2, 1)),
        (dt.datetime(2026, 2, 1), dt.datetime(2100, 1, 1)),
    ]
    for (provider, model), rates in _RATES.items():
        for variant, factor in (("standard", 1.0), ("batch", 0.5)):
            for i, (start, end) in enumerate(periods):
                rows.append(
                    {
                        "price_version": "parity-1",
                        "provider_id": provider,
                        "model_id": model,
                        "variant": variant,
                        "valid_from": start,
                        "valid_to": end,
                        "tod_from_s": 0,
                        "tod_to_s": 86400,
                        "tier_above_tokens": -1,
                        "tier_upto_tokens": 2**62,
                        **{
                            f"{c}_usd_per_mtok": r * factor
                            for c, r in zip(
                                ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output"),
                                rates,
                                strict=True,
                            )
                        },
                        "usd_per_request": 0.0,
                        "usd_per_web_search": 0.01 if provider == "anthropic" else 0.0,
                        "discount_pct": 10.0 if provider == "anthropic" and i else 0.0,
                        "source": "parity test",
                    }
                )
    prices, model_map = tmp / "prices.parquet", tmp / "model_map.parquet"
    pq.write_table(pa.Table.from_pylist(rows), prices)
    pq.write_table(
        pa.Table.from_pylist(
            [
                {"price_version": "parity-1", "provider": p, "model": m, "provider_id": p, "model_id": m}
                for p, m in [*_RATES, ("self-hosted", "private-llm")]
            ]
        ),
        model_map,
    )
    return prices, model_map


def test_pricing_expression(engines: tuple[Engine, Engine], tmp_path: Path) -> None:
    from flopledger.ledger.pricing import price_events

    duck, spark = engines
    prices, model_map = _price_tables(tmp_path)
    spark.session.read.parquet(str(prices)).createOrReplaceTempView("parity_prices")
    spark.session.read.parquet(str(model_map)).createOrReplaceTempView("parity_model_map")

    def searched(t: Any) -> Any:  # some events ran web searches, priced per search on both engines
        return t.mutate(web_search_requests=(t.input_tokens % 7).cast("int64"))

    duck_priced = price_events(
        searched(events_table(duck)), duck.backend.read_parquet(prices), duck.backend.read_parquet(model_map)
    )
    spark_priced = price_events(
        searched(events_table(spark)),
        spark.backend.table("parity_prices"),
        spark.backend.table("parity_model_map"),
    )
    cols = [
        "event_id",
        "ts",
        "team",
        "model",
        "cost_usd",
        "list_cost_usd",
        "output_tokens_cost_usd",
        "web_search_cost_usd",
        "priced",
    ]
    left = duck.rows(duck_priced.select(cols).order_by("event_id"))
    right = spark.rows(spark_priced.select(cols).order_by("event_id"))
    assert_same_rows(left, right)
    assert sum(not r["priced"] for r in left) == 28  # the private model stays unpriced, never free
    assert any(r["web_search_cost_usd"] for r in left)  # the searches are priced, not all free
    # The same daily rollup over the freshly priced events, on both engines.
    assert_same_rows(
        duck.rows(daily_spend(duck_priced, ("team",))), spark.rows(daily_spend(spark_priced, ("team",)))
    )
