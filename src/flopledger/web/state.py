"""What the server holds while it runs: the ledger connection, sessions and its settings."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flopledger.ledger.store import open_ledger
from flopledger.web.tokens import ensure_token_table

__all__ = ["ServerState", "Session", "WebConfig"]

SESSION_TTL = dt.timedelta(hours=12)


@dataclass(frozen=True)
class WebConfig:
    """How ``flopledger serve`` was started.

    ``budgets``: a budgets TOML file for the overview's forecast-against-budget; ``allocation`` and
    ``capacity``: JSON written by ``flopledger fleet allocate|capacity --format json`` for the fleet page.
    ``secure_cookies``: mark the session cookie Secure (behind HTTPS).
    """

    db: Path
    budgets: Path | None = None
    allocation: Path | None = None
    capacity: Path | None = None
    secure_cookies: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    overrides: Path | None = None  # negotiated prices for spans received over OTLP
    overrides_required: bool = False  # named by the user: a missing file is an error, not no prices
    fingerprint_key: bytes = b""


@dataclass(frozen=True)
class Session:
    token_id: str
    csrf: str
    expires_at: dt.datetime


@dataclass
class ServerState:
    """One read-write DuckDB connection per server; each request reads through its own cursor.

    Writes (OTLP intake, token changes) are serialised by ``write_lock``.
    """

    config: WebConfig
    con: duckdb.DuckDBPyConnection
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[str, Session] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)
    cache_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, config: WebConfig) -> ServerState:
        con = open_ledger(config.db)
        ensure_token_table(con)
        return cls(config=config, con=con)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def new_session(self, token_id: str) -> tuple[str, Session]:
        now = dt.datetime.now(dt.UTC)
        self.sessions = {k: s for k, s in self.sessions.items() if s.expires_at > now}
        sid = secrets.token_urlsafe(32)
        session = Session(token_id, secrets.token_urlsafe(32), now + SESSION_TTL)
        self.sessions[sid] = session
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        s = self.sessions.get(sid)
        if s is None or s.expires_at <= dt.datetime.now(dt.UTC):
            return None
        return s

    def end_session(self, sid: str | None) -> None:
        if sid:
            self.sessions.pop(sid, None)

    def close(self) -> None:
        self.con.close()
