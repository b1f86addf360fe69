"""The time of one serving step on one replica: a roofline per kernel class.

A replica is ``group_size`` accelerators holding one copy of the weights (tensor or expert parallel).
Under continuous batching with chunked prefill, each step advances ``batch_size`` decoding sequences by
one token and, in steady state, also prefills ``batch_size * input_tokens / output_tokens`` prompt tokens
(new requests replace finished ones at that rate). The step time is the sum of

- linear layers: ``max(weight bytes / bandwidth, GEMM FLOPs / peak)`` (weights stream once per step;
  routed experts only as far as the step's tokens touch them);
- attention: ``max(KV bytes / bandwidth, score FLOPs / peak)`` (each sequence reads its own cache);
- tensor-parallel all-reduces over the scale-up links, and a fixed per-layer overhead.

Decode alone is memory-bound at small batch and turns compute-bound as the batch grows; prefill is
compute-bound. Both are modelled apart and shared out in the cost split.
"""

from __future__ import annotations

from dataclasses import dataclass

from flopledger.catalog.accelerators import Accelerator
from flopledger.catalog.architectures import ModelArchitecture
from flopledger.serving.calibration import Calibration

__all__ = [
    "WEIGHT_BYTES_PER_PARAM",
    "ReplicaShape",
    "StepTime",
    "kv_bytes_per_element",
    "step_time",
    "weight_bytes_per_param",
]

# fp4 carries one fp8 scale per 16 weights (NVFP4 / MXFP4-style block scaling): 4.5 bits per weight.
WEIGHT_BYTES_PER_PARAM: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625}
_ACTIVATION_BYTES = 2.0  # activations exchanged between accelerators in bf16


def weight_bytes_per_param(model: ModelArchitecture, precision: str) -> float:
    """Bytes per weight: the serving precision, but never wider than the format the weights ship in."""
    return min(WEIGHT_BYTES_PER_PARAM[precision], WEIGHT_BYTES_PER_PARAM[model.released_weight_precision])


def kv_bytes_per_element(precision: str) -> float:
    """KV cache is kept in fp8 when serving at fp8 or fp4, otherwise in bf16."""
    return 2.0 if precision == "bf16" else 1.0


