"""Keeping the ledger's price table and model map up to date for the models it has seen."""

from __future__ import annotations

import duckdb

from flopledger.catalog.overrides import PriceOverrides
from flopledger.catalog.prices import (
    CATALOG_VERSION,
    MAPPING_RULES,
    catalog_rows,
    resolve_catalog_model,
    save_catalog_cache,
)

__all__ = ["ensure_prices", "price_version", "priced_sql"]


def price_version(overrides: PriceOverrides) -> str:
    """The version every priced event records: catalog version, mapping rules and overrides digest."""
    return f"{CATALOG_VERSION}; mapping {MAPPING_RULES}; overrides {overrides.digest}"


def ensure_prices(con: duckdb.DuckDBPyConnection, overrides: PriceOverrides, source: str) -> str:
    """Map every (provider, model) of table ``source`` to a catalog model and flatten its prices.

    Work is done once per model and price version; returns the price version. The caller holds a
    transaction, so that a model's price rows (inserted in chunks) are never stored in part: a model
    with any price row of a version is taken to have them all.
    """
    version = price_version(overrides)
    pairs = con.execute(
        f"""SELECT DISTINCT coalesce(provider, '') AS provider, model FROM {source} WHERE model IS NOT NULL
            EXCEPT SELECT provider, model FROM model_map WHERE price_version = ?""",
        [version],
    ).fetchall()
    if pairs:
        mapped = []
        for provider, model in pairs:
            key = overrides.private_key(provider or None, model) or resolve_catalog_model(
                provider or None, model
            )
            mapped.append((version, provider, model, *(key or (None, None))))
        con.executemany("INSERT INTO model_map VALUES (?, ?, ?, ?, ?)", mapped)
    missing = con.execute(
        """SELECT DISTINCT provider_id, model_id FROM model_map
           WHERE price_version = ? AND provider_id IS NOT NULL
           EXCEPT SELECT provider_id, model_id FROM prices WHERE price_version = ?""",
        [version, version],
    ).fetchall()
    records = [
        row.as_record(version)
        for provider_id, model_id in missing
        for row in catalog_rows(provider_id, model_id, overrides)
    ]
    if records:
        _insert_rows(con, "prices", records)
    if pairs or records:
        save_catalog_cache()
    return version


_ROWS_PER_INSERT = 500


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, records: list[dict[str, object]]) -> None:
    """Insert ``records`` (dicts of the same keys) by column name, as parameters: a few hundred price
    rows, for which registering an Arrow table would cost more (its first use imports pyarrow's
    dataset module) than inserting them."""
    names = list(records[0])
    columns = ", ".join(f'"{n}"' for n in names)
    row = "(" + ", ".join("?" * len(names)) + ")"
    for start in range(0, len(records), _ROWS_PER_INSERT):
        chunk = records[start : start + _ROWS_PER_INSERT]
        con.execute(
            f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}",
            [r[n] for r in chunk for n in names],
        )


_PRICED_SQL: dict[tuple[str, str], str] = {}
"""Compiled pricing SQL per (events table, price version): it names tables only, so it serves every
ledger, and compiling costs more than pricing a small batch."""


def priced_sql(con: duckdb.DuckDBPyConnection, events: str, version: str) -> str:
    """SQL pricing table ``events`` with price version ``version`` (:func:`price_events` compiled once)."""
    key = (events, version)
    if key not in _PRICED_SQL:
        import ibis

        from flopledger.ledger.pricing import price_events

        backend = ibis.duckdb.from_connection(con)
        prices, model_map = backend.table("prices"), backend.table("model_map")
        expr = price_events(
            backend.table(events),
            prices.filter(prices.price_version == version),
            model_map.filter(model_map.price_version == version),
        )
        _PRICED_SQL[key] = str(ibis.to_sql(expr, dialect="duckdb"))
    return _PRICED_SQL[key]
