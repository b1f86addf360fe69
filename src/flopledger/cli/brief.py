"""`flopledger brief`: parse, call :func:`flopledger.briefs.run_brief`, print, exit with its code."""

from __future__ import annotations

import datetime as dt
import enum
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flopledger.cli.options import DbOption, resolve_db
from flopledger.cli.output import err_console

__all__ = ["register"]


class Period(enum.StrEnum):
    day = "day"
    week = "week"


class BriefFormat(enum.StrEnum):
    markdown = "markdown"
    html = "html"
    json = "json"


def brief(
    period: Annotated[
        Period, typer.Option("--period", help="The day, or the week, ending on --date.")
    ] = Period.day,
    date: Annotated[
        dt.datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="Last day covered. Default: the latest day with spend."
        ),
    ] = None,
    fmt: Annotated[BriefFormat, typer.Option("--format", "-f", help="What to print.")] = BriefFormat.markdown,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="Post a chat-compatible JSON payload to this URL.")
    ] = None,
    smtp: Annotated[str | None, typer.Option("--smtp", help="Send an email through HOST:PORT.")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Email recipient (repeat for more).")] = None,
    sender: Annotated[str, typer.Option("--from", help="Email sender.")] = "flopledger@localhost",
    starttls: Annotated[
        bool, typer.Option("--smtp-starttls", help="Upgrade the SMTP connection to TLS.")
    ] = False,
    budgets: Annotated[
        Path | None,
        typer.Option("--budgets", help="Budgets TOML. Default: flopledger-budgets.toml beside the ledger."),
    ] = None,
    fleet_spec: Annotated[
        Path | None,
        typer.Option(
            "--fleet-spec", help="Fleet spec to plan. Default: flopledger-fleet.yaml beside the ledger."
        ),
    ] = None,
    dashboard_url: Annotated[
        str,
        typer.Option("--dashboard-url", envvar="FLOPLEDGER_DASHBOARD_URL", help="Base of evidence links."),
    ] = "http://127.0.0.1:8000",
    top: Annotated[int, typer.Option("--top", min=1, max=20, help="Insights to keep.")] = 5,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Remember what was sent, so it is not repeated.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; only deliver.")] = False,
    db: DbOption = None,
) -> None:
    """The top insights of the day or week, with impact and action; print, post or email them.

    Exit codes: 0 ok, 1 error, 2 usage, 3 webhook failed, 4 email failed, 5 every delivery failed.
    """
    from flopledger.briefs import BriefInputs, SmtpTarget, parse_smtp, run_brief
    from flopledger.errors import InputError

    target = None
    if smtp is not None:
        if not to:
            raise InputError("--smtp needs at least one --to address", field="--to")
        host, port = parse_smtp(smtp)
        target = SmtpTarget(
            host,
            port,
            tuple(to),
            sender=sender,
            starttls=starttls,
            username=os.environ.get("FLOPLEDGER_SMTP_USER") or None,
            password=os.environ.get("FLOPLEDGER_SMTP_PASSWORD") or None,
        )
    elif to:
        raise InputError("--to needs --smtp HOST:PORT", field="--to")
    inputs = BriefInputs(
        period=period.value,
        date=date.date() if date is not None else None,
        budgets=budgets,
        fleet_spec=fleet_spec,
        dashboard_url=dashboard_url,
        top=top,
    )
    run = run_brief(resolve_db(db), inputs, fmt=fmt.value, webhook=webhook, smtp=target, record=record)
    if not quiet:
        typer.echo(run.text, nl=False)
    for d in run.deliveries:
        if not d.ok:
            failure = escape(f"{d.channel} {d.target}: {d.detail}")
            err_console.print(f"[bold red]delivery failed:[/] {failure}", highlight=False)
    if run.exit_code:
        raise typer.Exit(run.exit_code)


def register(app: typer.Typer) -> None:
    """Attach the brief commands to the root app."""
    app.command("brief")(brief)
