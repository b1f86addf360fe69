"""Unit economics by year: revenue, inference cost, gross margin, development, break-even.

Labs are likely profitable on the marginal cost of inference; losses come from model development.
The projection shows both operating results, with and without development, and the cash burned
before the first profitable year::

    outlook = project_economics_from_file("examples/fleet/economics_lab_profit_2027.yaml")
    outlook.summary.break_even_year   # 2027
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flopledger.fleet.spec import read_spec_mapping, validation_error_to_config_error

__all__ = [
    "EconomicsOutlook",
    "EconomicsSpec",
    "EconomicsSummary",
    "YearEconomics",
    "project_economics",
    "project_economics_from_file",
]


class YearModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    year: int = Field(ge=2000, le=2100)
    revenue_usd: float = Field(ge=0)
    inference_cost_usd: float | None = Field(default=None, ge=0)
    inference_cost_share: float | None = Field(default=None, ge=0, le=5, description="Of revenue.")
    development_usd: float = Field(default=0.0, ge=0)
    other_opex_usd: float = Field(default=0.0, ge=0, description="Sales, general and administrative.")
    note: str = ""

    @model_validator(mode="after")
    def _one_cost(self) -> YearModel:
        if (self.inference_cost_usd is None) == (self.inference_cost_share is None):
            raise ValueError("give exactly one of 'inference_cost_usd' or 'inference_cost_share'")
        return self


class EconomicsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "lab"
    description: str = ""
    starting_cash_usd: float = 0.0
    years: list[YearModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _consecutive(self) -> EconomicsSpec:
        years = [y.year for y in self.years]
        if years != list(range(years[0], years[0] + len(years))):
            raise ValueError(f"years must be consecutive and in order, got {years}")
        return self


@dataclass(frozen=True)
class YearEconomics:
    year: int
    revenue_usd: float
    inference_cost_usd: float
    gross_margin_usd: float
    gross_margin_share: float
    development_usd: float
    other_opex_usd: float
    operating_result_ex_development_usd: float
    operating_result_usd: float
    cumulative_result_usd: float
    cash_usd: float


@dataclass(frozen=True)
class EconomicsSummary:
    name: str
    break_even_year: int | None  # first year with a non-negative operating result
    burn_before_break_even_usd: float  # losses summed over the years before it
    cumulative_development_usd: float
    lowest_cash_usd: float
    lowest_cash_year: int


@dataclass(frozen=True)
class EconomicsOutlook:
    summary: EconomicsSummary
    years: tuple[YearEconomics, ...]


def project_economics(spec: EconomicsSpec) -> EconomicsOutlook:
    """Year-by-year unit economics and the break-even year."""
    rows: list[YearEconomics] = []
    cumulative, cash = 0.0, spec.starting_cash_usd
    for y in spec.years:
        inference = (
            y.inference_cost_usd
            if y.inference_cost_usd is not None
            else ((y.inference_cost_share or 0.0) * y.revenue_usd)
        )
        gross = y.revenue_usd - inference
        ex_dev = gross - y.other_opex_usd
        result = ex_dev - y.development_usd
        cumulative += result
        cash += result
        rows.append(
            YearEconomics(
                year=y.year,
                revenue_usd=y.revenue_usd,
                inference_cost_usd=inference,
                gross_margin_usd=gross,
                gross_margin_share=gross / y.revenue_usd if y.revenue_usd else 0.0,
                development_usd=y.development_usd,
                other_opex_usd=y.other_opex_usd,
                operating_result_ex_development_usd=ex_dev,
                operating_result_usd=result,
                cumulative_result_usd=cumulative,
                cash_usd=cash,
            )
        )
    break_even = next((r.year for r in rows if r.operating_result_usd >= 0), None)
    before = [r for r in rows if break_even is None or r.year < break_even]
    lowest = min(rows, key=lambda r: r.cash_usd)
    return EconomicsOutlook(
        summary=EconomicsSummary(
            name=spec.name,
            break_even_year=break_even,
            burn_before_break_even_usd=-sum(min(r.operating_result_usd, 0.0) for r in before),
            cumulative_development_usd=sum(r.development_usd for r in rows),
            lowest_cash_usd=lowest.cash_usd,
            lowest_cash_year=lowest.year,
        ),
        years=tuple(rows),
    )


def project_economics_from_file(path: str | Path) -> EconomicsOutlook:
    """:func:`project_economics` on a YAML or TOML spec."""
    p = Path(path)
    try:
        spec = EconomicsSpec.model_validate(read_spec_mapping(p))
    except ValidationError as exc:
        raise validation_error_to_config_error(str(p), exc) from None
    return project_economics(spec)
