"""`flopledger integrity ...` commands: parse, call the library, render."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from flopledger.cli.options import DbOption, FormatOption, resolve_db
from flopledger.cli.output import OutputFormat, console, render_rows
from flopledger.errors import InputError

if TYPE_CHECKING:  # the detectors (scipy, stix2) are imported when a command runs, not at start-up
    from flopledger.integrity.detectors import Thresholds

__all__ = ["app"]

app = typer.Typer(
    help="Token-burn bots, distillation networks, indicator exchange between labs.", no_args_is_help=True
)

ConsortiumKey = Annotated[
    str,
    typer.Option(
        "--consortium-key", envvar="FLOPLEDGER_CONSORTIUM_KEY", help="Key shared with partner labs."
    ),
]


ThresholdsOption = Annotated[
    Path | None,
    typer.Option(
        "--thresholds",
        help="Calibration file (fpr_target, source, thresholds); default: the shipped calibration.",
    ),
]


def _thresholds(path: Path | None) -> Thresholds | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the calibration file: {exc.strerror}", path=str(path)) from exc
    from flopledger.integrity.detectors import thresholds_from_json

    return thresholds_from_json(text, str(path))


@app.command()
def outcomes(
    files: Annotated[
        list[Path], typer.Argument(help="Outcome files: CSV or JSON lines (user, ts, kind, weight).")
    ],
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Ingest outcomes (commits, merged changes, closed tickets) so usage is judged by what it produced."""
    from flopledger.integrity.outcomes import ingest_outcomes
    from flopledger.ledger.store import open_ledger

    result = ingest_outcomes(open_ledger(resolve_db(db)), files)
    summary: dict[str, object] = {k: v for k, v in dataclasses.asdict(result).items() if k != "rejected"}
    rejected = [{k: getattr(r, k) for k in ("path", "line", "field", "reason")} for r in result.rejected]
    if fmt is OutputFormat.json:  # machines get the rejected rows too (they are also in the quarantine)
        summary["rejected"] = rejected
    render_rows([summary], fmt, title="Outcomes ingest")
    if rejected and fmt is OutputFormat.table:
        render_rows(rejected, fmt, title="Rejected rows")


@app.command()
def scan(
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    all_accounts: Annotated[
        bool, typer.Option("--all", help="Show every scored account, not only flagged.")
    ] = False,
    thresholds: ThresholdsOption = None,
) -> None:
    """Score accounts for token burn and distillation; flagged ones by default."""
    from flopledger.integrity.scan import scan as run_scan
    from flopledger.ledger.store import open_ledger

    findings = run_scan(
        open_ledger(resolve_db(db), read_only=True), _thresholds(thresholds), flagged_only=not all_accounts
    )
    rows = [dataclasses.asdict(f) for f in findings]
    if fmt is OutputFormat.table:
        for row in rows:
            row["evidence"] = "; ".join(
                f"{e['feature']} {e['value']:g} (baseline {e['baseline']:g})" for e in row["evidence"]
            )
    render_rows(
        rows,
        fmt,
        title="Integrity scan",
        columns=["account", "kind", "score", "flagged", "cluster", "evidence"],
    )


@app.command()
def leaderboard(
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    limit: Annotated[int, typer.Option(min=0, help="Rows to show.")] = 50,
) -> None:
    """Rank accounts by outcomes per dollar, beside the raw token rank, marking flagged token burners."""
    from flopledger.integrity.leaderboard import leaderboard as build_leaderboard
    from flopledger.ledger.store import open_ledger

    board = build_leaderboard(open_ledger(resolve_db(db), read_only=True), limit=limit)
    render_rows([dataclasses.asdict(r) for r in board], fmt, title="Outcomes per dollar")


@app.command("export-stix")
def export_stix(
    out: Annotated[Path, typer.Argument(help="Bundle file to write (JSON).")],
    consortium_key: ConsortiumKey,
    lab_name: Annotated[
        str, typer.Option("--lab-name", help="Your lab's identity in the bundle.")
    ] = "flopledger lab",
    tlp: Annotated[str, typer.Option(help="TLP marking: white, green, amber or red.")] = "amber",
    db: DbOption = None,
) -> None:
    """Write a STIX 2.1 bundle of flagged campaigns' indicators (keyed hashes only)."""
    from flopledger.integrity.stix import export_stix as write_stix
    from flopledger.ledger.store import open_ledger

    count = write_stix(
        open_ledger(resolve_db(db), read_only=True),
        out,
        consortium_key=consortium_key.encode(),
        lab_name=lab_name,
        tlp=tlp,
    )
    console.print(escape(f"wrote {count} indicator(s) to {out}"))


@app.command()
def match(
    partner: Annotated[Path, typer.Argument(help="A partner's STIX bundle.")],
    consortium_key: ConsortiumKey,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show which local accounts match a partner's indicators, and on what."""
    from flopledger.integrity.stix import match_indicators
    from flopledger.ledger.store import open_ledger

    matches = match_indicators(
        open_ledger(resolve_db(db), read_only=True), partner, consortium_key=consortium_key.encode()
    )
    render_rows([dataclasses.asdict(m) for m in matches], fmt, title="Matches")
