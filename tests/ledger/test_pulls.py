"""Usage-report pulls of one window under another bucket width or grouping: said, with the runs to undo."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

DAY = 1_772_409_600  # 2026-03-02T00:00:00Z
HOUR = 3600


def _result(model: str = "gpt-5", output: int = 1000, **groups: Any) -> dict[str, Any]:
    """One OpenAI completions result; the groups it names (project_id, user_id, api_key_id, batch,
    service_tier) as given, the rest NULL: not grouped by."""
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": 10_000,
        "input_cached_tokens": 0,
        "output_tokens": output,
        "num_model_requests": 10,
        "model": model,
        **{k: None for k in ("project_id", "user_id", "api_key_id", "batch", "service_tier")},
        **groups,
    }


def _openai(path: Path, buckets: list[tuple[int, int, list[dict[str, Any]]]]) -> Path:
    data = [{"object": "bucket", "start_time": s, "end_time": e, "results": r} for s, e, r in buckets]
    path.write_text(json.dumps({"object": "page", "data": data, "has_more": False, "next_page": None}))
    return path


def _hours(n: int, first: int = 0, **groups: Any) -> list[tuple[int, int, list[dict[str, Any]]]]:
    hours = range(first, first + n)
    return [(DAY + h * HOUR, DAY + (h + 1) * HOUR, [_result(output=40, **groups)]) for h in hours]


def test_a_daily_pull_then_an_hourly_one_of_the_same_day_is_said_to_overlap(tmp_path: Path) -> None:
    daily = _openai(tmp_path / "daily.json", [(DAY, DAY + 24 * HOUR, [_result()])])
    hourly = _openai(tmp_path / "hourly.json", _hours(24))
    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [daily])
    assert first.rows_overlapping == 0
    second = ingest_files(con, [hourly])
    # both are stored (which to keep is the user's), every hourly row is said, with the daily run
    assert second.reconciles and second.rows_stored == 24
    assert (second.rows_overlapping, second.overlapping_runs) == (24, (first.ingest_id,))
    # the run's record keeps the count, and `ingests list` shows it
    from flopledger.ledger.runs import list_runs

    assert [r["rows_overlapping"] for r in list_runs(con)] == [24, 0]
    # hours inside the stored day, not at its start
    evening = ingest_files(con, [_openai(tmp_path / "evening.json", _hours(3, first=20))])
    assert (evening.rows_overlapping, evening.overlapping_runs) == (3, (first.ingest_id,))
    # the other way round: a daily pull over stored hourly rows (which start after its start)
    other = open_ledger(tmp_path / "other.duckdb")
    hours = ingest_files(other, [hourly])
    day = ingest_files(other, [daily])
    assert (day.rows_overlapping, day.overlapping_runs) == (1, (hours.ingest_id,))
    # both in one run: said, no stored run to name
    both = ingest_files(open_ledger(tmp_path / "both.duckdb"), [daily, hourly])
    assert (both.rows_overlapping, both.overlapping_runs) == (25, ())
    # a file given twice: its rows are counted once
    twice = ingest_files(open_ledger(tmp_path / "twice.duckdb"), [daily, hourly, hourly])
    assert (twice.rows_overlapping, twice.rows_stored) == (25, 25)
    # both pulls put in one file, as a list of pages or a page a line: said as two files are
    pages = [json.loads(daily.read_text()), json.loads(hourly.read_text())]
    listed = tmp_path / "pulls.json"
    listed.write_text(json.dumps(pages))
    lines = tmp_path / "pulls.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in pages))
    for together in (listed, lines):
        one = ingest_files(open_ledger(tmp_path / f"{together.suffix[1:]}.duckdb"), [together])
        assert (one.rows_stored, one.rows_overlapping, one.overlaps_within_run) == (25, 25, True)
    # a file of one width overlaps nothing of its own
    assert ingest_files(open_ledger(tmp_path / "one.duckdb"), [hourly]).rows_overlapping == 0


def test_the_same_pull_again_or_grown_or_of_the_next_day_overlaps_nothing(tmp_path: Path) -> None:
    rows = [_result(user_id="user-a"), _result(user_id=None, output=5)]  # grouped by user: one of none
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_openai(tmp_path / "a.json", [(DAY, DAY + 24 * HOUR, rows)])])
    grown = [_result(user_id="user-a", output=2000), _result(user_id=None, output=5)]
    later = [(DAY, DAY + 24 * HOUR, grown), (DAY + 24 * HOUR, DAY + 48 * HOUR, grown)]
    for name, buckets in (("a.json", [(DAY, DAY + 24 * HOUR, rows)]), ("b.json", later)):
        run = ingest_files(con, [_openai(tmp_path / name, buckets)])
        assert run.reconciles and run.rows_overlapping == 0, name
    assert con.execute("SELECT count(*), sum(output_tokens) FROM events").fetchone() == (4, 4010)
    # a group of no value (Console usage, of no api key) that later gains valued groups: one
    # grouping pulled twice, and so is the earlier pull ingested after the later one
    day = (DAY, DAY + 24 * HOUR)
    console = [_result("gpt-4.1", 5, api_key_id=None)]
    later_keys = [_result("gpt-4.1", 8, api_key_id=None), _result("gpt-4.1", 100, api_key_id="k1")]
    keyed = open_ledger(tmp_path / "keyed.duckdb")
    early = _openai(tmp_path / "k1.json", [(*day, console)])
    ingest_files(keyed, [early])
    for path in (_openai(tmp_path / "k2.json", [(*day, later_keys)]), early):
        run = ingest_files(keyed, [path])
        assert (run.rows_overlapping, run.overlapping_runs) == (0, ()), path.name
    assert keyed.execute("SELECT sum(output_tokens) FROM events").fetchone() == (108,)
    # a document of two pages that both hold a row (pulled at two times): its largest counts
    pages = tmp_path / "pages.json"
    keys = [_result("gpt-4.1", 100, api_key_id="k1"), _result("gpt-4.1", 3, api_key_id="k2")]
    grown, smaller = (
        [_result("gpt-4.1", 9, api_key_id=None), *keys],
        [_result("gpt-4.1", 7, api_key_id=None), *keys],
    )
    docs = [
        json.loads(_openai(tmp_path / n, [(*day, r)]).read_text())
        for n, r in (("p1", smaller), ("p2", grown))
    ]
    pages.write_text(json.dumps(docs))
    assert ingest_files(keyed, [pages]).rows_overlapping == 0
    # hourly buckets side by side in one pull, and the next hours pulled later: no overlap
    hourly = open_ledger(tmp_path / "hourly.json.duckdb")
    ingest_files(hourly, [_openai(tmp_path / "h1.json", _hours(3))])
    assert ingest_files(hourly, [_openai(tmp_path / "h2.json", _hours(6))]).rows_overlapping == 0


def test_a_bucket_pulled_under_another_grouping_is_said_to_overlap(tmp_path: Path) -> None:
    """By model, then by model and api key (whose row of no api key is the by-model row's id, and
    smaller); the other way round (that row grows); by api key, then by project (no group in common)."""
    day = (DAY, DAY + 24 * HOUR)
    by_model = [_result(output=900), _result("gpt-5-mini", 90)]
    by_key = [
        _result(output=50),
        _result(api_key_id="key_a", output=600),
        _result(api_key_id="key_b", output=250),
    ]
    by_project = [_result(project_id="proj_a", output=500), _result(project_id="proj_b", output=400)]
    cases = (("model", "key", by_model, by_key, 3), ("key", "model", by_key, by_model, 1))
    for first_name, second_name, first_rows, second_rows, said in (
        *cases,
        ("key", "project", by_key, by_project, 2),
    ):
        con = open_ledger(tmp_path / f"{first_name}-{second_name}.duckdb")
        first = ingest_files(con, [_openai(tmp_path / f"{first_name}.json", [(*day, first_rows)])])
        second = ingest_files(con, [_openai(tmp_path / f"{second_name}.json", [(*day, second_rows)])])
        # gpt-5's rows of the bucket overlap; gpt-5-mini, pulled once, does not
        assert (second.rows_overlapping, second.overlapping_runs) == (said, (first.ingest_id,)), second_name
    # another model's bucket, pulled by key: its rows were pulled once
    con = open_ledger(tmp_path / "model-key.duckdb")
    mini = _openai(
        tmp_path / "mini.json", [(DAY + 24 * HOUR, DAY + 48 * HOUR, [_result("gpt-5-mini", api_key_id="k")])]
    )
    assert ingest_files(con, [mini]).rows_overlapping == 0


def test_a_run_is_named_only_while_it_holds_rows_the_batch_overlaps(tmp_path: Path) -> None:
    """By project (run A), by api key (run B), then by api key again, grown: B's rows are restated by it,
    so only A is named."""
    day = (DAY, DAY + 24 * HOUR)
    con = open_ledger(tmp_path / "l.duckdb")
    a = ingest_files(con, [_openai(tmp_path / "p.json", [(*day, [_result(project_id="p1")])])])
    keys = [_result(api_key_id="k1"), _result(api_key_id="k2")]
    b = ingest_files(con, [_openai(tmp_path / "k.json", [(*day, keys)])])
    assert b.overlapping_runs == (a.ingest_id,)
    grown = [_result(api_key_id="k1", output=1500), _result(api_key_id="k2", output=1500)]
    c = ingest_files(con, [_openai(tmp_path / "k2.json", [(*day, grown)])])
    assert (c.rows_restated, c.rows_overlapping, c.overlapping_runs) == (2, 2, (a.ingest_id,))


def test_every_count_tells_a_smaller_or_larger_group(tmp_path: Path) -> None:
    """The row of no api key of a pull by key, against the by-model row of the same id: smaller in
    requests only, or in input only, is another grouping; as large or larger in all, the same pulled later."""
    day = (DAY, DAY + 24 * HOUR)
    key = _result(api_key_id="k1")
    for name, fewer, said in (
        ("requests", {"num_model_requests": 9}, 2),
        ("input", {"input_tokens": 9_999}, 2),
        ("none", {}, 0),
        ("cached", {"input_cached_tokens": 500}, 0),  # more of the same input read from the cache
    ):
        con = open_ledger(tmp_path / f"{name}.duckdb")
        ingest_files(con, [_openai(tmp_path / f"m-{name}.json", [(*day, [_result()])])])
        later = _openai(tmp_path / f"k-{name}.json", [(*day, [{**_result(), **fewer}, key])])
        assert ingest_files(con, [later]).rows_overlapping == said, name
        # the other way round: by key first, then by model, larger in that count only
        back = open_ledger(tmp_path / f"back-{name}.duckdb")
        ingest_files(back, [later])
        by_model = ingest_files(back, [_openai(tmp_path / f"b-{name}.json", [(*day, [_result()])])])
        assert by_model.rows_overlapping == (1 if said else 0), name


def test_only_the_same_model_and_the_runs_whose_buckets_cross_are_named(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    early = ingest_files(con, [_openai(tmp_path / "h1.json", _hours(2))])
    late = ingest_files(con, [_openai(tmp_path / "h2.json", _hours(2, first=2))])
    other = ingest_files(con, [_openai(tmp_path / "h3.json", _hours(2, first=12))])
    mini = [(DAY, DAY + 24 * HOUR, [_result("gpt-5-mini")])]
    assert ingest_files(con, [_openai(tmp_path / "mini.json", mini)]).rows_overlapping == 0  # another model
    morning = [(DAY, DAY + 4 * HOUR, [_result()])]  # four hours at once: crosses the first two runs only
    run = ingest_files(con, [_openai(tmp_path / "m.json", morning)])
    assert (run.rows_overlapping, run.overlapping_runs) == (
        1,
        tuple(sorted((early.ingest_id, late.ingest_id))),
    )
    assert other.ingest_id not in run.overlapping_runs


def test_an_export_of_events_is_checked_like_the_report_it_holds(tmp_path: Path) -> None:
    """Report rows ingested from an export of events (CSV) overlap an hourly pull as the daily
    report they came from does."""
    source = tmp_path / "source.duckdb"
    ingest_files(
        open_ledger(source), [_openai(tmp_path / "daily.json", [(DAY, DAY + 24 * HOUR, [_result()])])]
    )
    export = tmp_path / "events.csv"
    out = CliRunner().invoke(app, ["export", str(export), "-f", "csv", "--db", str(source)])
    assert out.exit_code == 0, out.output
    con = open_ledger(tmp_path / "l.duckdb")
    hourly = ingest_files(con, [_openai(tmp_path / "hourly.json", _hours(3))])
    run = ingest_files(con, [export])
    assert run.rows_stored == 1 and (run.rows_overlapping, run.overlapping_runs) == (1, (hourly.ingest_id,))


def test_two_organisations_pulls_of_other_widths_do_not_overlap(tmp_path: Path) -> None:
    daily = _openai(tmp_path / "daily.json", [(DAY, DAY + 24 * HOUR, [_result()])])
    hourly = _openai(tmp_path / "hourly.json", _hours(2))
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [daily], fixed={"org": "acme"})
    assert ingest_files(con, [hourly], fixed={"org": "globex"}).rows_overlapping == 0
    assert ingest_files(con, [hourly], fixed={"org": "ACME "}).rows_overlapping == 2
    # a pull without an organisation stands for any: it overlaps acme's, and acme's overlaps one stored
    # without an organisation
    for first, second in (({"org": "acme"}, {}), ({}, {"org": "acme"})):
        blind = open_ledger(tmp_path / f"blind{len(first)}.duckdb")
        ingest_files(blind, [daily], fixed=first)
        assert ingest_files(blind, [hourly], fixed=second).rows_overlapping == 2, first
    # only the runs of the organisation the batch overlaps are named
    both = open_ledger(tmp_path / "both.duckdb")
    acme = ingest_files(both, [daily], fixed={"org": "acme"})
    ingest_files(both, [hourly], fixed={"org": "globex"})
    again = ingest_files(both, [_openai(tmp_path / "h.json", _hours(3, first=5))], fixed={"org": "acme"})
    assert (again.rows_overlapping, again.overlapping_runs) == (3, (acme.ingest_id,))


def test_a_pull_without_an_organisation_that_agrees_with_one_organisations_overlaps_nothing(
    tmp_path: Path,
) -> None:
    """Acme's pull by api key and globex's (other keys), each with its organisation, then acme's pulled
    again without one: it is acme's, whatever globex's holds."""
    day = (DAY, DAY + 24 * HOUR)
    acme_rows = [_result(api_key_id="k1"), _result(api_key_id="k2")]
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_openai(tmp_path / "a.json", [(*day, acme_rows)])], fixed={"org": "acme"})
    ingest_files(
        con, [_openai(tmp_path / "g.json", [(*day, [_result(api_key_id="k3")])])], fixed={"org": "globex"}
    )
    grown = [_result(api_key_id="k1", output=2000), _result(api_key_id="k2")]
    run = ingest_files(con, [_openai(tmp_path / "a2.json", [(*day, grown)])])
    assert (run.rows_overlapping, run.rows_restated) == (0, 1)
    # the other way round, globex's stored without one: a row stored without an organisation is
    # taken for each one's, acme's too, so acme's pull is said to overlap it, naming its run
    other = open_ledger(tmp_path / "other.duckdb")
    ingest_files(other, [_openai(tmp_path / "a.json", [(*day, acme_rows)])], fixed={"org": "acme"})
    blind = ingest_files(other, [_openai(tmp_path / "g.json", [(*day, [_result(api_key_id="k3")])])])
    again = ingest_files(other, [_openai(tmp_path / "a2.json", [(*day, grown)])], fixed={"org": "acme"})
    assert (again.rows_overlapping, again.overlapping_runs, again.rows_restated) == (2, (blind.ingest_id,), 1)


def test_another_file_of_the_run_does_not_excuse_an_overlap(tmp_path: Path) -> None:
    """A copy of the stored pull, or the same hours twice, beside the overlapping file of one run."""
    daily = _openai(tmp_path / "daily.json", [(DAY, DAY + 24 * HOUR, [_result()])])
    copy = _openai(tmp_path / "copy.json", [(DAY, DAY + 24 * HOUR, [_result()])])
    hourly, hourly_copy = (_openai(tmp_path / n, _hours(2)) for n in ("h.json", "h2.json"))
    con = open_ledger(tmp_path / "l.duckdb")
    stored = ingest_files(con, [daily])
    run = ingest_files(con, [copy, hourly])
    assert (run.rows_overlapping, run.overlapping_runs) == (3, (stored.ingest_id,))
    for first, second in (({}, {"org": "acme"}), ({"org": "acme"}, {})):  # with organisations either way
        mixed = open_ledger(tmp_path / f"mixed{len(first)}.duckdb")
        day = ingest_files(mixed, [daily], fixed=first)
        both = ingest_files(mixed, [hourly, hourly_copy], fixed=second)
        assert (both.rows_overlapping, both.overlapping_runs) == (2, (day.ingest_id,)), first
    # a pull restated in the run beside a copy of the other grouping's: the other run stays named
    bucket = (DAY, DAY + 24 * HOUR)
    con = open_ledger(tmp_path / "regrouped.duckdb")
    by_project = _openai(tmp_path / "p.json", [(*bucket, [_result(project_id="p1")])])
    a = ingest_files(con, [by_project])
    ingest_files(con, [_openai(tmp_path / "k.json", [(*bucket, [_result(api_key_id="k1")])])])
    grown = _openai(tmp_path / "k2.json", [(*bucket, [_result(api_key_id="k1", output=5000)])])
    c = ingest_files(con, [grown, by_project])
    # the by-key run is restated by the grown pull: of the runs, only the by-project one holds the other
    assert (c.rows_restated, c.overlapping_runs) == (1, (a.ingest_id,))


def test_a_run_whose_rows_another_file_of_the_run_restates_is_not_named(tmp_path: Path) -> None:
    """A daily pull, then an hourly one beside the daily pull again, grown: the daily row of the first
    run is restated, so the overlap is between this run's own files."""
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])
    grown = _openai(tmp_path / "d2.json", [(DAY, DAY + 24 * HOUR, [_result(output=5000)])])
    run = ingest_files(con, [_openai(tmp_path / "h.json", _hours(2)), grown])
    assert (run.rows_restated, run.rows_overlapping, run.overlapping_runs) == (1, 3, ())


