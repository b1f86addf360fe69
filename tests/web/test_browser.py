"""A real server on 127.0.0.1 driven by Debian's Chromium: sign in, offline charts, drill-down, refusal.

Runs whenever /usr/bin/chromium exists; in CI (``CI=true``) it must run, so a missing browser fails.
Screenshots of the main pages go to artifacts/web/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from tests.web.conftest import Fixture

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("CI must run the browser tests: install Debian's chromium package (see .ci/run)")
    pytest.skip("no /usr/bin/chromium on this machine (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Offline:
    """A browser page that may only reach loopback: everything else is aborted and recorded."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def sign_in(self, server: str, token: str) -> None:
        response = self.page.goto(f"{server}/")
        assert response is not None and response.status == 401
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{server}/")

    def chart(self, selector: str) -> None:
        self.page.wait_for_selector(f"{selector}[data-rendered=true] svg.main-svg", timeout=15_000)
        bars = self.page.locator(f"{selector} g.trace.bars path, {selector} g.point path").count()
        assert bars > 0

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def _non_console_errors(errors: list[str]) -> list[str]:
    # a 401/404 page load is logged by Chromium as a failed resource; that is the point of those pages
    return [e for e in errors if "status of 401" not in e and "status of 404" not in e]


def test_viewer_signs_in_sees_charts_drills_down_and_is_refused(
    browser: Any, server: str, golden: Fixture
) -> None:
    tab = Offline(browser)
    try:
        tab.sign_in(server, golden.tokens["agents"])
        tab.chart("#chart-daily")
        tab.chart("#chart-teams")
        assert "agents" in tab.page.locator("#chart-teams .xtick text").all_text_contents()
        assert "team agents" in tab.page.inner_text("header")
        tab.shot("overview-viewer")
        tab.page.click("table a[href='/teams/agents']")
        tab.page.wait_for_url(f"{server}/teams/agents")
        tab.chart("#chart-daily")
        assert tab.page.locator("table a[href^='/teams/agents/users/']").count() > 0
        tab.shot("team-agents")
        tab.page.locator("table a[href^='/teams/agents/users/']").first.click()
        tab.chart("#chart-daily")
        tab.shot("user")
        refused = tab.page.goto(f"{server}/teams/research")
        assert refused is not None and refused.status == 404
        assert "Nothing here" in tab.page.inner_text("main")
        assert "research" not in tab.page.inner_text("main").replace("Team research", "")
        tab.shot("team-refused")
        assert _non_console_errors(tab.errors) == []
    finally:
        tab.close()


def test_admin_pages_render_offline(browser: Any, server: str, golden: Fixture) -> None:
    tab = Offline(browser)
    try:
        tab.sign_in(server, golden.tokens["admin"])
        tab.chart("#chart-daily")
        tab.chart("#chart-models")
        assert "claude-sonnet-4-5" in tab.page.locator("#chart-models .xtick text").all_text_contents()
        tab.shot("overview-admin")
        tab.page.goto(f"{server}/models")
        tab.chart("#chart-mix")
        tab.chart("#chart-cache")
        tab.shot("models")
        tab.page.goto(f"{server}/integrity")
        assert tab.page.locator("main table tbody tr").count() > 1
        assert "distillation" in tab.page.inner_text("main")
        tab.shot("integrity")
        tab.page.goto(f"{server}/fleet")
        assert "flopledger fleet allocate" in tab.page.inner_text("main")
        tab.shot("fleet")
        # an external request, if any page made one, was blocked, yet every chart above rendered
        assert all(urlsplit(u).hostname not in ("127.0.0.1", "localhost") for u in tab.blocked)
        tab.page.click("header button[type=submit]")
        tab.page.wait_for_url(f"{server}/login")
        assert tab.page.goto(f"{server}/models") is not None
        assert tab.page.locator("#token").count() == 1  # signed out: back to the sign-in form
        assert _non_console_errors(tab.errors) == []
    finally:
        tab.close()
