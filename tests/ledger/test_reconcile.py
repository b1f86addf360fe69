"""The ledger against the vendors' own cost reports, on the golden usage samples and golden cost
reports of the same days (``golden/reconcile``).

The cost reports were written to the golden usage's priced cost, class by class, with two gaps put in
on purpose: Anthropic bills 2026-03-03's Sonnet output at $0.50 more than the usage the sample holds
(usage never ingested), and OpenAI bills a project the ledger has no usage of ($0.40). Anthropic's
report also has $0.50 of code execution and OpenAI's $0.25 of file search storage, which the ledger
does not track, and Anthropic's leaves out the sample's two Priority Tier events ($0.0191), as its
cost report does.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.cli.ledger_finops import EXIT_MISMATCH
from flopledger.errors import InputError
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.reconcile import ReconcileRow, read_cost_reports
from flopledger.ledger.store import open_ledger

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "reconcile"
SAMPLES = HERE / "formats" / "samples"
ANTHROPIC, OPENAI = GOLDEN / "anthropic_cost_report.json", GOLDEN / "openai_costs.json"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("reconcile") / "ledger.duckdb"
    con = open_ledger(db)
    ingest_files(con, [SAMPLES / "anthropic_messages_report.json", SAMPLES / "openai_usage_completions.json"])
    con.close()
    return db


def _reconcile(db: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(app, ["reconcile", *args, "--db", str(db), "-f", "json"])
    rows = json.loads(result.stdout) if result.stdout.strip() else []
    error = str(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else ""
    return result.exit_code, rows, result.stderr + error


def test_each_day_of_the_bill_against_the_ledger(ledger: Path) -> None:
    code, rows, said = _reconcile(ledger, str(ANTHROPIC), str(OPENAI))
    got = [
        (r["provider"], r["day"], r["vendor_usd"], r["ledger_usd"], r["difference_usd"], r["status"])
        for r in rows
    ]
    assert got == [
        # tokens and web searches, priority left out: $9.7118055 billed, $9.711806 priced
        ("anthropic", "2026-03-02", pytest.approx(9.711806), pytest.approx(9.711806), 0.0, "matches"),
        ("anthropic", "2026-03-03", pytest.approx(2.2287), pytest.approx(1.7287), -0.5, "ledger short"),
        ("openai", "2026-03-02", pytest.approx(1.802058), pytest.approx(1.802058), 0.0, "matches"),
        ("openai", "2026-03-03", pytest.approx(1.9369), pytest.approx(1.5369), -0.4, "ledger short"),
    ]
    assert rows[1]["difference_pct"] == -22.43
    # a float sum's noise is no difference, and never reads -0
    noise = ReconcileRow((("provider", "openai"),), 0.1 + 0.2, 0.3, 0, "matches").as_row()
    assert noise["difference_usd"] == 0 and math.copysign(1, noise["difference_usd"]) == 1
    assert math.copysign(1, noise["difference_pct"]) == 1
    assert code == EXIT_MISMATCH == 3  # a group differs: cron can tell (2 is a usage error)
    assert "the bill's anthropic code_execution costs ($0.50) are left out" in said
    assert "Anthropic priority-tier cost ($0.02) is left out" in said
    assert "the bill's openai file search storage costs ($0.25) are left out" in said
    assert "2 of 4 group(s) differ. The ledger is $0.90 short of the bill in 2" in said
    assert "over the bill" not in said


def test_by_project_and_model_find_what_is_missing(ledger: Path) -> None:
    _, rows, _ = _reconcile(ledger, str(ANTHROPIC), str(OPENAI), "--by", "day,project")
    unbilled = [(r["project"], r["status"]) for r in rows if r["status"] != "matches"]
    assert unbilled == [
        ("wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "ledger short"),
        ("proj_Qz7rT2yU9iO4pA1s", "no usage in the ledger"),
    ]
    # by model: the catalog's names on both sides, the bill's web searches a group of their own
    _, by_model, _ = _reconcile(ledger, str(ANTHROPIC), "--by", "model")
    assert [(r["model"], r["status"]) for r in by_model] == [
        ("(web searches)", "matches"),
        ("anthropic/claude-haiku-4-5", "matches"),
        ("anthropic/claude-opus-4-1", "matches"),
        ("anthropic/claude-sonnet-4-5", "ledger short"),
    ]
    assert by_model[0]["vendor_usd"] == pytest.approx(0.15)  # 15 searches at $10 per 1,000
    code, _, said = _reconcile(ledger, str(OPENAI), "--by", "model")
    assert code != 0 and "OpenAI's costs name line items, not models" in said
    # by service tier: batch and flex billed as priced, the gap in standard
    _, by_tier, _ = _reconcile(ledger, str(ANTHROPIC), "--by", "service_tier")
    assert [(r["service_tier"], r["status"]) for r in by_tier] == [
        ("(web searches)", "matches"),
        ("batch", "matches"),
        ("flex", "matches"),
        ("standard", "ledger short"),
    ]
    code, _, said = _reconcile(ledger, str(OPENAI), "--by", "service_tier")
    assert code != 0 and "OpenAI's costs name no service tier" in said


def test_a_bill_within_the_tolerance_matches_and_exits_0(ledger: Path) -> None:
    code, rows, said = _reconcile(ledger, str(ANTHROPIC), "--tolerance-pct", "25")
    assert code == 0 and {r["status"] for r in rows} == {"matches"}
    assert "differ" not in said
    table = CliRunner().invoke(app, ["reconcile", str(ANTHROPIC), str(OPENAI), "--db", str(ledger)])
    assert "│ total" in table.stdout and "2 of 4 match" in table.stdout


def test_what_is_not_a_cost_report_is_one_clear_error(ledger: Path, tmp_path: Path) -> None:
    code, _, said = _reconcile(ledger, str(SAMPLES / "anthropic_messages_report.json"))
    assert code != 0 and "not a cost result" in said and "usage reports go to `flopledger ingest`" in said
    page = json.loads(ANTHROPIC.read_text(encoding="utf-8"))
    page["data"][0]["results"][1]["amount"] = "12,5"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(page), encoding="utf-8")
    with pytest.raises(InputError, match=r"data\[0\]\.results\[1\]: amount '12,5' is not a number"):
        read_cost_reports([bad])
    page["data"][0]["results"][1]["amount"], page["data"][0]["results"][1]["currency"] = "1", "EUR"
    bad.write_text(json.dumps(page), encoding="utf-8")
    with pytest.raises(InputError, match="currency 'EUR': flopledger reconciles US dollars"):
        read_cost_reports([bad])
    # a report short of its last pages is said
    short = json.loads(ANTHROPIC.read_text(encoding="utf-8"))
    short["has_more"], short["next_page"] = True, "page_2"
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(short), encoding="utf-8")
    _, _, said = _reconcile(ledger, str(cut), "--tolerance-pct", "25")
    assert "its last page says more pages follow (next_page page_2)" in said
    _, _, whole = _reconcile(ledger, str(ANTHROPIC), "--tolerance-pct", "25")
    assert "more pages follow" not in whole
    # and a cost report given to ingest says where it goes, storing nothing
    for report in (ANTHROPIC, OPENAI):
        result = CliRunner().invoke(app, ["ingest", str(report), "--db", str(tmp_path / "l.duckdb")])
        assert result.exit_code != 0
        assert "this is a cost report" in str(result.exception) and "flopledger reconcile" in str(
            result.exception
        )


def test_pulls_that_overlap_count_a_day_once(ledger: Path, tmp_path: Path) -> None:
    _, twice, said = _reconcile(ledger, str(ANTHROPIC), str(ANTHROPIC), "--tolerance-pct", "25")
    _, once, _ = _reconcile(ledger, str(ANTHROPIC), "--tolerance-pct", "25")
    assert twice == once and "again, with other costs" not in said
    # a later pull of a day with other costs is the one compared, and said
    later = json.loads(ANTHROPIC.read_text(encoding="utf-8"))
    later["data"][1]["results"][3]["amount"] = "61.5"  # 2026-03-03's output as the ledger has it
    pulled = tmp_path / "later.json"
    pulled.write_text(json.dumps(later), encoding="utf-8")
    code, rows, said = _reconcile(ledger, str(ANTHROPIC), str(pulled))
    assert code == 0 and [r["status"] for r in rows] == ["matches", "matches"]
    assert f"anthropic 2026-03-03 is in {ANTHROPIC} and again, with other costs, in {pulled}" in said


def test_openai_costs_not_grouped_by_line_item_or_project_are_said(ledger: Path, tmp_path: Path) -> None:
    page = json.loads(OPENAI.read_text(encoding="utf-8"))
    for bucket in page["data"]:
        for result in bucket["results"]:
            result["line_item"] = None
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(page), encoding="utf-8")
    _, rows, said = _reconcile(ledger, str(bare))
    assert "not grouped by line item, so all of them are compared as tokens" in said
    assert rows[0]["vendor_usd"] == pytest.approx(1.802058 + 0.25)  # the storage is in it
    for bucket in page["data"]:
        for result in bucket["results"]:
            result["project_id"] = None
    bare.write_text(json.dumps(page), encoding="utf-8")
    code, _, said = _reconcile(ledger, str(bare), "--by", "day,project")
    assert code != 0 and "the result names no project, so --by project cannot match it" in said


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from(["wrkspc_a", "wrkspc_b", None]),
            st.decimals(min_value=0, max_value=10**7, places=4, allow_nan=False, allow_infinity=False),
        ),
        max_size=30,
    )
)
def test_anthropic_amounts_are_cents_summed_per_day(
    items: list[tuple[int, str | None, decimal.Decimal]],
) -> None:
    """Any page of Anthropic results: each day's dollars are its cents' sum over 100, every day of a
    bucket covered, an empty one too."""
    import tempfile

    start = dt.date(2026, 3, 1)
    buckets = [
        {
            "starting_at": f"{start + dt.timedelta(days=d)}T00:00:00Z",
            "ending_at": f"{start + dt.timedelta(days=d + 1)}T00:00:00Z",
            "results": [
                {"currency": "USD", "amount": str(a), "workspace_id": w, "cost_type": "tokens"}
                for day, w, a in items
                if day == d
            ],
        }
        for d in range(7)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cost.json"
        path.write_text(json.dumps({"data": buckets, "has_more": False, "next_page": None}), encoding="utf-8")
        reports = read_cost_reports([path])
    assert reports.days == {"anthropic": {start + dt.timedelta(days=d) for d in range(7)}}
    for d in range(7):
        day = start + dt.timedelta(days=d)
        cents = sum((a for i, _, a in items if i == d), decimal.Decimal(0))
        assert sum(c.amount_usd for c in reports.costs if c.day == day) == pytest.approx(float(cents / 100))


def test_anthropic_costs_not_grouped_by_description_are_said(ledger: Path, tmp_path: Path) -> None:
    """Without group_by[]=description each result is a workspace's day, code execution in it: it is
    compared as tokens, and said."""
    page = json.loads(ANTHROPIC.read_text(encoding="utf-8"))
    for bucket in page["data"]:
        cents = sum(decimal.Decimal(r["amount"]) for r in bucket["results"])
        bucket["results"] = [{"currency": "USD", "amount": str(cents), "cost_type": None}] if cents else []
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(page), encoding="utf-8")
    _, rows, said = _reconcile(ledger, str(bare))
    assert "Anthropic's costs are not grouped by description, so all of them are compared as tokens" in said
    assert rows[0]["vendor_usd"] == pytest.approx(9.711806 + 0.50)  # the code execution is in it
    assert "OpenAI's costs" not in said


@pytest.mark.parametrize(
    ("line_item", "kind"),
    [
        ("gpt-4o-2024-08-06, input", "tokens"),
        ("o3, cached input", "tokens"),
        ("gpt-4o-audio-preview-2024-12-17, input", "tokens"),  # an audio model's text: tokens
        ("gpt-4o-audio-preview-2024-12-17, output", "tokens"),
        ("gpt-image-1, input", "tokens"),
        ("gpt-4o-audio-preview-2024-12-17, audio input", "audio input"),  # its audio: set apart
        ("gpt-image-1, image output", "image output"),
        ("web search tool calls", "web_search"),
        ("file search storage", "file search storage"),
    ],
)
def test_openai_line_items_are_told_by_what_they_charge(line_item: str, kind: str) -> None:
    from flopledger.ledger.reconcile import _openai_kind

    assert _openai_kind(line_item) == kind


def test_a_day_within_a_cent_matches_whichever_side_has_it(ledger: Path, tmp_path: Path) -> None:
    """A day billed $0 with no usage, or a few tenths of a cent the ledger lacks, match: the
    tolerance is a cent whichever side is missing."""
    day = {"starting_at": "2026-03-04T00:00:00Z", "ending_at": "2026-03-05T00:00:00Z"}
    for amount in ("0.0", "0.4"):  # cents
        page = {"data": [{**day, "results": [{"currency": "USD", "amount": amount, "cost_type": "tokens"}]}]}
        path = tmp_path / "zero.json"
        path.write_text(json.dumps({**page, "has_more": False}), encoding="utf-8")
        code, rows, said = _reconcile(ledger, str(path))
        assert code == 0 and [r["status"] for r in rows] == ["matches"], said
    page["data"][0]["results"][0]["amount"] = "2"  # two cents: the ledger is short
    path.write_text(json.dumps({**page, "has_more": False}), encoding="utf-8")
    code, rows, _ = _reconcile(ledger, str(path))
    assert code == EXIT_MISMATCH and rows[0]["status"] == "no usage in the ledger"


def test_a_days_results_going_on_onto_the_next_page_are_one_bucket(ledger: Path, tmp_path: Path) -> None:
    page = json.loads(ANTHROPIC.read_text(encoding="utf-8"))
    first_day = page["data"][0]
    head = {"data": [{**first_day, "results": first_day["results"][:5]}], "has_more": True, "next_page": "p2"}
    rest = {
        "data": [{**first_day, "results": first_day["results"][5:]}, *page["data"][1:]],
        "has_more": False,
    }
    split = tmp_path / "split.jsonl"
    split.write_text(json.dumps(head) + "\n" + json.dumps(rest) + "\n", encoding="utf-8")
    _, rows, said = _reconcile(ledger, str(split))
    _, whole, _ = _reconcile(ledger, str(ANTHROPIC))
    assert rows == whole and rows[0]["status"] == "matches"
    assert "again, with other costs" not in said and "more pages follow" not in said
    # two files, the second page in the second: the same
    (tmp_path / "p1.json").write_text(json.dumps(head), encoding="utf-8")
    (tmp_path / "p2.json").write_text(json.dumps(rest), encoding="utf-8")
    assert _reconcile(ledger, str(tmp_path / "p1.json"), str(tmp_path / "p2.json"))[1] == whole


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"start_time": 1e20}, "bucket start 1e+20 is not a time a report can hold"),
        ({"workspace_id": {"a": 1}}, 'workspace_id {"a": 1} is not an id (text)'),
        ({"amount": "1e400"}, "amount '1e400' is not a number a bill can hold"),
    ],
)
def test_a_cost_report_value_out_of_reach_is_one_clear_error(
    tmp_path: Path, change: dict[str, object], said: str
) -> None:
    result: dict[str, object] = {"currency": "USD", "amount": "5", "cost_type": "tokens"}
    bucket: dict[str, object] = {"starting_at": "2026-03-02T00:00:00Z", "results": [result]}
    if "start_time" in change:  # OpenAI's buckets start at Unix seconds
        bucket = {"object": "bucket", "start_time": change["start_time"], "results": []}
    else:
        result.update(change)
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"data": [bucket], "has_more": False}), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(said)):
        read_cost_reports([path])
