"""`flopledger serving ...` commands: parse, call the library, render."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from flopledger.cli.options import FormatOption
from flopledger.cli.output import OutputFormat, console, render_rows, to_jsonable

__all__ = ["app"]

app = typer.Typer(help="What one token costs to make: throughput, $/Mtok and J/token.", no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model id (see `serving models`).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="bf16, fp8 or fp4.")]
InputTokensOpt = Annotated[int, typer.Option("--input-tokens", help="Prompt tokens per request.")]
OutputTokensOpt = Annotated[int, typer.Option("--output-tokens", help="Generated tokens per request.")]
TpotOpt = Annotated[float | None, typer.Option("--tpot-ms", help="Limit on time per output token (ms).")]


@app.command("accelerators")
def accelerators_command(fmt: FormatOption = OutputFormat.table) -> None:
    """List the accelerator catalog (dense TFLOP/s, memory, power, price, sources)."""
    from flopledger.catalog.accelerators import list_accelerators

    rows: list[dict[str, Any]] = []
    for a in list_accelerators():
        row: dict[str, Any] = {
            k: getattr(a, k)
            for k in (
                "id",
                "vendor",
                "family",
                "kind",
                "bf16_dense_tflops",
                "fp8_dense_tflops",
                "fp4_dense_tflops",
                "memory_gb",
                "memory_tb_per_s",
                "interconnect",
                "board_power_w",
                "server_power_w_per_accelerator",
                "pue",
                "usd_per_hour_rented",
                "usd_capex_owned",
            )
        }
        if fmt is not OutputFormat.table:
            row["sources"] = {k: {"source": s.source, "as_of": s.as_of} for k, s in a.sources}
        rows.append(row)
    columns = (
        None
        if fmt is not OutputFormat.table
        else [
            "id",
            "vendor",
            "bf16_dense_tflops",
            "fp8_dense_tflops",
            "fp4_dense_tflops",
            "memory_gb",
            "memory_tb_per_s",
            "board_power_w",
            "usd_per_hour_rented",
        ]
    )
    render_rows(rows, fmt, title="Accelerators", columns=columns)


@app.command("models")
def models_command(fmt: FormatOption = OutputFormat.table) -> None:
    """List the model architectures with derived parameters and KV-cache bytes per token."""
    from flopledger.catalog.architectures import list_model_architectures

    rows = [
        {
            "id": m.id,
            "attention": m.attention_kind,
            "layers": m.layers,
            "hidden_size": m.hidden_size,
            "heads": m.heads,
            "kv_heads": m.kv_heads,
            "head_dim": m.head_dim,
            "experts": m.moe.experts if m.moe else None,
            "experts_per_token": m.moe.experts_per_token if m.moe else None,
            "total_params_b": round(m.total_params / 1e9, 2),
            "active_params_b": round(m.active_params / 1e9, 2),
            "flops_per_token_g": round(m.flops_per_token() / 1e9, 2),
            "kv_cache_bytes_per_token_bf16": m.kv_cache_bytes_per_token(bytes_per_element=2),
            "source": m.source.source,
            "as_of": m.source.as_of,
        }
        for m in list_model_architectures()
    ]
    columns = (
        None
        if fmt is not OutputFormat.table
        else [
            "id",
            "attention",
            "layers",
            "experts",
            "total_params_b",
            "active_params_b",
            "flops_per_token_g",
            "kv_cache_bytes_per_token_bf16",
        ]
    )
    render_rows(rows, fmt, title="Model architectures", columns=columns)


@app.command("estimate")
def estimate_command(
    model: ModelOpt,
    accelerator: Annotated[str, typer.Option("--accelerator", "-a", help="Accelerator id.")],
    input_tokens: InputTokensOpt,
    output_tokens: OutputTokensOpt,
    count: Annotated[int, typer.Option("--count", "-n", help="Number of accelerators.")] = 1,
    precision: PrecisionOpt = "bf16",
    ttft_ms: Annotated[
        float | None, typer.Option("--ttft-ms", help="Limit on time to first token (ms).")
    ] = None,
    tpot_ms: TpotOpt = None,
    usd_per_hour: Annotated[
        float | None, typer.Option("--usd-per-hour", help="Price per accelerator-hour (default: catalog).")
    ] = None,
    utilization: Annotated[float, typer.Option("--utilization", help="Average load, 0-1.")] = 1.0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Estimate throughput, latency, $/Mtok and J/token for a model on accelerators."""
    from flopledger.serving import estimate_serving

    est = estimate_serving(
        model=model,
        accelerator=accelerator,
        count=count,
        precision=precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_ms=ttft_ms,
        tpot_ms=tpot_ms,
        usd_per_hour=usd_per_hour,
        utilization=utilization,
    )
    _render_record(est.as_row(), fmt, f"{est.model} on {est.count} x {est.accelerator} ({est.precision})")


