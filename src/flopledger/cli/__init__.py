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


EXIT_INTERRUPTED = 130
"""Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells give)."""


def _say(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`FlopledgerError` prints one clear line and exits 1, as does a file the
    ledger cannot be written to (a full disk); a query Ctrl-C stopped exits 130."""
    try:
        app(args=argv, standalone_mode=True)
    except FlopledgerError as exc:
        _say(str(exc))
        sys.exit(1)
    except Exception as exc:
        import duckdb  # (loaded by whatever command got this far)

        # DuckDB turns Ctrl-C into an interrupted query (click turns a KeyboardInterrupt elsewhere
        # into "Aborted!"); a transaction it cut short is rolled back
        if isinstance(exc, duckdb.InterruptException) or str(exc) == "Query interrupted":
            _say(
                "interrupted: what a command had not committed is rolled back; `flopledger ingests list` "
                "says whether an ingest's run committed"
            )
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(exc, duckdb.IOException):
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            _say(
                f"{first} (what was not committed is rolled back; free space or fix the path, then run again)"
            )
            sys.exit(1)
        raise
