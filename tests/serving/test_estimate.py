"""The serving estimator: roofline behaviour, the search, costs and energy."""

from __future__ import annotations

import dataclasses

import pytest

import flopledger.serving as serving
from flopledger.catalog.accelerators import get_accelerator
from flopledger.catalog.architectures import get_model_architecture
from flopledger.errors import InputError, UnknownNameError
from flopledger.serving import ServingEstimate, estimate_serving, load_calibration
from flopledger.serving.step_model import ReplicaShape, step_time

CONTRACT_FIELDS = {
    "output_tokens_per_s",
    "output_tokens_per_s_per_accelerator",
    "input_tokens_per_s",
    "batch_size",
    "ttft_ms",
    "tpot_ms",
    "bound",
    "usd_per_mtok_input",
    "usd_per_mtok_output",
    "joules_per_output_token",
    "joules_per_output_token_with_pue",
    "assumptions",
}


def _shape(model: str = "llama-3.1-8b", acc: str = "h100-sxm", precision: str = "fp8") -> ReplicaShape:
    return ReplicaShape(
        get_model_architecture(model), get_accelerator(acc), precision, 1, 1000, 1000, load_calibration()
    )


def _estimate(
    model: str, accelerator: str, *, count: int = 8, precision: str = "fp8", **kw: float
) -> ServingEstimate:
    """A 1,000-in, 1,000-out estimate on ``count`` accelerators (the common case of these tests)."""
    return estimate_serving(
        model=model,
        accelerator=accelerator,
        count=count,
        precision=precision,
        input_tokens=1000,
        output_tokens=1000,
        **kw,
    )


def test_public_surface_is_pinned() -> None:
    assert set(serving.__all__) == {
        "Calibration",
        "LocalVersusApi",
        "ServingEstimate",
        "ValidationReport",
        "ValidationRow",
        "compare_local_to_api",
        "estimate_serving",
        "load_calibration",
        "validate_serving",
    }


def test_contract_fields_exist_and_the_record_is_frozen() -> None:
    e = _estimate("llama-3.1-70b", "h200")
    assert set(e.as_row()) >= CONTRACT_FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.batch_size = 1  # type: ignore[misc]


def test_decode_is_memory_bound_at_batch_one_and_compute_bound_when_batched() -> None:
    shape = _shape("llama-3.1-70b", "h200")
    assert step_time(shape, 1).bound == "memory"
    assert step_time(shape, 200).bound == "compute"


def test_batch_one_step_is_the_weight_read_time() -> None:
    shape = _shape()
    cal = load_calibration()
    weights_s = shape.model.total_params * 1.0 / (3.35e12 * cal.memory_bandwidth_efficiency)
    st = step_time(shape, 1)
    assert st.linear_memory_s == pytest.approx(weights_s, rel=1e-9)
    assert st.step_s > weights_s


def test_throughput_grows_with_batch() -> None:
    shape = _shape()
    per_token = [b / step_time(shape, b).step_s for b in (1, 8, 64, 256)]
    assert per_token == sorted(per_token)


def test_moe_reads_only_touched_experts_at_small_batch() -> None:
    shape = _shape("mixtral-8x7b", "h200")
    one, many = step_time(shape, 1), step_time(shape, 512)
    m = shape.model
    # one decode token plus one prefill token touch at most 2 x 2 of 8 experts per layer
    assert one.linear_memory_s < many.linear_memory_s
    assert m.active_params < m.total_params


def test_tpot_limit_shrinks_the_batch_and_is_met() -> None:
    free = _estimate("llama-3.1-70b", "h200")
    tight = _estimate("llama-3.1-70b", "h200", tpot_ms=25)
    assert tight.tpot_ms <= 25
    assert tight.output_tokens_per_s < free.output_tokens_per_s
    assert tight.assumptions["parallelism"]


def test_large_model_needs_a_tensor_parallel_group() -> None:
    e = _estimate("llama-3.1-405b", "h100-sxm")
    assert e.group_size == 8 and e.replicas == 1