def test_an_export_of_a_grown_pull_restates_nothing_so_the_run_it_meets_is_named(tmp_path: Path) -> None:
    """A daily row grown, from an export of events, beside an hourly pull: the ingest restates only
    from reports, so the stored daily row stays, and its run is the one to undo."""
    source = tmp_path / "source.duckdb"
    grown = [(DAY, DAY + 24 * HOUR, [_result(output=5000)])]
    ingest_files(open_ledger(source), [_openai(tmp_path / "grown.json", grown)])
    export = tmp_path / "events.csv"
    out = CliRunner().invoke(app, ["export", str(export), "-f", "csv", "--db", str(source)])
    assert out.exit_code == 0, out.output
    con = open_ledger(tmp_path / "l.duckdb")
    daily = ingest_files(con, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])
    run = ingest_files(con, [export, _openai(tmp_path / "h.json", _hours(2))])
    assert (run.rows_restated, run.rows_duplicate, run.rows_stored) == (0, 1, 2)
    stored = con.execute("SELECT output_tokens FROM events WHERE ingest_id = ?", [daily.ingest_id])
    assert stored.fetchall() == [(1000,)]  # the daily row stays: the export's grown copy is a duplicate
    assert (run.rows_overlapping, run.overlapping_runs, run.overlaps_within_run) == (
        3,
        (daily.ingest_id,),
        True,
    )


