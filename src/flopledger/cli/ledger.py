"""Ledger commands: demo, ingest, report, prices, reprice, quarantine."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the ledger commands to the root app."""
