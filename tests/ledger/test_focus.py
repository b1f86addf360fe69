"""FOCUS 1.2 export, checked against the column list kept as package data.

Mandatory columns present, every column's type as the list says, null rules (never null, and
"not null when" conditions), allowed values, ``x_`` prefixes, and totals that reconcile with the
ledger: effective and list cost, and token counts per class.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from flopledger.cli import ledger_finops
from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.focus import FOCUS_ARROW_TYPES, FocusColumn, export_ledger, focus_columns, focus_table
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS
from flopledger.ledger.spark import connect_engine
from flopledger.ledger.store import open_ledger

from .conftest import FINOPS_GOLDEN, finops_ledger

GOLDEN = FINOPS_GOLDEN


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finops_ledger(tmp_path_factory.mktemp("focus") / "ledger.duckdb")


@pytest.fixture(scope="module")
def exported(ledger: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("focus-out") / "focus.parquet"
    export_ledger(connect_engine("duckdb", db=ledger), out, "focus")
    return pq.read_table(out)


def _holds(clause: str, row: dict[str, Any]) -> bool:
    """One clause of a ``not_null_when`` rule: ``Col notnull``, ``Col in A|B`` or ``Col != V``."""
    column, op, *rest = clause.split(" ", 2)
    value = row.get(column)
    if op == "notnull":
        return value is not None
    if op == "in":
        return value in rest[0].split("|")
    assert op == "!=", clause
    return value != rest[0]


def test_column_list_is_complete() -> None:
    columns = focus_columns()
    assert len(columns) == len({c.column_id for c in columns}) == 57
    assert {c.feature_level for c in columns} == {"Mandatory", "Conditional", "Recommended"}
    assert {c.data_type for c in columns} <= set(FOCUS_ARROW_TYPES)
    mandatory = {c.column_id for c in columns if c.feature_level == "Mandatory"}
    assert {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ServiceCategory"} <= mandatory
    assert {c.column_id for c in columns if c.introduced == "1.2"} >= {"InvoiceId", "PricingCurrency"}


def test_mandatory_columns_types_and_names(exported: pa.Table) -> None:
    spec: dict[str, FocusColumn] = {c.column_id: c for c in focus_columns()}
    names = set(exported.column_names)
    missing = {n for n, c in spec.items() if c.feature_level == "Mandatory"} - names
    assert not missing
    for name in names:
        if name in spec:
            assert exported.schema.field(name).type == FOCUS_ARROW_TYPES[spec[name].data_type], name
        else:
            assert name.startswith("x_"), f"{name} is neither a FOCUS column nor x_-prefixed"


def test_null_rules_and_allowed_values(exported: pa.Table) -> None:
    spec = [c for c in focus_columns() if c.column_id in exported.column_names]
    rows = exported.to_pylist()
    assert rows
    for c in spec:
        for row in rows:
            value = row[c.column_id]
            if not c.allows_nulls:
                assert value is not None, c.column_id
            if c.not_null_when and all(_holds(cl.strip(), row) for cl in c.not_null_when.split(";")):
                assert value is not None, f"{c.column_id} null although {c.not_null_when}"
            if c.allowed_values and value is not None:
                assert value in c.allowed_values, (c.column_id, value)


def test_ai_service_values_and_tags(exported: pa.Table) -> None:
    rows = exported.to_pylist()
    assert {r["ServiceCategory"] for r in rows} == {"AI and Machine Learning"}
    assert {r["ServiceSubcategory"] for r in rows} == {"Generative AI"}
    assert {r["ChargeCategory"] for r in rows} == {"Usage"}
    for r in rows:
        tags = json.loads(r["Tags"])  # the events' own tags survive, with the team under our prefix
        assert tags == {"env": "prod", "cost_center": f"cc-{r['x_Team']}", "flopledger:team": r["x_Team"]}
        assert r["ChargePeriodEnd"] - r["ChargePeriodStart"] == dt.timedelta(days=1)
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"] < r["BillingPeriodEnd"]
        assert r["EffectiveCost"] == r["BilledCost"] == r["ContractedCost"]
        assert float(r["ListCost"]) >= float(r["EffectiveCost"]) - 1e-5  # the fixture rounds to 1e-6 USD
    keys = [
        (
            r["ChargePeriodStart"],
            r["BillingAccountId"],
            r["SubAccountId"],
            r["x_Team"],
            r["x_Model"],
            r["x_ServiceTier"],
            r["x_TokenClass"],
            r["Tags"],
        )
        for r in rows
    ]
    assert len(keys) == len(set(keys)), "one row per charge period x account x model x token class"


def test_totals_reconcile_with_the_ledger(ledger: Path, exported: pa.Table) -> None:
    con = duckdb.connect(str(ledger), read_only=True)
    sums = ", ".join(f"sum({c})" for c in BILLED_TOKEN_COLUMNS)
    cost, list_cost, *tokens = (
        con.execute(
            f"SELECT sum(cost_usd), sum(list_cost_usd), {sums} FROM events WHERE cost_usd IS NOT NULL"
        ).fetchone()
        or ()
    )
    con.close()
    rows = exported.to_pylist()
    assert float(sum(r["EffectiveCost"] for r in rows)) == pytest.approx(cost, abs=0.01)
    assert float(sum(r["ListCost"] for r in rows)) == pytest.approx(list_cost, abs=0.01)
    for cls, total in zip(BILLED_TOKEN_COLUMNS, tokens, strict=True):
        assert sum(int(r["ConsumedQuantity"]) for r in rows if r["x_TokenClass"] == cls) == total, cls
    discounted = [
        r
        for r in rows
        if r["ChargePeriodStart"].date() >= dt.date(2026, 2, 1) and r["ProviderName"] == "anthropic"
    ]
    assert all(r["EffectiveCost"] < r["ListCost"] for r in discounted if r["ListCost"] > 0)


def test_csv_export_window_and_unpriced(ledger: Path, tmp_path: Path) -> None:
    engine = connect_engine("duckdb", db=ledger)
    out = tmp_path / "focus.csv"
    summary = export_ledger(engine, out, "focus", since=dt.date(2026, 2, 1), until=dt.date(2026, 2, 7))
    assert summary.unpriced_events == 7  # the private model: left out, counted
    table = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    assert table.num_rows == summary.rows
    starts = set(table.column("ChargePeriodStart").cast(pa.string()).to_pylist())
    assert min(starts).startswith("2026-02-01") and max(starts).startswith("2026-02-07")
    raw = out.read_text().splitlines()[1]
    assert "T00:00:00Z" in raw  # ISO 8601 UTC in CSV
    assert not re.search(r"\d[eE][-+]?\d", out.read_text())  # every number in plain notation
    assert focus_table(engine, since=dt.date(2030, 1, 1)).num_rows == 0


def test_csv_holds_the_same_rows_as_parquet(ledger: Path, tmp_path: Path) -> None:
    engine = connect_engine("duckdb", db=ledger)
    window = {"since": dt.date(2026, 1, 20), "until": dt.date(2026, 2, 3)}
    export_ledger(engine, tmp_path / "focus.csv", "focus", **window)
    export_ledger(engine, tmp_path / "focus.parquet", "focus", **window)
    parquet = pq.read_table(tmp_path / "focus.parquet")
    csv_table = pacsv.read_csv(
        tmp_path / "focus.csv",
        convert_options=pacsv.ConvertOptions(
            column_types=parquet.schema, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    assert csv_table.column_names == parquet.column_names
    assert csv_table.cast(parquet.schema).equals(parquet)


def test_tags_that_are_not_an_object_are_refused(tmp_path: Path) -> None:
    db = finops_ledger(tmp_path / "bad.duckdb", limit=3)
    con = open_ledger(db)
    con.execute("""UPDATE events SET tags = '["prod"]' WHERE event_id = (SELECT min(event_id) FROM events)""")
    con.close()
    with pytest.raises(InputError, match=r"tags '\[\"prod\"\]' is not a JSON object.*field 'tags'"):
        export_ledger(connect_engine("duckdb", db=db), tmp_path / "bill.parquet", "focus")


def test_events_export_for_spark(ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    summary = export_ledger(connect_engine("duckdb", db=ledger), out, "parquet")
    table = pq.read_table(out)
    assert table.num_rows == summary.rows == 767
    assert "prompt" not in table.column_names and not any(c.startswith("fp_") for c in table.column_names)
    with pytest.raises(UnknownNameError, match="did you mean 'focus'"):
        export_ledger(connect_engine("duckdb", db=ledger), out, "focuss")


def test_cli_export(ledger: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    ledger_finops.register(app)
    out = tmp_path / "bill.parquet"
    result = CliRunner().invoke(
        app, ["export", "--format", "focus", str(out), "--db", str(ledger), "--until", "2025-11-30"]
    )
    assert result.exit_code == 0, result.output
    assert "focus rows" in result.output
    assert pq.read_table(out).num_rows > 0


def test_cli_export_says_what_to_do_with_a_bad_path_or_window(ledger: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    ledger_finops.register(app)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["export", "--format", "focus", *args, "--db", str(ledger)])
        if result.exception and not isinstance(result.exception, SystemExit):
            return 1, str(result.exception)  # an InputError: one line on the real command line
        return result.exit_code, result.output + result.stderr

    assert run(str(tmp_path)) == (
        1,
        f"{tmp_path} is a folder: give the file to write, e.g. {tmp_path / 'focus.parquet'}",
    )
    code, said = run(str(tmp_path / "nope" / "bill.csv"))
    assert code == 1 and "its folder" in said and "does not exist; create it first" in said
    code, said = run(str(tmp_path / "b.csv"), "--since", "2025-12-02", "--until", "2025-12-01")
    assert code == 1 and "swap them" in said and not (tmp_path / "b.csv").exists()
    # a window with no events still writes its (empty) file, and says where the ledger's events are
    code, said = run(str(tmp_path / "e.csv"), "--since", "2031-01-01")
    assert code == 0 and "wrote 0 focus rows" in said and "the ledger's" in said and "events run from" in said


def _events_csv(tmp_path: Path, lines: str) -> tuple[Path, Path]:
    """A ledger of the JSON ``lines`` ingested, and its priced events exported as CSV: both paths."""
    from flopledger.ledger.ingest import ingest_files

    src = tmp_path / "u.jsonl"
    src.write_text(lines, encoding="utf-8")
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [src])
    con.close()
    out = tmp_path / "events.csv"
    export_ledger(connect_engine("duckdb", db=db), out, "csv")
    return db, out


def test_events_csv_floats_are_plain_and_exact(tmp_path: Path) -> None:
    """The priced events as CSV: costs and rates (floats in the ledger) in plain notation, each
    reading back as the very float the ledger holds."""
    # one token of a cheap model costs $0.00000015: Arrow writes 1.5e-7
    db, out = _events_csv(
        tmp_path,
        '{"ts": "2026-03-02T10:00:00Z", "model": "gpt-4o-mini", "provider": "openai", "input_tokens": 1}\n'
        '{"ts": "2026-03-02T10:00:01Z", "model": "gpt-4o-mini", "provider": "openai", "input_tokens": 3, '
        '"output_tokens": 1}\n',
    )
    con = duckdb.connect(str(db), read_only=True)
    floats = [
        name
        for name, kind in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'events'"
        ).fetchall()
        if kind == "DOUBLE"
    ]
    stored = con.execute(f"SELECT {', '.join(floats)} FROM events ORDER BY ts").fetchall()
    con.close()
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(floats, pa.string()), strings_can_be_null=True)
    read = pacsv.read_csv(out, convert_options=options)
    shown = list(zip(*(read.column(c).to_pylist() for c in floats), strict=True))
    assert len(shown) == len(stored) == 2
    tiny = 0
    for values, texts in zip(stored, shown, strict=True):
        for value, text in zip(values, texts, strict=True):
            assert (value is None) == (text is None)
            if value is not None:
                assert float(text) == value and "e" not in text.lower(), text
                tiny += 0 < abs(value) < 1e-6
    assert tiny >= 2  # costs Arrow would have written with an exponent


def test_events_csv_keeps_fractions_of_a_second(tmp_path: Path) -> None:
    _, out = _events_csv(
        tmp_path,
        '{"ts": "2026-03-02T10:00:00.250Z", "model": "gpt-5", "provider": "openai", "input_tokens": 5}\n'
        '{"ts": "2026-03-02T10:00:01Z", "model": "gpt-5", "provider": "openai", "input_tokens": 7}\n',
    )
    import csv

    with out.open(newline="", encoding="utf-8") as fh:
        ts = sorted(row["ts"] for row in csv.DictReader(fh))
    assert ts == ["2026-03-02T10:00:00.250000Z", "2026-03-02T10:00:01.000000Z"]
    whole = pa.table({"t": pa.array([dt.datetime(2026, 3, 2, 10)], pa.timestamp("us"))})
    from flopledger.ledger.focus import write_table

    write_table(whole, tmp_path / "whole.csv", "csv")
    assert (tmp_path / "whole.csv").read_text().splitlines() == ['"t"', '"2026-03-02T10:00:00Z"']
    # decimals in plain notation: no 0E-10 or 1.200E-7 for a spreadsheet or a loader to trip on
    money = pa.array([0.0, 1.2e-7, 1.5, None, 100.0, -0.25], pa.float64()).cast(pa.decimal128(38, 10))
    write_table(pa.table({"c": money}), tmp_path / "money.csv", "csv")
    lines = (tmp_path / "money.csv").read_text().splitlines()
    assert lines == ['"c"', '"0"', '"0.00000012"', '"1.5"', "", '"100"', '"-0.25"']
    # floats alike, each the shortest text that reads back as the same float
    floats = pa.array([0.0, 1.2e-7, 0.1 + 0.2, None, 1e20, -3e-9, 5e-324], pa.float64())
    write_table(pa.table({"f": floats}), tmp_path / "floats.csv", "csv")
    lines = (tmp_path / "floats.csv").read_text().splitlines()
    shown = [
        "0",
        "0.00000012",
        "0.30000000000000004",
        None,
        "1" + "0" * 20,
        "-0.000000003",
        "0." + "0" * 323 + "5",
    ]
    assert lines == ['"f"', *("" if v is None else f'"{v}"' for v in shown)]


def test_web_searches_are_a_charge_of_their_own(tmp_path: Path) -> None:
    """The Anthropic report's web searches are FOCUS rows of searches, priced per thousand, and
    the rows of every class add up to the ledger's cost."""
    from flopledger.ledger.ingest import ingest_files

    sample = Path(__file__).parent / "formats" / "samples" / "anthropic_messages_report.json"
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [sample])
    (cost,) = con.execute("SELECT sum(cost_usd) FROM events").fetchone() or (0.0,)
    con.close()
    out = tmp_path / "focus.parquet"
    export_ledger(connect_engine("duckdb", db=db), out, "focus")
    rows = pq.read_table(out).to_pylist()
    searches = [r for r in rows if r["x_TokenClass"] == "web_search_requests"]
    assert sum(int(r["ConsumedQuantity"]) for r in searches) == 15
    assert float(sum(r["EffectiveCost"] for r in searches)) == pytest.approx(0.15)
    for r in searches:
        assert (r["ConsumedUnit"], r["PricingUnit"], r["SkuMeter"]) == (
            "Searches",
            "1000 Searches",
            "Web Searches",
        )
        assert float(r["ListUnitPrice"]) == pytest.approx(10.0)  # $10 per thousand searches
        assert float(r["PricingQuantity"]) == pytest.approx(float(r["ConsumedQuantity"]) / 1000)
    assert float(sum(r["EffectiveCost"] for r in rows)) == pytest.approx(cost, abs=1e-5)


