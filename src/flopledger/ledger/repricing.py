"""Prices of the ledger: what applies to a model, what is missing, and re-pricing history.

``reprice`` re-prices every stored event against the current catalog and overrides file in one
transaction (the daily rollup with it), so a catalog update or a newly negotiated discount reaches
history without re-ingesting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from flopledger.catalog.overrides import PriceOverrides
from flopledger.catalog.prices import FAR_FUTURE, FAR_PAST, catalog_rows, resolve_catalog_model
from flopledger.errors import InputError
from flopledger.ledger.price_table import ensure_prices, priced_sql
from flopledger.ledger.rollups import refresh_rollups
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS
from flopledger.ledger.store import count_of

__all__ = ["RepriceResult", "missing_prices", "price_rows", "reprice"]


@dataclass(frozen=True)
class RepriceResult:
    events: int
    changed: int
    cost_before_usd: float
    cost_after_usd: float
    price_version: str
    unpriced_events: int

    def as_row(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "changed": self.changed,
            "cost_before_usd": round(self.cost_before_usd, 6),
            "cost_after_usd": round(self.cost_after_usd, 6),
            "price_version": self.price_version,
            "unpriced_events": self.unpriced_events,
        }


def reprice(con: duckdb.DuckDBPyConnection, overrides: PriceOverrides) -> RepriceResult:
    """Re-price every event with the current catalog and ``overrides``; returns what changed."""
    con.execute("BEGIN TRANSACTION")
    try:
        version = ensure_prices(con, overrides, "events")
        (before,) = con.execute("SELECT coalesce(sum(cost_usd), 0)::DOUBLE FROM events").fetchone() or (0.0,)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _repriced AS {priced_sql(con, 'events', version)}")
        changed = count_of(
            con,
            """SELECT count(*) FROM _repriced r JOIN events e USING (event_id)
               WHERE r.cost_usd IS DISTINCT FROM e.cost_usd
                  OR r.price_version IS DISTINCT FROM e.price_version""",
        )
        con.execute("DELETE FROM events")
        con.execute("INSERT INTO events BY NAME SELECT * FROM _repriced")
        con.execute("DROP TABLE _repriced")
        refresh_rollups(con)
        after, events, unpriced = con.execute(
            "SELECT coalesce(sum(cost_usd), 0)::DOUBLE, count(*), count(*) FILTER (NOT priced) FROM events"
        ).fetchone() or (0.0, 0, 0)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return RepriceResult(events, changed, before, after, version, unpriced)


def missing_prices(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Models with unpriced events and their volume: never silently free."""
    tokens = " + ".join(f'"{c}"' for c in BILLED_TOKEN_COLUMNS)
    rows = con.execute(
        f"""SELECT provider, model, count(*) AS events, sum(requests)::BIGINT AS requests,
                   sum({tokens})::BIGINT AS tokens, min(ts) AS first_seen, max(ts) AS last_seen
            FROM events WHERE NOT priced GROUP BY provider, model ORDER BY tokens DESC, model"""
    ).fetchall()
    names = ("provider", "model", "events", "requests", "tokens", "first_seen", "last_seen")
    out = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        item["what_to_do"] = (
            "add a [[model]] price to the overrides file, or check the model name, "
            "then run `flopledger reprice`"
        )
        out.append(item)
    return out


def price_rows(model: str, provider: str | None, overrides: PriceOverrides) -> list[dict[str, Any]]:
    """The flat price rows a logged model is priced with: tiers, service tiers and dates."""
    key = overrides.private_key(provider, model) or resolve_catalog_model(provider, model)
    if key is None:
        raise InputError(
            f"no price for model {model!r}"
            + (f" of provider {provider!r}" if provider else "")
            + "; check the name, or add it as a [[model]] in the overrides file",
            field="model",
        )
    rows = []
    for r in catalog_rows(key[0], key[1], overrides):
        rec = r.as_record("current")
        rec.pop("price_version", None)
        for k in ("valid_from", "valid_to"):
            if rec.get(k) in (FAR_PAST, FAR_FUTURE):
                rec[k] = None
        rows.append(rec)
    return rows