def test_requests_are_never_pulls_whatever_their_id(tmp_path: Path) -> None:
    """A LiteLLM request whose id reads like an hourly report row's is a request, alone or beside a
    report: it neither overlaps a pull nor is named as one."""
    con = open_ledger(tmp_path / "l.duckdb")
    daily = ingest_files(con, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])

    def spend(name: str, hour: int) -> Path:
        bounds = [DAY + hour * HOUR, DAY + (hour + 1) * HOUR, "gpt-5", None, None, None, None, None]
        record = {
            "request_id": "openai-usage:" + json.dumps(bounds, separators=(",", ":")),
            "model": "gpt-5",
            "custom_llm_provider": "openai",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "spend": 0.01,
            "startTime": f"2026-03-02T{hour:02d}:10:00Z",
            "endTime": f"2026-03-02T{hour:02d}:10:01Z",
        }
        path = tmp_path / name
        path.write_text(json.dumps([record]))
        return path

    alone = ingest_files(con, [spend("s1.json", 0)])
    assert (alone.rows_stored, alone.rows_overlapping) == (1, 0)
    # the report's hour is the stored request's: it overlaps the daily run alone
    beside = ingest_files(con, [spend("s2.json", 1), _openai(tmp_path / "h.json", _hours(1))])
    assert beside.rows_stored == 2
    assert (beside.rows_overlapping, beside.overlapping_runs) == (1, (daily.ingest_id,))


