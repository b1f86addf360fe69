"""The estimator's few calibrated constants, loaded from ``serving/data/calibration.yaml``.

Each constant is explained in that file. Efficiencies are per accelerator family and precision at
most; families with no measured results use a stated prior.

>>> cal = load_calibration()
>>> 0 < cal.compute_efficiency("hopper", "fp8") <= 1
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flopledger.errors import ConfigError

__all__ = ["Calibration", "load_calibration"]


class _FamilyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: float = Field(gt=0, le=1)
    bf16: float | None = Field(default=None, gt=0, le=1)
    fp8: float | None = Field(default=None, gt=0, le=1)
    fp4: float | None = Field(default=None, gt=0, le=1)


class _EfficiencyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prior: float = Field(gt=0, le=1)
    families: dict[str, _FamilyRow]


class _CalibrationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory_bandwidth_efficiency: float = Field(gt=0, le=1)
    interconnect_efficiency: float = Field(gt=0, le=1)
    collective_latency_s: float = Field(ge=0)
    per_layer_overhead_s: float = Field(ge=0)
    usable_memory_fraction: float = Field(gt=0, le=1)
    kv_reserve_context_fraction: float = Field(ge=0, le=1)
    max_sequences_per_accelerator: int = Field(ge=1)
    compute_efficiency: _EfficiencyRow


@dataclass(frozen=True)
class Calibration:
    """Calibrated constants of the serving model (see ``calibration.yaml`` for the why of each)."""

    memory_bandwidth_efficiency: float
    interconnect_efficiency: float
    collective_latency_s: float
    per_layer_overhead_s: float
    usable_memory_fraction: float
    kv_reserve_context_fraction: float
    max_sequences_per_accelerator: int
    prior_compute_efficiency: float
    family_compute_efficiency: tuple[tuple[str, str, float], ...]

    def compute_efficiency(self, family: str, precision: str) -> float:
        """Achieved share of dense peak for ``family`` at ``precision`` (else family default, else prior)."""
        table = {(f, p): v for f, p, v in self.family_compute_efficiency}
        for key in ((family, precision), (family, "default")):
            if key in table:
                return table[key]
        return self.prior_compute_efficiency

    def is_calibrated(self, family: str) -> bool:
        """Whether measured results back this family's efficiency (otherwise the prior is used)."""
        return any(f == family for f, _, _ in self.family_compute_efficiency)


def parse_calibration(text: str, *, origin: str = "calibration.yaml") -> Calibration:
    """Validate calibration YAML text (raises :class:`ConfigError`)."""
    try:
        row = _CalibrationFile.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: invalid calibration: {exc}") from exc
    family_eff: list[tuple[str, str, float]] = []
    for family, fam in row.compute_efficiency.families.items():
        for precision in ("default", "bf16", "fp8", "fp4"):
            value = getattr(fam, precision)
            if value is not None:
                family_eff.append((family, precision, float(value)))
    return Calibration(
        memory_bandwidth_efficiency=row.memory_bandwidth_efficiency,
        interconnect_efficiency=row.interconnect_efficiency,
        collective_latency_s=row.collective_latency_s,
        per_layer_overhead_s=row.per_layer_overhead_s,
        usable_memory_fraction=row.usable_memory_fraction,
        kv_reserve_context_fraction=row.kv_reserve_context_fraction,
        max_sequences_per_accelerator=row.max_sequences_per_accelerator,
        prior_compute_efficiency=row.compute_efficiency.prior,
        family_compute_efficiency=tuple(family_eff),
    )


@functools.cache
def load_calibration() -> Calibration:
    """The packaged calibration (read once)."""
    text = resources.files("flopledger.serving").joinpath("data", "calibration.yaml").read_text("utf-8")
    return parse_calibration(text)
