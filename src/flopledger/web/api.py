"""The JSON API under ``/api/v1``: one twin per page, plus tokens and the OTLP receiver."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from flopledger.errors import InputError
from flopledger.web import dashboard, otlp
from flopledger.web.auth import CSRF_HEADER, Caller, caller_of, check_csrf, require_admin, server_state
from flopledger.web.fleet_view import fleet_page
from flopledger.web.integrity_view import integrity_page
from flopledger.web.overview_frame import current_frame, rebuild_frame
from flopledger.web.queries import Scope
from flopledger.web.tokens import ROLES, create_token, list_tokens, revoke_token

__all__ = ["router", "scope_of"]

router = APIRouter()
Authed = Annotated[Caller, Depends(caller_of)]
Since = Annotated[dt.date | None, Query(description="First day, inclusive (YYYY-MM-DD).")]
Until = Annotated[dt.date | None, Query(description="Last day, inclusive (YYYY-MM-DD).")]
CsrfHeader = Annotated[str | None, Header(alias=CSRF_HEADER, include_in_schema=False)]
Payload = dict[str, Any]
_NOT_FOUND = "not found"


def scope_of(caller: Caller, since: dt.date | None = None, until: dt.date | None = None) -> Scope:
    """What the caller may see, over the days from ``since`` to ``until`` (both inclusive)."""
    if since is not None and until is not None and since > until:
        raise HTTPException(400, f"since ({since}) is after until ({until}); both days are inclusive")
    return Scope(caller.principal.team, since, until)


@router.get("/api/v1/me", tags=["session"])
def me(caller: Authed) -> Payload:
    """The caller's role and, for a viewer, its team."""
    p = caller.principal
    return {"token_id": p.token_id, "role": p.role, "team": p.team}


@router.get("/api/v1/overview", tags=["pages"])
def overview(request: Request, caller: Authed, since: Since = None, until: Until = None) -> Payload:
    """Spend per day by token class, top teams and models, forecast against budgets."""
    state = server_state(request)
    frame = current_frame(state)
    with state.cursor() as cur:
        return dashboard.overview_page(cur, scope_of(caller, since, until), state.config, frame)


@router.get("/api/v1/teams", tags=["pages"])
def teams(request: Request, caller: Authed, since: Since = None, until: Until = None) -> Payload:
    """Spend per team (a viewer: its own team only)."""
    with server_state(request).cursor() as cur:
        return dashboard.teams_page(cur, scope_of(caller, since, until))


def team_and_user(request: Request, team: str, user: str | None = None) -> tuple[str, str | None]:
    """The team and user a ``.../teams/TEAM[/users/USER]`` path names, read from the path as sent.

    Names may hold "/" and even "/users/", sent encoded (``%2F``); the routes see the path decoded,
    where they could not be told from the separator. ``team`` and ``user`` (the route's reading)
    stand when the path as sent is not known. Of a path sent with names unencoded, the last
    "/users/" separates them, as the routes read it.
    """
    raw = request.scope.get("raw_path")
    if not raw:
        return team, user
    path = raw.decode("ascii", "replace").split("?", 1)[0]
    _, sep, rest = path.partition("/teams/")
    if not sep:
        return team, user
    head, sep, tail = rest.rpartition("/users/")
    return (unquote(head), unquote(tail)) if sep else (unquote(rest), None)


# Names may hold "/" (sent as %2F): whole-path parameters, the user's route first; the names
# themselves are read from the path as sent (team_and_user), so a decoded "/users/" inside a
# team's name still reaches the team's page.
@router.get(
    "/api/v1/teams/{team:path}/users/{user:path}",
    tags=["pages"],
    responses={404: {"description": "No such user"}},
)
def user(
    request: Request, caller: Authed, team: str, user: str, since: Since = None, until: Until = None
) -> Payload:
    """One user's spend in a team, by model and API key, per day."""
    team_name, user_name = team_and_user(request, team, user)
    with server_state(request).cursor() as cur:
        scope = scope_of(caller, since, until)
        if user_name is None:
            page = dashboard.team_page(cur, scope, team_name)
        else:
            page = dashboard.user_page(cur, scope, team_name, user_name)
    if page is None:
        raise HTTPException(404, _NOT_FOUND)
    return page


@router.get("/api/v1/teams/{team:path}", tags=["pages"], responses={404: {"description": "No such team"}})
def team(request: Request, caller: Authed, team: str, since: Since = None, until: Until = None) -> Payload:
    """One team's users, models and daily spend."""
    with server_state(request).cursor() as cur:
        page = dashboard.team_page(cur, scope_of(caller, since, until), team)
    if page is None:
        raise HTTPException(404, _NOT_FOUND)
    return page


