"""Access rules: a matrix of callers x endpoints, team isolation, sessions, CSRF, no prompts shown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from flopledger.web.state import ServerState

if TYPE_CHECKING:
    from tests.web.conftest import Api, Fixture

ENDPOINTS = [
    "/api/v1/me",
    "/api/v1/overview",
    "/api/v1/teams",
    "/api/v1/teams/agents",
    "/api/v1/teams/research",
    "/api/v1/models",
    "/api/v1/integrity",
    "/api/v1/fleet",
    "/api/v1/tokens",
    "/",
    "/teams",
    "/teams/agents",
    "/teams/research",
    "/models",
    "/integrity",
    "/fleet",
]
# caller -> endpoint -> expected status (anything not listed: 200)
EXPECTED: dict[str, dict[str, int]] = {
    "none": dict.fromkeys(ENDPOINTS, 401),
    "bogus": dict.fromkeys(ENDPOINTS, 401),
    "revoked": dict.fromkeys(ENDPOINTS, 401),
    "admin": {},
    "agents": {
        "/api/v1/teams/research": 404,
        "/teams/research": 404,
        "/api/v1/fleet": 403,
        "/fleet": 403,
        "/api/v1/tokens": 403,
    },
    "research": {
        "/api/v1/teams/agents": 404,
        "/teams/agents": 404,
        "/api/v1/fleet": 403,
        "/fleet": 403,
        "/api/v1/tokens": 403,
    },
}


def _token(golden: Fixture, caller: str) -> str | None:
    if caller == "none":
        return None
    if caller == "bogus":
        return "flt_not-a-real-token"
    return golden.tokens[caller]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("caller", list(EXPECTED))
def test_access_matrix(api: Api, golden: Fixture, caller: str, endpoint: str) -> None:
    r = api.get(endpoint, token=_token(golden, caller))
    assert r.status_code == EXPECTED[caller].get(endpoint, 200), (caller, endpoint, r.text[:300])
    if r.status_code == 401 and endpoint.startswith("/api/"):
        assert r.headers["www-authenticate"] == "Bearer"


def _other_names(state: ServerState, team: str) -> set[str]:
    """Every team and user name outside ``team`` that is not also in it."""
    with state.cursor() as cur:
        rows = cur.execute('SELECT DISTINCT team, "user" FROM events').fetchall()
    mine = {u for t, u in rows if t == team} | {team}
    return ({t for t, _ in rows} | {u for _, u in rows}) - mine


@pytest.mark.parametrize("team", ["agents", "research"])
def test_a_viewer_never_sees_another_team(api: Api, golden: Fixture, state: ServerState, team: str) -> None:
    others = _other_names(state, team)
    assert others
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(map(re.escape, sorted(others, key=len, reverse=True))) + r")(?![\w-])"
    )
    for endpoint in ENDPOINTS:
        if EXPECTED[team].get(endpoint, 200) != 200:
            continue
        body = api.get(endpoint, token=golden.tokens[team]).text
        leaked = pattern.findall(body)
        assert not leaked, (team, endpoint, sorted(set(leaked))[:5])
    teams = api.get("/api/v1/teams", token=golden.tokens[team]).json()["teams"]
    assert [t["name"] for t in teams] == [team]


def test_refusal_does_not_hint_that_a_team_exists(api: Api, golden: Fixture) -> None:
    viewer = golden.tokens["agents"]
    real = api.get("/api/v1/teams/research", token=viewer)
    fake = api.get("/api/v1/teams/no-such-team", token=viewer)
    assert real.status_code == fake.status_code == 404
    assert real.text == fake.text
    user = api.get("/api/v1/teams/research", token=golden.tokens["admin"]).json()["users"][0]["name"]
    assert api.get(f"/api/v1/teams/research/users/{user}", token=viewer).text == fake.text


def test_viewer_totals_are_its_team_only(api: Api, golden: Fixture, state: ServerState) -> None:
    with state.cursor() as cur:
        ((cost,),) = cur.execute("SELECT sum(cost_usd) FROM events WHERE team = 'research'").fetchall()
    body = api.get("/api/v1/overview", token=golden.tokens["research"]).json()
    assert body["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert [t["name"] for t in body["top_teams"]] == ["research"]
    integrity = api.get("/api/v1/integrity", token=golden.tokens["research"]).json()
    assert integrity["flagged"] and {f["team"] for f in integrity["flagged"]} == {"research"}
    assert all(e["feature"] != "cluster_accounts" for f in integrity["flagged"] for e in f["evidence"])


def test_prompts_and_fingerprints_are_never_shown(api: Api, golden: Fixture, state: ServerState) -> None:
    with state.cursor() as cur:
        cur.execute("UPDATE events SET prompt = 'SECRET-PROMPT-TEXT ' || event_id WHERE team = 'agents'")
        sample = cur.execute(
            "SELECT fp_template_hash::VARCHAR FROM events WHERE fp_template_hash IS NOT NULL"
        ).fetchone()
    assert sample is not None
    try:
        for endpoint in ENDPOINTS:
            body = api.get(endpoint, token=golden.tokens["admin"]).text
            assert "SECRET-PROMPT-TEXT" not in body
            assert '"prompt"' not in body and "fp_" not in body and sample[0] not in body
    finally:
        with state.cursor() as cur:
            cur.execute("UPDATE events SET prompt = NULL")


def _sign_in(api: Api, token: str) -> dict[str, str]:
    form = api.get("/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce
    r = api.post(
        "/login",
        data={"token": token, "csrf_token": nonce.group(1)},
        cookies={"flopledger_login_csrf": form.cookies["flopledger_login_csrf"]},
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return {"flopledger_session": r.cookies["flopledger_session"]}


def test_sign_in_gives_a_session_cookie(api: Api, golden: Fixture) -> None:
    cookies = _sign_in(api, golden.tokens["agents"])
    me = api.get("/api/v1/me", cookies=cookies).json()
    assert me == {"token_id": golden.token_ids["agents"], "role": "viewer", "team": "agents"}
    assert api.get("/teams/research", cookies=cookies).status_code == 404


def test_sign_in_refuses_bad_tokens_and_forged_forms(api: Api, golden: Fixture) -> None:
    form = api.get("/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce
    jar = {"flopledger_login_csrf": form.cookies["flopledger_login_csrf"]}
    bad = api.post("/login", data={"token": "flt_wrong", "csrf_token": nonce.group(1)}, cookies=jar)
    assert bad.status_code == 401 and "flopledger_session" not in bad.cookies
    forged = api.post("/login", data={"token": golden.tokens["admin"], "csrf_token": "guess"}, cookies=jar)
    assert forged.status_code == 403 and "flopledger_session" not in forged.cookies
    revoked = api.post(
        "/login", data={"token": golden.tokens["revoked"], "csrf_token": nonce.group(1)}, cookies=jar
    )
    assert revoked.status_code == 401


def test_state_changes_need_the_csrf_token(api: Api, golden: Fixture) -> None:
    cookies = _sign_in(api, golden.tokens["admin"])
    page = api.get("/", cookies=cookies)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    body = {"role": "viewer", "team": "search"}
    assert api.post("/api/v1/tokens", json=body, cookies=cookies).status_code == 403
    assert (
        api.post("/api/v1/tokens", json=body, cookies=cookies, headers={"X-CSRF-Token": "x"}).status_code
        == 403
    )
    made = api.post("/api/v1/tokens", json=body, cookies=cookies, headers={"X-CSRF-Token": csrf.group(1)})
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["id"]
    assert api.get("/api/v1/me", token=secret).json()["team"] == "search"
    # bearer callers carry no ambient credential: no CSRF token needed
    assert api.post(f"/api/v1/tokens/{token_id}/revoke", token=golden.tokens["admin"]).status_code == 200
    assert api.get("/api/v1/me", token=secret).status_code == 401
    assert api.post("/logout", cookies=cookies).status_code == 403
    assert api.post("/logout", data={"csrf_token": csrf.group(1)}, cookies=cookies).status_code == 303
    assert api.get("/api/v1/me", cookies=cookies).status_code == 401


def test_revoking_a_token_ends_its_sessions(api: Api, golden: Fixture) -> None:
    made = api.post(
        "/api/v1/tokens", json={"role": "viewer", "team": "infra"}, token=golden.tokens["admin"]
    ).json()
    cookies = _sign_in(api, made["token"])
    assert api.get("/api/v1/teams", cookies=cookies).status_code == 200
    api.post(f"/api/v1/tokens/{made['id']}/revoke", token=golden.tokens["admin"])
    assert api.get("/api/v1/teams", cookies=cookies).status_code == 401


def test_viewers_cannot_manage_tokens(api: Api, golden: Fixture) -> None:
    r = api.post("/api/v1/tokens", json={"role": "admin"}, token=golden.tokens["agents"])
    assert r.status_code == 403
    assert (
        api.post(
            f"/api/v1/tokens/{golden.token_ids['admin']}/revoke", token=golden.tokens["agents"]
        ).status_code
        == 403
    )
    assert api.get("/api/v1/me", token=golden.tokens["admin"]).status_code == 200


def test_security_headers(api: Api, golden: Fixture) -> None:
    r = api.get("/", token=golden.tokens["admin"])
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
