"""Rendering of result rows for people (tables) and machines (JSON, CSV)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["OutputFormat", "console", "err_console", "render_rows", "to_jsonable"]

# Piped or captured output gets a wide console, so report tables are not squeezed to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True)


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def to_jsonable(value: Any) -> Any:
    """Turn library values (dates, decimals, NaN) into plain JSON values."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    total: Mapping[str, Any] | None = None,
) -> None:
    """Print rows as a Rich table, a JSON list of objects, or CSV with a header.

    ``total`` is a last row for people, set apart below the others in a table; JSON and CSV are the
    rows alone, so a program reading them never takes a total for a group."""
    cols = list(columns) if columns is not None else (list(rows[0].keys()) if rows else [])
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([to_jsonable(dict(r)) for r in rows], indent=2))
    elif fmt is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: to_jsonable(r.get(k)) for k in cols})
    elif not rows:  # an empty table would print as a blank line: say there is nothing
        console.print(Text(f"{title}: none" if title else "none"))
    else:
        # Cells, headers and the title are text, never Rich markup: a name like "[infra]" prints as is.
        table = Table(title=Text(title) if title is not None else None, show_lines=False)
        for c in cols:  # numbers right-aligned, judged by the first row that has the column filled
            filled = [r[c] for r in rows if r.get(c) is not None]
            numeric = bool(filled) and isinstance(filled[0], int | float) and not isinstance(filled[0], bool)
            table.add_column(Text(c), justify="right" if numeric else "left")
        for r in rows:
            table.add_row(*(Text(_cell(r.get(c))) for c in cols))
        if total is not None and rows:
            table.add_section()
            table.add_row(*(Text(_cell(total.get(c)), style="bold") for c in cols))
        console.print(table)
