"""Ledger commands: demo, ingest, ingests, report, prices, reprice, quarantine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from flopledger.cli.options import DbOption, FormatOption, SinceOption, UntilOption, resolve_db, window_bounds
from flopledger.cli.output import OutputFormat, console, err_console, render_rows, to_jsonable
from flopledger.errors import InputError, LedgerUnreadable
from flopledger.settings import setting_is_set, setting_value

if TYPE_CHECKING:
    from flopledger.ledger.ingest import IngestResult
    from flopledger.ledger.spark import Engine

__all__ = ["register"]

OverridesOption = Annotated[
    Path | None,
    typer.Option(
        "--overrides",
        help="Price overrides TOML (default: $FLOPLEDGER_OVERRIDES or ./flopledger-prices.toml).",
    ),
]


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=b,c=d", "e=f"]`` -> ``{"a": "b", "c": "d", "e": "f"}``."""
    out: dict[str, str] = {}
    for item in values or []:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InputError(f"{flag} expects canonical=value pairs, got {part!r}", field=flag)
            name, value = name.strip(), value.strip()
            if out.get(name, value) != value:  # which would a row take? (the same twice is no question)
                raise InputError(
                    f"{flag} gives {name} twice, as {out[name]!r} and as {value!r}: give it once (each row "
                    "takes one source per column)",
                    field=flag,
                )
            out[name] = value
    return out


def _overrides(path: Path | None) -> Any:
    from flopledger.catalog.overrides import load_overrides

    named = path is not None or setting_is_set("overrides")  # a file the user named must exist
    overrides = load_overrides(path if path is not None else setting_value("overrides"), required=named)
    if overrides.discounts:
        from flopledger.catalog.prices import catalog_models

        for entry in overrides.unmatched_discounts(catalog_models()):
            typer.echo(
                f"warning: the discount {entry} matches no catalog model, so it applies to none. Its model "
                "is matched against the catalog's ids, as `flopledger prices show MODEL` names them "
                "(claude-sonnet-4-5, not a dated name); check the spelling.",
                err=True,
            )
    return overrides


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A byte progress bar on stderr (hidden when stderr is not a terminal)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_reconciliation(rows: list[dict[str, Any]], fmt: OutputFormat) -> None:
    render_rows(rows, fmt, title="Ingest: read = stored + quarantined + duplicates skipped")


