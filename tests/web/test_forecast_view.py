"""The overview's forecast is `flopledger forecast`, also after a dated price change.

The ledger here is the web fixture re-priced with a 40% discount from the middle of its month: raw
dollar history then steps down while usage does not, and the ledger's forecast re-prices the days
before the step at the discounted rates. The dashboard reads the rollup, not the events, and must
show the same figures.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pytest

from flopledger.catalog.overrides import load_overrides
from flopledger.ledger.forecast import daily_spend, forecast_groups, forecast_month
from flopledger.ledger.repricing import reprice
from flopledger.ledger.spark import Engine, events_table
from flopledger.ledger.store import open_ledger
from flopledger.web.state import ServerState

if TYPE_CHECKING:
    from tests.web.conftest import Api, Fixture


@pytest.fixture(scope="module")
def ledger_copy(golden: Fixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("web-discount")
    target = folder / "ledger.duckdb"
    shutil.copy(golden.path, target)
    prices = folder / "prices.toml"
    prices.write_text("[[discount]]\npercent = 40\nvalid_from = 2026-03-09\n")
    con = open_ledger(target)
    try:
        reprice(con, load_overrides(prices))
    finally:
        con.close()
    return target


def test_the_overview_forecast_is_the_ledgers_after_a_discount(
    api: Api, golden: Fixture, state: ServerState
) -> None:
    fc = api.get("/api/v1/overview", token=golden.tokens["admin"]).json()["forecast"]
    as_of = dt.date.fromisoformat(fc["as_of"])
    with state.cursor() as cur:
        engine = Engine("duckdb", ibis.duckdb.from_connection(cur), "events")
        (total,) = forecast_month(engine, by=(), as_of=as_of)
        per_team = forecast_month(engine, by=("team",), as_of=as_of)
        raw = engine.rows(daily_spend(events_table(engine), (), until=as_of))
    assert (fc["total"]["spent_usd"], fc["total"]["p50_usd"], fc["total"]["p90_usd"]) == pytest.approx(
        (total.projection.spent_usd, total.projection.p50_usd, total.projection.p90_usd), abs=0.01
    )
    teams = {dict(g.group)["team"]: g.projection.p50_usd for g in per_team}
    assert fc["teams"] and all(r["p50_usd"] == pytest.approx(teams[r["team"]], abs=0.01) for r in fc["teams"])
    # Raw dollars carry the pre-discount prices forward: a higher forecast than the ledger's.
    (unrepriced,) = forecast_groups(raw, (), as_of.replace(day=1), as_of)
    assert unrepriced.projection.p50_usd > fc["total"]["p50_usd"] + 1.0
