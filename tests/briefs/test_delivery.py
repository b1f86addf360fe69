"""Delivery to a real SMTP server and a real HTTP receiver on 127.0.0.1, and the exit codes cron reads."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

from flopledger.briefs import (
    EXIT_ALL_DELIVERIES_FAILED,
    EXIT_EMAIL_FAILED,
    EXIT_OK,
    EXIT_WEBHOOK_FAILED,
    BriefInputs,
    SmtpTarget,
    run_brief,
)
from flopledger.cli import app
from flopledger.errors import InputError

Server = Callable[..., AbstractContextManager[tuple[Any, Any]]]
DATE = "2026-03-15"


def sent_rows(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "brief_sent" not in tables:
            return 0
        row = con.execute("SELECT count(*) FROM brief_sent").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_and_email_are_delivered(
    small_ledger: Path, smtp_server: Server, webhook_server: Server
) -> None:
    with webhook_server() as (url, inbox), smtp_server() as (port, mailbox):
        target = SmtpTarget("127.0.0.1", port, ("finops@example.test", "lead@example.test"))
        run = run_brief(small_ledger, BriefInputs(period="day"), webhook=url, smtp=target)
    assert run.exit_code == EXIT_OK and run.recorded
    assert [d.ok for d in run.deliveries] == [True, True]

    ((path, headers, body),) = inbox.posts
    assert path == "/hooks/brief" and headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["text"] == run.text  # the Markdown brief, as chat tools show a plain text field
    assert payload["text"].startswith("# flopledger daily brief, 2026-03-15")
    sections = [b for b in payload["blocks"] if b["type"] == "section" and "accessory" in b]
    assert [s["accessory"]["url"] for s in sections] == [i["link"] for i in payload["brief"]["insights"]]
    assert "*1. Team agents spend up +$30.00 (+113.6%)*" in sections[0]["text"]["text"]

    ((sender, rcpts, raw),) = mailbox.messages
    assert (sender, rcpts) == ("flopledger@localhost", ["finops@example.test", "lead@example.test"])
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"].startswith("flopledger daily brief, 2026-03-15: $85.30 spent")
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == run.text  # SMTP lines end in CRLF
    assert "<svg" in html.get_content() and "Team agents spend up +$30.00" in html.get_content()
    assert sent_rows(small_ledger) == 3


def test_webhook_failure_is_exit_3_and_not_recorded(
    small_ledger: Path, smtp_server: Server, webhook_server: Server
) -> None:
    with webhook_server(status=500) as (url, inbox), smtp_server() as (port, mailbox):
        run = run_brief(
            small_ledger, BriefInputs(), webhook=url, smtp=SmtpTarget("127.0.0.1", port, ("a@b.test",))
        )
    assert len(inbox.posts) == 1 and len(mailbox.messages) == 1
    assert run.exit_code == EXIT_WEBHOOK_FAILED and not run.recorded
    assert run.deliveries[0].detail == "HTTP 500 Internal Server Error"
    assert sent_rows(small_ledger) == 0  # the retry will send the same insights


def test_refused_recipient_is_exit_4(small_ledger: Path, smtp_server: Server) -> None:
    with smtp_server(reject_rcpt=True) as (port, mailbox):
        run = run_brief(small_ledger, BriefInputs(), smtp=SmtpTarget("127.0.0.1", port, ("nobody@b.test",)))
    assert run.exit_code == EXIT_EMAIL_FAILED and mailbox.messages == []
    assert "550" in run.deliveries[0].detail and sent_rows(small_ledger) == 0


def test_every_delivery_failing_is_exit_5(small_ledger: Path) -> None:
    dead = free_port()
    run = run_brief(
        small_ledger,
        BriefInputs(),
        webhook=f"http://127.0.0.1:{dead}/hook",
        smtp=SmtpTarget("127.0.0.1", dead, ("a@b.test",)),
    )
    assert run.exit_code == EXIT_ALL_DELIVERIES_FAILED
    assert "cannot reach the webhook" in run.deliveries[0].detail
    assert run.deliveries[1].detail.startswith(f"SMTP 127.0.0.1:{dead}:")


def test_cli_exit_codes(small_ledger: Path, webhook_server: Server) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["brief", "--db", str(small_ledger), "--date", DATE, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["date"] == DATE
    with webhook_server(status=404) as (url, _inbox):
        failed = runner.invoke(app, ["brief", "--db", str(small_ledger), "--webhook", url, "--quiet"])
    assert failed.exit_code == 3 and failed.stdout == ""
    assert "delivery failed: webhook" in failed.stderr and "HTTP 404" in failed.stderr
    usage = runner.invoke(app, ["brief", "--db", str(small_ledger), "--period", "month"])
    assert usage.exit_code == 2
    no_to = runner.invoke(app, ["brief", "--db", str(small_ledger), "--smtp", "127.0.0.1:25"])
    assert isinstance(no_to.exception, InputError) and "--to" in str(no_to.exception)
    bad_smtp = runner.invoke(
        app, ["brief", "--db", str(small_ledger), "--smtp", "mailhost", "--to", "a@b.test"]
    )
    assert isinstance(bad_smtp.exception, InputError) and "HOST:PORT" in str(bad_smtp.exception)