def ingest(
    files: Annotated[
        list[Path],
        typer.Argument(help="Usage files: vendor exports, OTLP JSON, LiteLLM logs, CSV/JSONL/Parquet."),
    ],
    db: DbOption = None,
    input_format: Annotated[
        str | None,
        typer.Option(
            "--input-format",
            "--format",
            help="Input format (default: detected); 'outcomes' for outcomes files.",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="canonical=source column pairs, comma-separated.")
    ] = None,
    fixed: Annotated[list[str] | None, typer.Option("--set", help="canonical=value for every row.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail the whole ingest on any bad row.")] = False,
    keep_prompts: Annotated[
        bool, typer.Option("--keep-prompts", help="Store prompt text (default: only keyed fingerprints).")
    ] = False,
    input_includes_cache: Annotated[
        bool,
        typer.Option("--input-includes-cache", help="Tabular input_tokens include cache reads and writes."),
    ] = False,
    output_excludes_reasoning: Annotated[
        bool,
        typer.Option(
            "--output-excludes-reasoning",
            help="Tabular output_tokens leave reasoning_tokens out (Gemini's candidates, thoughts): added.",
        ),
    ] = False,
    overrides: OverridesOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table, json or csv.")
    ] = OutputFormat.table,
) -> None:
    """Ingest usage logs: validate, quarantine bad rows, skip duplicates, price, store."""
    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.repricing import describe_unpriced_usage, unpriced_usage
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db))
    try:
        if input_format == "outcomes":
            from flopledger.integrity.outcomes import ingest_outcomes

            if (
                mapping
                or fixed
                or strict
                or keep_prompts
                or input_includes_cache
                or output_excludes_reasoning
            ):
                raise InputError(
                    "--map, --set, --strict, --keep-prompts, --input-includes-cache and "
                    "--output-excludes-reasoning do not apply to outcomes files (columns: user, ts, kind, "
                    "weight)"
                )

            out = ingest_outcomes(con, files)
            _print_reconciliation(
                [
                    {
                        "rows_read": out.read,
                        "rows_stored": out.stored,
                        "rows_quarantined": out.quarantined,
                        "rows_duplicate": out.duplicates,
                    }
                ],
                output,
            )
            if out.quarantined and output is OutputFormat.table:
                console.print(
                    f"{out.quarantined} row(s) quarantined: see `flopledger quarantine list`.",
                    highlight=False,
                )
            return
        key = setting_value("fingerprint_key").encode()
        with _progress_bar("ingest") as update:
            result = ingest_files(
                con,
                files,
                format=input_format,
                mapping=_pairs(mapping, "--map"),
                fixed=_pairs(fixed, "--set"),
                strict=strict,
                keep_prompts=keep_prompts,
                input_includes_cache=input_includes_cache,
                output_excludes_reasoning=output_excludes_reasoning,
                overrides=_overrides(overrides),
                fingerprint_key=key,
                progress=update,
            )
        extra = unpriced_usage(con, result.ingest_id) if result.rows_stored else []
        versions = _price_versions(con) if result.rows_stored else {}
    finally:
        con.close()
    _print_reconciliation([result.as_row()], output)
    if len(versions) > 1:  # on stderr whatever the output: history is priced two ways
        others = ", ".join(
            f"{v!r} ({n:,} event(s))" for v, n in versions.items() if v != result.price_version
        )
        typer.echo(
            f"The ledger's events are now priced by {len(versions)} price versions: this run's "
            f"{result.price_version!r}, and {others}. A report sums them as they are. If the overrides "
            "file differs (a run without --overrides after a reprice with it), give every ingest the same "
            "file (--overrides or $FLOPLEDGER_OVERRIDES); then, or after a catalog update, price all "
            "history alike: `flopledger reprice --overrides FILE`.",
            err=True,
        )
    if extra:  # on stderr whatever the output: the bill is larger than cost_usd
        typer.echo(f"In this run's events, {describe_unpriced_usage(extra)}", err=True)
    if result.rows_quarantined and output is OutputFormat.table:
        console.print(
            f"{result.rows_quarantined} row(s) quarantined: see `flopledger quarantine list`.",
            highlight=False,
        )
    if result.unpriced_rows and output is OutputFormat.table:
        console.print(
            f"{result.unpriced_rows} row(s) have no price: see `flopledger prices missing`.", highlight=False
        )
    if result.rows_matched_unlabelled:  # on stderr whatever the output: it may hide usage
        runs = ", ".join(result.unlabelled_runs)
        typer.echo(
            f"{result.rows_matched_unlabelled} usage-report row(s) were taken for rows stored without an "
            f"organisation (by run(s) {runs}). If those runs hold another organisation's reports, this "
            "one's rows are hidden by them: undo them (`flopledger ingests undo ID --force`), ingest "
            "their files again with their own --set org, then this run's files again.",
            err=True,
        )
    if result.rows_overlapping:  # on stderr whatever the output: the usage may count twice
        typer.echo(_overlap_warning(result), err=True)
    if result.rows_changed_in_place:  # on stderr whatever the output: both versions count
        runs = ", ".join(result.changed_runs[:5])
        typer.echo(
            f"{result.rows_changed_in_place} row(s) of this run's files changed in place since run(s) "
            f"{runs} stored them (the same time, model and user at the same line with other counts, or "
            "the same request at another time): "
            "both versions now count. If the file was rewritten with corrected rows, undo the earlier "
            f"run(s) (`flopledger ingests undo ID`) and this one ({result.ingest_id}), then ingest the "
            "file again.",
            err=True,
        )
    for path, page in _short_reports(files, input_format).items():  # on stderr: usage short of pages
        cursor = page.next_page
        said, fetch = (
            (f"has_more, next_page {cursor}", f" from page={cursor}") if cursor else ("has_more", "")
        )
        typer.echo(
            f"{path}: its last page says more pages follow ({said}) and no file of this run has them; "
            f"their usage is not in the ledger. Fetch them{fetch} and ingest them too; this run's rows "
            "are kept.",
            err=True,
        )


def _short_reports(files: list[Path], input_format: str | None) -> dict[Path, Any]:
    """The paged usage reports among ``files`` that stop before their last page (none of the run's
    pages comes after the page that says more follow)."""
    from flopledger.ledger.formats.base import REPORT_FORMATS, detect_format, report_pages, unfetched_pages

    reports = {}
    for path in files:
        try:
            name = input_format or detect_format(path).name
        except InputError:  # a file no one format claims (ingested by --format): not a report page
            continue
        if name in REPORT_FORMATS:
            reports[path] = report_pages(path)
    return unfetched_pages(reports) if any(p.has_more for pages in reports.values() for p in pages) else {}