def test_list_cost_per_class_is_of_its_own_events_when_a_discount_starts_within_the_day(
    tmp_path: Path,
) -> None:
    """A discount from noon: the morning's cache reads list at what they cost, the afternoon's input
    and output at twice what they cost, not at a blend of the day's."""
    from flopledger.catalog.overrides import load_overrides
    from flopledger.ledger.ingest import ingest_files

    src = tmp_path / "u.jsonl"
    base = {"provider": "anthropic", "model": "claude-sonnet-4-5", "team": "a"}
    src.write_text(
        json.dumps({**base, "ts": "2026-05-01T09:00:00Z", "cache_read_tokens": 1_000_000})
        + "\n"
        + json.dumps(
            {**base, "ts": "2026-05-01T15:00:00Z", "input_tokens": 100_000, "output_tokens": 100_000}
        )
        + "\n",
        encoding="utf-8",
    )
    toml = tmp_path / "overrides.toml"
    toml.write_text(
        '[[discount]]\nprovider = "anthropic"\npercent = 50\nvalid_from = 2026-05-01T12:00:00Z\n',
        encoding="utf-8",
    )
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [src], overrides=load_overrides(toml))
    con.close()
    rows = focus_table(connect_engine("duckdb", db=db)).to_pylist()
    got = {
        r["x_TokenClass"]: (float(r["BilledCost"]), float(r["ListCost"]), float(r["ListUnitPrice"]))
        for r in rows
    }
    # 1M cache reads above the 200k tier at $0.60/M, undiscounted; 100k in at $3/M and out at $15/M, halved
    assert got.pop("requests") == (0.0, 0.0, 0.0)  # no fee per request for this model
    assert got == {
        "cache_read_tokens": pytest.approx((0.60, 0.60, 0.60)),
        "input_tokens": pytest.approx((0.15, 0.30, 3.0)),
        "output_tokens": pytest.approx((0.75, 1.50, 15.0)),
    }


