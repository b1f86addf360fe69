"""Planning assumptions as package data: each with a default, a range, a unit and a source.

The table in ``fleet/data/capacity_assumptions.yaml`` feeds the capacity model, its ``--set`` overrides,
its printed assumptions table and its Monte Carlo ranges::

    table = load_assumptions()
    table["pue"].default   # 1.2
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from flopledger.errors import InputError, UnknownNameError
from flopledger.fleet.spec import validation_error_to_config_error

__all__ = ["Assumption", "apply_overrides", "load_assumptions", "sample_assumption"]

_RESOURCE = "capacity_assumptions.yaml"


class _AssumptionModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    route: str
    unit: str
    default: float
    low: float
    high: float
    source: str
    floor: float | None = None  # a physical lower bound (PUE cannot go below 1)

    @model_validator(mode="after")
    def _ordered(self) -> _AssumptionModel:
        if not 0 < self.low <= self.default <= self.high:
            raise ValueError(f"need 0 < low <= default <= high, got {self.low}, {self.default}, {self.high}")
        if self.floor is not None and self.low < self.floor:
            raise ValueError(f"low {self.low} is below the floor {self.floor}")
        return self


@dataclass(frozen=True)
class Assumption:
    name: str
    route: str
    unit: str
    default: float
    low: float
    high: float
    source: str
    floor: float | None = None
    overridden: bool = False


def load_assumptions() -> dict[str, Assumption]:
    """The packaged capacity assumptions, by name (validated; read once, a fresh dict each call)."""
    return dict(_packaged_assumptions())


@functools.cache
def _packaged_assumptions() -> dict[str, Assumption]:
    text = resources.files("flopledger.fleet.data").joinpath(_RESOURCE).read_text(encoding="utf-8")
    out: dict[str, Assumption] = {}
    for i, raw in enumerate(yaml.safe_load(text)):
        try:
            m = _AssumptionModel.model_validate(raw)
        except ValidationError as exc:
            raise validation_error_to_config_error(f"{_RESOURCE}[{i}]", exc) from None
        out[m.name] = Assumption(**m.model_dump())
    return out


def apply_overrides(table: Mapping[str, Assumption], overrides: Mapping[str, float]) -> dict[str, Assumption]:
    """Replace defaults; the range moves with the value, keeping its relative width (above any floor)."""
    out = dict(table)
    for name, value in overrides.items():
        if name not in out:
            raise UnknownNameError("assumption", name, list(out))
        a = out[name]
        if value <= 0 or (a.floor is not None and value < a.floor):
            least = f"at least {a.floor:g}" if a.floor is not None else "positive"
            raise InputError(f"assumption {name} must be {least}, got {value}", field="--set")
        scale = value / a.default
        low = a.low * scale if a.floor is None else max(a.floor, a.low * scale)
        out[name] = dataclasses.replace(a, default=value, low=low, high=a.high * scale, overridden=True)
    return out


def sample_assumption(a: Assumption, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Draws from a triangular distribution in log space peaked at the default."""
    lo, mode, hi = np.log(a.low), np.log(a.default), np.log(a.high)
    if hi - lo < 1e-12:
        return np.full(n, a.default)
    return np.exp(rng.triangular(lo, mode, hi, size=n))
