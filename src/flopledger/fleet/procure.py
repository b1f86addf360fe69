"""How much compute to commit when demand is uncertain: newsvendor fractile plus a solvency view.

Monte Carlo demand paths (scenarios x months, vectorised) meet one committed quantity ``Q``. Each month
earns ``revenue x min(Q, d)``, pays a shortfall penalty on ``max(d - Q, 0)`` (falling behind) and a
holding cost on ``Q`` (amortised capex and opex). The expected-profit optimum is the newsvendor
critical fractile ``cu / (cu + co)`` of monthly demand, with ``cu = revenue + penalty - holding`` (buying
too little) and ``co = holding`` (buying too much). Cash pays the capex up front, so for each quantity
the plan also gives the probability that cash goes below zero; the recommendation is the most
profitable quantity whose insolvency risk stays within the policy::

    plan = plan_procurement(load_procurement_spec("examples/fleet/procure_inference.yaml"))
    plan.recommendation.recommended_units
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.stats import norm

from flopledger.fleet.spec import read_spec_mapping, validation_error_to_config_error

__all__ = [
    "ProcurementPlan",
    "ProcurementPoint",
    "ProcurementSpec",
    "Recommendation",
    "load_procurement_spec",
    "plan_procurement",
    "plan_procurement_from_file",
    "simulate_demand",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemandModel(_Strict):
    model: Literal["lognormal_growth", "normal"] = "lognormal_growth"
    start_units: float | None = Field(default=None, gt=0, description="lognormal_growth: demand in month 1.")
    growth_per_month: float = Field(default=0.0, ge=-0.5, le=1.0)
    volatility_per_month: float = Field(default=0.05, ge=0, le=1.0)
    mean_units: float | None = Field(default=None, gt=0, description="normal: mean monthly demand.")
    sd_units: float | None = Field(default=None, ge=0, description="normal: sd of monthly demand.")

    @model_validator(mode="after")
    def _fields(self) -> DemandModel:
        if self.model == "lognormal_growth" and self.start_units is None:
            raise ValueError("lognormal_growth needs 'start_units'")
        if self.model == "normal" and (self.mean_units is None or self.sd_units is None):
            raise ValueError("normal needs 'mean_units' and 'sd_units'")
        return self


class CostModel(_Strict):
    revenue_usd_per_unit_month: float = Field(gt=0, description="Earned by a unit that serves demand.")
    capex_usd_per_unit: float = Field(default=0.0, ge=0, description="Paid up front.")
    life_months: float = Field(default=60.0, gt=0)
    opex_usd_per_unit_month: float = Field(default=0.0, ge=0, description="Power, space, lease.")
    shortfall_penalty_usd_per_unit_month: float = Field(default=0.0, ge=0, description="Falling behind.")
    starting_cash_usd: float = 0.0
    fixed_cost_usd_per_month: float = Field(default=0.0, ge=0, description="Development and overheads.")


class ProcurementSpec(_Strict):
    name: str = "procurement"
    unit: str = "accelerator"
    horizon_months: int = Field(default=36, gt=0, le=240)
    scenarios: int = Field(default=100_000, ge=1000)
    seed: int = 7
    max_insolvency_probability: float = Field(default=0.05, ge=0, le=1)
    quantity_steps: int = Field(default=41, ge=5, le=401)
    demand: DemandModel
    costs: CostModel


@dataclass(frozen=True)
class ProcurementPoint:
    quantity_units: float
    expected_profit_usd: float
    profit_p10_usd: float
    insolvency_probability: float
    expected_utilisation: float


@dataclass(frozen=True)
class Recommendation:
    unit: str
    critical_fractile: float
    underage_usd_per_unit_month: float
    overage_usd_per_unit_month: float
    newsvendor_units: float
    newsvendor_insolvency_probability: float
    recommended_units: float
    recommended_expected_profit_usd: float
    recommended_insolvency_probability: float
    closed_form_normal_units: float | None  # when demand is normal: mean + sd x z(fractile)
    reason: str


@dataclass(frozen=True)
class ProcurementPlan:
    name: str
    scenarios: int
    horizon_months: int
    seed: int
    recommendation: Recommendation
    curve: tuple[ProcurementPoint, ...]


def load_procurement_spec(path: str | Path) -> ProcurementSpec:
    """Read and validate a procurement spec (YAML or TOML)."""
    p = Path(path)
    try:
        return ProcurementSpec.model_validate(read_spec_mapping(p))
    except ValidationError as exc:
        raise validation_error_to_config_error(str(p), exc) from None


def simulate_demand(demand: DemandModel, scenarios: int, months: int, seed: int) -> npt.NDArray[np.float32]:
    """Demand paths, shape (months, scenarios), float32; the same seed gives the same paths.

    Months run down the first axis so that running sums over time are whole-row vector adds.
    """
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((months, scenarios), dtype=np.float32)
    if demand.model == "normal":
        assert demand.mean_units is not None and demand.sd_units is not None
        shocks *= np.float32(demand.sd_units)
        shocks += np.float32(demand.mean_units)
        return np.maximum(shocks, np.float32(0.0), out=shocks)
    assert demand.start_units is not None
    sigma = demand.volatility_per_month
    drift = np.log1p(demand.growth_per_month) - 0.5 * sigma**2
    shocks[0] = 0.0  # month 1 is known: start_units
    for t in range(1, months):
        shocks[t] += shocks[t - 1]
    log_path = shocks
    log_path *= np.float32(sigma)
    log_path += (np.log(demand.start_units) + drift * np.arange(months, dtype=np.float32))[:, None]
    return np.exp(log_path, out=log_path)


class _Evaluator:
    """Evaluates quantities against fixed paths, reusing one work buffer."""

    def __init__(self, paths: npt.NDArray[np.float32], costs: CostModel) -> None:
        self.paths = paths
        self.costs = costs
        self.months = paths.shape[0]
        self.total_demand = paths.sum(axis=0, dtype=np.float64)
        self.buffer = np.empty_like(paths)
        self.month_number = np.arange(1, self.months + 1, dtype=np.float32)[:, None]

    def __call__(self, q: float) -> ProcurementPoint:
        costs, months, buf = self.costs, self.months, self.buffer
        holding = costs.capex_usd_per_unit / costs.life_months + costs.opex_usd_per_unit_month
        np.minimum(self.paths, np.float32(q), out=buf)
        for t in range(1, months):  # running sum row by row: far faster than cumsum along axis 0
            buf[t] += buf[t - 1]
        total_served = buf[-1].astype(np.float64)
        profit = (
            costs.revenue_usd_per_unit_month * total_served
            - costs.shortfall_penalty_usd_per_unit_month * (self.total_demand - total_served)
            - holding * q * months
        )
        # cash: capex up front, then monthly revenue less opex and fixed costs; broke if it dips below 0
        buf *= np.float32(costs.revenue_usd_per_unit_month)
        buf -= self.month_number * np.float32(
            costs.opex_usd_per_unit_month * q + costs.fixed_cost_usd_per_month
        )
        lowest = buf.min(axis=0).astype(np.float64) + costs.starting_cash_usd - costs.capex_usd_per_unit * q
        return ProcurementPoint(
            quantity_units=q,
            expected_profit_usd=float(profit.mean()),
            profit_p10_usd=float(np.percentile(profit, 10)),
            insolvency_probability=float(np.mean(lowest < 0.0)),
            expected_utilisation=float(total_served.mean() / (q * months)) if q > 0 else 0.0,
        )


def plan_procurement(spec: ProcurementSpec) -> ProcurementPlan:
    """Simulate demand, find the newsvendor quantity and the solvency-constrained recommendation."""
    costs = spec.costs
    paths = simulate_demand(spec.demand, spec.scenarios, spec.horizon_months, spec.seed)
    holding = costs.capex_usd_per_unit / costs.life_months + costs.opex_usd_per_unit_month
    under = costs.revenue_usd_per_unit_month + costs.shortfall_penalty_usd_per_unit_month - holding
    over = holding
    fractile = under / (under + over) if under > 0 else 0.0
    # every month is one newsvendor draw for the same Q, so the fractile is over pooled monthly demand
    at_fractile, lo, hi = np.quantile(paths.reshape(-1), [fractile, 0.01, 0.995])
    newsvendor = float(at_fractile) if fractile > 0 else 0.0
    grid = np.unique(np.concatenate([np.linspace(lo, hi, spec.quantity_steps), [newsvendor]]))
    evaluate = _Evaluator(paths, costs)
    curve = tuple(evaluate(float(q)) for q in grid)
    at_newsvendor = next(p for p in curve if p.quantity_units == newsvendor)
    safe = [p for p in curve if p.insolvency_probability <= spec.max_insolvency_probability]
    limit = spec.max_insolvency_probability
    if at_newsvendor.insolvency_probability <= limit:
        best, reason = at_newsvendor, f"newsvendor quantity; insolvency risk within {limit:.0%}"
    elif safe:
        best = max(safe, key=lambda p: p.expected_profit_usd)
        reason = (
            f"newsvendor quantity risks insolvency {at_newsvendor.insolvency_probability:.1%} > "
            f"{limit:.0%}; most profitable quantity within the limit"
        )
    else:
        best = min(curve, key=lambda p: (p.insolvency_probability, -p.expected_profit_usd))
        reason = f"no quantity keeps insolvency risk within {limit:.0%}; least risky quantity shown"
    closed: float | None = None
    if spec.demand.model == "normal" and 0 < fractile < 1:
        assert spec.demand.mean_units is not None and spec.demand.sd_units is not None
        closed = float(spec.demand.mean_units + spec.demand.sd_units * norm.ppf(fractile))
    rec = Recommendation(
        unit=spec.unit,
        critical_fractile=fractile,
        underage_usd_per_unit_month=under,
        overage_usd_per_unit_month=over,
        newsvendor_units=newsvendor,
        newsvendor_insolvency_probability=at_newsvendor.insolvency_probability,
        recommended_units=best.quantity_units,
        recommended_expected_profit_usd=best.expected_profit_usd,
        recommended_insolvency_probability=best.insolvency_probability,
        closed_form_normal_units=closed,
        reason=reason,
    )
    return ProcurementPlan(spec.name, spec.scenarios, spec.horizon_months, spec.seed, rec, curve)


def plan_procurement_from_file(path: str | Path) -> ProcurementPlan:
    """:func:`plan_procurement` on a spec file."""
    return plan_procurement(load_procurement_spec(path))
