"""Validate the serving estimator against measured throughput (MLPerf, TensorRT-LLM tables).

Each measured row names a system, accelerator, model, scenario and precision; the workload (input and
output lengths, latency limits) comes from ``serving/data/benchmarks.yaml`` or from the scenario text
(``ISL/OSL 1000/1000``). The report gives each row's signed error and the median absolute percentage
error (MAPE) over all rows that could be mapped; rows that cannot be mapped are listed, not hidden.
"""

from __future__ import annotations

import csv
import functools
import re
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from flopledger.catalog.accelerators import match_accelerator
from flopledger.catalog.architectures import match_model_architecture
from flopledger.errors import FlopledgerError, InputError
from flopledger.serving.calibration import Calibration
from flopledger.serving.estimate import estimate_serving

__all__ = [
    "DEFAULT_MEASURED_PATH",
    "ValidationReport",
    "ValidationRow",
    "resolve_measured_path",
    "validate_serving",
]

DEFAULT_MEASURED_PATH = Path("..") / "shared" / "data" / "inference" / "measured_public.csv"
_ISL_OSL = re.compile(r"ISL/OSL\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_MEAN_OUTPUT = re.compile(r"mean output tokens/sample\s*([\d.]+)", re.IGNORECASE)
_REQUIRED = ("accelerator", "accelerator_count", "model", "scenario", "precision", "tokens_per_s")


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttft_ms: float = Field(gt=0)
    tpot_ms: float = Field(gt=0)


class _Benchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    input_tokens: int = Field(gt=0)
    output_tokens: int = Field(gt=0)
    server: _Limits | None = None
    interactive: _Limits | None = None


class _BenchmarkFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    server_load_factor: float = Field(gt=0, le=1)
    mlperf: list[_Benchmark]


@functools.cache
def _benchmarks() -> _BenchmarkFile:
    text = resources.files("flopledger.serving").joinpath("data", "benchmarks.yaml").read_text("utf-8")
    return _BenchmarkFile.model_validate(yaml.safe_load(text))


def _mlperf() -> dict[str, _Benchmark]:
    return {b.model: b for b in _benchmarks().mlperf}


@dataclass(frozen=True)
class _Workload:
    input_tokens: int
    output_tokens: int
    ttft_ms: float | None
    tpot_ms: float | None
    utilization: float = 1.0


@dataclass(frozen=True)
class ValidationRow:
    """One measured result beside its estimate; ``error_pct`` is (estimate - measured) / measured."""

    line: int
    system: str
    accelerator: str
    count: int
    model: str
    scenario: str
    precision: str
    input_tokens: int
    output_tokens: int
    measured_tokens_per_s: float
    estimated_tokens_per_s: float
    error_pct: float
    group_size: int
    batch_size: int
    bound: str


@dataclass(frozen=True)
class ValidationReport:
    """All compared rows, the rows skipped (with why), and the error summary."""

    path: str
    rows: tuple[ValidationRow, ...]
    skipped: tuple[tuple[int, str], ...]

    @property
    def median_ape_pct(self) -> float:
        return statistics.median(abs(r.error_pct) for r in self.rows) if self.rows else float("nan")

    @property
    def mean_ape_pct(self) -> float:
        return statistics.fmean(abs(r.error_pct) for r in self.rows) if self.rows else float("nan")

    @property
    def share_within_15_pct(self) -> float:
        return sum(abs(r.error_pct) <= 15 for r in self.rows) / len(self.rows) if self.rows else 0.0

    def summary(self) -> dict[str, float | int | str]:
        return {
            "measured_file": self.path,
            "rows_compared": len(self.rows),
            "rows_skipped": len(self.skipped),
            "median_ape_pct": round(self.median_ape_pct, 2),
            "mean_ape_pct": round(self.mean_ape_pct, 2),
            "share_within_15_pct": round(self.share_within_15_pct, 3),
        }


def resolve_measured_path(path: Path | None) -> Path:
    """The measured file to use: ``path``, else the shared data file relative to the current directory."""
    chosen = path if path is not None else DEFAULT_MEASURED_PATH
    if not chosen.is_file():
        hint = (
            ""
            if path is not None
            else (" (run from the project root next to ../shared, or pass --measured FILE)")
        )
        raise InputError(f"measured results file not found{hint}", path=str(chosen))
    return chosen


def _workload(model_id: str, scenario: str, benchmark_round: str, notes: str) -> _Workload | str:
    isl_osl = _ISL_OSL.search(scenario)
    if isl_osl:
        return _Workload(int(isl_osl.group(1)), int(isl_osl.group(2)), None, None)
    if "mlperf" not in benchmark_round.lower():
        return f"no workload shape for scenario {scenario!r}"
    bench = _mlperf().get(model_id)
    if bench is None:
        return f"no MLPerf workload shape for {model_id}"
    mean_output = _MEAN_OUTPUT.search(notes)
    output = round(float(mean_output.group(1))) if mean_output else bench.output_tokens
    kind = scenario.strip().lower()
    limits = {"offline": None, "server": bench.server, "interactive": bench.interactive}.get(kind, "missing")
    if limits == "missing":
        return f"unknown MLPerf scenario {scenario!r}"
    if limits is None:
        return _Workload(bench.input_tokens, output, None, None)
    assert isinstance(limits, _Limits)
    return _Workload(
        bench.input_tokens,
        output,
        limits.ttft_ms,
        limits.tpot_ms,
        utilization=_benchmarks().server_load_factor,
    )


def _float(value: str | None, *, path: str, line: int, column: str) -> float:
    try:
        return float(value or "")
    except ValueError:
        raise InputError(f"not a number: {value!r}", path=path, line=line, field=column) from None


def validate_serving(path: Path | None = None, *, calibration: Calibration | None = None) -> ValidationReport:
    """Estimate every row of a measured-results CSV and compare.

    >>> report = validate_serving(Path("measured.csv"))  # doctest: +SKIP
    >>> report.median_ape_pct  # doctest: +SKIP
    9.8
    """
    source = resolve_measured_path(path)
    where = str(source)
    rows: list[ValidationRow] = []
    skipped: list[tuple[int, str]] = []
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"missing columns {', '.join(missing)}", path=where, line=1)
        for line, raw in enumerate(reader, start=2):
            acc = match_accelerator(raw["accelerator"] or "")
            arch = match_model_architecture(raw["model"] or "")
            if acc is None or arch is None:
                unknown = f"unknown accelerator or model: {raw['accelerator']!r}, {raw['model']!r}"
                skipped.append((line, unknown))
                continue
            work = _workload(
                arch.id, raw["scenario"] or "", raw.get("benchmark_round") or "", raw.get("notes") or ""
            )
            if isinstance(work, str):
                skipped.append((line, work))
                continue
            count = int(_float(raw["accelerator_count"], path=where, line=line, column="accelerator_count"))
            measured = _float(raw["tokens_per_s"], path=where, line=line, column="tokens_per_s")
            precision = (raw["precision"] or "").strip().lower().removeprefix("mx").removeprefix("nv")
            try:
                est = estimate_serving(
                    model=arch.id,
                    accelerator=acc.id,
                    count=count,
                    precision=precision,
                    input_tokens=work.input_tokens,
                    output_tokens=work.output_tokens,
                    ttft_ms=work.ttft_ms,
                    tpot_ms=work.tpot_ms,
                    utilization=work.utilization,
                    calibration=calibration,
                )
            except FlopledgerError as exc:
                skipped.append((line, str(exc)))
                continue
            rows.append(
                ValidationRow(
                    line=line,
                    system=raw.get("system") or "",
                    accelerator=acc.id,
                    count=count,
                    model=arch.id,
                    scenario=raw["scenario"] or "",
                    precision=precision,
                    input_tokens=work.input_tokens,
                    output_tokens=work.output_tokens,
                    measured_tokens_per_s=measured,
                    estimated_tokens_per_s=est.output_tokens_per_s,
                    error_pct=(est.output_tokens_per_s - measured) / measured * 100.0,
                    group_size=est.group_size,
                    batch_size=est.batch_size,
                    bound=est.bound,
                )
            )
    return ValidationReport(path=where, rows=tuple(rows), skipped=tuple(skipped))
