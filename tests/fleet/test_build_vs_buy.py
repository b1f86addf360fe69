"""Build versus buy: vendor bill against self-hosting plus amortised development, break-even volume."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError
from flopledger.fleet.build_vs_buy import Development, SelfHosting, compare_build_vs_buy
from flopledger.fleet.ledger_volume import MonthlyVolume, VendorPrices, monthly_volume_from_ledger
from flopledger.ledger.store import open_ledger

VOLUME = MonthlyVolume(2e12, 30e12, 1e12, 0.5e12, None, None, None, "test")
PRICES = VendorPrices(3.0, 0.3, 3.75, 15.0)
HOST = SelfHosting(model="deepseek-v3", accelerator="b200", usd_per_accelerator_hour=4.0)
DEV = Development(development_usd=480e6, amortization_months=24)


def test_vendor_bill_prices_each_class_apart() -> None:
    result = compare_build_vs_buy(VOLUME, PRICES, HOST, DEV)
    # 2e6 Mtok x 3 + 30e6 x 0.3 + 1e6 x 3.75 + 0.5e6 x 15 = 6 + 9 + 3.75 + 7.5 = $26.25M
    assert result.vendor_usd_per_month == pytest.approx(26.25e6)
    assert result.vendor_usd_per_mtok == pytest.approx(26.25e6 / 33.5e6)


def test_self_hosted_bill_by_hand() -> None:
    result = compare_build_vs_buy(VOLUME, PRICES, HOST, DEV)
    per_node = result.estimate.output_tokens_per_s * HOST.utilization * 730 * 3600
    assert result.nodes_needed_fractional == pytest.approx(0.5e12 / per_node)
    assert result.nodes == math.ceil(result.nodes_needed_fractional)
    assert result.compute_usd_per_month == pytest.approx(result.nodes * 8 * 4.0 * 730)
    assert result.development_usd_per_month == pytest.approx(20e6)
    assert result.energy_usd_per_month == 0.0  # rented: power is in the price
    assert result.self_hosted_usd_per_month == pytest.approx(20e6 + result.compute_usd_per_month)
    # 44 nodes x 8 x $4 x 730 h = $1.03M plus $20M development, under the $26.25M vendor bill
    assert result.nodes == 44 and result.self_hosted_usd_per_month == pytest.approx(21_027_840)
    assert result.cheaper == "self-hosted"
    # prefill: uncached input, cache writes, 10% of cache reads: (2 + 1 + 3) / 0.5 = 12 per output
    assert result.estimate.input_tokens == 12 * result.estimate.output_tokens


def _bills_at(result_tokens: float, prices: VendorPrices) -> tuple[float, float]:
    k = result_tokens / VOLUME.total_tokens
    scaled = dataclasses.replace(
        VOLUME,
        input_tokens=VOLUME.input_tokens * k,
        cache_read_tokens=VOLUME.cache_read_tokens * k,
        cache_write_tokens=VOLUME.cache_write_tokens * k,
        output_tokens=VOLUME.output_tokens * k,
    )
    again = compare_build_vs_buy(scaled, prices, HOST, DEV)
    return again.vendor_usd_per_month, again.self_hosted_usd_per_month


@settings(max_examples=15, deadline=None)
@given(st.floats(min_value=0.3, max_value=10.0))
def test_break_even_is_where_the_bills_meet(price_scale: float) -> None:
    prices = VendorPrices(*(price_scale * v for v in (3.0, 0.3, 3.75, 15.0)))
    result = compare_build_vs_buy(VOLUME, prices, HOST, DEV)
    assert result.break_even_monthly_tokens is not None
    vendor, self_hosted = _bills_at(result.break_even_monthly_tokens, prices)
    assert self_hosted == pytest.approx(vendor, rel=1e-6)
    vendor, self_hosted = _bills_at(result.break_even_monthly_tokens * 0.98, prices)
    assert self_hosted > vendor  # just below break-even, buying is cheaper


def test_vendor_cheaper_than_the_hardware_never_breaks_even() -> None:
    cheap = VendorPrices(0.0, 0.0, 0.0, 1e-6)
    result = compare_build_vs_buy(VOLUME, cheap, HOST, DEV)
    assert result.break_even_monthly_tokens is None and result.cheaper == "vendor"


def test_owned_accelerators_pay_energy() -> None:
    owned = dataclasses.replace(HOST, owned=True, usd_per_accelerator_hour=None, usd_per_kwh=0.1)
    result = compare_build_vs_buy(VOLUME, PRICES, owned, DEV)
    # b200: 1,788 W at the wall x PUE 1.3, 8 per node, 730 h, busy 60% of the time, $0.1/kWh
    per_node = 1.788 * 1.3 * 8 * 730 * 0.6 * 0.1
    assert result.energy_usd_per_month == pytest.approx(result.nodes * per_node)
    assert result.assumptions["usd_per_accelerator_hour"] == pytest.approx(50000 / (4 * 8760))


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="utilization"):
        compare_build_vs_buy(VOLUME, PRICES, dataclasses.replace(HOST, utilization=0.0), DEV)
    with pytest.raises(InputError, match="no vendor prices"):
        compare_build_vs_buy(VOLUME, None, HOST, DEV)
    with pytest.raises(InputError, match="no public rental price"):
        compare_build_vs_buy(VOLUME, PRICES, SelfHosting(model="deepseek-v3", accelerator="gb200"), DEV)
    with pytest.raises(InputError, match="output tokens"):
        MonthlyVolume(1.0, 0.0, 0.0, 0.0, None, None, None, "x")


def _ledger(tmp_path: Path, *, unpriced: bool = False) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "ledger.duckdb"
    con = open_ledger(path)
    rows = [
        # ts, requests, input, cache read, write 5m, write 1h, output, and the cost of each class
        (
            dt.datetime(2026, 1, 1, 9),
            1000,
            2_000_000,
            30_000_000,
            500_000,
            500_000,
            500_000,
            6.0,
            9.0,
            1.875,
            1.875,
            7.5,
        ),
        (
            dt.datetime(2026, 3, 1, 17),
            1000,
            2_000_000,
            30_000_000,
            500_000,
            500_000,
            500_000,
            6.0,
            9.0,
            1.875,
            1.875,
            7.5,
        ),
    ]
    for i, r in enumerate(rows):
        cost = None if unpriced and i else sum(r[7:])
        con.execute(
            'INSERT INTO events (event_id, ts, provider, model, "user", requests, input_tokens, '
            "cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, "
            "input_tokens_cost_usd, cache_read_tokens_cost_usd, cache_write_5m_tokens_cost_usd, "
            "cache_write_1h_tokens_cost_usd, output_tokens_cost_usd, cost_usd, priced) "
            "VALUES (?, ?, 'anthropic', 'claude-sonnet-4', 'u1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"e{i}", *r[:7], *r[7:], cost, cost is not None],
        )
    con.close()
    return path


def test_monthly_volume_from_a_real_ledger(tmp_path: Path) -> None:
    volume = monthly_volume_from_ledger(_ledger(tmp_path))
    months = 60 / (365.25 / 12)  # 1 January to 1 March inclusive: 60 days
    assert volume.input_tokens == pytest.approx(4e6 / months)
    assert volume.cache_read_tokens == pytest.approx(60e6 / months)
    assert volume.cache_write_tokens == pytest.approx(2e6 / months)
    assert volume.output_tokens == pytest.approx(1e6 / months)
    assert volume.requests == pytest.approx(2000 / months)
    assert volume.vendor_usd == pytest.approx(52.5 / months)
    assert volume.vendor_prices == VendorPrices(3.0, 0.3, 3.75, 15.0)
    # a window given: its own length counts, not the days that happen to hold events
    february_on = monthly_volume_from_ledger(
        _ledger(tmp_path / "b"), since=dt.date(2026, 2, 1), until=dt.date(2026, 3, 3)
    )
    assert february_on.output_tokens == pytest.approx(500_000 / (30 / (365.25 / 12)))


def test_unpriced_ledger_needs_prices(tmp_path: Path) -> None:
    volume = monthly_volume_from_ledger(_ledger(tmp_path, unpriced=True))
    assert volume.vendor_usd is None and "unpriced" in volume.source
    with pytest.raises(InputError, match="no vendor prices"):
        compare_build_vs_buy(volume, None, HOST, DEV)


def test_missing_or_empty_ledger(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ledger file"):
        monthly_volume_from_ledger(tmp_path / "absent.duckdb")
    with pytest.raises(InputError, match="no events"):
        monthly_volume_from_ledger(_ledger(tmp_path), since=dt.date(2027, 1, 1))


runner = CliRunner()


def test_cli_from_the_ledger(tmp_path: Path) -> None:
    db = _ledger(tmp_path)
    result = runner.invoke(
        app,
        [
            "fleet",
            "build-vs-buy",
            "--db",
            str(db),
            "--model",
            "llama-3.1-8b",
            "--accelerator",
            "h100-sxm",
            "--node-size",
            "1",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["vendor_usd_per_month"] == pytest.approx(52.5 / (60 / (365.25 / 12)))
    assert data["summary"]["cheaper"] == "vendor"  # a tiny ledger: one node costs more than the bill
    assert data["assumptions"]["volume_source"].startswith("ledger ledger.duckdb: 2 events from 2026-01-01")
    assert len(data["volume_curve"]) == 7
    # --until is the window's last day: 2026-02-01 through 2026-03-02 is 30 days
    cli = ["fleet", "build-vs-buy", "--db", str(db), "--model", "llama-3.1-8b", "--accelerator", "h100-sxm"]
    window = ["--since", "2026-02-01", "--until", "2026-03-02", "--node-size", "1", "--format", "json"]
    february_on = runner.invoke(app, [*cli, *window])
    assert february_on.exit_code == 0, february_on.output
    volume = monthly_volume_from_ledger(db, since=dt.date(2026, 2, 1), until=dt.date(2026, 3, 3))
    assert json.loads(february_on.stdout)["summary"]["vendor_usd_per_month"] == pytest.approx(
        volume.vendor_usd
    )


def test_cli_given_tokens_and_errors() -> None:
    args = [
        "fleet",
        "build-vs-buy",
        "--model",
        "deepseek-v3",
        "--accelerator",
        "b200",
        "--monthly-input-tokens",
        "2e12",
        "--monthly-cache-read-tokens",
        "30e12",
        "--monthly-cache-write-tokens",
        "1e12",
        "--monthly-output-tokens",
        "0.5e12",
        "--vendor-usd-per-mtok-input",
        "3",
        "--vendor-usd-per-mtok-output",
        "15",
        "--development-usd",
        "480e6",
        "--format",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["vendor_usd_per_month"] == pytest.approx(26.25e6)  # cache rates default 10% / 125%
    assert summary["break_even_monthly_tokens"] > 0
    missing = runner.invoke(app, ["fleet", "build-vs-buy", "--model", "deepseek-v3", "--accelerator", "b200"])
    assert missing.exit_code != 0 and isinstance(missing.exception, InputError)