def _price_versions(con: Any) -> dict[str, int]:
    """How many of the ledger's events each price version priced."""
    rows = con.execute(
        "SELECT price_version, count(*) FROM events WHERE price_version IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    return {str(v): int(n) for v, n in rows}


def _overlap_warning(result: IngestResult) -> str:
    """What the ingest says of usage-report rows that overlap another pull of their window."""
    said = (
        f"{result.rows_overlapping} usage-report row(s) of this run's files overlap another pull of their "
        "window, of another bucket width or grouping (e.g. daily and hourly buckets, or by model and by "
        "model and api key): the same usage may count twice."
    )
    if not result.overlapping_runs:  # the pulls are this run's files
        return (
            f"{said} Both pulls are among this run's files: undo it (`flopledger ingests undo "
            f"{result.ingest_id}`) and ingest one of them. Pull a window with the same width and grouping "
            "each time."
        )
    within = (
        " This run's own files overlap each other too: ingest only one pull of a window at a time."
        if result.overlaps_within_run
        else ""
    )
    return (
        f"{said} The other pull was stored by run(s) {', '.join(result.overlapping_runs)}. Keep one pull "
        "of a window: undo the other run (`flopledger ingests undo ID`; it says when --force is needed, "
        "as for a run that restated rows), and pull a window with the same width and grouping each time. "
        f"If the other run holds another organisation's reports, stored without --set org, ingest them "
        f"again with it.{within}"
    )


_SHORT_COLUMNS = (
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "cost_usd",
    "unpriced_tokens",
)


_HOURLY = ("active_hours", "cost_usd_per_active_hour")


def _report_total(rows: list[dict[str, Any]], dims: list[str], cut: bool) -> dict[str, Any]:
    """A report table's total row: the sums of its counts and costs. Active hours add up only over
    users (an engineer-hour is one user's), so only a report by user totals them, with the cost per
    active hour of them all: each user's hourly cost (usage-report rows have no hours and are left
    out of it) summed, over the hours summed."""
    total: dict[str, Any] = {dims[0]: "total shown" if cut else "total"}
    for column in rows[0]:
        values = [r.get(column) for r in rows]
        if column in dims or column in _HOURLY:
            continue
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
            total[column] = sum(v for v in values if v is not None)
    if dims == ["user"] and "active_hours" in rows[0]:
        hours = sum(r.get("active_hours") or 0 for r in rows)
        hourly = sum((r.get("cost_usd_per_active_hour") or 0) * (r.get("active_hours") or 0) for r in rows)
        total["active_hours"] = hours
        total["cost_usd_per_active_hour"] = hourly / hours if hours else None
    return total


def _short_columns(rows: list[dict[str, Any]]) -> list[str]:
    """A report table's measures: :data:`_SHORT_COLUMNS`, and the web searches beside the tokens
    where the rows have any (most ledgers have none)."""
    from flopledger.ledger.schema import WEB_SEARCH_CLASS

    searched = [WEB_SEARCH_CLASS] if any(r.get(WEB_SEARCH_CLASS) for r in rows) else []
    return [*_SHORT_COLUMNS[:-2], *searched, *_SHORT_COLUMNS[-2:]]


def report(
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="team, user, model, provider, project, api_key, org, service_tier, day, hour "
            "(default: team).",
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    per_active_hour: Annotated[
        bool, typer.Option("--per-active-hour", help="Add cost per active hour (an hour with a request).")
    ] = False,
    show_headline: Annotated[
        bool,
        typer.Option(
            "--headline", help="The bill if all tokens were output, or all input uncached, vs real."
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="At most this many rows: the costliest.")
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cost by any dimensions, with tokens and cost per class; or the headline-versus-real view."""
    from flopledger.ledger.report import headline, parse_dimensions, unpriced_tokens
    from flopledger.ledger.report import report as build_report
    from flopledger.ledger.spark import connect_engine

    if show_headline and (by is not None or limit is not None or per_active_hour):
        raise InputError(
            "--headline is the whole bill: it takes --since and --until, not --by, --limit or "
            "--per-active-hour (run those as a second report)"
        )
    start, end = window_bounds(since, until)
    engine = connect_engine("duckdb", db=resolve_db(db))
    if show_headline:
        _render_headline(headline(engine, since=start, until=end).as_dict(), fmt)
        if start is not None or end is not None:
            say_empty_window(engine, start, end)
        return
    dims = parse_dimensions(by if by is not None else "team")
    rows = build_report(engine, dims, since=start, until=end, per_active_hour=per_active_hour, limit=limit)
    if not rows and limit != 0:
        say_empty_window(engine, start, end)
    columns = None
    if fmt is OutputFormat.table:
        extra = ("active_hours", "cost_usd_per_active_hour") if per_active_hour else ()
        columns = [*dims, *_short_columns(rows), *extra]
    elif not rows:  # an empty CSV still has its header
        from flopledger.ledger.report import report_expr
        from flopledger.ledger.spark import events_table

        columns = list(report_expr(events_table(engine), dims, per_active_hour=per_active_hour).columns)
    # rows cut by --limit: the window's unpriced tokens, of the rows not shown too
    cut = limit is not None and len(rows) >= limit
    total = _report_total(rows, dims, cut) if len(rows) > 1 else None
    render_rows(rows, fmt, title=f"Cost by {', '.join(dims)}", columns=columns, total=total)
    timed = any(b is not None and b.time() != dt.time() for b in (start, end))
    if rows and ("hour" in dims or timed):
        _say_report_rows_have_no_hours(engine, start, end, "hour" in dims)
    unpriced = sum(int(r.get("unpriced_tokens") or 0) for r in rows)
    in_window = unpriced_tokens(engine, since=start, until=end) if cut else unpriced
    if in_window:  # on stderr, so JSON and CSV on stdout stay whole
        shown = f" ({unpriced:,} in the rows shown)" if in_window != unpriced else ""
        typer.echo(
            f"{in_window:,} tokens have no price{shown}: their cost_usd counts them as 0. "
            "See `flopledger prices missing`.",
            err=True,
        )


def _say_report_rows_have_no_hours(
    engine: Engine, start: dt.datetime | None, end: dt.datetime | None, by_hour: bool
) -> None:
    """On stderr, when hours or a time of day cut the window: the usage-report rows in it stand for
    a bucket of requests each (a day's, for a daily pull), placed at the bucket's start."""
    from flopledger.ledger.report import report_rows_in_window

    n, cost = report_rows_in_window(engine, start, end)
    if not n:
        return
    where = "in the hour it starts" if by_hour else "by the time its bucket starts"
    typer.echo(
        f"note: {n:,} usage-report rows (${cost:,.2f}) stand for a bucket of requests each, a whole "
        f"day's when pulled daily, and are counted {where} (00:00 UTC for a day): their hours are not "
        "known. Group by day, or give --since and --until as days, for them.",
        err=True,
    )


def say_empty_window(engine: Engine, start: dt.datetime | None, end: dt.datetime | None) -> None:
    """On stderr, when the window has no events: where the ledger's events are."""
    from flopledger.ledger.report import ledger_span

    if (start is not None or end is not None) and ledger_span(engine, start, end)[2]:
        return
    first, last, events = ledger_span(engine)
    if not events or first is None or last is None:
        typer.echo("The ledger has no events: ingest usage first (`flopledger ingest FILE`).", err=True)
        return
    asked = f"from {start:%Y-%m-%d %H:%M} UTC" if start is not None else ""
    if end is not None:
        asked += f"{' ' if asked else ''}before {end:%Y-%m-%d %H:%M} UTC"
    typer.echo(
        f"No events {asked or 'in the window'}: the ledger's {events:,} events run from "
        f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC "
        f"(--since {first:%Y-%m-%d} --until {last:%Y-%m-%d} covers them).",
        err=True,
    )


def _render_headline(view: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(to_jsonable(view), indent=2))
        return
    if fmt is OutputFormat.csv:  # one table: the three bills, then the classes
        bills = [
            {
                "item": name,
                "kind": "bill",
                "tokens": view["total_tokens"],
                "cost_usd": view[f"{name}_cost_usd"],
                "overstatement_x": view["overstatement_x"] if name == "all_as_output" else None,
            }
            for name in ("all_as_output", "all_input_uncached", "real")
        ]
        # tokens without a price, left out of every bill
        bills.append({"item": "unpriced", "kind": "unpriced", "tokens": view["unpriced_tokens"]})
        classes = [{"item": c["token_class"], "kind": "token_class", **c} for c in view["classes"]]
        columns = ["item", "kind", "tokens", "token_share", "cost_usd", "cost_share", "usd_per_mtok"]
        columns.append("overstatement_x")
        if any("searches" in c for c in view["classes"]):  # web searches are counted, not tokens
            columns.append("searches")
        render_rows([*bills, *classes], fmt, columns=columns)
        return
    render_rows(
        [
            {
                "bill": "every token priced as output (the headline)",
                "cost_usd": view["all_as_output_cost_usd"],
            },
            {"bill": "all input priced as uncached", "cost_usd": view["all_input_uncached_cost_usd"]},
            {"bill": "real, each token class priced apart", "cost_usd": view["real_cost_usd"]},
        ],
        fmt,
        title="Headline versus real",
    )
    render_rows(
        [
            {
                "token_class": c["token_class"],
                # web searches are billed per search: their count, not tokens
                "tokens": c["tokens"] if c["tokens"] is not None else f"{c['searches']:,} searches",
                "token_share": f"{c['token_share']:.1%}" if c["token_share"] is not None else "",
                "cost_usd": c["cost_usd"],
                "cost_share": f"{c['cost_share']:.1%}",
                "usd_per_mtok": c["usd_per_mtok"],
            }
            for c in view["classes"]
        ],
        fmt,
        title="Share of tokens and of cost per class (reasoning is part of output)",
    )
    if view["overstatement_x"]:
        console.print(
            f"The all-output headline overstates the real bill {view['overstatement_x']}x.", highlight=False
        )
    if view["unpriced_tokens"]:
        console.print(
            f"{view['unpriced_tokens']:,} tokens have no price and are left out: "
            "`flopledger prices missing`.",
            highlight=False,
        )


def demo(
    db: DbOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic organisation.")] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Where to write the raw logs (default: demo-data/ beside the db)."),
    ] = None,
) -> None:
    """Build a synthetic organisation's raw vendor logs, ingest them, and show what they cost."""
    from flopledger.ledger.report import headline
    from flopledger.ledger.report import report as build_report
    from flopledger.ledger.spark import connect_engine
    from flopledger.synthetic.demo import build_demo_ledger

    path = resolve_db(db)
    if path.exists():
        raise InputError(
            f"{path} already exists; the demo writes a fresh ledger: remove it or pass --db NEW.duckdb"
        )
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def tick(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"ingest {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        console.print("Writing the synthetic organisation's logs and ingesting them...", highlight=False)
        result = build_demo_ledger(path, seed=seed, out_dir=out_dir, progress=tick)
    _print_reconciliation(
        [
            {
                "file": Path(i.files[0]).name,
                **{k: v for k, v in i.as_row().items() if k not in ("ingest_id", "files")},
            }
            for i in result.ingests
        ],
        OutputFormat.table,
    )
    engine = connect_engine("duckdb", db=path)
    teams = build_report(engine, ["team"], limit=10)
    render_rows(
        teams, OutputFormat.table, title="Top 10 teams by cost", columns=["team", *_short_columns(teams)]
    )
    models = build_report(engine, ["provider", "model"])
    render_rows(
        models,
        OutputFormat.table,
        title="Cost by model",
        columns=["provider", "model", *_short_columns(models)],
    )
    _render_headline(headline(engine).as_dict(), OutputFormat.table)
    console.print(
        escape(
            f"Ledger: {path}. Next: `flopledger report --db {path} --by user --per-active-hour`, "
            f"`flopledger integrity leaderboard --db {path}`, `flopledger forecast --db {path}`."
        ),
        highlight=False,
    )


IngestFilterOption = Annotated[
    str | None, typer.Option("--ingest", help="Of this run only (its id or a unique prefix; `ingests list`).")
]
FileFilterOption = Annotated[
    str | None, typer.Option("--file", help="Of this file only (as ingested, or its last path parts).")
]
OpenOption = Annotated[
    bool, typer.Option("--open", help="Only rows still open: no later run read their file without them.")
]
GoneOption = Annotated[
    bool,
    typer.Option(
        "--gone", help="Only rows a later run of their file did not find (fixed, or file replaced)."
    ),
]


def quarantine_list(
    ingest: IngestFilterOption = None,
    file: FileFilterOption = None,
    open_only: OpenOption = False,
    gone_only: GoneOption = False,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many rows.")] = 200,
) -> None:
    """Rows that could not be stored, with file, line, field and reason, oldest first. A row's state is
    open, or gone from its file: a later run read the same file and did not find it (the file was fixed,
    or replaced by a newer one: clear it once its usage is in the ledger)."""
    from flopledger.ledger.quarantine import QuarantineSelection, list_quarantine
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db), read_only=True)
    try:
        selection = QuarantineSelection(ingest, file, open_only, gone_only)
        rows, total = list_quarantine(con, selection, limit)
    finally:
        con.close()
    columns = None
    if fmt is OutputFormat.table:
        columns = ["source_file", "source_line", "field", "reason", "state"]
    render_rows(rows, fmt, title="Quarantine", columns=columns)
    if total > len(rows):  # on stderr, so JSON and CSV on stdout stay whole
        typer.echo(
            f"{len(rows):,} of {total:,} quarantined rows shown: raise --limit, or narrow them with "
            "--ingest, --file or --open.",
            err=True,
        )


def quarantine_clear(
    gone_only: GoneOption = False,
    ingest: IngestFilterOption = None,
    file: FileFilterOption = None,
    open_only: OpenOption = False,
    everything: Annotated[bool, typer.Option("--all", help="Every quarantined row.")] = False,
    db: DbOption = None,
) -> None:
    """Remove quarantined rows once they are dealt with: those gone from their file (--gone: fixed and
    ingested again, or the file replaced), of a run, of a file, or all. The runs' reconciliation
    (`ingests list`) keeps its counts."""
    from flopledger.ledger.quarantine import QuarantineSelection, clear_quarantine
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db), create=False)
    try:
        gone = clear_quarantine(
            con, QuarantineSelection(ingest, file, open_only, gone_only), everything=everything
        )
        left = con.execute("SELECT count(*) FROM quarantine").fetchone()
    finally:
        con.close()
    for name, n in gone.items():
        typer.echo(f"{name}: {n:,} row(s)")
    typer.echo(f"{sum(gone.values()):,} quarantined row(s) cleared; {int(left[0]) if left else 0:,} left.")


