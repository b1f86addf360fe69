"""Golden briefs from the demo organisation: ranking, wording with numbers, and no repeats over days.

Regenerate after a deliberate change with ``FLOPLEDGER_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from flopledger.briefs import BriefInputs, build_brief, is_material, render_markdown, run_brief
from flopledger.briefs.model import Insight
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.organisation import DemoOrganisation

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
FLEET_SPEC = ROOT / "examples" / "fleet" / "three_vendor_envelope.yaml"
ORG = DemoOrganisation()
BOT_DAY = ORG.start + dt.timedelta(days=ORG.bot_start_day)
LAST_DAY = ORG.start + dt.timedelta(days=ORG.days - 1)
CASES: dict[str, dict[str, Any]] = {
    # the day the leaderboard bots start: the spend they add, before the scan has enough to flag them
    "bot_day": {"period": "day", "date": BOT_DAY},
    # the bots' first week, with budgets and a fleet plan: every layer contributes candidates
    "bot_week_budgets_fleet": {
        "period": "week",
        "date": BOT_DAY + dt.timedelta(days=6),
        "budgets": GOLDEN / "demo-budgets.toml",
        "fleet_spec": FLEET_SPEC,
    },
    # the demo's last day: nothing beyond its usual swing, so the brief says so
    "last_day": {"period": "day", "date": LAST_DAY},
}


def build(db: Path, case: str) -> Any:
    con = open_ledger(db)
    try:
        return build_brief(con, BriefInputs(**CASES[case]))
    finally:
        con.close()


def check_golden(name: str, got: Any) -> None:
    path = GOLDEN / name
    if os.environ.get("FLOPLEDGER_UPDATE_GOLDEN"):
        path.write_text(got if isinstance(got, str) else json.dumps(got, indent=1) + "\n")
    expected = path.read_text() if name.endswith(".md") else json.loads(path.read_text())
    if isinstance(got, str):
        assert got == expected
        return
    assert_same(got, expected, name)


def assert_same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6), where
    else:
        assert got == want, where


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_brief(demo_ledger: Path, case: str) -> None:
    brief = build(demo_ledger, case)
    check_golden(f"{case}.json", brief.as_dict())
    assert len(brief.insights) <= 5
    impacts = [i.impact_usd_per_month for i in brief.insights]
    assert impacts == sorted(impacts, reverse=True)  # ranked by dollars


def test_golden_markdown(demo_ledger: Path) -> None:
    check_golden("bot_day.md", render_markdown(build(demo_ledger, "bot_day")))


def test_bots_week_brings_the_bots_up(demo_ledger: Path) -> None:
    brief = build(demo_ledger, "bot_week_budgets_fleet")
    layers = [i.layer for i in brief.insights]
    assert layers.count("fleet") == 3  # fleet dollars dwarf a buyer's ledger: they rank first
    assert brief.suppressed == ()
    con = open_ledger(demo_ledger)
    longer = build_brief(con, BriefInputs(**{**CASES["bot_week_budgets_fleet"], "top": 12}))
    con.close()

    # the same five stories with the same impacts (to the cent: DuckDB's parallel sums vary in the last bits)
    def told(insights: Sequence[Insight]) -> list[tuple[str, float]]:
        return [(i.key, round(i.impact_usd_per_month, 2)) for i in insights]

    assert told(longer.insights[:5]) == told(brief.insights)
    bots = [
        i for i in longer.insights if i.layer == "integrity"
    ]  # below the top five: fleet dollars and budgets rank first
    assert bots and bots[0].link == "/integrity" and "newly flagged" in bots[0].title


def test_daily_cron_does_not_repeat_unchanged_insights(demo_copy: Path) -> None:
    """A weekly brief run every morning: overlapping weeks see the same stories; only changes go out."""
    days: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    for offset in range(4):
        date = BOT_DAY + dt.timedelta(days=3 + offset)
        run = run_brief(demo_copy, BriefInputs(period="week", date=date), fmt="json")
        assert run.exit_code == 0 and run.recorded
        brief = json.loads(run.text)
        for i in brief["insights"]:
            if i["key"] in last:  # sent before: only because it changed materially
                assert is_material(i["impact_usd_per_month"], last[i["key"]]), (date, i["key"])
        for s in brief["suppressed_repeats"]:
            assert not is_material(s["impact_usd_per_month"], s["last_impact_usd_per_month"])
            assert s["last_impact_usd_per_month"] == pytest.approx(last[s["key"]], abs=0.01)
        last |= {i["key"]: i["impact_usd_per_month"] for i in brief["insights"]}
        days.append(
            {
                "date": date.isoformat(),
                "sent": [i["key"] for i in brief["insights"]],
                "held_back": [s["key"] for s in brief["suppressed_repeats"]],
            }
        )
    assert any(d["held_back"] for d in days)  # the rule did hold something back
    check_golden("cron_weekly_bot_days_3_to_6.json", days)


def test_every_evidence_link_is_a_dashboard_page() -> None:
    """The links the golden briefs carry are pages the dashboard serves (no /models/NAME, no /overview)."""
    from urllib.parse import urlparse

    from starlette.routing import Match

    from flopledger.web.pages import router

    briefs = [json.loads(path.read_text()) for path in sorted(GOLDEN.glob("*.json"))]
    links = [i["link"] for b in briefs if isinstance(b, dict) for i in b["insights"]]
    assert links
    for link in links:
        scope = {"type": "http", "method": "GET", "path": urlparse(link).path}
        assert any(route.matches(scope)[0] is Match.FULL for route in router.routes), link