def test_one_pull_ingested_with_and_without_its_organisation_overlaps_nothing(tmp_path: Path) -> None:
    """Rows stored without an organisation are taken for each one's, so they and acme's rows of a bucket
    are one pull of acme's: a pull restated under acme, then an earlier one without it, or the other way."""
    day = (DAY, DAY + 24 * HOUR)
    early = [_result(api_key_id="k1", output=10), _result(api_key_id="k2", output=5)]
    grown = [_result(api_key_id="k1", output=12), _result(api_key_id="k2", output=5)]
    more = [*grown, _result(api_key_id="k3", output=1)]
    first = _openai(tmp_path / "e.json", [(*day, early)])
    acme = {"org": "acme"}
    for name, runs in (
        ("a", [(first, {}), (_openai(tmp_path / "g.json", [(*day, grown)]), acme), (first, {})]),
        ("b", [(first, acme), (_openai(tmp_path / "m.json", [(*day, more)]), {}), (first, acme)]),
    ):
        con = open_ledger(tmp_path / f"{name}.duckdb")
        said = [ingest_files(con, [path], fixed=fixed).rows_overlapping for path, fixed in runs]
        assert said == [0, 0, 0], name
        con.close()
    # an export of such a ledger, ingested into it: all duplicates, and nothing said
    export = tmp_path / "events.csv"
    out = CliRunner().invoke(app, ["export", str(export), "-f", "csv", "--db", str(tmp_path / "b.duckdb")])
    assert out.exit_code == 0, out.output
    again = ingest_files(open_ledger(tmp_path / "b.duckdb"), [export])
    assert (again.rows_stored, again.rows_overlapping) == (0, 0)


