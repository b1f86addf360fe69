"""Brief commands (filled in by the brief layer's CLI)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the brief commands to the root app."""