def ingests_list(
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many runs.")] = 50,
) -> None:
    """Ingest runs, newest first, with their reconciliation: read = stored + quarantined + duplicates."""
    from flopledger.ledger.runs import list_runs
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db), read_only=True)
    try:
        rows = list_runs(con, limit)
    finally:
        con.close()
    columns = None
    for row in rows:  # the files a run read, kept as JSON text: a list (CSV keeps the JSON text)
        files = _json_list(row.get("files"))
        if files is not None and fmt is OutputFormat.json:
            row["files"] = files
        elif files is not None and fmt is OutputFormat.table:  # their names; the paths in JSON
            names = [Path(str(f)).name for f in files]
            row["files"] = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if fmt is OutputFormat.table:
        columns = ["ingest_id", "started_at", "status", "source_format", "files", "rows_read", "rows_stored"]
        columns += [
            "rows_quarantined",
            "rows_duplicate",
            "rows_restated",
            "rows_superseded",
            "rows_overlapping",
        ]
    render_rows(rows, fmt, title="Ingest runs (newest first)", columns=columns)


def _json_list(value: object) -> list[object] | None:
    """``value`` (JSON text) as a list, None when it holds none."""
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


def ingests_undo(
    run: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it (`ingests list`).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Undo a run that replaced stored rows, or after which later runs skipped duplicates.",
        ),
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Remove the events one ingest run stored, e.g. to ingest its files again with the right --set
    or --map (its quarantined rows stay listed)."""
    from flopledger.ledger.runs import undo_run
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db), create=False)
    try:
        result = undo_run(con, run, force=force)
    finally:
        con.close()
    render_rows([result.as_row()], fmt, title="Undone")
    if result.rows_replaced and fmt is OutputFormat.table:
        console.print(
            f"It had replaced {result.rows_replaced} stored row(s): ingest again the files they came from.",
            highlight=False,
        )
    if result.later_runs and fmt is OutputFormat.table:
        console.print(
            f"Later run(s) {', '.join(result.later_runs)} skipped duplicates: ingest their files again.",
            highlight=False,
        )


def prices_show(
    model: Annotated[str, typer.Argument(help="Model as logged, e.g. claude-sonnet-4-5.")],
    provider: Annotated[
        str | None, typer.Option("--provider", help="Provider, when the name is ambiguous.")
    ] = None,
    overrides: OverridesOption = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The price rows that apply to a model: service tiers, long-context tiers and dates, and how
    much of the ledger's use of the model each row prices (when there is a ledger)."""
    from flopledger.ledger.repricing import price_rows

    # A ledger named by --db or $FLOPLEDGER_DB must be there; the default one is used when it is.
    named = db is not None or setting_is_set("db")
    path = resolve_db(db)
    if named and not path.is_file():
        raise InputError("no ledger at this path; check --db and $FLOPLEDGER_DB", path=str(path))
    ledger = path if path.is_file() else None
    prices = _overrides(overrides)
    try:
        rows = price_rows(model, provider, prices, ledger=ledger)
    except LedgerUnreadable as exc:
        if named:
            raise
        err_console.print(escape(f"(the catalog alone: {exc})"), highlight=False)
        ledger, rows = None, price_rows(model, provider, prices)
    if ledger is not None and rows and rows[-1].get("variant") is None:
        err_console.print(
            f"The last row: {rows[-1]['events']:,} events of the model that no price row covers "
            "(a service tier or a date outside them); they stay unpriced.",
            highlight=False,
        )
    otherwise = sum(int(r.get("stored_otherwise") or 0) for r in rows)
    # the ledger's costs of the model are not these rows' where it was priced with other prices
    differs = any(abs((r.get("stored_cost_usd") or 0) - (r.get("cost_usd") or 0)) >= 0.005 for r in rows)
    if ledger is not None and otherwise:
        stored = sum(float(r.get("stored_cost_usd") or 0) for r in rows)
        afresh = sum(float(r.get("cost_usd") or 0) for r in rows)
        # the version of the row that prices most of them (rows say the latest of theirs)
        versions = [r for r in rows if r.get("stored_price_version")]
        most = (
            max(versions, key=lambda r: int(r["stored_otherwise"]))["stored_price_version"]
            if versions
            else None
        )
        digest = f"; overrides {prices.digest}"
        what = (
            "Pass the overrides file they were priced with (--overrides or $FLOPLEDGER_OVERRIDES) to see "
            "those prices, or run `flopledger reprice` with these to store them."
            if most is not None and not most.endswith(digest)
            else "Priced with these overrides and another catalog or mapping, or stored unpriced: run "
            "`flopledger reprice` to store these."
        )
        err_console.print(
            escape(
                f"The ledger holds {otherwise:,} of these events priced with other prices "
                f"({most or 'or none: stored unpriced'}): "
                f"stored ${stored:,.2f}, with these rows ${afresh:,.2f}. {what}"
            ),
            highlight=False,
        )
    columns = None
    if fmt is OutputFormat.table:
        for r in rows:
            r["hours_utc"] = _hours(r) or "all day"
        columns = [
            "model_id",
            "variant",
            "valid_from",
            "valid_to",
            "tier_above_tokens",
            # shown where a row holds for some hours of the day alone (an off-peak price)
            *(["hours_utc"] if any(r["hours_utc"] != "all day" for r in rows) else []),
            "input_usd_per_mtok",
            "cache_read_usd_per_mtok",
            "cache_write_5m_usd_per_mtok",
            "cache_write_1h_usd_per_mtok",
            "output_usd_per_mtok",
            # shown where the model prices reasoning apart from the rest of its output
            *(
                ["output_reasoning_usd_per_mtok"]
                if any(r.get("output_reasoning_usd_per_mtok") is not None for r in rows)
                else []
            ),
            # shown where the model prices web searches (a column of zeros says nothing)
            *(["usd_per_web_search"] if any(r.get("usd_per_web_search") for r in rows) else []),
            "discount_pct",
            *(["events", "cost_usd"] if ledger is not None else []),
            *(["stored_cost_usd"] if ledger is not None and differs else []),
        ]
        for bound in ("valid_from", "valid_to"):  # price changes fall at midnight: shown as days
            filled = [r[bound] for r in rows if r.get(bound) is not None]
            if filled and all(isinstance(v, dt.datetime) and v.time() == dt.time() for v in filled):
                for r in rows:
                    r[bound] = r[bound].date() if r.get(bound) is not None else None
    # the catalog dates a tier's prices from the day it listed them; they price that tier before it too
    from flopledger.catalog.prices import backdated_tier

    backdated = sorted({f"{t[0]} from {t[1]}" for r in rows if (t := backdated_tier(str(r.get("source"))))})
    if fmt is OutputFormat.table and backdated:
        err_console.print(
            f"The catalog lists these tiers' prices from a later day; they price the tier before it too: "
            f"{', '.join(backdated)}.",
            highlight=False,
        )
    title = f"Prices of {model}"
    if ledger is not None:
        title += f"; the ledger's events of it, priced with these rows ({ledger})"
    render_rows(rows, fmt, title=title, columns=columns)


