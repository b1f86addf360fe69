"""Fixtures: the demo ledger (built once per session through the real ingest path), a small hand-made
ledger whose story is known, and real receivers on 127.0.0.1 (SMTP over a socket, HTTP webhooks).

The small ledger: fifteen days, 2026-03-01 to 2026-03-15 (a Sunday), one row per team, model and day.
``agents`` on claude-sonnet-4-5 triples its output tokens on the last day (a spend rise); ``platform``
on gpt-5 sees its cache-read share of input fall from 80% to 40% on the last day; ``research`` is
steady. Unit prices are fixed per model, so expected figures can be worked out by hand.

The SMTP receiver speaks enough of RFC 5321 for smtplib (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
QUIT); ``reject_rcpt`` makes it refuse recipients with 550, as a real server refuses a mailbox.
"""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flopledger.ledger.schema import COST_COLUMNS, TOKEN_COLUMNS
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.demo import build_demo_ledger

PRICES = {  # input, cache read, output: USD per million tokens
    "claude-sonnet-4-5": (3.0, 0.30, 15.0),
    "gpt-5": (1.25, 0.125, 10.0),
    "claude-opus-4-1": (15.0, 1.5, 75.0),
}
FIRST = dt.date(2026, 3, 1)
LAST = dt.date(2026, 3, 15)


def day_rows(day: dt.date) -> list[tuple[str, str, str, int, int, int]]:
    """(team, user, model, uncached input, cache read, output) tokens on ``day``."""
    last = day == LAST
    return [
        ("agents", "eng-1", "claude-sonnet-4-5", 2_000_000, 18_000_000, 3_000_000 if last else 1_000_000),
        (
            "platform",
            "svc-etl",
            "gpt-5",
            6_000_000 if last else 2_000_000,
            4_000_000 if last else 8_000_000,
            500_000,
        ),
        ("research", "eng-2", "claude-opus-4-1", 400_000, 1_600_000, 100_000),
    ]


def build_small_ledger(path: Path) -> Path:
    con = open_ledger(path)
    rows = []
    day = FIRST
    while day <= LAST:
        for team, user, model, uncached, cached, out in day_rows(day):
            p_in, p_cr, p_out = PRICES[model]
            c_in, c_cr, c_out = uncached * p_in / 1e6, cached * p_cr / 1e6, out * p_out / 1e6
            rows.append(
                (
                    f"{day}-{team}",
                    dt.datetime.combine(day, dt.time(12)),
                    "anthropic",
                    model,
                    "org",
                    team,
                    team,
                    user,
                    f"key-{team}",
                    "standard",
                    100,
                    uncached,
                    cached,
                    0,
                    0,
                    out,
                    0,
                    c_in,
                    c_cr,
                    0.0,
                    0.0,
                    c_out,
                    0.0,
                    0.0,
                    c_in + c_cr + c_out,
                    c_in + c_cr + c_out,
                    True,
                )
            )
        day += dt.timedelta(days=1)
    columns = [
        "event_id",
        "ts",
        "provider",
        "model",
        "org",
        "project",
        "team",
        "user",
        "api_key",
        "service_tier",
        "requests",
        *TOKEN_COLUMNS,
        *COST_COLUMNS,
        "request_cost_usd",
        "list_cost_usd",
        "cost_usd",
        "priced",
    ]
    names = ", ".join(f'"{c}"' for c in columns)
    con.executemany(f"INSERT INTO events ({names}) VALUES ({', '.join('?' * len(columns))})", rows)
    con.close()
    return path


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    reject_rcpt: bool = False


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpServer

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        box = self.server.mailbox
        self._reply("220 receiver.test ESMTP ready")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                self._reply("250-receiver.test")
                self._reply("250 8BITMIME")
            elif verb == "HELO":
                self._reply("250 receiver.test")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                self._reply("250 OK")
            elif verb == "RCPT":
                if box.reject_rcpt:
                    self._reply("550 5.1.1 mailbox unavailable")
                else:
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                    self._reply("250 OK")
            elif verb == "DATA":
                if not rcpts:
                    self._reply("503 need RCPT first")
                    continue
                self._reply("354 end with <CRLF>.<CRLF>")
                chunks = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b".\n", b""):
                        break
                    chunks.append(data[1:] if data.startswith(b"..") else data)
                box.messages.append((sender, rcpts, b"".join(chunks)))
                self._reply("250 OK queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            else:
                self._reply("502 command not implemented")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mailbox: Mailbox


@contextmanager
def smtp_receiver(*, reject_rcpt: bool = False) -> Iterator[tuple[int, Mailbox]]:
    """Run an SMTP receiver on a free port of 127.0.0.1; yields (port, mailbox)."""
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    server.mailbox = Mailbox(reject_rcpt=reject_rcpt)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.mailbox
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Inbox:
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.inbox.posts.append((self.path, dict(self.headers.items()), body))
        self.send_response(self.server.inbox.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if self.server.inbox.status < 300 else b"no")

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return


class _HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    inbox: Inbox


@contextmanager
def http_receiver(*, status: int = 200) -> Iterator[tuple[str, Inbox]]:
    """Run an HTTP server on a free port of 127.0.0.1 that records POSTs; yields (url, inbox)."""
    server = _HookServer(("127.0.0.1", 0), _HookHandler)
    server.inbox = Inbox(status=status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/brief", server.inbox
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo organisation, seed 0, as a ledger file (tests that write use ``demo_copy``)."""
    db = tmp_path_factory.mktemp("demo") / "ledger.duckdb"
    build_demo_ledger(db, seed=0)
    return db


@pytest.fixture()
def demo_copy(demo_ledger: Path, tmp_path: Path) -> Path:
    """A private copy of the demo ledger, so sent-insight records do not leak between tests."""
    target = tmp_path / "ledger.duckdb"
    shutil.copyfile(demo_ledger, target)
    return target


@pytest.fixture()
def small_ledger(tmp_path: Path) -> Path:
    return build_small_ledger(tmp_path / "small.duckdb")


@pytest.fixture()
def smtp_server() -> Callable[..., AbstractContextManager[tuple[int, Mailbox]]]:
    return smtp_receiver


@pytest.fixture()
def webhook_server() -> Callable[..., AbstractContextManager[tuple[str, Inbox]]]:
    return http_receiver
