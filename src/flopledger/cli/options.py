"""Options shared by every command, declared once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flopledger.cli.output import OutputFormat
from flopledger.errors import InputError
from flopledger.settings import SETTINGS, default_db_path

__all__ = ["DbOption", "FormatOption", "SinceOption", "UntilOption", "resolve_db", "window_bounds"]

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

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this day (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM, UTC unless it has an offset), inclusive.",
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until", help="Through this day (YYYY-MM-DD, the whole day), or up to this time (exclusive)."
    ),
]


def _bound(value: str, flag: str) -> tuple[dt.datetime, bool]:
    """``value`` as a UTC time without offset, and whether it names a whole day."""
    text = value.strip()
    try:  # a day first: 2026-11-30 or 20261130 (a date has no time part to take for midnight)
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time()), True
    except ValueError:
        pass
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{flag} {value!r} is not a day or a time: give YYYY-MM-DD (a whole day) or "
            "YYYY-MM-DDTHH:MM[:SS] (UTC, or with an offset such as +02:00 or Z)",
            field=flag,
        ) from None
    return (at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo is not None else at), False


def window_bounds(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--since`` and ``--until`` as the window ``[start, end)`` in UTC.

    A day given to ``--until`` is the last day of the window (it ends at the next midnight), as
    ``export --until`` and the JSON API's ``until`` take it; a time given to ``--until`` is the first
    instant after the window. ``--since`` is inclusive either way.
    """
    start = _bound(since, "--since")[0] if since is not None else None
    end: dt.datetime | None = None
    if until is not None:
        end, whole_day = _bound(until, "--until")
        if whole_day:
            end += dt.timedelta(days=1)
    if start is not None and end is not None and start >= end:
        raise InputError(
            f"--since {start:%Y-%m-%d %H:%M:%S} UTC is not before the window's end, "
            f"{end:%Y-%m-%d %H:%M:%S} UTC, so the window is empty (--since is inclusive; "
            "--until takes the whole of a day it is given, and ends before a time): swap them, or widen it"
        )
    return start, end


def resolve_db(db: Path | None) -> Path:
    return db if db is not None else default_db_path()