def _hours(row: dict[str, Any]) -> str | None:
    """A price row's hours of the day (UTC) as ``16:30-00:30``, or None when it holds all day."""
    start, end = row.get("tod_from_s"), row.get("tod_to_s")
    if start is None or end is None or (start, end) == (0, 86400):
        return None

    def at(s: int) -> str:
        return f"{s // 3600 % 24:02d}:{s % 3600 // 60:02d}"

    return f"{at(int(start))}-{at(int(end))}"


def prices_missing(db: DbOption = None, fmt: FormatOption = OutputFormat.table) -> None:
    """Models the ledger has no price for, with their token volume."""
    from flopledger.ledger.repricing import (
        MISSING_COLUMNS,
        all_missing,
        describe_unpriced_usage,
        missing_prices,
        unpriced_usage,
    )
    from flopledger.ledger.store import open_ledger

    con = open_ledger(resolve_db(db), read_only=True)
    if fmt is not OutputFormat.table:  # one list a script reads whole: models, then usage billed apart
        rows = all_missing(con)
        render_rows(rows, fmt, columns=MISSING_COLUMNS)
        extra = [r for r in rows if r["usage"] != "tokens"]
        if extra:  # and the line that says what it means, on stderr
            typer.echo(describe_unpriced_usage(extra), err=True)
        return
    models, extra = missing_prices(con), unpriced_usage(con)
    seen = ["first_seen", "last_seen"]
    render_rows(
        models, fmt, title="Unpriced models", columns=["provider", "model", "events", "tokens", *seen]
    )
    if not models:
        console.print("Every event has a price for its tokens.", highlight=False)
    if extra:
        render_rows(
            extra,
            fmt,
            title="Usage billed apart from tokens that no cost covers",
            columns=["provider", "model", "usage", "amount", "events", *seen],
        )


