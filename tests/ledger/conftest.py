"""Shared helpers of the ledger tests: real DuckDB ledger files, events written as JSONL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from flopledger.errors import InputError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GOOD: dict[str, Any] = {
    "ts": "2026-03-02T10:00:00Z",
    "provider": "anthropic",
    "model": "claude-sonnet-4-5",
    "team": "core",
    "user": "ann",
    "input_tokens": 1000,
    "cache_read_tokens": 20000,
    "output_tokens": 500,
}
"""A good canonical usage row, priced by the catalog."""
FINOPS_GOLDEN = Path(__file__).parent / "golden" / "finops"
"""The FinOps fixture's events (``events.csv.gz``, from ``bench/ledger_forecast.py --write-fixture``)
and its goldens."""


def finops_ledger(db: Path, *, limit: int | None = None) -> Path:
    """A ledger file at ``db`` holding the FinOps fixture's priced events (the first ``limit`` of them)."""
    from flopledger.ledger.store import open_ledger

    con = open_ledger(db)
    rows = f" LIMIT {int(limit)}" if limit is not None else ""
    con.execute(
        f"INSERT INTO events BY NAME SELECT * FROM read_csv('{FINOPS_GOLDEN / 'events.csv.gz'}'){rows}"
    )
    con.close()
    return db


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(dict(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def oracle_cost_usd(event: Mapping[str, Any], at: str | None = None) -> float:
    """genai-prices' own per-request price of a canonical event (its input includes the cache), in the
    event's service tier, at the event's time or at ``at``."""
    from genai_prices import Usage, calc_price

    from flopledger.catalog.prices import TIER_CONTEXTS

    def g(k: str) -> int:
        return int(event.get(k) or 0)

    usage = Usage(
        input_tokens=g("input_tokens")
        + g("cache_read_tokens")
        + g("cache_write_5m_tokens")
        + g("cache_write_1h_tokens"),
        cache_read_tokens=g("cache_read_tokens"),
        cache_write_tokens=g("cache_write_5m_tokens") + g("cache_write_1h_tokens"),
        cache_write_5m_tokens=g("cache_write_5m_tokens"),
        cache_write_1h_tokens=g("cache_write_1h_tokens"),
        output_tokens=g("output_tokens"),
        output_reasoning_tokens=g("reasoning_tokens"),
        web_searches=g("web_search_requests"),
    )
    ts = dt.datetime.fromisoformat(str(at or event["ts"]).replace("Z", "+00:00"))
    return float(
        calc_price(
            usage,
            str(event["model"]),
            provider_id=str(event["provider"]),
            genai_request_timestamp=ts,
            price_context=TIER_CONTEXTS[str(event.get("service_tier") or "standard")],
        ).total_price
    )


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


__all__ = ["SHARED_DATA", "InputError", "oracle_cost_usd", "write_jsonl"]