def _focus_of(
    tmp_path: Path, lines: list[dict[str, Any]], overrides: str | None = None
) -> list[dict[str, Any]]:
    from flopledger.catalog.overrides import load_overrides
    from flopledger.ledger.ingest import ingest_files

    tmp_path.mkdir(exist_ok=True)
    src = tmp_path / "u.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    loaded = None
    if overrides is not None:
        (tmp_path / "o.toml").write_text(overrides, encoding="utf-8")
        loaded = load_overrides(tmp_path / "o.toml")
    db = tmp_path / "l.duckdb"
    con = open_ledger(db)
    ingest_files(con, [src], overrides=loaded)
    con.close()
    return [
        r for r in focus_table(connect_engine("duckdb", db=db)).to_pylist() if r["x_TokenClass"] != "requests"
    ]


_SONNET = {"provider": "anthropic", "model": "claude-sonnet-4-5", "ts": "2026-11-10T10:00:00Z"}
"""A line of usage of one model on one day, for the exports below to add counts to."""


def test_each_row_is_one_price_point_so_its_unit_price_is_a_published_one(tmp_path: Path) -> None:
    """Two requests of one day, below and above the 200k long-context tier: two rows, $3 and $6 per
    million, each its own SkuPriceId (one row at a blended $5.25 is no price any list has)."""
    base = {**_SONNET, "team": "web"}
    rows = _focus_of(tmp_path, [{**base, "input_tokens": 100_000}, {**base, "input_tokens": 300_000}])
    got = sorted((float(r["PricingQuantity"]), float(r["ListUnitPrice"]), r["SkuPriceId"]) for r in rows)
    assert [(q, round(p, 9)) for q, p, _ in got] == [(0.1, 3.0), (0.3, 6.0)]
    assert got[0][2] != got[1][2]
    assert (
        got[0][2]
        == "anthropic/claude-sonnet-4-5:input_tokens:standard:list 3/15 USD per 1000000 input/output Tokens"
    )
    assert got[1][2].endswith(":list 6/22.5 USD per 1000000 input/output Tokens")


