"""The overrides file docs/prices.md shows is read as it says: its example parses, and the rules it
states (cache prices default to the input price, one price for every tier, no discount on a private
model, the later of two discounts wins, an unknown key is an error naming it) hold."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from flopledger.catalog.overrides import load_overrides
from flopledger.catalog.prices import catalog_rows
from flopledger.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "prices.md"


def _example(tmp_path: Path) -> Path:
    (block,) = re.findall(r"```toml\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    path = tmp_path / "flopledger-prices.toml"
    path.write_text(block)
    return path


def test_the_documented_example_parses_as_documented(tmp_path: Path) -> None:
    overrides = load_overrides(_example(tmp_path), required=True)
    discount, tiered = overrides.discounts
    assert (discount.provider, discount.model, discount.percent) == ("anthropic", "claude-sonnet-4*", 12.5)
    assert (tiered.provider, tiered.service_tier, tiered.percent) == ("openai", ("batch", "flex"), 5.0)
    by_tier = {r.variant: r.discount_pct for r in catalog_rows("openai", "gpt-5", overrides)}
    assert by_tier == {"standard": 0.0, "batch": 5.0, "priority": 0.0, "flex": 5.0}
    key = overrides.private_key("internal", " llama-3.1-70b-selfhosted ")  # names are trimmed
    assert key is not None
    rows = catalog_rows(*key, overrides)
    assert sorted(r.variant for r in rows) == ["batch", "flex", "priority", "standard"]
    assert {(r.input_usd_per_mtok, r.output_usd_per_mtok, r.cache_read_usd_per_mtok) for r in rows} == {
        (0.35, 0.70, 0.035)
    }
    assert {(r.usd_per_web_search, r.discount_pct, r.source) for r in rows} == {
        (0.01, 0.0, "internal chargeback rate, 2026")
    }
    assert {(r.valid_from, r.valid_to) for r in rows} == {(dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))}


def test_the_documented_rules_hold(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[discount]]\npercent = 10\n[[discount]]\nprovider = "anthropic"\npercent = 30\n'
        '[[model]]\nmodel = "house"\ninput_usd_per_mtok = 2.0\noutput_usd_per_mtok = 4.0\n'
    )
    overrides = load_overrides(path)
    key = overrides.private_key("any-provider", "house")  # no provider: any
    assert key is not None
    (row, *_) = catalog_rows(*key, overrides)
    cache = (row.cache_read_usd_per_mtok, row.cache_write_5m_usd_per_mtok, row.cache_write_1h_usd_per_mtok)
    assert cache == (2.0, 2.0, 2.0) and row.discount_pct == 0.0  # no discount on a private model
    sonnet = catalog_rows("anthropic", "claude-sonnet-4-5", overrides)
    assert {r.discount_pct for r in sonnet} == {30.0}  # the later of the two wins
    path.write_text('[[model]]\nmodel = "house"\ninput_usd_per_mtok = 2.0\noutput_usd = 4.0\n')
    with pytest.raises(ConfigError, match=r"unknown key 'model\.0\.output_usd'; docs/prices\.md lists"):
        load_overrides(path)  # named, though the output_usd_per_mtok it was meant as is missing too
    path.write_text('[[discount]]\npercent = 10\nservice_tier = "bulk"\n')
    with pytest.raises(
        ConfigError, match="service_tier 'bulk' is not one of standard, batch, priority, flex"
    ):
        load_overrides(path)
    # the tiers are the ledger's
    from flopledger.catalog.overrides import _SERVICE_TIERS
    from flopledger.ledger.schema import SERVICE_TIERS

    assert _SERVICE_TIERS == SERVICE_TIERS
    path.write_text("[[discount]]\npercent = 10\nvalid_from = 2026-05-01\nvalid_to = 2026-01-01\n")
    with pytest.raises(ConfigError) as raised:
        load_overrides(path)
    assert "valid_from 2026-05-01 00:00:00 is not before valid_to" in str(raised.value)
    assert "key ''" not in str(raised.value) and "Value error" not in str(raised.value)
