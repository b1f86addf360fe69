"""What one token costs to make: throughput, latency, dollars and joules for a model on a chip.

:func:`estimate_serving` tries every replica size that fits (tensor/expert parallel inside one scale-up
domain), finds for each the largest batch that fits memory and meets the latency limits, and keeps the
replica size with the highest system throughput. Costs are split between input and output tokens by the
share of step time spent on prefill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flopledger.catalog.accelerators import PRECISIONS, Accelerator, get_accelerator
from flopledger.catalog.architectures import ModelArchitecture, get_model_architecture
from flopledger.errors import InputError
from flopledger.serving.calibration import Calibration, load_calibration
from flopledger.serving.step_model import (
    ReplicaShape,
    StepTime,
    kv_bytes_per_element,
    step_time,
    weight_bytes_per_param,
)

__all__ = ["OWNED_AMORTIZATION_YEARS", "ServingEstimate", "estimate_serving"]

OWNED_AMORTIZATION_YEARS = 4.0


@dataclass(frozen=True)
class ServingEstimate:
    """The serving estimate of one model on ``count`` accelerators; rates are system totals."""

    model: str
    accelerator: str
    count: int
    precision: str
    input_tokens: int
    output_tokens: int
    group_size: int
    replicas: int
    batch_size: int
    batch_limited_by: str
    output_tokens_per_s: float
    output_tokens_per_s_per_accelerator: float
    input_tokens_per_s: float
    ttft_ms: float
    tpot_ms: float
    bound: str
    usd_per_hour: float | None
    usd_per_mtok_input: float | None
    usd_per_mtok_output: float | None
    power_w: float
    joules_per_output_token: float
    joules_per_output_token_with_pue: float
    assumptions: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """A flat mapping for JSON/CSV output (assumptions kept as a nested mapping)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class _Plan:
    shape: ReplicaShape
    step: StepTime
    replicas: int
    limited_by: str

    @property
    def output_tokens_per_s(self) -> float:
        return self.replicas * self.step.batch_size / self.step.step_s


def _group_sizes(count: int, acc: Accelerator) -> list[int]:
    limit = min(count, acc.scale_up_domain)
    sizes = [g for g in (1, 2, 4, 8, 16, 32, 64, 72) if g <= limit and count % g == 0]
    if count <= limit and count not in sizes:
        sizes.append(count)
    return sizes


def _ttft_s(shape: ReplicaShape, step: StepTime) -> float:
    return shape.prefill_seconds(shape.input_tokens) + step.step_s


def _best_batch(
    shape: ReplicaShape, ttft_s: float | None, tpot_s: float | None
) -> tuple[StepTime, str] | None:
    """Largest batch within memory, the engine cap and the latency limits (all monotone in batch)."""
    by_memory = shape.max_batch_by_memory
    cap = shape.calibration.max_sequences_per_accelerator * shape.group_size
    upper, limited_by = (by_memory, "memory-capacity") if by_memory <= cap else (cap, "batch-cap")
    if upper < 1:
        return None

    def ok(batch: int) -> bool:
        st = step_time(shape, batch)
        return (tpot_s is None or st.step_s <= tpot_s) and (ttft_s is None or _ttft_s(shape, st) <= ttft_s)

    if not ok(1):
        return None
    if ok(upper):
        return step_time(shape, upper), limited_by
    lo, hi = 1, upper  # ok(lo) and not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    st = step_time(shape, lo)
    tpot_binds = tpot_s is not None and step_time(shape, hi).step_s > tpot_s
    return st, "tpot" if tpot_binds else "ttft"


def _infeasible(
    model: ModelArchitecture,
    acc: Accelerator,
    count: int,
    precision: str,
    shapes: list[ReplicaShape],
    ttft_ms: float | None,
    tpot_ms: float | None,
) -> InputError:
    fitting = [s for s in shapes if s.max_batch_by_memory >= 1]
    if not fitting:
        weights_gb = model.total_params * weight_bytes_per_param(model, precision) / 1e9
        return InputError(
            f"{model.id} at {precision} ({weights_gb:,.0f} GB of weights plus KV cache) does not fit on "
            f"{count} x {acc.id} ({acc.memory_gb:g} GB each, replicas of at most "
            f"{min(count, acc.scale_up_domain)}); use more accelerators or a narrower precision",
            field="count",
        )
    best = fitting[-1]
    st = step_time(best, 1)
    return InputError(
        f"latency limits cannot be met: at batch 1 on {best.group_size} x {acc.id} TPOT is "
        f"{st.step_s * 1e3:.1f} ms and TTFT {_ttft_s(best, st) * 1e3:.0f} ms "
        f"(limits: TPOT {tpot_ms} ms, TTFT {ttft_ms} ms)",
        field="tpot_ms/ttft_ms",
    )


def _validate_inputs(
    count: int, precision: str, input_tokens: int, output_tokens: int, utilization: float
) -> None:
    if count < 1:
        raise InputError("count must be at least 1", field="count")
    if precision not in PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}", field="precision"
        )
    if input_tokens < 1 or output_tokens < 1:
        raise InputError("input_tokens and output_tokens must be at least 1", field="tokens")
    if not 0 < utilization <= 1:
        raise InputError("utilization must be in (0, 1]", field="utilization")


