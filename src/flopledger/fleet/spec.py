"""The fleet spec: pools, workloads and policy, read from YAML or TOML and validated at the edge.

A spec names the accelerator pools of one compute envelope, the workloads that compete for it and the
policy that splits it. Validation errors name the file, the key and what is wrong::

    spec = load_fleet_spec("examples/fleet/three_vendor_envelope.yaml")
    spec.pools[0].accelerator   # 'nvidia-gb200'
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flopledger.errors import ConfigError

__all__ = [
    "WORKLOAD_KINDS",
    "FleetSpecModel",
    "KindShareModel",
    "LeasedModel",
    "OwnedModel",
    "PolicyModel",
    "PoolModel",
    "WorkloadModel",
    "load_fleet_spec",
    "parse_fleet_spec",
    "read_spec_mapping",
    "validation_error_to_config_error",
]

WORKLOAD_KINDS: tuple[str, ...] = ("inference", "development", "internal")

Kind = Literal["inference", "development", "internal"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OwnedModel(_Strict):
    capex_usd_per_accelerator: float = Field(ge=0)
    life_years: float = Field(gt=0)


class LeasedModel(_Strict):
    usd_per_hour: float = Field(ge=0, description="Lease price per accelerator-hour.")
    includes_power: bool = Field(default=True, description="Cloud rent includes power; colocation does not.")


class PoolModel(_Strict):
    id: str = Field(min_length=1)
    accelerator: str = Field(min_length=1)
    count: int = Field(gt=0)
    region: str = "unspecified"
    node_size: int = Field(default=8, gt=0, description="Accelerators per node (the unit of --integer).")
    supplier: str | None = None
    family: str | None = None
    power_kw_per_accelerator: float | None = Field(default=None, gt=0)
    pue: float | None = Field(default=None, ge=1)
    available_from: dt.date | None = None
    owned: OwnedModel | None = None
    leased: LeasedModel | None = None

    @model_validator(mode="after")
    def _one_ownership(self) -> PoolModel:
        if (self.owned is None) == (self.leased is None):
            raise ValueError("give exactly one of 'owned' (capex, life) or 'leased' (usd_per_hour)")
        return self


class WorkloadModel(_Strict):
    id: str = Field(min_length=1)
    kind: Kind
    model: str | None = None
    # token-type demand (inference, or internal agents)
    demand_tokens_per_day: float | None = Field(default=None, ge=0)
    revenue_usd_per_mtok: float | None = Field(default=None, ge=0)
    value_usd_per_mtok: float | None = Field(default=None, ge=0)
    tokens_per_s_per_accelerator: dict[str, float] | None = None
    input_tokens_per_request: int = Field(default=2000, gt=0)
    output_tokens_per_request: int = Field(default=500, gt=0)
    precision: str = "fp8"
    # compute-type demand (model development)
    need_flop: float | None = Field(default=None, gt=0)
    value_usd: float | None = Field(default=None, ge=0)
    effective_pflops_per_accelerator: dict[str, float] | None = None
    allowed_accelerators: list[str] | None = None

    @model_validator(mode="after")
    def _one_demand(self) -> WorkloadModel:
        tokens = self.demand_tokens_per_day is not None
        compute = self.need_flop is not None
        if tokens == compute:
            raise ValueError("give exactly one demand: 'demand_tokens_per_day' or 'need_flop'")
        if self.kind == "inference" and not tokens:
            raise ValueError("an inference workload needs 'demand_tokens_per_day'")
        if tokens:
            if self.revenue_usd_per_mtok is None and self.value_usd_per_mtok is None:
                raise ValueError("a token workload needs 'revenue_usd_per_mtok' or 'value_usd_per_mtok'")
            if self.effective_pflops_per_accelerator is not None:
                raise ValueError("'effective_pflops_per_accelerator' is for need_flop workloads")
        if compute:
            if self.value_usd is None:
                raise ValueError("a need_flop workload needs 'value_usd' (what finishing it is worth)")
            if self.tokens_per_s_per_accelerator is not None:
                raise ValueError("'tokens_per_s_per_accelerator' is for token workloads")
        for table in (self.tokens_per_s_per_accelerator, self.effective_pflops_per_accelerator):
            for acc, rate in (table or {}).items():
                if rate < 0:
                    raise ValueError(f"throughput for {acc!r} must be >= 0, got {rate}")
        return self

    @property
    def value_per_mtok_usd(self) -> float:
        rate = self.revenue_usd_per_mtok if self.revenue_usd_per_mtok is not None else self.value_usd_per_mtok
        return float(rate or 0.0)


class KindShareModel(_Strict):
    min: float = Field(default=0.0, ge=0, le=1)
    max: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> KindShareModel:
        if self.min > self.max:
            raise ValueError(f"min share {self.min} is above max share {self.max}")
        return self


class PolicyModel(_Strict):
    development_floor_share: float | None = Field(default=None, ge=0, le=1)
    development_floor_accelerator_hours: float | None = Field(default=None, ge=0)
    shares: dict[Kind, KindShareModel] = Field(default_factory=dict)
    period_hours: float = Field(default=730.0, gt=0, description="Planning period (default: one month).")
    start: dt.date = dt.date(2026, 1, 1)
    energy_usd_per_kwh: float = Field(default=0.08, ge=0)
    default_pue: float = Field(default=1.2, ge=1)
    training_mfu: float = Field(default=0.4, gt=0, le=1, description="For catalog-derived FLOP/s.")

    @model_validator(mode="after")
    def _one_floor(self) -> PolicyModel:
        if self.development_floor_share is not None and self.development_floor_accelerator_hours is not None:
            raise ValueError("give the development floor as a share or in accelerator-hours, not both")
        return self


class FleetSpecModel(_Strict):
    name: str = "fleet"
    description: str = ""
    pools: list[PoolModel] = Field(min_length=1)
    workloads: list[WorkloadModel] = Field(min_length=1)
    policy: PolicyModel = Field(default_factory=PolicyModel)

    @model_validator(mode="after")
    def _unique_ids(self) -> FleetSpecModel:
        for what, ids in (("pool", [p.id for p in self.pools]), ("workload", [w.id for w in self.workloads])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} id(s): {', '.join(dupes)}")
        return self


def read_spec_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a mapping; errors name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such spec file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: unknown spec format {path.suffix!r}; use .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validation_error_to_config_error(source: str, exc: ValidationError) -> ConfigError:
    """One readable line per problem: ``file: key: what is wrong``."""
    lines = []
    for err in exc.errors():
        # model validators add a synthetic location; keep only real keys
        loc = tuple(p for p in err["loc"] if p not in {"function-after"})
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {_key_path(loc)}: {msg}")
    return ConfigError("; ".join(lines))


def parse_fleet_spec(data: Mapping[str, Any], *, source: str = "<spec>") -> FleetSpecModel:
    """Validate a mapping as a fleet spec; a :class:`ConfigError` names source, key and problem."""
    try:
        return FleetSpecModel.model_validate(dict(data))
    except ValidationError as exc:
        raise validation_error_to_config_error(source, exc) from None


def load_fleet_spec(path: str | Path) -> FleetSpecModel:
    """Load and validate a fleet spec file (YAML or TOML).

    >>> spec = load_fleet_spec("examples/fleet/three_vendor_envelope.yaml")  # doctest: +SKIP
    """
    p = Path(path)
    return parse_fleet_spec(read_spec_mapping(p), source=str(p))
