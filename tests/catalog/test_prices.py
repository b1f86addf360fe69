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
        ("openai", "gpt-4o", ("openai", "gpt-4o")),
        (None, "gpt-4o", ("openai", "gpt-4o")),
    ],
)
def test_which_logged_providers_fall_back_to_the_models_vendor(
    provider: str | None, model: str, priced_as: tuple[str, str] | None
) -> None:
    assert resolve_catalog_model(provider, model) == priced_as
