"""Accelerator catalog: required ids, schema, sources and lookups."""

from __future__ import annotations

import datetime as dt

import pytest

from flopledger.catalog.accelerators import (
    get_accelerator,
    list_accelerators,
    match_accelerator,
    parse_accelerators,
)
from flopledger.errors import ConfigError, InputError, UnknownNameError

REQUIRED_IDS = {
    "h100-sxm",
    "h100-nvl",
    "h200",
    "h800",
    "gh200",
    "b200",
    "gb200",
    "gb300",
    "l40s",
    "rtx-pro-6000",
    "mi300x",
    "mi325x",
    "mi355x",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "tpu-v7",
    "trainium2",
    "rtx-4090",
    "rtx-5090",
    "apple-m4-max",
}


def test_catalog_holds_every_required_accelerator() -> None:
    assert {a.id for a in list_accelerators()} >= REQUIRED_IDS


def test_vendors_and_kinds_are_from_the_closed_sets() -> None:
    accs = list_accelerators()
    assert {a.vendor for a in accs} == {"nvidia", "amd", "google", "amazon", "apple"}
    assert {a.id for a in list_accelerators(kind="local")} == {"rtx-4090", "rtx-5090", "apple-m4-max"}


@pytest.mark.parametrize("acc", list_accelerators(), ids=lambda a: a.id)
def test_every_figure_group_has_a_dated_source(acc) -> None:  # type: ignore[no-untyped-def]
    for group in ("specs", "power", "price", "pue"):
        src = acc.source_of(group)
        assert len(src.source) > 3
        assert dt.date(2023, 1, 1) <= src.as_of <= dt.date.today()


@pytest.mark.parametrize("acc", list_accelerators(), ids=lambda a: a.id)
def test_figures_are_physically_plausible(acc) -> None:  # type: ignore[no-untyped-def]
    assert acc.server_power_w_per_accelerator >= acc.board_power_w
    assert 1.0 <= acc.pue <= 1.6
    if acc.fp8_dense_tflops is not None:
        assert acc.fp8_dense_tflops == pytest.approx(2 * acc.bf16_dense_tflops, rel=0.05)
    if acc.fp4_dense_tflops is not None:
        assert acc.fp4_dense_tflops >= acc.fp8_dense_tflops  # type: ignore[operator]


def test_known_datasheet_values() -> None:
    h100 = get_accelerator("h100-sxm")
    assert (h100.bf16_dense_tflops, h100.fp8_dense_tflops, h100.memory_gb, h100.memory_tb_per_s) == (
        989.4,
        1978.9,
        80,
        3.35,
    )
    assert get_accelerator("h200").memory_gb == 141
    assert get_accelerator("mi300x").memory_gb == 192


def test_precision_falls_back_to_the_next_wider_tensor_unit() -> None:
    assert get_accelerator("h100-sxm").compute_precision("fp4") == "fp8"
    assert get_accelerator("b200").compute_precision("fp4") == "fp4"
    apple = get_accelerator("apple-m4-max")
    assert apple.dense_tflops("fp8") == apple.bf16_dense_tflops
    with pytest.raises(InputError):
        get_accelerator("h100-sxm").compute_precision("int3")


def test_owned_hourly_cost_is_capex_over_life() -> None:
    h100 = get_accelerator("h100-sxm")
    assert h100.usd_per_hour_owned(years=4) == pytest.approx(35000 / (4 * 8760))
    assert get_accelerator("tpu-v5e").usd_per_hour_owned() is None


def test_unknown_id_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="h100-sxm"):
        get_accelerator("h100-sxn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NVIDIA H100-SXM-80GB", "h100-sxm"),
        ("NVIDIA GB200 192GB", "gb200"),
        ("NVIDIA B200 180GB", "b200"),
        ("NVIDIA H200-SXM-141GB-CTS", "h200"),
        ("AMD Instinct MI355X 288GB HBM3e", "mi355x"),
        ("NVIDIA H100-NVL-94GB", "h100-nvl"),
    ],
)
def test_free_text_matches_the_longest_alias(text: str, expected: str) -> None:
    match = match_accelerator(text)
    assert match is not None and match.id == expected


def test_schema_rejects_a_row_without_sources() -> None:
    text = """
accelerators:
  - {id: x1, name: X, vendor: nvidia, family: f, kind: local, bf16_dense_tflops: 1, memory_gb: 1,
     memory_tb_per_s: 1, interconnect: none, interconnect_gb_per_s: 0, scale_up_domain: 1,
     board_power_w: 1, server_power_w_per_accelerator: 2, pue: 1.0, sources: {}}
"""
    with pytest.raises(ConfigError, match="sources missing"):
        parse_accelerators(text, origin="test.yaml")


def test_schema_rejects_unknown_vendor() -> None:
    with pytest.raises(ConfigError, match=r"test\.yaml"):
        parse_accelerators("accelerators: [{id: x, vendor: intel}]", origin="test.yaml")
