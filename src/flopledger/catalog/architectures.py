"""Model architecture catalog: the shapes from which FLOPs, weight bytes and KV-cache bytes follow.

Shapes live in ``catalog/data/model_architectures.yaml`` (each with its source). Parameter counts are
derived here from the shapes, not copied, so a test can check them against the published totals.

>>> from flopledger.catalog.architectures import get_model_architecture
>>> m = get_model_architecture("llama-3.1-8b")
>>> m.kv_cache_bytes_per_token(bytes_per_element=2)
131072
>>> round(m.flops_per_token() / 1e9, 1)
15.0
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flopledger.catalog.accelerators import FigureSource
from flopledger.catalog.records import get_record, match_alias, packaged_text, parse_records

__all__ = [
    "MLAShape",
    "MoEShape",
    "ModelArchitecture",
    "get_model_architecture",
    "list_model_architectures",
    "match_model_architecture",
    "parse_model_architectures",
]

_DATA_FILE = "model_architectures.yaml"


@dataclass(frozen=True)
class MoEShape:
    experts: int
    experts_per_token: int
    expert_ffn_size: int
    shared_experts: int = 0
    dense_layers: int = 0


@dataclass(frozen=True)
class MLAShape:
    kv_lora_rank: int
    q_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelArchitecture:
    """A transformer's shape; every count below is derived from it."""

    id: str
    name: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_size: int
    vocab_size: int
    tied_embeddings: bool
    moe: MoEShape | None
    mla: MLAShape | None
    sliding_window: int | None
    sliding_layers: int
    published_total_params_b: float
    published_active_params_b: float | None
    released_weight_precision: str
    aliases: tuple[str, ...]
    source: FigureSource

    @property
    def attention_kind(self) -> str:
        if self.mla is not None:
            return "mla"
        return "mha" if self.kv_heads == self.heads else "gqa"

    # --- parameters -------------------------------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        h, d = self.hidden_size, self.head_dim
        if self.mla is None:
            return h * self.heads * d + 2 * h * self.kv_heads * d + self.heads * d * h
        m = self.mla
        q = h * m.q_lora_rank + m.q_lora_rank * self.heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
        kv = h * (m.kv_lora_rank + m.qk_rope_head_dim)
        kv += m.kv_lora_rank * self.heads * (m.qk_nope_head_dim + m.v_head_dim)
        return q + kv + self.heads * m.v_head_dim * h

    @property
    def dense_ffn_params(self) -> int:
        """One SwiGLU feed-forward block (gate, up, down) of width ``ffn_size``."""
        return 3 * self.hidden_size * self.ffn_size

    @property
    def expert_params(self) -> int:
        """One routed expert (0 for a dense model)."""
        return 3 * self.hidden_size * self.moe.expert_ffn_size if self.moe else 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.moe.dense_layers if self.moe else 0

    @property
    def routed_expert_params(self) -> int:
        """All routed experts of all MoE layers: the weights whose reads depend on routing."""
        return self.moe.experts * self.expert_params * self.moe_layers if self.moe else 0

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def _ffn_params(self, *, active: bool) -> int:
        if self.moe is None:
            return self.dense_ffn_params * self.layers
        per_moe_layer = self.hidden_size * self.moe.experts  # router
        per_moe_layer += self.moe.shared_experts * self.expert_params
        routed = self.moe.experts_per_token if active else self.moe.experts
        per_moe_layer += routed * self.expert_params
        return self.moe.dense_layers * self.dense_ffn_params + self.moe_layers * per_moe_layer

    @property
    def total_params(self) -> int:
        """Every weight, input and output embeddings included.

        >>> round(get_model_architecture("mixtral-8x7b").total_params / 1e9, 1)
        46.7
        """
        embeddings = self.embedding_params * (1 if self.tied_embeddings else 2)
        return self.attention_params_per_layer * self.layers + self._ffn_params(active=False) + embeddings

    @property
    def active_params(self) -> int:
        """Weights one token multiplies through: routed top-k experts only, output head included,
        input embedding (a lookup) excluded.

        >>> round(get_model_architecture("mixtral-8x7b").active_params / 1e9, 1)
        12.7
        """
        return (
            self.attention_params_per_layer * self.layers
            + self._ffn_params(active=True)
            + (self.embedding_params)
        )

    # --- FLOPs --------------------------------------------------------------------------------------
    def attention_flops_per_token(self, context_tokens: float, *, decode: bool = True) -> float:
        """Score and value FLOPs of one token attending to ``context_tokens`` earlier tokens.

        MLA decode runs in the absorbed form (attends over the 512+64 latent), prefill in the expanded one.
        """
        full_layers = self.layers - self.sliding_layers
        ctx_sum = full_layers * context_tokens
        if self.sliding_window is not None:
            ctx_sum += self.sliding_layers * min(context_tokens, self.sliding_window)
        if self.mla is not None:
            m = self.mla
            width = (
                2 * m.kv_lora_rank + m.qk_rope_head_dim
                if decode
                else m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim
            )
        else:
            width = 2 * self.head_dim
        return 2.0 * self.heads * width * ctx_sum

    def flops_per_token(self, context_tokens: float = 0, *, decode: bool = True) -> float:
        """Forward FLOPs of one token: 2 x active weights plus attention over ``context_tokens``.

        >>> round(get_model_architecture("llama-2-70b").flops_per_token() / 1e9, 1)
        137.4
        """
        return 2.0 * self.active_params + self.attention_flops_per_token(context_tokens, decode=decode)

    # --- bytes --------------------------------------------------------------------------------------
    def kv_cache_bytes_per_token(self, *, bytes_per_element: float = 2) -> int:
        """KV-cache bytes one token adds across all layers (sliding-window layers included).

        GQA stores K and V for each KV head; MLA stores one compressed latent plus the RoPE key.

        >>> get_model_architecture("llama-2-70b").kv_cache_bytes_per_token(bytes_per_element=2)
        327680
        """
        if self.mla is not None:
            per_layer = self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        else:
            per_layer = 2 * self.kv_heads * self.head_dim
        return round(per_layer * self.layers * bytes_per_element)

    def kv_cache_bytes(self, context_tokens: float, *, bytes_per_element: float = 2) -> float:
        """KV-cache bytes held by one sequence of ``context_tokens`` (windows cap sliding layers)."""
        per_token_layer = self.kv_cache_bytes_per_token(bytes_per_element=bytes_per_element) / self.layers
        held = (self.layers - self.sliding_layers) * context_tokens
        if self.sliding_window is not None:
            held += self.sliding_layers * min(context_tokens, self.sliding_window)
        return per_token_layer * held