def test_the_same_groups_some_larger_some_smaller_are_another_grouping(tmp_path: Path) -> None:
    """A by-model pull, then by key (said), then by key again: its row of no key is smaller than the
    stored by-model row while its keys grew, which one grouping pulled later never gives."""
    day = (DAY, DAY + 24 * HOUR)
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [_openai(tmp_path / "m.json", [(*day, [_result(output=60)])])])
    keys = [_result(output=40), _result(api_key_id="k1", output=30), _result(api_key_id="k2", output=20)]
    assert ingest_files(con, [_openai(tmp_path / "k.json", [(*day, keys)])]).rows_overlapping == 3
    later = [_result(output=45), _result(api_key_id="k1", output=35), _result(api_key_id="k2", output=20)]
    assert ingest_files(con, [_openai(tmp_path / "k2.json", [(*day, later)])]).rows_overlapping == 3


def test_a_pull_of_an_organisation_that_agrees_with_its_own_still_overlaps_one_stored_without(
    tmp_path: Path,
) -> None:
    """A daily pull stored without an organisation, then acme's hour pulled by key, then again with a
    new key: each time said, naming the daily run."""
    con = open_ledger(tmp_path / "l.duckdb")
    daily = ingest_files(con, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])
    hour = (DAY, DAY + HOUR)
    first = ingest_files(
        con, [_openai(tmp_path / "h.json", [(*hour, [_result(api_key_id="k1")])])], fixed={"org": "acme"}
    )
    later = [_result(api_key_id="k1", output=2000), _result(api_key_id="k2")]
    second = ingest_files(con, [_openai(tmp_path / "h2.json", [(*hour, later)])], fixed={"org": "acme"})
    assert (first.overlapping_runs, second.rows_restated) == ((daily.ingest_id,), 1)
    assert (second.rows_overlapping, second.overlapping_runs) == (2, (daily.ingest_id,))
    # the same where the ledger holds only another organisation's rows beside those stored without one
    other = open_ledger(tmp_path / "other.duckdb")
    blind = ingest_files(other, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])
    ingest_files(
        other, [_openai(tmp_path / "g.json", [(*hour, [_result("gpt-4.1")])])], fixed={"org": "globex"}
    )
    run = ingest_files(
        other, [_openai(tmp_path / "h.json", [(*hour, [_result(api_key_id="k1")])])], fixed={"org": "acme"}
    )
    assert (run.rows_overlapping, run.overlapping_runs) == (1, (blind.ingest_id,))


