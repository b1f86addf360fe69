"""A real ledger built through the real ingest path, tokens for every role, and servers over it.

The ledger is built once per session (labelled traffic from the synthetic builder, split into teams,
written to Parquet and ingested); each test module gets its own copy so writes never leak.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.campaigns import LabelledTraffic, TrafficSpec, build_traffic
from flopledger.web import WebConfig, create_app
from flopledger.web.state import ServerState
from flopledger.web.tokens import create_token, revoke_token

KEY = b"web-test-key"
SPEC = TrafficSpec(humans=40, heavy_humans=2, services=2, burn_bots=2, campaigns=1, campaign_accounts=12)
TEAMS = ("agents", "search", "infra")
MODELS = {"frontier-1": "claude-sonnet-4-5", "frontier-2": "claude-opus-4-1"}


def team_of(account: str, labels: dict[str, str]) -> str:
    """Distillation accounts all sit in team research; everyone else is spread over TEAMS."""
    if labels.get(account) == "distillation":
        return "research"
    return TEAMS[int(hashlib.sha256(account.encode()).hexdigest(), 16) % len(TEAMS)]


@dataclass(frozen=True)
class Fixture:
    path: Path
    tokens: dict[str, str]  # role name -> secret
    token_ids: dict[str, str]
    traffic: LabelledTraffic


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    root = tmp_path_factory.mktemp("web-ledger")
    traffic = build_traffic(SPEC, seed=11)
    ev = traffic.events
    users = ev.column("user").to_pylist()
    ev = ev.append_column("team", pa.array([team_of(u, traffic.labels) for u in users]))
    models = pa.array([MODELS.get(m, m) for m in ev.column("model").to_pylist()])
    ev = ev.set_column(ev.schema.get_field_index("model"), "model", models)
    ev = ev.drop_columns(["cost_usd", "event_id"])
    source = root / "usage.parquet"
    pq.write_table(ev, source)
    path = root / "ledger.duckdb"
    con = open_ledger(path)
    ingest_files(con, [source], format="parquet", fingerprint_key=KEY)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name, role, team in (
        ("admin", "admin", None),
        ("agents", "viewer", "agents"),
        ("research", "viewer", "research"),
        ("revoked", "viewer", "agents"),
    ):
        issued = create_token(con, role=role, team=team)
        tokens[name], ids[name] = issued.secret, issued.record.id
    revoke_token(con, ids["revoked"])
    con.close()
    return Fixture(path, tokens, ids, traffic)


@pytest.fixture(scope="module")
def ledger_copy(golden: Fixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("web-copy") / "ledger.duckdb"
    shutil.copy(golden.path, target)
    return target


@pytest.fixture(scope="module")
def state(ledger_copy: Path) -> Iterator[ServerState]:
    s = ServerState.open(WebConfig(db=ledger_copy))
    yield s
    s.close()


class Api:
    """In-process calls to the ASGI app through httpx's ASGI transport."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.app = create_app(state.config, state=state)

    async def _call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        cookies = kw.pop("cookies", None)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.request(method, url, **kw)

    def request(self, method: str, url: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return asyncio.run(self._call(method, url, headers=headers, **kw))

    def get(self, url: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", url, token=token, **kw)

    def post(self, url: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", url, token=token, **kw)


@pytest.fixture(scope="module")
def api(state: ServerState) -> Api:
    return Api(state)


@pytest.fixture(scope="session")
def api_for() -> type[Api]:
    """The in-process client class, for tests that open a ledger of their own."""
    return Api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_server(state: ServerState) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (in a thread) over ``state``; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(state.config, state=state),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(state: ServerState) -> Iterator[str]:
    with running_server(state) as url:
        yield url