class _MoERow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experts: int = Field(ge=2)
    experts_per_token: int = Field(ge=1)
    expert_ffn_size: int = Field(gt=0)
    shared_experts: int = Field(default=0, ge=0)
    dense_layers: int = Field(default=0, ge=0)


class _MLARow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kv_lora_rank: int = Field(gt=0)
    q_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)


class _SourceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=3)
    as_of: dt.date


class _ModelRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    name: str
    aliases: list[str] = Field(default_factory=list)
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    ffn_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tied_embeddings: bool = False
    attention: Literal["gqa", "mla"] = "gqa"
    mla: _MLARow | None = None
    moe: _MoERow | None = None
    sliding_window: int | None = Field(default=None, gt=0)
    sliding_layers: int = Field(default=0, ge=0)
    published_total_params_b: float = Field(gt=0)
    published_active_params_b: float | None = Field(default=None, gt=0)
    released_weight_precision: Literal["bf16", "fp8", "fp4"] = "bf16"
    source: _SourceRow

    @model_validator(mode="after")
    def _consistent(self) -> _ModelRow:
        if (self.attention == "mla") != (self.mla is not None):
            raise ValueError("attention: mla needs an mla block, and only then")
        if self.heads % self.kv_heads:
            raise ValueError("heads must be a multiple of kv_heads")
        if self.moe and self.moe.experts_per_token > self.moe.experts:
            raise ValueError("experts_per_token exceeds experts")
        if (self.sliding_window is None) != (self.sliding_layers == 0):
            raise ValueError("sliding_window and sliding_layers go together")
        return self

    def to_record(self) -> ModelArchitecture:
        return ModelArchitecture(
            id=self.id,
            name=self.name,
            layers=self.layers,
            hidden_size=self.hidden_size,
            heads=self.heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            ffn_size=self.ffn_size,
            vocab_size=self.vocab_size,
            tied_embeddings=self.tied_embeddings,
            moe=MoEShape(**self.moe.model_dump()) if self.moe else None,
            mla=MLAShape(**self.mla.model_dump()) if self.mla else None,
            sliding_window=self.sliding_window,
            sliding_layers=self.sliding_layers,
            published_total_params_b=self.published_total_params_b,
            published_active_params_b=self.published_active_params_b,
            released_weight_precision=self.released_weight_precision,
            aliases=tuple(self.aliases),
            source=FigureSource(self.source.source, self.source.as_of),
        )


class _ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[_ModelRow]


def parse_model_architectures(text: str, *, origin: str = _DATA_FILE) -> dict[str, ModelArchitecture]:
    """Validate model-architecture YAML text and index it by id (raises :class:`ConfigError`)."""
    return parse_records(
        text, _ModelFile, lambda f: f.models, catalog="model architecture", kind="model", origin=origin
    )


@functools.cache
def _catalog() -> dict[str, ModelArchitecture]:
    text = packaged_text(_DATA_FILE)
    return parse_model_architectures(text)


def list_model_architectures() -> list[ModelArchitecture]:
    """All model architectures in catalog order.

    >>> "deepseek-r1" in [m.id for m in list_model_architectures()]
    True
    """
    return list(_catalog().values())


def get_model_architecture(model_id: str) -> ModelArchitecture:
    """The architecture with this id; an unknown id suggests the closest known ones.

    >>> get_model_architecture("deepseek-v3").attention_kind
    'mla'
    """
    return get_record(_catalog(), model_id, "model")


def match_model_architecture(description: str) -> ModelArchitecture | None:
    """The model whose id or alias best matches free text such as ``Llama-2-70B-chat (llama2-70b-99)``.

    >>> match_model_architecture("DeepSeek-R1-0528").id
    'deepseek-r1'
    """
    return match_alias(_catalog().values(), description)