def test_bounds_given_as_text_are_read_and_bounds_no_vendor_gives_are_left_out(tmp_path: Path) -> None:
    con = open_ledger(tmp_path / "l.duckdb")
    daily = ingest_files(con, [_openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])])])
    text = [(str(s), str(e), rows) for s, e, rows in _hours(2)]
    run = ingest_files(con, [_openai(tmp_path / "t.json", text)])  # type: ignore[arg-type]
    assert (run.rows_overlapping, run.overlapping_runs) == (2, (daily.ingest_id,))
    # an end in milliseconds, or both bounds: no bucket a vendor gives, so nothing to match, and the run
    # completes (a start in milliseconds is read as the time it is)
    for name, bounds in (("end", (DAY, (DAY + HOUR) * 1000)), ("both", (DAY * 1000, (DAY + HOUR) * 1000))):
        odd = ingest_files(con, [_openai(tmp_path / f"{name}.json", [(*bounds, [_result(api_key_id=name)])])])
        assert odd.reconciles and (odd.rows_stored, odd.rows_overlapping) == (1, 0), name
    assert con.execute("SELECT min(ts) FROM events WHERE api_key = 'both'").fetchone() == (
        dt.datetime(2026, 3, 2),
    )
    # beside an overlapping file of the run, such a bucket leaves the check as it is
    nonsense = _openai(tmp_path / "n.json", [(DAY * 1000, DAY * 1000 + HOUR, [_result(api_key_id="n")])])
    both = ingest_files(con, [_openai(tmp_path / "h.json", _hours(2, first=5)), nonsense])
    assert (both.rows_overlapping, both.overlapping_runs) == (2, (daily.ingest_id,))


