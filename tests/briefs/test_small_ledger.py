"""The brief on a small hand-made ledger: figures worked out by hand, ranking, the no-repeat rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from flopledger.briefs import BriefInputs, build_brief, is_material, render_html, render_markdown, run_brief
from flopledger.briefs.history import create_history
from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.store import open_ledger

DAY = dt.date(2026, 3, 15)


def brief_of(db: Path, **kw: object) -> dict[str, object]:
    con = open_ledger(db)
    try:
        return build_brief(con, BriefInputs(**kw)).as_dict()  # type: ignore[arg-type]
    finally:
        con.close()


def test_figures_worked_out_by_hand(small_ledger: Path) -> None:
    brief = brief_of(small_ledger, date=DAY)
    insights = {i["key"]: i for i in brief["insights"]}  # type: ignore[attr-defined]
    assert [i["key"] for i in brief["insights"]] == [  # type: ignore[attr-defined]
        "spend:team:agents",
        "cache:platform:gpt-5",
        "spend:team:platform",
    ]
    agents = insights["spend:team:agents"]["numbers"]
    # 2M uncached x $3 + 18M cached x $0.30 + output 1M -> 3M x $15 per million tokens
    assert agents["previous_cost_usd"] == pytest.approx(26.40)
    assert agents["cost_usd"] == pytest.approx(56.40)
    assert agents["change_usd"] == pytest.approx(30.0)
    assert agents["volume_usd"] + agents["mix_usd"] + agents["price_usd"] == pytest.approx(30.0)
    assert agents["price_usd"] == pytest.approx(0.0)
    assert insights["spend:team:agents"]["impact_usd_per_month"] == pytest.approx(900.0)
    cache = insights["cache:platform:gpt-5"]
    assert cache["numbers"]["previous_cache_share_pct"] == pytest.approx(80.0)
    assert cache["numbers"]["cache_share_pct"] == pytest.approx(40.0)
    # 10M input x 40 points x ($1.25 - $0.125) per million = $4.50 a day
    assert cache["numbers"]["extra_cost_usd"] == pytest.approx(4.5)
    assert cache["impact_usd_per_month"] == pytest.approx(135.0)
    assert "fell from 80.0% to 40.0%" in cache["title"]
    assert cache["link"] == "http://127.0.0.1:8000/teams/platform"
    keys = {k["name"]: k["value"] for k in brief["key_numbers"]}  # type: ignore[attr-defined]
    assert keys["cost_usd"] == pytest.approx(56.40 + 13.0 + 15.9)
    assert brief["headline"].startswith("$85.30 spent on 2026-03-15 (Sun) (+67.9% vs the same day last week)")  # type: ignore[attr-defined]


def test_week_compares_with_the_week_before(small_ledger: Path) -> None:
    brief = brief_of(small_ledger, date=DAY, period="week")
    assert (brief["start"], brief["compared_with"]) == ("2026-03-09", ["2026-03-02", "2026-03-08"])
    agents = next(i for i in brief["insights"] if i["key"] == "spend:team:agents")  # type: ignore[attr-defined]
    assert agents["numbers"]["change_usd"] == pytest.approx(30.0)
    assert agents["numbers"]["impact_usd_per_month"] == pytest.approx(30.0 * 30 / 7)


def test_unchanged_repeats_are_held_back_and_material_changes_sent(small_ledger: Path) -> None:
    con = open_ledger(small_ledger)
    create_history(con)
    yesterday = DAY - dt.timedelta(days=1)
    # agents sent yesterday at $800 (now $900: +12.5%, immaterial); cache at $100 (now $135: +35%)
    con.executemany(
        "INSERT INTO brief_sent VALUES (?, 'day', ?, ?, 'x', 't', now())",
        [("spend:team:agents", yesterday, 800.0), ("cache:platform:gpt-5", yesterday, 100.0)],
    )
    # an old sending beyond the 30-day look-back does not count
    con.execute(
        "INSERT INTO brief_sent VALUES ('spend:team:platform', 'day', ?, 135.0, 'x', 't', now())",
        [DAY - dt.timedelta(days=31)],
    )
    brief = build_brief(con, BriefInputs(date=DAY)).as_dict()
    con.close()
    assert [i["key"] for i in brief["insights"]] == ["cache:platform:gpt-5", "spend:team:platform"]
    assert brief["suppressed_repeats"] == [
        {
            "key": "spend:team:agents",
            "impact_usd_per_month": 900.0,
            "last_sent": "2026-03-14",
            "last_impact_usd_per_month": 800.0,
        }
    ]
    assert "1 insight already sent and unchanged, not repeated." in render_markdown(
        build_brief(open_ledger(small_ledger), BriefInputs(date=DAY))
    )


def test_materiality_rule() -> None:
    assert not is_material(125.0, 100.0)
    assert is_material(125.01, 100.0)
    assert is_material(74.0, 100.0)
    assert not is_material(0.0, 0.0)


def test_recording_and_rerunning_the_same_day(small_ledger: Path) -> None:
    first = run_brief(small_ledger, BriefInputs(date=DAY), fmt="json")
    assert first.recorded and first.exit_code == 0
    again = run_brief(small_ledger, BriefInputs(date=DAY), fmt="json")
    assert again.text == first.text  # a retry of the same day is the same brief
    week_later = run_brief(small_ledger, BriefInputs(date=DAY, period="week"), fmt="json")
    assert json.loads(week_later.text)["suppressed_repeats"] == []  # periods keep separate records
    con = duckdb.connect(str(small_ledger), read_only=True)
    rows = con.execute("SELECT insight_key, period, brief_date FROM brief_sent ORDER BY ALL").fetchall()
    con.close()
    assert rows == sorted(
        [(k, "day", DAY) for k in ("cache:platform:gpt-5", "spend:team:agents", "spend:team:platform")]
        # over a week, platform's +$4.50 on $59.50 is under the 10% rise a spend insight needs
        + [(k, "week", DAY) for k in ("cache:platform:gpt-5", "spend:team:agents")]
    )


def test_html_is_self_contained_with_svg_charts(small_ledger: Path) -> None:
    html = render_html(build_brief(open_ledger(small_ledger), BriefInputs(date=DAY)))
    assert html.count("<svg") == 4  # the daily-spend columns and one chart per insight
    assert "<script" not in html and "src=" not in html and "@import" not in html
    assert 'href="http://127.0.0.1:8000/teams/agents"' in html


def test_bad_inputs_are_clear(small_ledger: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'week'"):
        brief_of(small_ledger, period="weak")
    with pytest.raises(InputError, match="no ledger at"):
        run_brief(tmp_path / "missing.duckdb", BriefInputs())
    with pytest.raises(InputError, match="no priced spend"):
        build_brief(open_ledger(tmp_path / "empty.duckdb"), BriefInputs())


def test_public_surface() -> None:
    import flopledger.briefs as briefs

    assert sorted(briefs.__all__) == sorted(
        [
            "EXIT_ALL_DELIVERIES_FAILED",
            "EXIT_EMAIL_FAILED",
            "EXIT_OK",
            "EXIT_WEBHOOK_FAILED",
            "MATERIAL_CHANGE",
            "Brief",
            "BriefInputs",
            "BriefRun",
            "BriefWindow",
            "Delivery",
            "Insight",
            "KeyNumber",
            "SmtpTarget",
            "Suppressed",
            "build_brief",
            "is_material",
            "parse_smtp",
            "post_webhook",
            "rank",
            "record_sent",
            "render",
            "render_html",
            "render_json",
            "render_markdown",
            "run_brief",
            "send_email",
            "webhook_payload",
            "window_for",
        ]
    )
    assert all(hasattr(briefs, name) for name in briefs.__all__)


def test_a_brief_in_a_month_the_ledger_has_no_spend_in_yet_says_so(small_ledger: Path) -> None:
    """A cron brief on the 1st, before that day's usage is ingested, is a brief, not an error."""
    brief = brief_of(small_ledger, date=dt.date(2026, 4, 1))
    assert "spend ends on 2026-03-15" in str(brief["headline"])
    assert "ends on" not in str(brief_of(small_ledger, date=DAY)["headline"])
