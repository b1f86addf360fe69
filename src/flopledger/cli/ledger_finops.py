"""FinOps commands over the priced ledger: forecast, budgets check, export.

Each parses its options, calls one library function and renders the result; no analytics here.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from flopledger.cli.options import DbOption, FormatOption, resolve_db
from flopledger.cli.output import OutputFormat, err_console, render_rows
from flopledger.errors import InputError

if TYPE_CHECKING:  # the analytics (and Ibis) are imported when a command runs, not at start-up
    from flopledger.ledger.spark import Engine

__all__ = ["register"]

EXIT_BUDGET_OVER = 3
"""Exit code of ``budgets check`` when any budget is over: 1 stays for errors and 2 for a command-line
usage error (an unknown option), so a scheduler can tell an overspend from a mistyped command."""


class EngineName(enum.StrEnum):
    """The engines of :data:`flopledger.ledger.spark.ENGINES` (a test keeps the two the same)."""

    duckdb = "duckdb"
    spark = "spark"


class ExportFormat(enum.StrEnum):
    focus = "focus"
    parquet = "parquet"
    csv = "csv"


EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine", help="Where the analytics run: the DuckDB ledger file, or Spark (see docs/spark.md)."
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="Spark only: priced events as a Parquet path or a table name."),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master", envvar="SPARK_MASTER", help="Spark only: master URL (default: Spark's own)."
    ),
]
ByOption = Annotated[
    str, typer.Option("--by", help="Comma-separated dimensions: team, model, project, user, ...")
]
MonthOption = Annotated[
    str | None, typer.Option("--month", help="YYYY-MM (default: the latest month with spend).")
]
_DAY = ["%Y-%m-%d"]
AsOfOption = Annotated[
    dt.datetime | None, typer.Option("--as-of", formats=_DAY, help="Last day of history to use (YYYY-MM-DD).")
]
SinceOption = Annotated[
    dt.datetime | None, typer.Option("--since", formats=_DAY, help="First day, inclusive.")
]
UntilOption = Annotated[
    dt.datetime | None, typer.Option("--until", formats=_DAY, help="Last day, inclusive.")
]


def _engine(db: Path | None, engine: EngineName, source: str | None, master: str | None) -> Engine:
    from flopledger.ledger.spark import connect_engine

    return connect_engine(engine.value, db=resolve_db(db), source=source, master=master)


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _utc_start(day: dt.date | None) -> dt.datetime | None:
    """The first instant of ``day`` (UTC, naive as the ledger's times), None for none."""
    return dt.datetime.combine(day, dt.time()) if day is not None else None


STALE_AFTER_DAYS = 2
"""A ledger whose usage ends more days before today than this is said to be stale."""


def _say_if_stale(as_of: dt.date | None, given: object, asked: dt.date | None = None) -> None:
    """On stderr, when the figures are as of the ledger's last day of usage (``given``, the --as-of or
    --month the user gave, is None) and that day is days ago: a cron job would report the same stale
    month every day, unseen. Or when the --as-of day ``asked`` is after that last day: the figures
    are as of the last day instead."""
    if asked is not None and as_of is not None and as_of < asked:
        err_console.print(
            escape(
                f"note: the ledger's usage ends on {as_of}, before --as-of {asked}, so these figures are "
                f"as of {as_of} (the days after it are forecast): ingest the newer usage for {asked}."
            ),
            highlight=False,
            soft_wrap=True,
        )
        return
    if given is not None or as_of is None:
        return
    behind = (dt.datetime.now(dt.UTC).date() - as_of).days
    if behind > STALE_AFTER_DAYS:
        err_console.print(
            escape(
                f"note: the ledger's usage ends on {as_of}, {behind} days before today (UTC), so these "
                "figures are as of that day: ingest the newer usage (or pass --as-of for the day you mean)."
            ),
            highlight=False,
            soft_wrap=True,
        )


def forecast(
    by: ByOption = "team",
    month: MonthOption = None,
    as_of: AsOfOption = None,
    changes: Annotated[
        bool,
        typer.Option("--changes", help="Instead: the change vs last month as volume, mix and price effects."),
    ] = False,
    run_backtest: Annotated[
        bool,
        typer.Option("--backtest", help="Instead: the forecast's error on past months vs a straight line."),
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    engine: EngineOption = EngineName.duckdb,
    source: SourceOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Month-end bill per group with P10/P50/P90, from daily history (weekday, weekend and trend)."""
    from flopledger.ledger.forecast import backtest_ledger, forecast_month
    from flopledger.ledger.spend_change import spend_change

    if run_backtest and changes:
        raise InputError("--changes and --backtest are two different views: ask for one at a time")
    dims = [d.strip() for d in by.split(",") if d.strip()]
    eng = _engine(db, engine, source, spark_master)
    if run_backtest:
        render_rows(
            backtest_ledger(eng, by=dims), fmt, title="Forecast backtest: error % of the month-end bill"
        )
    elif changes:
        rows = [e.as_row() for e in spend_change(eng, by=dims, month=month, as_of=_day(as_of))]
        render_rows(rows, fmt, title="Change vs the same days last month (USD)")
    else:
        forecasts = forecast_month(eng, by=dims, month=month, as_of=_day(as_of))
        rows = [g.as_row() for g in forecasts]
        title = (
            f"Forecast of {forecasts[0].month} as of {forecasts[0].as_of} (USD)" if forecasts else "Forecast"
        )
        cols = (
            [k for k in rows[0] if k not in ("month", "as_of")]
            if rows and fmt is OutputFormat.table
            else None
        )
        total = None
        if dims and len(rows) > 1 and fmt is OutputFormat.table:
            # the whole bill's own forecast: its P10 and P90 are not the sums of the groups'
            (whole,) = forecast_month(eng, by=[], month=month, as_of=_day(as_of))
            total = {**whole.as_row(), dims[0]: "total"}
            title += "; total: the whole bill's own forecast"
        render_rows(rows, fmt, title=title, columns=cols, total=total)
        _say_if_stale(forecasts[0].as_of if forecasts else None, as_of or month, _day(as_of))


def budgets_check(
    config: Annotated[
        Path,
        typer.Option(
            "--budgets",
            "--config",
            envvar="FLOPLEDGER_BUDGETS",
            help="Budgets TOML file (as `flopledger serve --budgets` and `brief --budgets` take it).",
        ),
    ] = Path("flopledger-budgets.toml"),
    as_of: AsOfOption = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    engine: EngineOption = EngineName.duckdb,
    source: SourceOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Spend to date, forecast and status (ok, at risk, over) of each budget.

    Exit code 3 when any budget is over, 0 otherwise (1 on errors, 2 on a mistyped command), so it
    can run from cron.
    The config has one table per budget: \\[team.NAME], \\[project.NAME] or \\[api_key."NAME"] with
    monthly_usd = 4000 and, optionally, daily_cap_usd = 250.
    """
    from flopledger.ledger.budgets import check_budgets, load_budgets

    statuses = check_budgets(
        _engine(db, engine, source, spark_master), load_budgets(config), as_of=_day(as_of)
    )
    rows = [s.as_row() for s in statuses]
    if fmt is OutputFormat.table:
        cols = [
            "scope",
            "name",
            "monthly_usd",
            "daily_cap_usd",
            "day_usd",  # beside its cap: a budget over for its day alone shows why
            "spent_usd",
            "forecast_p50_usd",
            "forecast_p90_usd",
            "overrun_chance_pct",
            "status",
        ]
        render_rows(
            rows, fmt, title=f"Budgets as of {statuses[0].as_of}" if statuses else "Budgets", columns=cols
        )
        for s in statuses:
            if s.alert:
                err_console.print(
                    f"[bold {'red' if s.status == 'over' else 'yellow'}]{s.status}:[/] {escape(s.alert)}",
                    highlight=False,
                    soft_wrap=True,
                )
            if s.note:
                err_console.print(f"[bold]note:[/] {escape(s.note)}", highlight=False, soft_wrap=True)
    else:
        render_rows(rows, fmt)
    _say_if_stale(statuses[0].as_of if statuses else None, as_of)
    if any(s.status == "over" for s in statuses):
        raise typer.Exit(EXIT_BUDGET_OVER)


def export(
    out: Annotated[Path, typer.Argument(help="File to write (FOCUS: .csv for CSV, else Parquet).")],
    export_format: Annotated[ExportFormat, typer.Option("--format", "-f", help="focus, parquet or csv.")],
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = None,
    engine: EngineOption = EngineName.duckdb,
    source: SourceOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Export priced usage: FinOps FOCUS 1.2 rows, or the priced events as Parquet or CSV."""
    from flopledger.cli.ledger import say_empty_window
    from flopledger.ledger.focus import check_output_path, export_ledger

    first, last = _day(since), _day(until)
    if first is not None and last is not None and first > last:
        raise InputError(
            f"--since {first} is after --until {last}, so the export would be empty (both days are "
            "inclusive): swap them, or widen the window"
        )
    check_output_path(out)  # before the export's work
    eng = _engine(db, engine, source, spark_master)
    summary = export_ledger(eng, out, export_format.value, since=first, until=last)
    if not summary.rows and not summary.unpriced_events:  # (unpriced ones are said below)
        # no file a scheduler should upload as a period's bill without a word
        say_empty_window(
            eng,
            _utc_start(first),
            _utc_start(last + dt.timedelta(days=1)) if last is not None else None,
        )
    typer.echo(
        f"wrote {summary.rows:,} {summary.export_format} rows to {summary.path}: "
        f"effective ${summary.effective_cost_usd:,.2f}, list ${summary.list_cost_usd:,.2f}"
    )
    if summary.unpriced_events:
        err_console.print(
            f"[yellow]warning:[/] {summary.unpriced_events:,} unpriced events "
            + (
                "left out (see `flopledger prices missing`)"
                if summary.export_format == "focus"
                else "have NULL cost"
            ),
            highlight=False,
        )


_GAP_CAUSES = (
    (
        "short of",
        -1,
        "usage not ingested (see `flopledger report --by day`), unpriced usage (`flopledger prices "
        "missing`), or prices below the bill's.",
    ),
    (
        "over",
        1,
        "the same calls ingested twice (a usage report and a gateway's or OpenTelemetry logs of them: "
        "`flopledger report --by day` with `ingests list`), or a discount the bill has and the overrides "
        "file lacks.",
    ),
)
"""What leaves the ledger short of a vendor's bill, or over it: the side, the sign of the ledger's
difference on that side, and the causes to look at."""

EXIT_MISMATCH = 3
"""``reconcile``'s exit code when a group's ledger cost and bill differ beyond the tolerance (1 is an
error, 2 a command-line usage error)."""


def reconcile(
    files: Annotated[
        list[Path], typer.Argument(help="Cost report pages: Anthropic's cost_report, OpenAI's costs.")
    ],
    by: Annotated[
        str,
        typer.Option("--by", help="day, project, model, service_tier (comma-separated; provider always)."),
    ] = "day",
    tolerance_pct: Annotated[
        float, typer.Option("--tolerance-pct", min=0, help="A group matches within this % of its bill.")
    ] = 1.0,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The ledger's cost against the vendor's cost report, per day (and project or model): usage
    never ingested, ingested twice, or priced otherwise than billed.

    Exit code 3 when any group differs by more than the tolerance (or a cent), 0 when all match (1 on
    errors, 2 on a mistyped command).
    """
    from flopledger.ledger.reconcile import read_cost_reports, rounded
    from flopledger.ledger.reconcile import reconcile as run_reconcile
    from flopledger.ledger.store import open_ledger

    reports = read_cost_reports(files)
    for path, page in reports.unfetched.items():
        cursor = f" (next_page {page.next_page})" if page.next_page else ""
        err_console.print(
            f"[bold yellow]warning:[/] {escape(str(path))}: its last page says more pages follow{cursor} "
            "and no file given has them: the days they hold are not compared. Fetch them and pass them too.",
            highlight=False,
            soft_wrap=True,
        )
    con = open_ledger(resolve_db(db), read_only=True)
    try:
        result = run_reconcile(con, reports, by.split(","), tolerance_pct=tolerance_pct)
    finally:
        con.close()
    rows = [r.as_row() for r in result.rows]
    total = None
    if len(rows) > 1:
        bill, cost = sum(r.vendor_usd for r in result.rows), sum(r.ledger_usd for r in result.rows)
        total = {
            "provider": "total",
            "vendor_usd": bill,
            "ledger_usd": cost,
            "difference_usd": rounded(cost - bill, 6),
            "difference_pct": rounded(100 * (cost - bill) / bill, 2) if bill else None,
            "unpriced_tokens": sum(r.unpriced_tokens for r in result.rows),
            "status": f"{len(result.rows) - len(result.mismatched)} of {len(result.rows)} match",
        }
    first, last = result.days
    render_rows(rows, fmt, title=f"Ledger against the vendors' bills, {first} to {last} (USD)", total=total)
    # on stderr, so JSON and CSV on stdout stay whole
    for kind, usd in sorted(result.untracked_usd.items()):
        err_console.print(
            f"[bold]note:[/] the bill's {escape(kind)} costs (${usd:,.2f}) are left out: the ledger does "
            "not track them.",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        err_console.print(f"[bold]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if result.priority_usd:
        err_console.print(
            f"[bold]note:[/] the ledger's Anthropic priority-tier cost (${result.priority_usd:,.2f}) is left "
            "out: Anthropic's cost report does not include Priority Tier.",
            highlight=False,
            soft_wrap=True,
        )
    if result.mismatched:
        said = [f"[bold yellow]{len(result.mismatched)} of {len(result.rows)} group(s) differ.[/]"]
        for side, sign, causes in _GAP_CAUSES:
            gaps = [sign * r.difference_usd for r in result.mismatched if sign * r.difference_usd > 0]
            if gaps:
                said.append(f"The ledger is ${sum(gaps):,.2f} {side} the bill in {len(gaps)}: {causes}")
        err_console.print(" ".join(said), highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_MISMATCH)


def register(app: typer.Typer) -> None:
    """Attach ``forecast``, ``budgets check``, ``export`` and ``reconcile`` to the root app."""
    app.command("forecast")(forecast)
    app.command("reconcile")(reconcile)
    budgets = typer.Typer(help="Budgets per team, project or API key.", no_args_is_help=True)
    budgets.command("check")(budgets_check)
    app.add_typer(budgets, name="budgets")
    app.command("export")(export)