def reprice_cmd(
    db: DbOption = None,
    overrides: OverridesOption = None,
    without_overrides: Annotated[
        bool,
        typer.Option(
            "--without-overrides",
            help="Price at catalog rates though an overrides file priced the ledger (its discounts and "
            "private prices are dropped).",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Re-price all history with the current catalog and overrides file."""
    from flopledger.ledger.repricing import reprice
    from flopledger.ledger.store import open_ledger

    if without_overrides and (overrides is not None or setting_is_set("overrides")):
        raise InputError(
            "--without-overrides prices at catalog rates: it takes no overrides file (unset --overrides "
            "and $FLOPLEDGER_OVERRIDES)"
        )
    con = open_ledger(resolve_db(db), create=False)  # a mistyped --db is an error, not a new ledger
    try:
        if without_overrides:  # not even the default file in the working directory
            from flopledger.catalog.overrides import PriceOverrides

            prices = PriceOverrides.empty()
        else:
            prices = _overrides(overrides)
        result = reprice(con, prices, without_overrides=without_overrides)
    finally:
        con.close()
    render_rows([result.as_row()], fmt, title="Reprice")


def register(app: typer.Typer) -> None:
    """Attach the ledger commands to the root app."""
    app.command("demo")(demo)
    app.command("ingest")(ingest)
    app.command("report")(report)
    app.command("reprice")(reprice_cmd)
    prices = typer.Typer(help="Model prices: what applies, and what is missing.", no_args_is_help=True)
    prices.command("show")(prices_show)
    prices.command("missing")(prices_missing)
    app.add_typer(prices, name="prices")
    ingests = typer.Typer(help="Ingest runs: their reconciliation, and undoing one.", no_args_is_help=True)
    ingests.command("list")(ingests_list)
    ingests.command("undo")(ingests_undo)
    app.add_typer(ingests, name="ingests")
    quarantine = typer.Typer(help="Rows that could not be stored.", no_args_is_help=True)
    quarantine.command("list")(quarantine_list)
    quarantine.command("clear")(quarantine_clear)
    app.add_typer(quarantine, name="quarantine")