def test_anthropic_pulls_of_other_widths_are_said_to_overlap(tmp_path: Path) -> None:
    def report(name: str, buckets: list[tuple[str, str]]) -> Path:
        result = {
            "uncached_input_tokens": 100,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 50,
            "model": "claude-sonnet-4-5-20250929",
        }
        data = [{"starting_at": s, "ending_at": e, "results": [result]} for s, e in buckets]
        path = tmp_path / name
        path.write_text(json.dumps({"data": data, "has_more": False, "next_page": None}))
        return path

    con = open_ledger(tmp_path / "l.duckdb")
    first = ingest_files(con, [report("d.json", [("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z")])])
    hours = [(f"2026-03-02T{h:02d}:00:00Z", f"2026-03-02T{h + 1:02d}:00:00Z") for h in range(3)]
    second = ingest_files(con, [report("h.json", hours)])
    assert (second.rows_overlapping, second.overlapping_runs) == (3, (first.ingest_id,))
    # the next day, daily: nothing
    assert (
        ingest_files(
            con, [report("n.json", [("2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z")])]
        ).rows_overlapping
        == 0
    )


def test_the_cli_says_on_stderr_which_run_to_undo(tmp_path: Path) -> None:
    db = str(tmp_path / "l.duckdb")
    daily = _openai(tmp_path / "daily.json", [(DAY, DAY + 24 * HOUR, [_result()])])
    hourly = _openai(tmp_path / "hourly.json", _hours(2))
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", str(daily), "--db", db, "--output", "json"])
    assert first.exit_code == 0, first.output
    (run,) = json.loads(first.stdout)
    second = runner.invoke(app, ["ingest", str(hourly), "--db", db, "--output", "json"])
    assert second.exit_code == 0, second.output
    # the output is the reconciliation, with the overlapping rows for a script to act on
    assert {k: json.loads(second.stdout)[0][k] for k in ("rows_stored", "rows_overlapping")} == {
        "rows_stored": 2,
        "rows_overlapping": 2,
    }
    assert "2 usage-report row(s) of this run's files overlap another pull of their window" in second.stderr
    assert f"The other pull was stored by run(s) {run['ingest_id']}" in second.stderr
    assert "ingests undo ID" in second.stderr and "--force" in second.stderr
    # both pulls in one run: that run is the one to undo
    both = runner.invoke(
        app, ["ingest", str(daily), str(hourly), "--db", str(tmp_path / "b.duckdb"), "--output", "json"]
    )
    (result,) = json.loads(both.stdout)
    undo = f"Both pulls are among this run's files: undo it (`flopledger ingests undo {result['ingest_id']}`)"
    assert undo in both.stderr


