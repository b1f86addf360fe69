"""From a validated spec to the compute envelope: pool facts, workload demands, a throughput matrix.

Heterogeneity enters as one matrix of work units per accelerator-hour (workload x pool). Token
workloads count work in millions of output tokens (Mtok), development workloads in EFLOP (1e18 FLOP).
Each cell is given in the spec, estimated by the serving layer for a named model, or (for FLOP work)
derived from the accelerator catalog's peak BF16 FLOP/s times the policy's MFU.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from flopledger.catalog.accelerators import Accelerator, get_accelerator
from flopledger.errors import ConfigError, FlopledgerError
from flopledger.fleet.spec import FleetSpecModel, PoolModel, WorkloadModel
from flopledger.serving import estimate_serving

__all__ = ["HOURS_PER_YEAR", "EnvelopeProblem", "PoolFacts", "WorkloadFacts", "build_envelope"]

HOURS_PER_YEAR = 8760.0
EFLOP = 1e18
Source = Literal["given", "serving", "catalog", "none"]


@dataclass(frozen=True)
class PoolFacts:
    id: str
    accelerator: str
    supplier: str
    family: str
    region: str
    count: int
    node_size: int
    available_hours: float  # hours each accelerator can work within the period
    power_kw_per_accelerator: float  # at the wall of the server, before PUE
    pue: float
    ownership: Literal["owned", "leased"]
    fixed_usd_per_accelerator_hour: float  # amortised capex or lease: paid whether used or not
    energy_usd_per_accelerator_hour: float  # paid only when used

    @property
    def accelerator_hours(self) -> float:
        return self.count * self.available_hours

    @property
    def nodes(self) -> int:
        return self.count // self.node_size


@dataclass(frozen=True)
class WorkloadFacts:
    id: str
    kind: str
    unit: Literal["Mtok", "EFLOP"]
    demand_units: float  # in the period
    value_usd_per_unit: float
    is_revenue: bool  # paying customers; other value is internal and notional


@dataclass(frozen=True)
class EnvelopeProblem:
    """Everything the allocation LP needs, in arrays indexed by workload and pool."""

    name: str
    period_hours: float
    pools: tuple[PoolFacts, ...]
    workloads: tuple[WorkloadFacts, ...]
    units_per_accelerator_hour: npt.NDArray[np.float64]  # shape (workloads, pools); 0 = not allowed
    throughput_source: tuple[tuple[str, ...], ...]  # (workloads, pools): given / serving / catalog / none
    development_floor_accelerator_hours: float
    development_floor_share: float | None
    kind_shares: Mapping[str, tuple[float, float]]  # kind -> (min, max) share of the envelope

    @property
    def envelope_accelerator_hours(self) -> float:
        return float(sum(p.accelerator_hours for p in self.pools))

    def without_pools(self, keep: npt.NDArray[np.bool_], *, keep_floor: bool = True) -> EnvelopeProblem:
        """The same problem with only the pools where ``keep`` is true (floor re-based on share)."""
        pools = tuple(p for p, k in zip(self.pools, keep, strict=True) if k)
        envelope = float(sum(p.accelerator_hours for p in pools))
        floor = self.development_floor_accelerator_hours
        if self.development_floor_share is not None:
            floor = self.development_floor_share * envelope
        return EnvelopeProblem(
            name=self.name,
            period_hours=self.period_hours,
            pools=pools,
            workloads=self.workloads,
            units_per_accelerator_hour=self.units_per_accelerator_hour[:, keep],
            throughput_source=tuple(
                tuple(s for s, k in zip(row, keep, strict=True) if k) for row in self.throughput_source
            ),
            development_floor_accelerator_hours=floor if keep_floor else 0.0,
            development_floor_share=self.development_floor_share if keep_floor else None,
            kind_shares=self.kind_shares,
        )


def _catalog_record(accelerator: str) -> Accelerator | None:
    try:
        return get_accelerator(accelerator)
    except FlopledgerError:
        return None


def _pool_facts(i: int, pool: PoolModel, spec: FleetSpecModel, source: str) -> PoolFacts:
    policy = spec.policy
    record = _catalog_record(pool.accelerator)

    def need(value: Any, key: str, attribute: str) -> Any:
        """The spec's value, else the accelerator catalog's (an error naming both when neither has it)."""
        if value is not None:
            return value
        if record is None:
            raise ConfigError(
                f"{source}: pools[{i}].{key}: not given and accelerator {pool.accelerator!r} "
                "is not in the accelerator catalog; give it in the spec"
            )
        return getattr(record, attribute)

    supplier = str(need(pool.supplier, "supplier", "vendor")).lower()
    family = str(need(pool.family, "family", "family"))
    power_kw = pool.power_kw_per_accelerator
    if power_kw is None:
        power_kw = float(need(None, "power_kw_per_accelerator", "server_power_w_per_accelerator")) / 1000.0
    pue = pool.pue or (record.pue if record is not None else policy.default_pue)
    lost_hours = 0.0
    if pool.available_from is not None and pool.available_from > policy.start:
        lost_hours = (pool.available_from - policy.start).days * 24.0
    available = max(0.0, policy.period_hours - lost_hours)
    energy = power_kw * pue * policy.energy_usd_per_kwh
    if pool.owned is not None:
        fixed = pool.owned.capex_usd_per_accelerator / (pool.owned.life_years * HOURS_PER_YEAR)
        ownership: Literal["owned", "leased"] = "owned"
    else:
        assert pool.leased is not None
        fixed = pool.leased.usd_per_hour
        ownership = "leased"
        if pool.leased.includes_power:
            energy = 0.0
    return PoolFacts(
        pool.id,
        pool.accelerator,
        supplier,
        family,
        pool.region,
        pool.count,
        pool.node_size,
        available,
        power_kw,
        pue,
        ownership,
        fixed,
        energy,
    )


def _check_names(table: Mapping[str, float], known: list[str], where: str) -> None:
    for acc in table:
        if acc not in known:
            close = difflib.get_close_matches(acc, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; pools use: {', '.join(sorted(known))}"
            raise ConfigError(f"{where}.{acc}: no pool uses accelerator {acc!r}{hint}")


def _serving_rate(w: WorkloadModel, accelerator: str, node_size: int) -> float | None:
    """Output tokens/s per accelerator from the serving estimator, or None when it does not know the pair."""
    if w.model is None:
        return None
    try:
        est = estimate_serving(
            model=w.model,
            accelerator=accelerator,
            count=node_size,
            precision=w.precision,
            input_tokens=w.input_tokens_per_request,
            output_tokens=w.output_tokens_per_request,
        )
    except FlopledgerError:
        return None
    return float(est.output_tokens_per_s_per_accelerator)


def _catalog_pflops(accelerator: str, mfu: float) -> float | None:
    record = _catalog_record(accelerator)
    tflops = record.bf16_dense_tflops if record is not None else None
    return None if tflops is None else float(tflops) / 1000.0 * mfu


def _rates(
    i: int, w: WorkloadModel, pools: tuple[PoolFacts, ...], spec: FleetSpecModel, source: str
) -> tuple[list[float], list[str]]:
    """Work units per accelerator-hour of each pool, and where each figure came from."""
    known = sorted({p.accelerator for p in pools})
    token = w.demand_tokens_per_day is not None
    key = "tokens_per_s_per_accelerator" if token else "effective_pflops_per_accelerator"
    given = (w.tokens_per_s_per_accelerator if token else w.effective_pflops_per_accelerator) or {}
    _check_names(given, known, f"{source}: workloads[{i}].{key}")
    allowed = set(w.allowed_accelerators) if w.allowed_accelerators is not None else None
    if allowed is not None:
        _check_names(dict.fromkeys(allowed, 0.0), known, f"{source}: workloads[{i}].allowed_accelerators")
    elif given:
        allowed = set(given)  # a given table lists the chips this workload runs on
    rates: list[float] = []
    sources: list[str] = []
    missing: list[str] = []
    for pool in pools:
        if allowed is not None and pool.accelerator not in allowed:
            rates.append(0.0)
            sources.append("none")
            continue
        raw: float | None
        if pool.accelerator in given:
            raw, origin = given[pool.accelerator], "given"
        else:
            est = (
                _serving_rate(w, pool.accelerator, pool.node_size)
                if token
                else _catalog_pflops(pool.accelerator, spec.policy.training_mfu)
            )
            raw, origin = (est, "serving" if token else "catalog") if est is not None else (None, "none")
        if raw is None:
            missing.append(pool.accelerator)
            rates.append(0.0)
            sources.append("none")
            continue
        # tokens/s -> Mtok per hour; PFLOP/s -> EFLOP per hour
        rates.append(raw * 3600.0 / 1e6 if token else raw * 3600.0 / 1e3)
        sources.append(origin)
    if missing and allowed is not None:
        raise ConfigError(
            f"{source}: workloads[{i}].{key}: no throughput for {', '.join(sorted(set(missing)))}; "
            f"give it in the spec" + (" (the serving estimator does not know this pair)" if token else "")
        )
    if not any(rates):
        raise ConfigError(f"{source}: workloads[{i}]: no pool can run {w.id!r}; give {key} in the spec")
    return rates, sources


def _workload_facts(w: WorkloadModel, period_hours: float) -> WorkloadFacts:
    if w.demand_tokens_per_day is not None:
        demand = w.demand_tokens_per_day * period_hours / 24.0 / 1e6
        return WorkloadFacts(w.id, w.kind, "Mtok", demand, w.value_per_mtok_usd, w.kind == "inference")
    assert w.need_flop is not None and w.value_usd is not None
    need = w.need_flop / EFLOP
    return WorkloadFacts(w.id, w.kind, "EFLOP", need, w.value_usd / need, w.kind == "inference")


def build_envelope(spec: FleetSpecModel, *, source: str = "<spec>") -> EnvelopeProblem:
    """Resolve a spec into an :class:`EnvelopeProblem` (catalog and serving fill the gaps)."""
    pools = tuple(_pool_facts(i, p, spec, source) for i, p in enumerate(spec.pools))
    rows, origins = [], []
    for i, w in enumerate(spec.workloads):
        r, s = _rates(i, w, pools, spec, source)
        rows.append(r)
        origins.append(tuple(s))
    envelope = float(sum(p.accelerator_hours for p in pools))
    policy = spec.policy
    floor = 0.0
    if policy.development_floor_share is not None:
        floor = policy.development_floor_share * envelope
    elif policy.development_floor_accelerator_hours is not None:
        floor = policy.development_floor_accelerator_hours
    if floor > 0 and not any(w.kind == "development" for w in spec.workloads):
        raise ConfigError(f"{source}: policy.development_floor: set, but no workload has kind 'development'")
    return EnvelopeProblem(
        name=spec.name,
        period_hours=policy.period_hours,
        pools=pools,
        workloads=tuple(_workload_facts(w, policy.period_hours) for w in spec.workloads),
        units_per_accelerator_hour=np.asarray(rows, dtype=np.float64),
        throughput_source=tuple(origins),
        development_floor_accelerator_hours=floor,
        development_floor_share=policy.development_floor_share,
        kind_shares={k: (v.min, v.max) for k, v in policy.shares.items()},
    )