def test_the_sku_price_id_stays_when_the_overrides_file_changes(tmp_path: Path) -> None:
    line = {**_SONNET, "input_tokens": 10}
    plain = _focus_of(tmp_path / "a", [line], overrides="# no discounts yet\n")
    commented = _focus_of(tmp_path / "b", [line], overrides="# no discounts yet, said otherwise\n")
    assert plain[0]["x_PriceVersion"] != commented[0]["x_PriceVersion"]
    assert plain[0]["SkuPriceId"] == commented[0]["SkuPriceId"]
    # a negotiated discount is no other price list's price (FOCUS leaves discounts out of the id)
    discounted = _focus_of(
        tmp_path / "c", [line], overrides='[[discount]]\nprovider = "anthropic"\npercent = 30\n'
    )
    assert float(discounted[0]["BilledCost"]) == pytest.approx(0.7 * float(plain[0]["BilledCost"]))
    assert discounted[0]["SkuPriceId"] == plain[0]["SkuPriceId"]
    # nor does a day's mix of reasoning, priced at its own rate, move the output's id
    mixed = [
        {**line, "model": "sonar-deep-research", "provider": "perplexity", "output_tokens": 1_000, **extra}
        for extra in ({"reasoning_tokens": 0}, {"reasoning_tokens": 900, "ts": "2026-11-11T10:00:00Z"})
    ]
    out = [r for r in _focus_of(tmp_path / "d", mixed) if r["x_TokenClass"] == "output_tokens"]
    assert len(out) == 2 and out[0]["ListUnitPrice"] != out[1]["ListUnitPrice"]
    assert out[0]["SkuPriceId"] == out[1]["SkuPriceId"]


def test_tags_keep_the_users_team_and_hold_scalar_values_only(tmp_path: Path) -> None:
    line = {
        **_SONNET,
        "input_tokens": 10,
        "team": "alpha",
        "tags": {"team": "marketing", "request_tags": ["coding-agent", "ci"], "meta": {"env": "prod"}},
    }
    (row,) = _focus_of(tmp_path, [line])
    assert json.loads(row["Tags"]) == {
        "team": "marketing",  # the user's own tag, not altered
        "flopledger:team": "alpha",  # flopledger's, under its prefix
        "request_tags": '["coding-agent", "ci"]',  # FOCUS tag values are scalars: a list as its JSON
        "meta": '{"env": "prod"}',
    }
