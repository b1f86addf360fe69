"""Accelerator catalog: dense tensor throughput, memory, power and price of each chip.

The figures live in ``catalog/data/accelerators.yaml`` (package data), each group of figures with its
source and the date it was read. This module validates that file once with a pydantic schema and hands
out frozen :class:`Accelerator` records.

>>> from flopledger.catalog.accelerators import get_accelerator
>>> get_accelerator("h100-sxm").memory_gb
80.0
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flopledger.catalog.records import get_record, match_alias, packaged_text, parse_records
from flopledger.errors import InputError

__all__ = [
    "PRECISIONS",
    "Accelerator",
    "FigureSource",
    "get_accelerator",
    "list_accelerators",
    "match_accelerator",
    "parse_accelerators",
]

Vendor = Literal["nvidia", "amd", "google", "amazon", "apple"]
PRECISIONS: tuple[str, ...] = ("bf16", "fp8", "fp4")
# A narrower format runs on the next wider tensor unit when a chip has none of its own
# (fp4 weights on Hopper run through fp8 units; 8-bit on Apple GPUs through fp16).
_COMPUTE_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "bf16": ("bf16",),
}
_HOURS_PER_YEAR = 8760.0
_DATA_FILE = "accelerators.yaml"


@dataclass(frozen=True)
class FigureSource:
    """Where a group of figures comes from, and when it was read."""

    source: str
    as_of: dt.date


@dataclass(frozen=True)
class Accelerator:
    """One accelerator; throughput is dense (no sparsity) and per accelerator."""

    id: str
    name: str
    vendor: str
    family: str
    kind: str
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None
    fp4_dense_tflops: float | None
    memory_gb: float
    memory_tb_per_s: float
    interconnect: str
    interconnect_gb_per_s: float
    scale_up_domain: int
    board_power_w: float
    server_power_w_per_accelerator: float
    pue: float
    usd_per_hour_rented: float | None
    usd_capex_owned: float | None
    aliases: tuple[str, ...]
    sources: tuple[tuple[str, FigureSource], ...]

    def compute_precision(self, precision: str) -> str:
        """The tensor format that actually runs ``precision`` on this chip.

        >>> get_accelerator("h100-sxm").compute_precision("fp4")
        'fp8'
        """
        if precision not in _COMPUTE_FALLBACK:
            raise InputError(
                f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}", field="precision"
            )
        for candidate in _COMPUTE_FALLBACK[precision]:
            if self._tflops(candidate) is not None:
                return candidate
        return "bf16"  # every chip has a bf16 (or fp16) rate

    def dense_tflops(self, precision: str) -> float:
        """Dense TFLOP/s for ``precision``, falling back to the next wider format the chip has.

        >>> get_accelerator("h100-sxm").dense_tflops("fp8")
        1978.9
        """
        value = self._tflops(self.compute_precision(precision))
        return value if value is not None else self.bf16_dense_tflops

    def usd_per_hour_owned(self, *, years: float = 4.0) -> float | None:
        """Capital cost spread over ``years`` of round-the-clock life (power and staff not included).

        >>> round(get_accelerator("h100-sxm").usd_per_hour_owned(years=4), 3)
        0.999
        """
        if self.usd_capex_owned is None:
            return None
        return self.usd_capex_owned / (years * _HOURS_PER_YEAR)

    def source_of(self, group: str) -> FigureSource:
        """The source of a figure group: ``specs``, ``power``, ``price`` or ``pue``."""
        return dict(self.sources)[group]

    def _tflops(self, precision: str) -> float | None:
        return {"bf16": self.bf16_dense_tflops, "fp8": self.fp8_dense_tflops, "fp4": self.fp4_dense_tflops}[
            precision
        ]


class _SourceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=3)
    as_of: dt.date


class _AcceleratorRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    name: str
    vendor: Vendor
    family: str
    kind: Literal["datacenter", "local"]
    bf16_dense_tflops: float = Field(gt=0)
    fp8_dense_tflops: float | None = Field(default=None, gt=0)
    fp4_dense_tflops: float | None = Field(default=None, gt=0)
    memory_gb: float = Field(gt=0)
    memory_tb_per_s: float = Field(gt=0)
    interconnect: str
    interconnect_gb_per_s: float = Field(ge=0)
    scale_up_domain: int = Field(ge=1)
    board_power_w: float = Field(gt=0)
    server_power_w_per_accelerator: float = Field(gt=0)
    pue: float = Field(ge=1.0, le=3.0)
    usd_per_hour_rented: float | None = Field(default=None, gt=0)
    usd_capex_owned: float | None = Field(default=None, gt=0)
    aliases: list[str] = Field(default_factory=list)
    sources: dict[Literal["specs", "power", "price", "pue"], _SourceRow]

    @model_validator(mode="after")
    def _every_group_sourced(self) -> _AcceleratorRow:
        missing = {"specs", "power", "price", "pue"} - set(self.sources)
        if missing:
            raise ValueError(f"sources missing for {sorted(missing)}")
        if self.server_power_w_per_accelerator < self.board_power_w:
            raise ValueError("server_power_w_per_accelerator is below board_power_w")
        return self

    def to_record(self) -> Accelerator:
        return Accelerator(
            id=self.id,
            name=self.name,
            vendor=self.vendor,
            family=self.family,
            kind=self.kind,
            bf16_dense_tflops=self.bf16_dense_tflops,
            fp8_dense_tflops=self.fp8_dense_tflops,
            fp4_dense_tflops=self.fp4_dense_tflops,
            memory_gb=self.memory_gb,
            memory_tb_per_s=self.memory_tb_per_s,
            interconnect=self.interconnect,
            interconnect_gb_per_s=self.interconnect_gb_per_s,
            scale_up_domain=self.scale_up_domain,
            board_power_w=self.board_power_w,
            server_power_w_per_accelerator=self.server_power_w_per_accelerator,
            pue=self.pue,
            usd_per_hour_rented=self.usd_per_hour_rented,
            usd_capex_owned=self.usd_capex_owned,
            aliases=tuple(self.aliases),
            sources=tuple((k, FigureSource(v.source, v.as_of)) for k, v in sorted(self.sources.items())),
        )


class _AcceleratorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accelerators: list[_AcceleratorRow]


def parse_accelerators(text: str, *, origin: str = _DATA_FILE) -> dict[str, Accelerator]:
    """Validate accelerator YAML text and index its records by id (raises :class:`ConfigError`)."""
    return parse_records(
        text,
        _AcceleratorFile,
        lambda f: f.accelerators,
        catalog="accelerator",
        kind="accelerator",
        origin=origin,
    )


@functools.cache
def _catalog() -> dict[str, Accelerator]:
    text = packaged_text(_DATA_FILE)
    return parse_accelerators(text)


def list_accelerators(*, kind: str | None = None) -> list[Accelerator]:
    """All accelerators in catalog order, optionally only ``datacenter`` or ``local`` ones.

    >>> [a.id for a in list_accelerators(kind="local")]
    ['rtx-4090', 'rtx-5090', 'apple-m4-max']
    """
    return [a for a in _catalog().values() if kind is None or a.kind == kind]


def get_accelerator(accelerator_id: str) -> Accelerator:
    """The accelerator with this id; an unknown id suggests the closest known ones.

    >>> get_accelerator("mi300x").vendor
    'amd'
    """
    return get_record(_catalog(), accelerator_id, "accelerator")


def match_accelerator(description: str) -> Accelerator | None:
    """The accelerator whose id or alias best matches free text such as ``NVIDIA H100-SXM-80GB``.

    The longest matching alias wins, so ``H200-SXM-141GB-CTS`` beats ``H200``.

    >>> match_accelerator("AMD Instinct MI300X-NPS1-SPX-192GB-750W").id
    'mi300x'
    """
    return match_alias(_catalog().values(), description)
