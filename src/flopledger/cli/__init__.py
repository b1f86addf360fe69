"""The ``flopledger`` command line: a thin shell over the library.

Each command parses its options, calls one library function and renders the result. Errors that
flopledger raises on purpose become one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from flopledger.cli import brief, fleet, integrity, ledger, ledger_finops, serving, web
from flopledger.cli.output import err_console
from flopledger.errors import FlopledgerError

__all__ = ["app", "main"]

app = typer.Typer(
    name="flopledger",
    help="The money questions of AI compute: tokens, FLOPs, accelerator-seconds, watts, dollars.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ledger.register(app)
ledger_finops.register(app)
brief.register(app)
web.register(app)
app.add_typer(serving.app, name="serving")
app.add_typer(fleet.app, name="fleet")
app.add_typer(integrity.app, name="integrity")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`FlopledgerError` prints one clear line and exits 1."""
    try:
        app(args=argv, standalone_mode=True)
    except FlopledgerError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