def test_files_of_the_run_that_overlap_each_other_are_said_beside_a_stored_run(tmp_path: Path) -> None:
    """A stored hour, then a run of a daily pull and an hourly one of that hour and another: the stored
    run is named, and the run's own files are said to overlap each other too."""
    from flopledger.cli.ledger import _overlap_warning

    con = open_ledger(tmp_path / "l.duckdb")
    stored = ingest_files(con, [_openai(tmp_path / "s.json", _hours(1, first=5))])
    hours = [*_hours(1), *_hours(1, first=5)]
    run = ingest_files(
        con,
        [
            _openai(tmp_path / "d.json", [(DAY, DAY + 24 * HOUR, [_result()])]),
            _openai(tmp_path / "h.json", hours),
        ],
    )
    assert (run.rows_overlapping, run.overlapping_runs, run.overlaps_within_run) == (
        3,
        (stored.ingest_id,),
        True,
    )
    assert "This run's own files overlap each other too" in _overlap_warning(run)
    alone = ingest_files(
        open_ledger(tmp_path / "alone.duckdb"), [_openai(tmp_path / "s.json", _hours(1, first=5))]
    )
    assert not alone.overlaps_within_run
    again = ingest_files(
        con, [_openai(tmp_path / "d2.json", [(DAY + 24 * HOUR, DAY + 48 * HOUR, [_result()])])]
    )
    assert (again.rows_overlapping, again.overlaps_within_run) == (0, False)
