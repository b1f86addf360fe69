"""Model architectures: FLOP and byte arithmetic against hand-computed cases."""

from __future__ import annotations

import pytest

from flopledger.catalog.architectures import (
    get_model_architecture,
    list_model_architectures,
    match_model_architecture,
    parse_model_architectures,
)
from flopledger.errors import ConfigError, UnknownNameError

REQUIRED_IDS = {
    "llama-2-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "mixtral-8x7b",
    "deepseek-v3",
    "deepseek-r1",
    "qwen3-32b",
    "qwen3-235b-a22b",
    "gpt-oss-20b",
    "gpt-oss-120b",
}


def test_catalog_holds_every_required_model_and_small_local_ones() -> None:
    ids = {m.id for m in list_model_architectures()}
    assert ids >= REQUIRED_IDS
    assert {"llama-3.2-1b", "llama-3.2-3b"} <= ids


@pytest.mark.parametrize("model", list_model_architectures(), ids=lambda m: m.id)
def test_derived_totals_match_published_totals(model) -> None:  # type: ignore[no-untyped-def]
    assert model.total_params / 1e9 == pytest.approx(model.published_total_params_b, rel=0.02)
    if model.published_active_params_b is not None:
        # published active counts sometimes include the input embedding; ours excludes the lookup
        assert model.active_params / 1e9 == pytest.approx(model.published_active_params_b, rel=0.1)
    assert model.source.source and model.source.as_of.year >= 2023


def test_gqa_kv_bytes_per_token_by_hand() -> None:
    # Llama 3.1 70B: 80 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes (bf16)
    m = get_model_architecture("llama-3.1-70b")
    assert m.attention_kind == "gqa"
    assert m.kv_cache_bytes_per_token(bytes_per_element=2) == 80 * 8 * 128 * 2 * 2 == 327_680
    assert m.kv_cache_bytes_per_token(bytes_per_element=1) == 163_840
    # eight times fewer bytes than full multi-head attention would hold (64 heads)
    assert m.kv_cache_bytes_per_token() * (m.heads // m.kv_heads) == 80 * 64 * 128 * 2 * 2


def test_mla_kv_bytes_per_token_by_hand() -> None:
    # DeepSeek-V3: one 512-wide latent plus a 64-wide RoPE key per layer, 61 layers, bf16
    m = get_model_architecture("deepseek-v3")
    assert m.attention_kind == "mla"
    assert m.kv_cache_bytes_per_token(bytes_per_element=2) == (512 + 64) * 61 * 2 == 70_272


def test_sliding_window_layers_hold_only_the_window() -> None:
    m = get_model_architecture("gpt-oss-120b")  # 18 full layers, 18 layers with a 128-token window
    per_token_layer = 2 * 8 * 64 * 1  # K and V, 8 KV heads, 64 dims, fp8
    assert m.kv_cache_bytes(1000, bytes_per_element=1) == per_token_layer * (18 * 1000 + 18 * 128)


def test_moe_active_params_by_hand() -> None:
    # Mixtral 8x7B: per layer attention 4096*4096*2 + 2*4096*1024, two of eight SwiGLU experts
    # (3*4096*14336 each) and a router 4096*8; plus the 32000 x 4096 output head.
    m = get_model_architecture("mixtral-8x7b")
    attention = 2 * 4096 * 4096 + 2 * 4096 * 1024
    expert = 3 * 4096 * 14336
    per_layer_active = attention + 2 * expert + 4096 * 8
    assert m.active_params == 32 * per_layer_active + 32000 * 4096
    assert m.total_params == 32 * (attention + 8 * expert + 4096 * 8) + 2 * 32000 * 4096


def test_dense_flops_per_token_by_hand() -> None:
    m = get_model_architecture("llama-3.1-8b")
    # the published 8,030,261,248 weights, less the input lookup and the 65 RMSNorm vectors
    assert m.active_params == 8_030_261_248 - 128256 * 4096 - (2 * 32 + 1) * 4096
    assert m.flops_per_token() == 2 * m.active_params
    # attention at 1000 tokens of context: QK^T and AV, 32 heads x 128 dims x 2 FLOPs, 32 layers
    assert m.attention_flops_per_token(1000) == 2 * 32 * (2 * 128) * 32 * 1000


def test_mla_decode_attends_over_the_latent() -> None:
    m = get_model_architecture("deepseek-r1")
    assert m.attention_flops_per_token(100, decode=True) == 2 * 128 * (2 * 512 + 64) * 61 * 100
    assert m.attention_flops_per_token(100, decode=False) == 2 * 128 * (128 + 64 + 128) * 61 * 100


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match=r"llama-3\.1-8b"):
        get_model_architecture("llama-3.1-8")


def test_free_text_matching() -> None:
    assert match_model_architecture("Llama-2-70B-chat (llama2-70b-99)").id == "llama-2-70b"  # type: ignore[union-attr]
    assert match_model_architecture("Llama-3.3-70B-Instruct").id == "llama-3.3-70b"  # type: ignore[union-attr]
    assert match_model_architecture("BERT-large") is None


def test_schema_rejects_mla_without_its_shape() -> None:
    text = """
models:
  - {id: m, name: M, layers: 1, hidden_size: 8, heads: 2, kv_heads: 2, head_dim: 4, ffn_size: 8,
     vocab_size: 10, attention: mla, published_total_params_b: 1, source: {source: abc, as_of: 2024-01-01}}
"""
    with pytest.raises(ConfigError, match=r"(?s)t\.yaml: .*attention: mla needs an mla block"):
        parse_model_architectures(text, origin="t.yaml")
