"""One call for the ``brief`` command: build, render, deliver, record, and say how it went.

Exit codes (for cron):

====  =====================================================================
0     brief built and every requested delivery succeeded (it is recorded)
1     a flopledger error: bad option value, missing ledger or no spend, bad budgets or fleet file
2     a command-line usage error (unknown option, bad choice)
3     the webhook delivery failed (the email, if asked for, was sent)
4     the email delivery failed (the webhook, if asked for, was posted)
5     every requested delivery failed
====  =====================================================================

A brief is recorded as sent only when every delivery succeeded, so a retry after 3, 4 or 5 sends
the same insights again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from flopledger.briefs.budget import find_budgets
from flopledger.briefs.compose import BriefInputs, build_brief
from flopledger.briefs.deliver import Delivery, SmtpTarget, post_webhook, send_email
from flopledger.briefs.fleet_plan import find_fleet_spec
from flopledger.briefs.history import record_sent
from flopledger.briefs.model import Brief
from flopledger.briefs.render import render
from flopledger.errors import InputError
from flopledger.ledger.store import open_ledger

__all__ = [
    "EXIT_ALL_DELIVERIES_FAILED",
    "EXIT_EMAIL_FAILED",
    "EXIT_OK",
    "EXIT_WEBHOOK_FAILED",
    "BriefRun",
    "exit_code",
    "run_brief",
]

EXIT_OK = 0
EXIT_WEBHOOK_FAILED = 3
EXIT_EMAIL_FAILED = 4
EXIT_ALL_DELIVERIES_FAILED = 5


@dataclass(frozen=True)
class BriefRun:
    brief: Brief
    text: str
    deliveries: tuple[Delivery, ...]
    recorded: bool
    exit_code: int


def exit_code(deliveries: Sequence[Delivery]) -> int:
    """The exit code for a set of delivery outcomes (see the module docstring)."""
    failed = {d.channel for d in deliveries if not d.ok}
    if not failed:
        return EXIT_OK
    if len(failed) == len({d.channel for d in deliveries}):
        return (
            EXIT_ALL_DELIVERIES_FAILED
            if len(deliveries) > 1
            else (EXIT_WEBHOOK_FAILED if "webhook" in failed else EXIT_EMAIL_FAILED)
        )
    return EXIT_WEBHOOK_FAILED if "webhook" in failed else EXIT_EMAIL_FAILED


def run_brief(
    db: Path,
    inputs: BriefInputs,
    *,
    fmt: str = "markdown",
    webhook: str | None = None,
    smtp: SmtpTarget | None = None,
    record: bool = True,
) -> BriefRun:
    """Build the brief from the ledger at ``db``, render it as ``fmt``, deliver it, record it.

    Budgets and a fleet spec not given in ``inputs`` are looked for beside the ledger file.
    """
    if not db.is_file():
        raise InputError(
            f"no ledger at {db}; run `flopledger ingest` or `flopledger demo` first", path=str(db)
        )
    inputs = replace(
        inputs, budgets=find_budgets(inputs.budgets, db), fleet_spec=find_fleet_spec(inputs.fleet_spec, db)
    )
    con = open_ledger(db)
    try:
        brief = build_brief(con, inputs)
        text = render(brief, fmt)
        deliveries: list[Delivery] = []
        if webhook is not None:
            deliveries.append(post_webhook(brief, webhook))
        if smtp is not None:
            deliveries.append(send_email(brief, smtp))
        code = exit_code(deliveries)
        recorded = record and code == EXIT_OK
        if recorded:
            record_sent(con, brief.window, brief.insights)
    finally:
        con.close()
    return BriefRun(brief, text, tuple(deliveries), recorded, code)
