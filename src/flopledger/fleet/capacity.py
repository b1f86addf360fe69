"""Revenue -> tokens -> FLOPs -> accelerators -> GW, by two routes, with Monte Carlo bands.

Top-down: GW = annual revenue / revenue per inference GW-year.
Bottom-up: tokens/s = revenue / blended price; FLOP/s = tokens/s x 2 x active params x attention
overhead x peak-to-average; accelerators = FLOP/s / (peak FLOP/s x serving MFU); GW = accelerators x
server kW x PUE. The same table also turns a power figure into chips and a lease into accelerators::

    plan = plan_capacity(revenue_increase_usd=60e9, months=10)
    plan.result("gw_top_down").value   # 4.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flopledger.catalog.accelerators import get_accelerator
from flopledger.errors import InputError
from flopledger.fleet.assumptions import Assumption, apply_overrides, load_assumptions, sample_assumption

__all__ = ["CapacityPlan", "CapacityResult", "plan_capacity"]

SECONDS_PER_YEAR = 365.25 * 24 * 3600
HOURS_PER_MONTH = 730.0
Draws = Mapping[str, npt.NDArray[np.float64]]


@dataclass(frozen=True)
class CapacityResult:
    metric: str
    route: str
    unit: str
    value: float  # with every assumption at its default
    p10: float
    p50: float
    p90: float


@dataclass(frozen=True)
class CapacityPlan:
    results: tuple[CapacityResult, ...]
    assumptions: tuple[Assumption, ...]
    scenarios: int
    seed: int

    def result(self, metric: str) -> CapacityResult:
        for r in self.results:
            if r.metric == metric:
                return r
        raise KeyError(metric)


def _facility_kw(a: Draws) -> npt.NDArray[np.float64]:
    return a["power_kw_per_accelerator"] * a["pue"]


def _revenue_chain(revenue_usd: float, months: int, a: Draws) -> dict[str, npt.NDArray[np.float64]]:
    tokens_per_s = revenue_usd / a["blended_usd_per_mtok"] * 1e6 / SECONDS_PER_YEAR
    flop_per_token = 2.0 * a["active_params_billion"] * 1e9 * a["attention_overhead"]
    peak_flop_per_s = tokens_per_s * flop_per_token * a["peak_to_average"]
    accelerators = peak_flop_per_s / (a["accelerator_peak_pflops"] * 1e15 * a["serving_mfu"])
    gw_bottom_up = accelerators * _facility_kw(a) / 1e6
    gw_top_down = revenue_usd / a["revenue_usd_per_inference_gw_year"]
    return {
        "tokens_per_day": tokens_per_s * 86400.0,
        "flop_per_token": flop_per_token,
        "accelerators_bottom_up": accelerators,
        "gw_bottom_up": gw_bottom_up,
        "gw_top_down": gw_top_down,
        "gw_per_month_top_down": gw_top_down / months,
        "gw_per_month_bottom_up": gw_bottom_up / months,
    }


def _power_chain(power_gw: float, a: Draws) -> dict[str, npt.NDArray[np.float64]]:
    return {
        "accelerators_in_power": power_gw * 1e6 / _facility_kw(a),
        "annual_revenue_supported_usd": power_gw * a["revenue_usd_per_inference_gw_year"],
    }


def _lease_chain(lease_usd_per_month: float, a: Draws) -> dict[str, npt.NDArray[np.float64]]:
    accelerators = lease_usd_per_month / (a["lease_usd_per_accelerator_hour"] * HOURS_PER_MONTH)
    gw = accelerators * _facility_kw(a) / 1e6
    return {
        "accelerators_leased": accelerators,
        "gw_leased": gw,
        "annual_revenue_supported_usd_by_lease": gw * a["revenue_usd_per_inference_gw_year"],
    }


_META: dict[str, tuple[str, str]] = {
    "tokens_per_day": ("bottom-up", "tokens/day"),
    "flop_per_token": ("bottom-up", "FLOP/token"),
    "accelerators_bottom_up": ("bottom-up", "accelerators"),
    "gw_bottom_up": ("bottom-up", "GW"),
    "gw_top_down": ("top-down", "GW"),
    "gw_per_month_top_down": ("top-down", "GW/month"),
    "gw_per_month_bottom_up": ("bottom-up", "GW/month"),
    "accelerators_in_power": ("power", "accelerators"),
    "annual_revenue_supported_usd": ("power", "USD/year"),
    "accelerators_leased": ("lease", "accelerators"),
    "gw_leased": ("lease", "GW"),
    "annual_revenue_supported_usd_by_lease": ("lease", "USD/year"),
}


def _with_accelerator(
    table: Mapping[str, Assumption], accelerator: str, overrides: Mapping[str, float]
) -> dict[str, Assumption]:
    """Chip facts from the accelerator catalog (wall power, PUE, dense FP8 peak), unless ``--set``."""
    acc = get_accelerator(accelerator)
    facts = {
        "power_kw_per_accelerator": (acc.server_power_w_per_accelerator / 1000.0, acc.source_of("power")),
        "pue": (acc.pue, acc.source_of("pue")),
        "accelerator_peak_pflops": (acc.dense_tflops("fp8") / 1000.0, acc.source_of("specs")),
    }
    out = dict(table)
    for name, (value, source) in facts.items():
        if name in overrides:
            continue
        moved = apply_overrides(out, {name: value})[name]
        out[name] = dataclasses.replace(
            moved, source=f"catalog {acc.id}: {source.source} (as of {source.as_of})"
        )
    return out


def plan_capacity(
    *,
    revenue_increase_usd: float = 0.0,
    months: int = 12,
    power_gw: float = 0.0,
    lease_usd_per_month: float = 0.0,
    overrides: Mapping[str, float] | None = None,
    accelerator: str | None = None,
    scenarios: int = 20_000,
    seed: int = 7,
) -> CapacityPlan:
    """Capacity implied by a revenue increase, a power figure or a lease, with P10/P50/P90.

    ``accelerator`` takes chip power, PUE and peak FLOP/s from the catalog (``--set`` still wins);
    the ranges keep their relative width around the catalog value.

    >>> round(plan_capacity(revenue_increase_usd=60e9, months=10).result("gw_top_down").value, 1)
    4.0
    """
    if revenue_increase_usd <= 0 and power_gw <= 0 and lease_usd_per_month <= 0:
        raise InputError("give --revenue-increase, --power-gw or --lease-usd-per-month (a positive number)")
    if months <= 0:
        raise InputError(f"months must be positive, got {months}", field="--months")
    if scenarios < 100:
        raise InputError(f"scenarios must be at least 100, got {scenarios}", field="--scenarios")
    table = load_assumptions()
    if accelerator is not None:
        table = _with_accelerator(table, accelerator, overrides or {})
    table = apply_overrides(table, overrides or {})
    rng = np.random.default_rng(seed)
    # one fixed order of draws keeps a seed reproducible whatever routes are asked for
    draws = {name: sample_assumption(a, rng, scenarios) for name, a in sorted(table.items())}
    point = {name: np.array([a.default]) for name, a in table.items()}

    def run(a: Draws) -> dict[str, npt.NDArray[np.float64]]:
        out: dict[str, npt.NDArray[np.float64]] = {}
        if revenue_increase_usd > 0:
            out.update(_revenue_chain(revenue_increase_usd, months, a))
        if power_gw > 0:
            out.update(_power_chain(power_gw, a))
        if lease_usd_per_month > 0:
            out.update(_lease_chain(lease_usd_per_month, a))
        return out

    at_default, sampled = run(point), run(draws)
    results = []
    for metric, values in sampled.items():
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        route, unit = _META[metric]
        results.append(
            CapacityResult(
                metric, route, unit, float(at_default[metric][0]), float(p10), float(p50), float(p90)
            )
        )
    return CapacityPlan(tuple(results), tuple(table[k] for k in table), scenarios, seed)
