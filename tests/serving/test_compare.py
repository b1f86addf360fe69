"""Local device against an API: cost at a volume and the break-even volume."""

from __future__ import annotations

import pytest

from flopledger.errors import InputError
from flopledger.serving import compare_local_to_api


def test_break_even_is_where_the_bills_meet() -> None:
    c = compare_local_to_api(
        model="llama-3.1-8b",
        device="rtx-4090",
        api_usd_per_mtok_input=0.2,
        api_usd_per_mtok_output=0.8,
        daily_tokens=1e6,
    )
    assert c.break_even_daily_tokens is not None
    at = compare_local_to_api(
        model="llama-3.1-8b",
        device="rtx-4090",
        api_usd_per_mtok_input=0.2,
        api_usd_per_mtok_output=0.8,
        daily_tokens=c.break_even_daily_tokens,
    )
    assert at.device_usd_per_day == pytest.approx(at.api_usd_per_day)
    assert c.cheaper == "api"  # one million tokens a day does not pay for a device
    assert c.api_usd_per_mtok == pytest.approx(0.2 * 0.8 + 0.8 * 0.2)


def test_free_api_never_breaks_even() -> None:
    c = compare_local_to_api(
        model="llama-3.2-3b",
        device="apple-m4-max",
        api_usd_per_mtok_input=0,
        api_usd_per_mtok_output=0,
        daily_tokens=1e6,
    )
    assert c.break_even_daily_tokens is None and c.cheaper == "api"


def test_device_without_a_price_is_refused() -> None:
    with pytest.raises(InputError, match="purchase price"):
        compare_local_to_api(
            model="llama-3.1-8b",
            device="tpu-v5e",
            api_usd_per_mtok_input=1,
            api_usd_per_mtok_output=1,
            daily_tokens=1e6,
        )
