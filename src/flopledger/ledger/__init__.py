"""Ledger layer: usage events in, priced, attributed, forecast; exports.

>>> from flopledger.ledger import headline, ingest_files, open_ledger
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
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

# Public names and the private module each lives in; imported on first use, so that reading the
# schema or the formats does not pull in the query engine.
_HOME = {
    "HeadlineView": "report",
    "IngestResult": "ingest",
    "RepriceResult": "repricing",
    "connect_engine": "spark",
    "headline": "report",
    "ingest_files": "ingest",
    "missing_prices": "repricing",
    "open_ledger": "store",
    "price_events": "pricing",
    "price_rows": "repricing",
    "priced_rollup": "rollup_pricing",
    "reprice": "repricing",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'flopledger.ledger' has no attribute {name!r}")
    return getattr(importlib.import_module(f"flopledger.ledger.{_HOME[name]}"), name)