def test_a_model_that_does_not_fit_names_the_problem() -> None:
    with pytest.raises(InputError, match="does not fit"):
        estimate_serving(
            model="llama-3.1-405b",
            accelerator="rtx-4090",
            count=1,
            precision="fp8",
            input_tokens=100,
            output_tokens=100,
        )


def test_impossible_latency_is_an_input_error() -> None:
    with pytest.raises(InputError, match="latency"):
        estimate_serving(
            model="llama-3.1-70b",
            accelerator="h100-sxm",
            count=2,
            precision="fp8",
            input_tokens=1000,
            output_tokens=100,
            tpot_ms=1,
        )


def test_unknown_names_and_bad_inputs() -> None:
    with pytest.raises(UnknownNameError):
        estimate_serving(model="llama-9", accelerator="h100-sxm", input_tokens=1, output_tokens=1)
    with pytest.raises(InputError):
        estimate_serving(
            model="llama-3.1-8b", accelerator="h100-sxm", precision="int2", input_tokens=1, output_tokens=1
        )
    with pytest.raises(InputError):
        estimate_serving(
            model="llama-3.1-8b", accelerator="h100-sxm", utilization=0, input_tokens=1, output_tokens=1
        )


def test_costs_split_between_input_and_output_add_up_to_the_hourly_bill() -> None:
    e = estimate_serving(
        model="llama-3.1-8b",
        accelerator="h100-sxm",
        precision="fp8",
        input_tokens=2000,
        output_tokens=500,
        usd_per_hour=3.0,
    )
    assert e.usd_per_mtok_input is not None and e.usd_per_mtok_output is not None
    usd_per_s = e.input_tokens_per_s * e.usd_per_mtok_input / 1e6
    usd_per_s += e.output_tokens_per_s * e.usd_per_mtok_output / 1e6
    assert usd_per_s * 3600 == pytest.approx(3.0)


def test_utilization_raises_cost_but_not_energy_per_token() -> None:
    kw = dict(
        model="llama-3.1-8b", accelerator="h100-sxm", precision="fp8", input_tokens=1000, output_tokens=1000
    )
    full, half = estimate_serving(**kw), estimate_serving(**kw, utilization=0.5)  # type: ignore[arg-type]
    assert half.output_tokens_per_s == pytest.approx(full.output_tokens_per_s / 2)
    assert half.usd_per_mtok_output == pytest.approx(2 * full.usd_per_mtok_output)  # type: ignore[operator]
    assert half.joules_per_output_token == pytest.approx(full.joules_per_output_token)


def test_energy_is_wall_power_over_throughput_and_pue_is_apart() -> None:
    e = _estimate("llama-3.1-8b", "b200", precision="fp4")
    assert e.joules_per_output_token == pytest.approx(1788 * 8 / e.output_tokens_per_s)
    assert e.joules_per_output_token_with_pue == pytest.approx(e.joules_per_output_token * 1.3)


def test_price_falls_back_to_owned_capex_when_no_rental_is_public() -> None:
    e = _estimate("llama-3.1-70b", "gb200", count=4, precision="fp4")
    assert e.assumptions["usd_per_hour_basis"].startswith("catalog capex")
    e = estimate_serving(
        model="llama-3.1-8b", accelerator="tpu-v7", precision="fp8", input_tokens=10, output_tokens=10
    )
    assert e.usd_per_mtok_output is None and e.assumptions["compute_efficiency_basis"] == "prior"


def test_fp4_weights_on_hopper_compute_at_fp8() -> None:
    e = estimate_serving(
        model="gpt-oss-120b", accelerator="h100-sxm", precision="bf16", input_tokens=100, output_tokens=100
    )
    assert e.assumptions["weight_bytes_per_param"] == 0.5625  # shipped MXFP4 weights are never widened
    e = estimate_serving(
        model="llama-3.1-8b", accelerator="h100-sxm", precision="fp4", input_tokens=100, output_tokens=100
    )
    assert e.assumptions["compute_precision"] == "fp8"
