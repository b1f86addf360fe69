"""Options shared by every command, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flopledger.cli.output import OutputFormat
from flopledger.settings import SETTINGS, default_db_path

__all__ = ["DbOption", "FormatOption", "resolve_db"]

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help=f"{SETTINGS['db'].help} Default: ${SETTINGS['db'].env} or ./{SETTINGS['db'].default}.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: table for people, json or csv for machines."),
]


def resolve_db(db: Path | None) -> Path:
    return db if db is not None else default_db_path()