@router.get("/api/v1/models", tags=["pages"])
def models(request: Request, caller: Authed, since: Since = None, until: Until = None) -> Payload:
    """Per model: spend, token mix, cache hit rate and current price."""
    with server_state(request).cursor() as cur:
        return dashboard.models_page(cur, scope_of(caller, since, until))


@router.get("/api/v1/integrity", tags=["pages"])
def integrity(request: Request, caller: Authed) -> Payload:
    """Flagged accounts and clusters with the evidence behind each score."""
    return integrity_page(server_state(request), scope_of(caller))


@router.get("/api/v1/fleet", tags=["pages"], responses={403: {"description": "Admins only"}})
def fleet(request: Request, caller: Authed) -> Payload:
    """The last envelope allocation and capacity plan, with shadow prices (admins only)."""
    require_admin(caller)
    state = server_state(request)
    with state.cursor() as cur:
        return fleet_page(cur, state.config)


class NewToken(BaseModel):
    role: str = Field(description="admin or viewer", json_schema_extra={"enum": list(ROLES)})
    team: str | None = Field(default=None, description="The team a viewer sees.")


def _token_row(t: Any) -> Payload:
    row: Payload = dashboard.plain(dataclasses.asdict(t))
    return row


@router.get("/api/v1/tokens", tags=["tokens"], responses={403: {"description": "Admins only"}})
def tokens(request: Request, caller: Authed) -> list[Payload]:
    """Every token issued (ids, roles, teams, dates; never the secrets)."""
    require_admin(caller)
    with server_state(request).cursor() as cur:
        return [_token_row(t) for t in list_tokens(cur)]


@router.post(
    "/api/v1/tokens", tags=["tokens"], status_code=201, responses={403: {"description": "Admins only"}}
)
def new_token(request: Request, caller: Authed, body: NewToken, csrf: CsrfHeader = None) -> Payload:
    """Issue a token; the secret is in this response only."""
    require_admin(caller)
    check_csrf(caller, csrf)
    state = server_state(request)
    try:
        with state.write_lock, state.cursor() as cur:
            issued = create_token(cur, role=body.role, team=body.team)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {**_token_row(issued.record), "token": issued.secret}


@router.post(
    "/api/v1/tokens/{token_id}/revoke",
    tags=["tokens"],
    responses={403: {"description": "Admins only"}, 404: {"description": "No such token"}},
)
def revoke(request: Request, caller: Authed, token_id: str, csrf: CsrfHeader = None) -> Payload:
    """Revoke a token; its sessions end with it."""
    require_admin(caller)
    check_csrf(caller, csrf)
    state = server_state(request)
    try:
        with state.write_lock, state.cursor() as cur:
            record = revoke_token(cur, token_id)
    except InputError as exc:
        raise HTTPException(404, _NOT_FOUND) from exc
    return _token_row(record)


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over ``limit`` bytes: by its
    Content-Length before any of it is read, else while it streams in."""
    too_large = HTTPException(413, f"body over {limit} bytes; send smaller batches")
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/traces",
    tags=["otlp"],
    responses={
        200: {"content": {"application/json": {}, otlp.PROTOBUF: {}}, "description": "Reconciliation counts"},
        400: {"description": "Not an OTLP trace export"},
        413: {"description": "Body too large"},
        415: {"description": "Neither application/json nor application/x-protobuf"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def traces(request: Request, caller: Authed) -> Response:
    """OTLP/HTTP traces (JSON or protobuf), ingested like a file: validated, priced, deduplicated by span id,
    bad spans quarantined. Needs an admin bearer token."""
    if caller.session is not None:
        raise HTTPException(403, "send spans with `Authorization: Bearer TOKEN`, not a browser session")
    require_admin(caller)
    state = server_state(request)
    try:  # a body of the wrong type is refused before it is read
        media = otlp.media_type(request.headers.get("content-type"))
    except otlp.UnsupportedMedia as exc:
        raise HTTPException(415, str(exc)) from exc
    body = await _bounded_body(request, state.config.max_body_bytes)
    try:
        doc = otlp.decode_traces(
            body, media, request.headers.get("content-encoding"), max_bytes=state.config.max_body_bytes
        )
    except otlp.BodyTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except InputError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        result = await run_in_threadpool(otlp.ingest_traces, state, doc)
    except InputError as exc:
        raise HTTPException(400, str(exc)) from exc
    if result is not None and result.rows_stored:
        await run_in_threadpool(rebuild_frame, state)  # the writer pays, not the next reader
    counts = dashboard.plain(dataclasses.asdict(result)) if result is not None else {"rows_read": 0}
    if media == otlp.PROTOBUF:
        headers = {
            f"X-Flopledger-{k.replace('_', '-')}": str(v) for k, v in counts.items() if k.startswith("rows")
        }
        return Response(otlp.protobuf_response(result), media_type=otlp.PROTOBUF, headers=headers)
    return JSONResponse({"partialSuccess": otlp.partial_success(result), "ingest": counts})
