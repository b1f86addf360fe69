"""Web commands (filled in by the web layer's CLI)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the web commands to the root app."""
