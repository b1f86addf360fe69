"""Shared fixtures: a real ledger file filled with labelled synthetic traffic, built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from flopledger.ledger.store import open_ledger
from flopledger.synthetic.campaigns import LabelledTraffic, TrafficSpec, build_traffic, store_traffic

KEY = b"integrity-test-key"
SMALL = TrafficSpec(humans=80, heavy_humans=4, services=3, burn_bots=3, campaigns=2, campaign_accounts=15)


@pytest.fixture(scope="module")
def traffic() -> LabelledTraffic:
    return build_traffic(SMALL, seed=7)


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory, traffic: LabelledTraffic) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "ledger.duckdb"
    con = open_ledger(path)
    store_traffic(con, traffic.events, KEY)
    con.close()
    return path


@pytest.fixture()
def ledger(ledger_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_ledger(ledger_path)
    yield con
    con.close()
