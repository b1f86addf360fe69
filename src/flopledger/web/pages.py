"""Server-rendered pages (Jinja2), sign-in and sign-out. Each page shows its JSON twin's payload."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote

import duckdb
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from flopledger.web import dashboard
from flopledger.web.api import scope_of, team_and_user
from flopledger.web.auth import SESSION_COOKIE, Caller, caller_of, check_csrf, server_state
from flopledger.web.fleet_view import fleet_page
from flopledger.web.integrity_view import integrity_page
from flopledger.web.overview_frame import current_frame
from flopledger.web.queries import Scope
from flopledger.web.state import SESSION_TTL
from flopledger.web.tokens import verify_token

__all__ = ["router", "templates"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(files("flopledger.web") / "templates"))
_LOGIN_CSRF_COOKIE = "flopledger_login_csrf"


def _script_json(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped above for the script context


def _team_link(team: str) -> str:
    return "/teams/" + quote(team, safe="")


def _user_link(team: str) -> Callable[[str], str]:
    return lambda user: f"{_team_link(team)}/users/{quote(user, safe='')}"


templates.env.filters["script_json"] = _script_json
templates.env.globals["team_link"] = _team_link
templates.env.globals["user_link"] = _user_link
templates.env.filters["usd"] = lambda v: "" if v is None else f"${float(v):,.2f}"
templates.env.filters["num"] = lambda v: "" if v is None else f"{float(v):,.0f}"


def _login_page(request: Request, status: int, error: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": nonce, "error": error, "payload": {}, "caller": None},
        status_code=status,
    )
    response.set_cookie(
        _LOGIN_CSRF_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=server_state(request).config.secure_cookies,
        max_age=600,
    )
    return response


def _page(
    request: Request, template: str, title: str, payload: Any, caller: Caller, scope: Scope | None = None
) -> Response:
    """``scope``: the days a page covers, shown (and chosen) above it."""
    context = {
        "title": title,
        "payload": payload,
        "caller": caller.principal,
        "csrf": caller.session.csrf if caller.session else "",
        "period": None if scope is None else {"since": scope.since or "", "until": scope.until or ""},
    }
    return templates.TemplateResponse(request, template, context)


def _caller_or_login(request: Request) -> Caller | Response:
    try:
        return caller_of(request)
    except HTTPException as exc:
        if exc.status_code == 401:
            return _login_page(request, 401)
        raise


def _not_found(request: Request, caller: Caller) -> Response:
    response = _page(request, "not_found.html", "Not found", {}, caller)
    response.status_code = 404
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _login_page(request, 200)


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()], csrf_token: Annotated[str, Form()] = ""
) -> Response:
    expected = request.cookies.get(_LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(request, 403, "The sign-in form expired; try again.")
    state = server_state(request)
    with state.cursor() as cur:
        principal = verify_token(cur, token.strip())
    if principal is None:
        return _login_page(request, 401, "Unknown or revoked token.")
    sid, _ = state.new_session(principal.token_id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="strict",
        secure=state.config.secure_cookies,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
    )
    response.delete_cookie(_LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    found = _caller_or_login(request)
    if isinstance(found, Response):
        return found
    check_csrf(found, csrf_token)
    server_state(request).end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _days(request: Request) -> tuple[dt.date | None, dt.date | None]:
    """The page's ``?since=`` and ``?until=`` (days, inclusive, as its JSON twin takes them)."""
    days: list[dt.date | None] = []
    for name in ("since", "until"):
        text = (request.query_params.get(name) or "").strip()
        try:
            days.append(dt.date.fromisoformat(text) if text else None)
        except ValueError as exc:
            raise HTTPException(400, f"{name} {text!r} is not a day; write it as YYYY-MM-DD") from exc
    return days[0], days[1]


def _scoped_page(
    request: Request,
    template: str,
    title: str,
    build: Callable[[duckdb.DuckDBPyConnection, Scope], dict[str, Any] | None],
) -> Response:
    """A signed-in caller's page built by ``build`` (a cursor and the caller's scope); None is 404."""
    caller = _caller_or_login(request)
    if isinstance(caller, Response):
        return caller
    try:
        scope = scope_of(caller, *_days(request))
    except HTTPException as exc:  # a page, with the days picker to put it right, not bare JSON
        response = _page(
            request, "bad_request.html", title, {"message": exc.detail}, caller, Scope(caller.principal.team)
        )
        response.status_code = exc.status_code
        return response
    with server_state(request).cursor() as cur:
        payload = build(cur, scope)
    if payload is None:
        return _not_found(request, caller)
    return _page(request, template, title, payload, caller, scope)


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    state = server_state(request)
    return _scoped_page(
        request,
        "overview.html",
        "Overview",
        lambda cur, scope: dashboard.overview_page(cur, scope, state.config, current_frame(state)),
    )


@router.get("/teams", response_class=HTMLResponse)
def teams(request: Request) -> Response:
    return _scoped_page(request, "teams.html", "Teams", dashboard.teams_page)


# Names may hold "/" (sent as %2F, which the path arrives decoded from): both routes take whole paths,
# the user's first, so "/teams/infra/ml/users/bob" is user bob of team infra/ml; the names are read
# from the path as sent (team_and_user), so a team or user named with "/users/" has its page too.
@router.get("/teams/{team:path}/users/{user:path}", response_class=HTMLResponse)
def user(request: Request, team: str, user: str) -> Response:
    team_name, user_name = team_and_user(request, team, user)
    if user_name is None:
        return _team(request, team_name)
    return _scoped_page(
        request,
        "user.html",
        f"User {user_name}",
        lambda cur, scope: dashboard.user_page(cur, scope, team_name, user_name),
    )


@router.get("/teams/{team:path}", response_class=HTMLResponse)
def team(request: Request, team: str) -> Response:
    return _team(request, team)


def _team(request: Request, team: str) -> Response:
    return _scoped_page(
        request, "team.html", f"Team {team}", lambda cur, scope: dashboard.team_page(cur, scope, team)
    )


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> Response:
    return _scoped_page(request, "models.html", "Models", dashboard.models_page)


@router.get("/integrity", response_class=HTMLResponse)
def integrity(request: Request) -> Response:
    caller = _caller_or_login(request)
    if isinstance(caller, Response):
        return caller
    payload = integrity_page(server_state(request), scope_of(caller))  # all days: it takes no window
    return _page(request, "integrity.html", "Integrity", payload, caller)


@router.get("/fleet", response_class=HTMLResponse)
def fleet(request: Request) -> Response:
    caller = _caller_or_login(request)
    if isinstance(caller, Response):
        return caller
    if not caller.principal.is_admin:
        response = _page(request, "forbidden.html", "Admins only", {}, caller)
        response.status_code = 403
        return response
    state = server_state(request)
    with state.cursor() as cur:
        payload = fleet_page(cur, state.config)
    return _page(request, "fleet.html", "Fleet", payload, caller)
