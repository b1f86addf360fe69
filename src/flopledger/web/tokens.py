"""API tokens: created once, stored only as a SHA-256 hash, in the ledger's ``api_tokens`` table.

An admin token sees every team; a viewer token sees one team only.

>>> from flopledger.ledger.store import open_ledger
>>> con = open_ledger(":memory:")
>>> issued = create_token(con, role="viewer", team="agents")
>>> verify_token(con, issued.secret).team
'agents'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import duckdb

from flopledger.errors import InputError

__all__ = [
    "ROLES",
    "IssuedToken",
    "Principal",
    "TokenRecord",
    "create_token",
    "ensure_token_table",
    "list_tokens",
    "principal_by_id",
    "revoke_token",
    "verify_token",
]

ROLES: tuple[str, ...] = ("admin", "viewer")
_PREFIX = "flt_"

_DDL = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id VARCHAR PRIMARY KEY,
    token_sha256 VARCHAR NOT NULL UNIQUE,
    role VARCHAR NOT NULL,
    team VARCHAR,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)
"""


@dataclass(frozen=True)
class Principal:
    """Who is asking: ``team`` is None for an admin (every team), else the one team a viewer sees."""

    token_id: str
    role: str
    team: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    secret: str  # shown once; never stored


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str
    team: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure_token_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``api_tokens`` when the ledger has none yet."""
    con.execute(_DDL)


def create_token(con: duckdb.DuckDBPyConnection, *, role: str, team: str | None = None) -> IssuedToken:
    """Issue a new token; only its hash is written. A viewer needs a team, an admin has none."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    team = team.strip() if team is not None else None
    if role == "viewer" and not team:
        raise InputError("a viewer token needs --team TEAM: the one team it may see", field="team")
    if role == "admin" and team:
        raise InputError("an admin token sees every team; drop --team or use --role viewer", field="team")
    ensure_token_table(con)
    secret = _PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(id=secrets.token_hex(6), role=role, team=team, created_at=_now(), revoked_at=None)
    con.execute(
        "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL)",
        [record.id, _hash(secret), record.role, record.team, record.created_at],
    )
    return IssuedToken(record, secret)


def list_tokens(con: duckdb.DuckDBPyConnection) -> list[TokenRecord]:
    """Every token ever issued (hashes are never returned), oldest first."""
    ensure_token_table(con)
    rows = con.execute(
        "SELECT id, role, team, created_at, revoked_at FROM api_tokens ORDER BY created_at, id"
    ).fetchall()
    return [TokenRecord(*row) for row in rows]


def revoke_token(con: duckdb.DuckDBPyConnection, token_id: str) -> TokenRecord:
    """Revoke a token by id; it stops working at once, sessions made with it included."""
    ensure_token_table(con)
    row = con.execute("SELECT revoked_at FROM api_tokens WHERE id = ?", [token_id]).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("SELECT id FROM api_tokens").fetchall()]
        hint = f"; known ids: {', '.join(known[:10])}" if known else "; no token was ever created"
        raise InputError(f"no token with id {token_id!r}{hint} (see `flopledger tokens list`)", field="id")
    if row[0] is None:
        con.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", [_now(), token_id])
    return next(t for t in list_tokens(con) if t.id == token_id)


def _principal(row: tuple[str, str, str | None] | None) -> Principal | None:
    if row is None:
        return None
    token_id, role, team = row
    return Principal(token_id, role, None if role == "admin" else team)


def verify_token(con: duckdb.DuckDBPyConnection, secret: str) -> Principal | None:
    """The principal of a live token, or None for an unknown or revoked one."""
    if not secret.startswith(_PREFIX):
        return None
    row = con.execute(
        "SELECT id, role, team FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", [_hash(secret)]
    ).fetchone()
    return _principal(row)


def principal_by_id(con: duckdb.DuckDBPyConnection, token_id: str) -> Principal | None:
    """The principal of a live token by id (sessions keep the id, never the secret)."""
    row = con.execute(
        "SELECT id, role, team FROM api_tokens WHERE id = ? AND revoked_at IS NULL", [token_id]
    ).fetchone()
    return _principal(row)
