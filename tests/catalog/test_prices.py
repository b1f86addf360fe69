"""Which catalog model a logged provider and model name price as."""

from __future__ import annotations

import pytest

from flopledger.catalog.prices import resolve_catalog_model


@pytest.mark.parametrize(
    ("provider", "model", "priced_as"),
    [
        ("self-hosted", "deepseek-r1", None),  # own hardware: never a vendor's API rates
        ("hosted_vllm", "gpt-4o", None),
        ("anthropic", "gpt-4o", None),  # a vendor that sells only its own models: a mislabelled row
        ("aws", "claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),  # a host: the vendor's price
        ("acme-gateway", "gpt-4o", ("openai", "gpt-4o")),  # an unknown provider: the model's vendor
        # a gateway's vendor/model name, where no price is listed under the whole name: the vendor's
        (None, "openai/gpt-4o-2024-08-06", ("openai", "gpt-4o")),
        ("portkey", "azure/gpt-4o", ("azure", "gpt-4o")),
        (None, "vertex_ai/gemini-2.5-pro", ("google", "gemini-2.5-pro")),
        ("openai", "openai/gpt-4o", ("openai", "gpt-4o")),
        (
            "openrouter",
            "anthropic/claude-sonnet-4.5",
            ("openrouter", "anthropic/claude-sonnet-4.5"),
        ),  # listed
        (None, "hosted_vllm/llama-3", None),  # own hardware, named so
        (None, "models/gemini-2.5-pro", ("google", "gemini-2.5-pro")),  # the Gemini API's name
        ("azure", "openai/o3", ("azure", "o3-2025-04-16")),  # the host's own listing, its discounts
        ("anthropic", "openai/gpt-4o", None),  # a vendor selling only its own: mislabelled, as unprefixed
        (None, "my-finetunes/gpt-4o-mini", None),  # no vendor's name: not priced as one
        (None, "lm_studio/deepseek-r1", None),  # a local server's prefix
        ("openai", "gpt-4o", ("openai", "gpt-4o")),
        (None, "gpt-4o", ("openai", "gpt-4o")),
    ],
)
def test_which_logged_providers_fall_back_to_the_models_vendor(
    provider: str | None, model: str, priced_as: tuple[str, str] | None
) -> None:
    assert resolve_catalog_model(provider, model) == priced_as


def test_a_ledger_mapped_by_earlier_rules_is_mapped_again_by_reprice(tmp_path: object) -> None:
    """The mapping rules are part of the price version: reprice maps every logged name anew."""
    from pathlib import Path

    from flopledger.catalog.overrides import PriceOverrides
    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.price_table import price_version
    from flopledger.ledger.repricing import reprice
    from flopledger.ledger.store import open_ledger

    assert isinstance(tmp_path, Path)
    rows = tmp_path / "a.jsonl"
    rows.write_text(
        '{"ts": "2026-03-02T10:00:00Z", "provider": "anthropic", "model": "gpt-4o", "input_tokens": 1000}\n'
    )
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [rows])
    now = price_version(PriceOverrides.empty())
    from flopledger.catalog.prices import MAPPING_RULES

    old = now.replace(f"; mapping {MAPPING_RULES}", "")  # as an earlier flopledger named its version
    # An earlier version mapped (anthropic, gpt-4o) to OpenAI's gpt-4o and priced the event so.
    con.execute("UPDATE model_map SET price_version = ?, provider_id = 'openai', model_id = 'gpt-4o'", [old])
    con.execute("UPDATE events SET price_version = ?, priced = true, cost_usd = 0.0025", [old])
    result = reprice(con, PriceOverrides.empty())
    assert result.price_version == now
    assert con.execute("SELECT priced, cost_usd FROM events").fetchall() == [(False, None)]


def test_every_catalog_model_has_price_rows_by_its_own_id() -> None:
    """A logged name maps to a catalog model id, and its prices are found by that id: some models'
    match rules match only the names they are logged under (``regional.anthropic...`` on aws,
    ``ft:gpt-4o-mini``, ``codestral``), never their own id."""
    from genai_prices import data_snapshot

    from flopledger.catalog.prices import catalog_rows

    models = [(p.id, m.id) for p in data_snapshot.get_snapshot().providers for m in p.models]
    assert len(models) > 1000
    assert [m for m in models if not catalog_rows(*m)] == []
    for logged in [
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::AbC123"),
        ("mistral", "codestral-latest"),
    ]:
        found = resolve_catalog_model(*logged)
        assert found is not None and catalog_rows(*found), logged