def estimate_serving(
    *,
    model: str,
    accelerator: str,
    count: int = 1,
    precision: str = "bf16",
    input_tokens: int,
    output_tokens: int,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    usd_per_hour: float | None = None,
    utilization: float = 1.0,
    calibration: Calibration | None = None,
) -> ServingEstimate:
    """Estimate throughput, latency, $/Mtok and J/token of ``model`` on ``count`` x ``accelerator``.

    ``usd_per_hour`` is per accelerator (default: the catalog's rented price, else the owned capital
    cost over four years). ``utilization`` is the average load as a share of the estimated capacity;
    throughput and dollars scale with it, joules per token do not (idle time is not charged energy).

    >>> e = estimate_serving(model="llama-3.1-8b", accelerator="h100-sxm", precision="fp8",
    ...                      input_tokens=1000, output_tokens=1000)
    >>> e.bound, e.output_tokens_per_s > 5000
    ('memory', True)
    """
    _validate_inputs(count, precision, input_tokens, output_tokens, utilization)
    arch = get_model_architecture(model)
    acc = get_accelerator(accelerator)
    cal = calibration or load_calibration()
    ttft_s = ttft_ms / 1e3 if ttft_ms is not None else None
    tpot_s = tpot_ms / 1e3 if tpot_ms is not None else None

    shapes = [
        ReplicaShape(arch, acc, precision, g, input_tokens, output_tokens, cal)
        for g in _group_sizes(count, acc)
    ]
    plans: list[_Plan] = []
    for shape in shapes:
        found = _best_batch(shape, ttft_s, tpot_s)
        if found is not None:
            plans.append(_Plan(shape, found[0], count // shape.group_size, found[1]))
    if not plans:
        raise _infeasible(arch, acc, count, precision, shapes, ttft_ms, tpot_ms)
    plan = max(plans, key=lambda p: (p.output_tokens_per_s, -p.shape.group_size))
    return _price(plan, arch, acc, count, precision, usd_per_hour, utilization, cal)


def _price(
    plan: _Plan,
    arch: ModelArchitecture,
    acc: Accelerator,
    count: int,
    precision: str,
    usd_per_hour: float | None,
    utilization: float,
    cal: Calibration,
) -> ServingEstimate:
    shape, st = plan.shape, plan.step
    peak_output_per_s = plan.output_tokens_per_s
    output_per_s = peak_output_per_s * utilization
    input_per_s = output_per_s * shape.input_tokens / shape.output_tokens

    price_basis = "given"
    if usd_per_hour is None and acc.usd_per_hour_rented is not None:
        usd_per_hour, price_basis = acc.usd_per_hour_rented, "catalog rented"
    elif usd_per_hour is None:
        usd_per_hour = acc.usd_per_hour_owned(years=OWNED_AMORTIZATION_YEARS)
        price_basis = f"catalog capex over {OWNED_AMORTIZATION_YEARS:g} years" if usd_per_hour else "none"
    prefill_share = st.prefill_s / st.step_s
    usd_in = usd_out = None
    if usd_per_hour is not None:
        usd_per_s = usd_per_hour * count / 3600.0
        usd_in = usd_per_s * prefill_share / input_per_s * 1e6
        usd_out = usd_per_s * (1.0 - prefill_share) / output_per_s * 1e6

    power_w = acc.server_power_w_per_accelerator * count
    joules = power_w / peak_output_per_s
    compute_precision = acc.compute_precision(precision)
    assumptions: dict[str, Any] = {
        "parallelism": f"{plan.replicas} replica(s) x {shape.group_size} {acc.id} (tensor/expert parallel)",
        "compute_precision": compute_precision,
        "weight_bytes_per_param": weight_bytes_per_param(arch, precision),
        "kv_cache_bytes_per_element": kv_bytes_per_element(precision),
        "kv_cache_bytes_per_token": arch.kv_cache_bytes_per_token(
            bytes_per_element=kv_bytes_per_element(precision)
        ),
        "active_params": arch.active_params,
        "total_params": arch.total_params,
        "compute_efficiency": shape.compute_efficiency,
        "compute_efficiency_basis": "calibrated" if cal.is_calibrated(acc.family) else "prior",
        "memory_bandwidth_efficiency": cal.memory_bandwidth_efficiency,
        "batching": "continuous batching with chunked prefill, steady state",
        "prefill_share_of_step_time": round(prefill_share, 4),
        "usd_per_hour_per_accelerator": usd_per_hour,
        "usd_per_hour_basis": price_basis,
        "utilization": utilization,
        "power_basis": "server wall power per accelerator at load, all of it charged to output tokens",
        "pue": acc.pue,
    }
    return ServingEstimate(
        model=arch.id,
        accelerator=acc.id,
        count=count,
        precision=precision,
        input_tokens=shape.input_tokens,
        output_tokens=shape.output_tokens,
        group_size=shape.group_size,
        replicas=plan.replicas,
        batch_size=st.batch_size,
        batch_limited_by=plan.limited_by,
        output_tokens_per_s=output_per_s,
        output_tokens_per_s_per_accelerator=output_per_s / count,
        input_tokens_per_s=input_per_s,
        ttft_ms=_ttft_s(shape, st) * 1e3,
        tpot_ms=st.step_s * 1e3,
        bound=st.bound,
        usd_per_hour=usd_per_hour * count if usd_per_hour is not None else None,
        usd_per_mtok_input=usd_in,
        usd_per_mtok_output=usd_out,
        power_w=power_w,
        joules_per_output_token=joules,
        joules_per_output_token_with_pue=joules * acc.pue,
        assumptions=assumptions,
    )
