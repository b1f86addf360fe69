"""`flopledger fleet ...` commands: parse, call the library, render."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="Fleet commands.", no_args_is_help=True)