def _render_record(row: Mapping[str, Any], fmt: OutputFormat, title: str) -> None:
    """One result: JSON whole; CSV one row; a table of fields, then its assumptions, when there are any."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(to_jsonable(row), indent=2))
        return
    fields = {k: v for k, v in row.items() if k != "assumptions"}
    if fmt is OutputFormat.csv:
        render_rows([fields], fmt)
        return
    render_rows([{"field": k, "value": v} for k, v in fields.items()], fmt, title=title)
    assumptions = row.get("assumptions") or {}
    if assumptions:
        render_rows([{"assumption": k, "value": str(v)} for k, v in assumptions.items()], fmt)


@app.command("compare")
def compare_command(
    model: ModelOpt,
    device: Annotated[str, typer.Option("--device", "-d", help="Local device id, e.g. rtx-4090.")],
    api_input: Annotated[float, typer.Option("--api-usd-per-mtok-input", help="API input price, $/Mtok.")],
    api_output: Annotated[float, typer.Option("--api-usd-per-mtok-output", help="API output price, $/Mtok.")],
    daily_tokens: Annotated[float, typer.Option("--daily-tokens", help="Tokens a day, input plus output.")],
    input_tokens: InputTokensOpt = 2000,
    output_tokens: OutputTokensOpt = 500,
    precision: PrecisionOpt = "fp4",
    usd_per_kwh: Annotated[float, typer.Option("--usd-per-kwh", help="Electricity price.")] = 0.15,
    years: Annotated[float, typer.Option("--years", help="Device life for amortization.")] = 3.0,
    tpot_ms: TpotOpt = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Put a local device against an API price: $/Mtok at a daily volume, and the break-even volume."""
    from flopledger.serving import compare_local_to_api

    result = compare_local_to_api(
        model=model,
        device=device,
        api_usd_per_mtok_input=api_input,
        api_usd_per_mtok_output=api_output,
        daily_tokens=daily_tokens,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        precision=precision,
        usd_per_kwh=usd_per_kwh,
        years=years,
        tpot_ms=tpot_ms,
    )
    _render_record(result.as_row(), fmt, f"{result.device} versus API for {result.model}")


@app.command("validate")
def validate_command(
    measured: Annotated[
        Path | None,
        typer.Option(
            "--measured",
            help="Measured results CSV (default: ../shared/data/inference/measured_public.csv).",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Compare estimates with measured throughput; print per-row error and the median APE."""
    from flopledger.serving import validate_serving

    report = validate_serving(measured)
    rows = [
        {
            "line": r.line,
            "accelerator": r.accelerator,
            "count": r.count,
            "model": r.model,
            "scenario": r.scenario,
            "precision": r.precision,
            "measured_tokens_per_s": r.measured_tokens_per_s,
            "estimated_tokens_per_s": round(r.estimated_tokens_per_s, 1),
            "error_pct": round(r.error_pct, 1),
            "group_size": r.group_size,
            "batch_size": r.batch_size,
            "bound": r.bound,
        }
        for r in report.rows
    ]
    if fmt is OutputFormat.json:
        payload = {
            "summary": report.summary(),
            "rows": rows,
            "skipped": [{"line": line, "reason": why} for line, why in report.skipped],
        }
        typer.echo(json.dumps(to_jsonable(payload), indent=2))
        return
    columns = (
        None
        if fmt is not OutputFormat.table
        else [
            "line",
            "accelerator",
            "count",
            "model",
            "precision",
            "measured_tokens_per_s",
            "estimated_tokens_per_s",
            "error_pct",
            "bound",
        ]
    )
    render_rows(rows, fmt, title="Serving estimate versus measured output tokens/s", columns=columns)
    if fmt is OutputFormat.table:
        for line, why in report.skipped:
            console.print(escape(f"skipped line {line}: {why}"), highlight=False)
        s = report.summary()
        console.print(
            f"median absolute error {s['median_ape_pct']}% over {s['rows_compared']} rows "
            f"(mean {s['mean_ape_pct']}%, {s['share_within_15_pct']:.0%} within 15%)",
            highlight=False,
        )