@dataclass(frozen=True)
class ReplicaShape:
    """What is fixed for a replica: model, chip, precision, group size and the request shape."""

    model: ModelArchitecture
    accelerator: Accelerator
    precision: str
    group_size: int
    input_tokens: int
    output_tokens: int
    calibration: Calibration

    @property
    def compute_efficiency(self) -> float:
        return self.calibration.compute_efficiency(self.accelerator.family, self.precision)

    @property
    def linear_flops_per_s(self) -> float:
        acc = self.accelerator
        return self.group_size * acc.dense_tflops(self.precision) * 1e12 * self.compute_efficiency

    @property
    def attention_flops_per_s(self) -> float:
        # attention matmuls run at most in fp8 (no fp4 attention kernels)
        precision = "bf16" if self.precision == "bf16" else "fp8"
        acc = self.accelerator
        return self.group_size * acc.dense_tflops(precision) * 1e12 * self.compute_efficiency

    @property
    def bytes_per_s(self) -> float:
        acc = self.accelerator
        return self.group_size * acc.memory_tb_per_s * 1e12 * self.calibration.memory_bandwidth_efficiency

    @property
    def weight_bytes(self) -> float:
        return self.model.total_params * weight_bytes_per_param(self.model, self.precision)

    @property
    def kv_bytes_per_sequence(self) -> float:
        """KV bytes reserved per concurrent sequence (prompt plus a share of the output)."""
        context = self.input_tokens + self.calibration.kv_reserve_context_fraction * self.output_tokens
        return self.model.kv_cache_bytes(context, bytes_per_element=kv_bytes_per_element(self.precision))

    @property
    def max_batch_by_memory(self) -> int:
        """Most concurrent sequences whose KV cache fits beside the weights on the group."""
        acc = self.accelerator
        usable = self.group_size * acc.memory_gb * 1e9 * self.calibration.usable_memory_fraction
        free = usable - self.weight_bytes
        return max(0, int(free // self.kv_bytes_per_sequence))

    def prefill_seconds(self, prompt_tokens: float) -> float:
        """Compute-bound time to prefill ``prompt_tokens`` of one prompt alone on the group."""
        m = self.model
        linear = prompt_tokens * 2.0 * m.active_params / self.linear_flops_per_s
        attention = prompt_tokens * m.attention_flops_per_token(prompt_tokens / 2, decode=False)
        return linear + attention / self.attention_flops_per_s


@dataclass(frozen=True)
class StepTime:
    """One step's time and its parts, in seconds; ``prefill_s`` is the prefill compute inside it."""

    batch_size: int
    step_s: float
    linear_compute_s: float
    linear_memory_s: float
    attention_compute_s: float
    attention_memory_s: float
    interconnect_s: float
    overhead_s: float
    prefill_s: float

    @property
    def compute_s(self) -> float:
        return self.linear_compute_s + self.attention_compute_s

    @property
    def memory_s(self) -> float:
        return self.linear_memory_s + self.attention_memory_s

    @property
    def bound(self) -> str:
        """The resource that dominates the step: compute, memory or interconnect."""
        parts = {"compute": self.compute_s, "memory": self.memory_s, "interconnect": self.interconnect_s}
        return max(parts, key=parts.__getitem__)


def _routed_bytes_read(shape: ReplicaShape, tokens: float) -> float:
    """Routed-expert weights streamed in one step: an expert is read only if some token picks it."""
    m = shape.model
    if m.moe is None:
        return 0.0
    untouched: float = (1.0 - m.moe.experts_per_token / m.moe.experts) ** tokens
    touched_share = 1.0 - untouched
    return m.routed_expert_params * touched_share * weight_bytes_per_param(m, shape.precision)


def step_time(shape: ReplicaShape, batch_size: int) -> StepTime:
    """The time of one continuous-batching step with ``batch_size`` decoding sequences.

    >>> from flopledger.catalog.accelerators import get_accelerator
    >>> from flopledger.catalog.architectures import get_model_architecture
    >>> from flopledger.serving.calibration import load_calibration
    >>> shape = ReplicaShape(get_model_architecture("llama-3.1-8b"), get_accelerator("h100-sxm"),
    ...                      "fp8", 1, 1000, 1000, load_calibration())
    >>> step_time(shape, 1).bound
    'memory'
    """
    m = shape.model
    o, i = shape.output_tokens, shape.input_tokens
    prefill_tokens = batch_size * i / o
    tokens = batch_size + prefill_tokens
    decode_context = i + o / 2.0

    routed_active = m.moe.experts_per_token * m.expert_params * m.moe_layers if m.moe else 0
    dense_compute = tokens * 2.0 * (m.active_params - routed_active) / shape.linear_flops_per_s
    expert_compute = tokens * 2.0 * routed_active / shape.linear_flops_per_s
    expert_bytes = _routed_bytes_read(shape, tokens)
    dense_memory = (m.total_params - m.routed_expert_params) * weight_bytes_per_param(m, shape.precision)
    dense_memory /= shape.bytes_per_s
    expert_memory = expert_bytes / shape.bytes_per_s
    linear_compute = dense_compute + expert_compute
    linear_memory = dense_memory + expert_memory
    attention_flops = batch_size * m.attention_flops_per_token(decode_context, decode=True)
    attention_flops += prefill_tokens * m.attention_flops_per_token(i / 2.0, decode=False)
    attention_compute = attention_flops / shape.attention_flops_per_s
    kv_read = batch_size * m.kv_cache_bytes(
        decode_context, bytes_per_element=kv_bytes_per_element(shape.precision)
    )
    attention_memory = kv_read / shape.bytes_per_s

    interconnect = 0.0
    g = shape.group_size
    if g > 1:
        cal = shape.calibration
        link_bytes_per_s = shape.accelerator.interconnect_gb_per_s / 2 * 1e9 * cal.interconnect_efficiency
        message = tokens * m.hidden_size * _ACTIVATION_BYTES
        per_allreduce = cal.collective_latency_s + 2.0 * (g - 1) / g * message / max(link_bytes_per_s, 1.0)
        interconnect = 2 * m.layers * per_allreduce
    overhead = m.layers * shape.calibration.per_layer_overhead_s

    # Dense GEMMs overlap weight streaming with math; routed-expert grouped GEMMs, each with few rows,
    # do not (load, then multiply), so their two times add up.
    linear = max(dense_compute, dense_memory) + expert_memory + expert_compute
    attention = max(attention_compute, attention_memory)
    prefill_share = prefill_tokens / tokens
    prefill_s = prefill_share * linear + (
        prefill_tokens * m.attention_flops_per_token(i / 2.0, decode=False) / shape.attention_flops_per_s
    )
    return StepTime(
        batch_size=batch_size,
        step_s=linear + attention + interconnect + overhead,
        linear_compute_s=linear_compute,
        linear_memory_s=linear_memory,
        attention_compute_s=attention_compute,
        attention_memory_s=attention_memory,
        interconnect_s=interconnect,
        overhead_s=overhead,
        prefill_s=min(prefill_s, linear + attention),
    )
