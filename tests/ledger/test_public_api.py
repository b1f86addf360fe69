from __future__ import annotations

import flopledger.ledger as ledger


def test_public_surface_is_pinned() -> None:
    assert sorted(ledger.__all__) == [
        "HeadlineView",
        "IngestResult",
        "RepriceResult",
        "connect_engine",
        "headline",
        "ingest_files",
        "missing_prices",
        "open_ledger",
        "price_events",
        "price_rows",
        "priced_rollup",
        "reprice",
    ]
    for name in ledger.__all__:
        assert callable(getattr(ledger, name)), name
