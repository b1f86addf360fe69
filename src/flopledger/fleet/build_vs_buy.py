"""Build versus buy: a month of tokens at vendor prices against serving them on your own model.

The buy side is the vendor bill of the month's tokens (priced by class, or the ledger's actual bill).
The build side serves the same tokens with an in-house model on accelerators (owned or rented) sized
by the serving estimator, plus the model's development cost amortised over its useful life and any
fixed operations cost. Self-hosting has a fixed part (development, operations) and a part that grows
with volume in whole nodes, so it pays off above a break-even volume::

    result = compare_build_vs_buy(volume, prices, SelfHosting(model="deepseek-v3", accelerator="h200"),
                                  Development(development_usd=500e6, amortization_months=24))
    result.break_even_monthly_tokens

Cache reads on a self-hosted engine hit its own prefix cache, so only a share of them is prefilled
again (``cache_read_compute_share``); cache writes and uncached input are prefilled in full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flopledger.catalog.accelerators import get_accelerator
from flopledger.errors import InputError
from flopledger.fleet.ledger_volume import MonthlyVolume, VendorPrices
from flopledger.serving import ServingEstimate, estimate_serving

__all__ = [
    "BuildVersusBuy",
    "Development",
    "SelfHosting",
    "VolumePoint",
    "compare_build_vs_buy",
]

HOURS_PER_MONTH = 730.0
_VOLUME_MULTIPLES = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)


@dataclass(frozen=True)
class SelfHosting:
    """How the in-house model would be served."""

    model: str
    accelerator: str
    node_size: int = 8  # accelerators per serving node (one replica set)
    precision: str = "fp8"
    owned: bool = False  # owned: catalog capex over ``life_years`` plus energy; else rented (power included)
    usd_per_accelerator_hour: float | None = None  # overrides the catalog price
    life_years: float = 4.0
    utilization: float = 0.6  # average load over capacity: headroom for peaks and failures
    usd_per_kwh: float = 0.08
    cache_read_compute_share: float = 0.1
    operations_usd_per_month: float = 0.0  # serving team, networking, storage


@dataclass(frozen=True)
class Development:
    """Building the model: a one-off cost spread over the months it stays in service."""

    development_usd: float = 0.0
    amortization_months: float = 24.0


@dataclass(frozen=True)
class VolumePoint:
    monthly_tokens: float
    vendor_usd: float
    self_hosted_usd: float
    nodes: int
    cheaper: str


@dataclass(frozen=True)
class BuildVersusBuy:
    monthly_tokens: float
    monthly_output_tokens: float
    vendor_usd_per_month: float
    vendor_usd_per_mtok: float
    nodes: int
    accelerators: int
    nodes_needed_fractional: float
    compute_usd_per_month: float
    energy_usd_per_month: float
    development_usd_per_month: float
    operations_usd_per_month: float
    self_hosted_usd_per_month: float
    self_hosted_usd_per_mtok: float
    savings_usd_per_month: float
    cheaper: str
    break_even_monthly_tokens: float | None  # None: self-hosting never pays at any volume
    break_even_nodes: int | None
    estimate: ServingEstimate
    curve: tuple[VolumePoint, ...]
    assumptions: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Every scalar field, for tables and JSON."""
        skip = {"estimate", "curve", "assumptions"}
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}


def _hourly_price(host: SelfHosting) -> tuple[float, str]:
    acc = get_accelerator(host.accelerator)
    if host.usd_per_accelerator_hour is not None:
        return host.usd_per_accelerator_hour, "given"
    if host.owned:
        owned = acc.usd_per_hour_owned(years=host.life_years)
        if owned is None:
            raise InputError(
                f"{acc.id} has no public purchase price; give --usd-per-hour", field="usd_per_hour"
            )
        return owned, f"catalog capex ${acc.usd_capex_owned:,.0f} over {host.life_years:g} years"
    if acc.usd_per_hour_rented is None:
        raise InputError(
            f"{acc.id} has no public rental price; give --usd-per-hour or use --owned", field="usd_per_hour"
        )
    return acc.usd_per_hour_rented, "catalog rented (power included)"


def _validate(host: SelfHosting, dev: Development) -> None:
    if not 0 < host.utilization <= 1:
        raise InputError("utilization must be in (0, 1]", field="utilization")
    if not 0 <= host.cache_read_compute_share <= 1:
        raise InputError("cache_read_compute_share must be in [0, 1]", field="cache_read_compute_share")
    if host.node_size < 1 or host.life_years <= 0 or host.usd_per_kwh < 0:
        raise InputError(
            "node_size and life_years must be positive, usd_per_kwh not negative", field="self_hosting"
        )
    if host.operations_usd_per_month < 0 or dev.development_usd < 0 or dev.amortization_months <= 0:
        raise InputError(
            "development and operations costs cannot be negative; amortization_months > 0",
            field="development",
        )


def _break_even(
    fixed_usd: float, vendor_usd: float, nodes_needed: float, node_usd: float
) -> tuple[float | None, int | None]:
    """Smallest multiple k of the volume where fixed + ceil(k N) x node cost <= k x vendor bill.

    With n nodes the self-hosted bill is flat on ``((n-1)/N, n/N]``; it meets the vendor line inside
    that step when ``F + n c <= n V / N``, i.e. from ``n* = ceil(F / (V/N - c))`` on.
    """
    per_node_vendor = vendor_usd / nodes_needed  # vendor bill of one fully used node's tokens
    if per_node_vendor <= node_usd:
        return None, None
    n = max(1, math.ceil(fixed_usd / (per_node_vendor - node_usd) - 1e-12))
    k = (fixed_usd + n * node_usd) / vendor_usd
    return k, n


