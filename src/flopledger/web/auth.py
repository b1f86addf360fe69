"""Who is asking: a bearer token, or a browser session made by signing in with one.

Cookie-authenticated requests that change state must carry the session's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``); bearer requests carry no ambient credential and need none.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request

from flopledger.web.state import ServerState, Session
from flopledger.web.tokens import Principal, principal_by_id, verify_token

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Caller",
    "caller_of",
    "check_csrf",
    "require_admin",
    "server_state",
]

SESSION_COOKIE = "flopledger_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Caller:
    principal: Principal
    session: Session | None  # None for bearer requests


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.flopledger
    return state


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _unauthorised() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="sign in: send `Authorization: Bearer TOKEN` (see `flopledger tokens create`)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def caller_of(request: Request) -> Caller:
    """The authenticated caller, or 401 (an unknown, revoked or missing token)."""
    state = server_state(request)
    secret = _bearer(request)
    with state.cursor() as cur:
        if secret is not None:
            principal = verify_token(cur, secret)
            if principal is None:
                raise _unauthorised()
            return Caller(principal, None)
        session = state.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise _unauthorised()
        principal = principal_by_id(cur, session.token_id)
    if principal is None:  # revoked since sign-in
        state.end_session(request.cookies.get(SESSION_COOKIE))
        raise _unauthorised()
    return Caller(principal, session)


def require_admin(caller: Caller) -> None:
    if not caller.principal.is_admin:
        raise HTTPException(status_code=403, detail="this needs an admin token")


def check_csrf(caller: Caller, supplied: str | None) -> None:
    """Refuse a cookie-authenticated state change without the session's CSRF token."""
    if caller.session is None:
        return
    if not supplied or not hmac.compare_digest(supplied, caller.session.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token; reload the page")
