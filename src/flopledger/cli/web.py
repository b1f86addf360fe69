"""Web commands: ``serve`` the dashboard, and ``tokens create|list|revoke`` for its access."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flopledger.cli.options import DbOption, FormatOption, resolve_db
from flopledger.cli.output import OutputFormat, err_console, render_rows
from flopledger.errors import InputError
from flopledger.settings import setting_is_set, setting_value

__all__ = ["register"]

tokens_app = typer.Typer(help="API tokens for the dashboard and the OTLP receiver.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the web commands to the root app."""
    app.command("serve")(serve)
    app.add_typer(tokens_app, name="tokens")


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    budgets: Annotated[
        Path | None,
        typer.Option("--budgets", help="Budgets TOML: the overview compares the forecast with it."),
    ] = None,
    allocation: Annotated[
        Path | None,
        typer.Option(
            "--allocation", help="JSON of `flopledger fleet allocate SPEC --format json` for the fleet page."
        ),
    ] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(
            "--capacity", help="JSON of `flopledger fleet capacity ... --format json` for the fleet page."
        ),
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark session cookies Secure (when served over HTTPS).")
    ] = False,
) -> None:
    """Serve the dashboard, its JSON API (/api/v1, /openapi.json) and OTLP intake (POST /v1/traces)."""
    import uvicorn

    from flopledger.catalog.overrides import load_overrides
    from flopledger.web import WebConfig, create_app

    overrides = Path(setting_value("overrides"))
    # A broken overrides file, or one named in $FLOPLEDGER_OVERRIDES that is missing, fails now (and
    # on each OTLP request after, should it go while the server runs).
    required = setting_is_set("overrides")
    load_overrides(overrides, required=required)
    config = WebConfig(
        db=resolve_db(db),
        budgets=budgets,
        allocation=allocation,
        capacity=capacity,
        secure_cookies=secure_cookies,
        overrides=overrides,
        overrides_required=required,
        fingerprint_key=setting_value("fingerprint_key").encode("utf-8"),
    )
    for path in (budgets, allocation, capacity):
        if path is not None and not path.is_file():
            raise InputError("no such file", path=str(path))
    if budgets is not None:  # a broken budgets file fails now, not on every overview
        from flopledger.ledger.budgets import load_budgets

        load_budgets(budgets)
    banner = f"flopledger dashboard on http://{host}:{port}/ (ledger {config.db})"
    if not config.db.exists():
        typer.echo(_new_ledger_note(config.db), err=True)
    err_console.print(escape(banner), highlight=False)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


def _new_ledger_note(path: Path) -> str:
    return (
        f"note: there was no ledger at {path}; a new, empty one is used. If you meant another, "
        "check --db or $FLOPLEDGER_DB."
    )


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="admin (every team) or viewer (one team).")],
    team: Annotated[str | None, typer.Option("--team", help="The one team a viewer sees.")] = None,
    db: DbOption = None,
) -> None:
    """Issue a token. It is printed once, alone on the last line; only its hash is stored."""
    from flopledger.ledger.store import open_ledger
    from flopledger.web.tokens import create_token

    path = resolve_db(db)
    new = not path.exists()
    con = open_ledger(path)
    try:
        issued = create_token(con, role=role, team=team)
    finally:
        con.close()
    if new:  # a token for a ledger about to be filled, or a mistyped --db: either way, say so
        typer.echo(_new_ledger_note(path), err=True)
    scope = f"team {issued.record.team}" if issued.record.team else "every team"
    typer.echo(
        f"token {issued.record.id}: {issued.record.role}, sees {scope}. Keep it now; it is not shown again:"
    )
    typer.echo(issued.secret)


@tokens_app.command("list")
def tokens_list(db: DbOption = None, fmt: FormatOption = OutputFormat.table) -> None:
    """Every token issued: id, role, team, created and revoked times (never the secret)."""
    from flopledger.ledger.store import open_ledger
    from flopledger.web.tokens import list_tokens

    con = open_ledger(resolve_db(db), create=False)
    try:
        rows = [dataclasses.asdict(t) for t in list_tokens(con)]
    finally:
        con.close()
    render_rows(rows, fmt, title="API tokens", columns=["id", "role", "team", "created_at", "revoked_at"])


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id, as `tokens list` shows it.")],
    db: DbOption = None,
) -> None:
    """Revoke a token: it and the sessions signed in with it stop working at once."""
    from flopledger.ledger.store import open_ledger
    from flopledger.web.tokens import revoke_token

    con = open_ledger(resolve_db(db), create=False)
    try:
        record = revoke_token(con, token_id)
    finally:
        con.close()
    typer.echo(f"token {record.id} revoked at {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