def compare_build_vs_buy(
    volume: MonthlyVolume,
    prices: VendorPrices | None,
    host: SelfHosting,
    development: Development | None = None,
) -> BuildVersusBuy:
    """Compare a month of vendor tokens with serving them in house (see the module docstring).

    ``prices`` may be None when ``volume`` carries the ledger's bill and rates.
    """
    dev = development or Development()
    _validate(host, dev)
    if prices is not None:
        vendor_usd = volume.cost_at(prices)
    elif volume.vendor_usd is not None:  # the ledger's actual bill (per-request fees included)
        vendor_usd, prices = volume.vendor_usd, volume.vendor_prices
    else:
        raise InputError(
            "no vendor prices: give them (--vendor-usd-per-mtok-*) or a fully priced ledger",
            field="vendor_prices",
        )
    if vendor_usd <= 0:
        raise InputError("the vendor bill of this volume is zero; give vendor prices", field="vendor_prices")

    prefill = (
        volume.input_tokens
        + volume.cache_write_tokens
        + volume.cache_read_tokens * host.cache_read_compute_share
    )
    requests = volume.requests or volume.output_tokens / 500.0
    output_per_request = max(1, round(volume.output_tokens / requests))
    input_per_request = max(1, round(prefill / requests))
    usd_per_hour, price_basis = _hourly_price(host)
    est = estimate_serving(
        model=host.model,
        accelerator=host.accelerator,
        count=host.node_size,
        precision=host.precision,
        input_tokens=input_per_request,
        output_tokens=output_per_request,
        usd_per_hour=usd_per_hour,
    )
    node_output_per_month = est.output_tokens_per_s * host.utilization * HOURS_PER_MONTH * 3600.0
    nodes_needed = volume.output_tokens / node_output_per_month
    nodes = max(1, math.ceil(nodes_needed - 1e-9))

    acc = get_accelerator(host.accelerator)
    node_hours = host.node_size * HOURS_PER_MONTH
    node_compute_usd = usd_per_hour * node_hours
    node_energy_usd = 0.0
    if host.owned:  # rented prices include power; idle power is not charged, as in the serving layer
        kw = acc.server_power_w_per_accelerator * acc.pue / 1000.0
        node_energy_usd = kw * node_hours * host.utilization * host.usd_per_kwh
    node_usd = node_compute_usd + node_energy_usd
    dev_usd = dev.development_usd / dev.amortization_months
    fixed_usd = dev_usd + host.operations_usd_per_month
    self_usd = fixed_usd + nodes * node_usd
    k, n_be = _break_even(fixed_usd, vendor_usd, nodes_needed, node_usd)

    curve = []
    for m in _VOLUME_MULTIPLES:
        n_m = max(1, math.ceil(nodes_needed * m - 1e-9))
        s_m = fixed_usd + n_m * node_usd
        curve.append(
            VolumePoint(
                volume.total_tokens * m,
                vendor_usd * m,
                s_m,
                n_m,
                "self-hosted" if s_m < vendor_usd * m else "vendor",
            )
        )
    total = volume.total_tokens
    return BuildVersusBuy(
        monthly_tokens=total,
        monthly_output_tokens=volume.output_tokens,
        vendor_usd_per_month=vendor_usd,
        vendor_usd_per_mtok=vendor_usd / total * 1e6,
        nodes=nodes,
        accelerators=nodes * host.node_size,
        nodes_needed_fractional=nodes_needed,
        compute_usd_per_month=nodes * node_compute_usd,
        energy_usd_per_month=nodes * node_energy_usd,
        development_usd_per_month=dev_usd,
        operations_usd_per_month=host.operations_usd_per_month,
        self_hosted_usd_per_month=self_usd,
        self_hosted_usd_per_mtok=self_usd / total * 1e6,
        savings_usd_per_month=vendor_usd - self_usd,
        cheaper="self-hosted" if self_usd < vendor_usd else "vendor",
        break_even_monthly_tokens=None if k is None else k * total,
        break_even_nodes=n_be,
        estimate=est,
        curve=tuple(curve),
        assumptions={
            "volume_source": volume.source,
            "vendor_prices_usd_per_mtok": None
            if prices is None
            else {
                "input": prices.usd_per_mtok_input,
                "cache_read": prices.usd_per_mtok_cache_read,
                "cache_write": prices.usd_per_mtok_cache_write,
                "output": prices.usd_per_mtok_output,
            },
            "request_shape": f"{input_per_request} prefilled in / {output_per_request} out per request",
            "cache_read_compute_share": host.cache_read_compute_share,
            "serving": f"{host.model} on {host.node_size} x {acc.id} at {host.precision}: "
            f"{est.output_tokens_per_s:,.0f} output tokens/s per node at full load",
            "utilization": host.utilization,
            "usd_per_accelerator_hour": usd_per_hour,
            "usd_per_accelerator_hour_basis": price_basis,
            "energy": (
                f"{acc.server_power_w_per_accelerator:g} W x PUE {acc.pue:g} at "
                f"${host.usd_per_kwh:g}/kWh while busy"
                if host.owned
                else "included in rent"
            ),
            "development": f"${dev.development_usd:,.0f} over {dev.amortization_months:g} months",
            "break_even": "volume scaled in the same class mix; whole nodes",
        },
    )
