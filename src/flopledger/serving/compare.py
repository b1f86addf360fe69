"""Own a device or pay an API? Cost per million tokens at a daily volume, and the break-even volume.

The device's cost is its purchase price spread over its life (a fixed cost per day) plus the energy of
the hours it is busy. The API's cost is its price per token. The device breaks even at the daily volume
where the API bill equals the device's fixed cost plus energy; above its capacity it cannot serve the
volume alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flopledger.catalog.accelerators import get_accelerator
from flopledger.errors import InputError
from flopledger.serving.estimate import ServingEstimate, estimate_serving

__all__ = ["LocalVersusApi", "compare_local_to_api"]

_JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class LocalVersusApi:
    """A device's cost beside an API's for the same model class at one daily volume."""

    model: str
    device: str
    precision: str
    daily_tokens: float
    device_capacity_daily_tokens: float
    device_usd_per_day: float
    api_usd_per_day: float
    device_usd_per_mtok: float
    api_usd_per_mtok: float
    break_even_daily_tokens: float | None
    cheaper: str
    estimate: ServingEstimate
    assumptions: dict[str, Any]

    def as_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("estimate", "assumptions")}
        row["device_output_tokens_per_s"] = self.estimate.output_tokens_per_s
        row["assumptions"] = self.assumptions
        return row


def compare_local_to_api(
    *,
    model: str,
    device: str,
    api_usd_per_mtok_input: float,
    api_usd_per_mtok_output: float,
    daily_tokens: float,
    input_tokens: int = 2000,
    output_tokens: int = 500,
    precision: str = "fp4",
    usd_per_kwh: float = 0.15,
    years: float = 3.0,
    tpot_ms: float | None = None,
) -> LocalVersusApi:
    """Compare owning ``device`` with paying an API for ``daily_tokens`` (input plus output) a day.

    Requests have ``input_tokens`` in and ``output_tokens`` out; the same split applies to the volume.

    >>> c = compare_local_to_api(model="llama-3.1-8b", device="rtx-4090", api_usd_per_mtok_input=0.1,
    ...                          api_usd_per_mtok_output=0.4, daily_tokens=50e6)
    >>> c.cheaper in ("device", "api")
    True
    """
    if daily_tokens <= 0 or years <= 0 or usd_per_kwh < 0:
        raise InputError("daily_tokens and years must be positive, usd_per_kwh not negative", field="volume")
    if api_usd_per_mtok_input < 0 or api_usd_per_mtok_output < 0:
        raise InputError("API prices cannot be negative", field="api_usd_per_mtok")
    acc = get_accelerator(device)
    if acc.usd_capex_owned is None:
        raise InputError(
            f"{acc.id} has no public purchase price; it cannot be owned in this comparison", field="device"
        )
    est = estimate_serving(
        model=model,
        accelerator=acc.id,
        count=1,
        precision=precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tpot_ms=tpot_ms,
    )

    output_share = output_tokens / (input_tokens + output_tokens)
    api_usd_per_mtok = api_usd_per_mtok_input * (1 - output_share) + api_usd_per_mtok_output * output_share
    api_usd_per_token = api_usd_per_mtok / 1e6
    energy_usd_per_output_token = est.joules_per_output_token_with_pue / _JOULES_PER_KWH * usd_per_kwh
    energy_usd_per_token = energy_usd_per_output_token * output_share
    fixed_usd_per_day = acc.usd_capex_owned / (years * 365.0)
    capacity = (est.output_tokens_per_s / output_share) * 86400.0

    device_per_day = fixed_usd_per_day + energy_usd_per_token * daily_tokens
    api_per_day = api_usd_per_token * daily_tokens
    margin = api_usd_per_token - energy_usd_per_token
    break_even = fixed_usd_per_day / margin if margin > 0 else None
    return LocalVersusApi(
        model=est.model,
        device=acc.id,
        precision=precision,
        daily_tokens=daily_tokens,
        device_capacity_daily_tokens=capacity,
        device_usd_per_day=device_per_day,
        api_usd_per_day=api_per_day,
        device_usd_per_mtok=device_per_day / daily_tokens * 1e6,
        api_usd_per_mtok=api_usd_per_token * 1e6,
        break_even_daily_tokens=break_even,
        cheaper="device" if device_per_day < api_per_day and daily_tokens <= capacity else "api",
        estimate=est,
        assumptions={
            "device_capex_usd": acc.usd_capex_owned,
            "amortization_years": years,
            "usd_per_kwh": usd_per_kwh,
            "energy": "wall power x PUE while busy; idle power not charged",
            "volume_split": f"{input_tokens} in / {output_tokens} out per request",
            "over_capacity": daily_tokens > capacity,
            "break_even_beyond_capacity": break_even is not None and break_even > capacity,
        },
    )
