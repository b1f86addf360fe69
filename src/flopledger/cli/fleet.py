"""`flopledger fleet ...` commands: parse, call the library, render."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from flopledger.cli.options import FormatOption
from flopledger.cli.output import OutputFormat, render_rows, to_jsonable
from flopledger.errors import InputError

__all__ = ["app"]

app = typer.Typer(
    help="Fleet planning: envelope allocation, capacity, procurement, economics.", no_args_is_help=True
)

SpecArg = Annotated[Path, typer.Argument(help="Fleet spec, YAML or TOML (see examples/fleet/).")]


def _render_sections(sections: Mapping[str, Any], fmt: OutputFormat) -> None:
    """JSON: one document of named sections. Table/CSV: one block per section."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(to_jsonable(sections), indent=2))
        return
    for title, body in sections.items():
        rows: Sequence[Mapping[str, Any]] = (
            body if isinstance(body, list) else [{"item": k, "value": v} for k, v in body.items()]
        )
        if fmt is OutputFormat.csv:
            typer.echo(f"# {title}")
        render_rows(rows, fmt, title=title)


def _records(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(i) for i in items]


def _parse_overrides(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        try:
            out[name.strip()] = float(raw)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--set expects NAME=NUMBER, got {item!r}", field="--set")
    return out


@app.command("allocate")
def allocate_cmd(
    spec: SpecArg,
    fmt: FormatOption = OutputFormat.table,
    integer: Annotated[bool, typer.Option("--integer", help="Allocate whole nodes (MILP).")] = False,
) -> None:
    """Split the envelope between customers, development and internal use; print shadow prices."""
    from flopledger.fleet import plan_envelope

    plan, risk = plan_envelope(spec, integer=integer)
    summary = {
        k: v for k, v in dataclasses.asdict(plan).items() if k not in {"pools", "workloads", "assignments"}
    }
    summary.update(
        cost_usd=plan.cost_usd,
        operating_margin_usd=plan.operating_margin_usd,
        unmet_revenue_usd=plan.unmet_revenue_usd,
    )
    summary.update({f"share_{k}": v for k, v in plan.share_by_kind().items()})
    _render_sections(
        {
            "summary": summary,
            "pools": _records(plan.pools),
            "workloads": _records(plan.workloads),
            "assignments": _records(plan.assignments),
            "envelope_shares": _records(risk.shares),
            "supplier_loss": _records(risk.supplier_loss),
        },
        fmt,
    )


@app.command("capacity")
def capacity_cmd(
    revenue_increase: Annotated[
        float, typer.Option("--revenue-increase", help="Added annual revenue, USD.")
    ] = 0.0,
    months: Annotated[int, typer.Option("--months", help="Months to have the capacity in place.")] = 12,
    power_gw: Annotated[float, typer.Option("--power-gw", help="Or: what this many GW mean in chips.")] = 0.0,
    lease_usd_per_month: Annotated[
        float, typer.Option("--lease-usd-per-month", help="Or: what a compute lease of this size buys.")
    ] = 0.0,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override an assumption, NAME=NUMBER (see the assumptions table)."),
    ] = None,
    accelerator: Annotated[
        str | None,
        typer.Option(
            "--accelerator",
            help="Take chip power, PUE and peak FLOP/s from the catalog, e.g. tpu-v7.",
            show_default=False,
        ),
    ] = None,
    scenarios: Annotated[int, typer.Option("--scenarios", help="Monte Carlo draws.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Revenue -> tokens -> FLOPs -> accelerators -> GW, top-down and bottom-up, with P10/P50/P90."""
    from flopledger.fleet.capacity import plan_capacity

    plan = plan_capacity(
        revenue_increase_usd=revenue_increase,
        months=months,
        power_gw=power_gw,
        lease_usd_per_month=lease_usd_per_month,
        overrides=_parse_overrides(overrides),
        accelerator=accelerator,
        scenarios=scenarios,
        seed=seed,
    )
    _render_sections(
        {
            "results": _records(plan.results),
            "assumptions": _records(plan.assumptions),
        },
        fmt,
    )


@app.command("procure")
def procure_cmd(
    spec: SpecArg,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Write the curve to this path stem: STEM.png and STEM.html."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """How much compute to commit: newsvendor fractile, expected profit and insolvency risk per quantity."""
    from flopledger.fleet.procure import plan_procurement_from_file
    from flopledger.fleet.procure_chart import write_procurement_charts

    plan = plan_procurement_from_file(spec)
    sections: dict[str, Any] = {
        "recommendation": dataclasses.asdict(plan.recommendation),
        "curve": _records(plan.curve),
    }
    if chart is not None:
        png, html = write_procurement_charts(plan, chart)
        sections["recommendation"].update(chart_png=str(png), chart_html=str(html))
    _render_sections(sections, fmt)


@app.command("economics")
def economics_cmd(spec: SpecArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Unit economics by year: revenue, inference cost, margin, development, break-even year."""
    from flopledger.fleet.economics import project_economics_from_file

    outlook = project_economics_from_file(spec)
    _render_sections({"summary": dataclasses.asdict(outlook.summary), "years": _records(outlook.years)}, fmt)


def _tokens_option(name: str, what: str) -> Any:
    return typer.Option(name, help=f"{what} tokens a month (instead of --db).", show_default=False)


def _price_option(name: str, what: str) -> Any:
    return typer.Option(
        name, help=f"Vendor price of {what}, $/Mtok (default: the ledger's rates).", show_default=False
    )


@app.command("build-vs-buy")
def build_vs_buy_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="In-house model (see `serving models`).")],
    accelerator: Annotated[str, typer.Option("--accelerator", "-a", help="Accelerator id to serve on.")],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="Ledger to read monthly tokens and the vendor bill from.", show_default=False
        ),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="With --db: first day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="With --db: last day, inclusive.")] = None,
    input_tokens: Annotated[float | None, _tokens_option("--monthly-input-tokens", "Uncached input")] = None,
    cache_read_tokens: Annotated[float, _tokens_option("--monthly-cache-read-tokens", "Cache-read")] = 0.0,
    cache_write_tokens: Annotated[float, _tokens_option("--monthly-cache-write-tokens", "Cache-write")] = 0.0,
    output_tokens: Annotated[float | None, _tokens_option("--monthly-output-tokens", "Output")] = None,
    requests: Annotated[
        float | None,
        typer.Option(
            "--monthly-requests",
            help="Requests a month (sets the request shape; default 500 output each).",
            show_default=False,
        ),
    ] = None,
    price_input: Annotated[float | None, _price_option("--vendor-usd-per-mtok-input", "input")] = None,
    price_read: Annotated[float | None, _price_option("--vendor-usd-per-mtok-cache-read", "reads")] = None,
    price_write: Annotated[float | None, _price_option("--vendor-usd-per-mtok-cache-write", "writes")] = None,
    price_output: Annotated[float | None, _price_option("--vendor-usd-per-mtok-output", "output")] = None,
    node_size: Annotated[int, typer.Option("--node-size", help="Accelerators per serving node.")] = 8,
    precision: Annotated[str, typer.Option("--precision", help="bf16, fp8 or fp4.")] = "fp8",
    owned: Annotated[bool, typer.Option("--owned", help="Own the accelerators (capex + energy).")] = False,
    usd_per_hour: Annotated[
        float | None,
        typer.Option(
            "--usd-per-hour", help="Price per accelerator-hour (default: catalog).", show_default=False
        ),
    ] = None,
    life_years: Annotated[float, typer.Option("--life-years", help="Owned accelerator life.")] = 4.0,
    utilization: Annotated[float, typer.Option("--utilization", help="Average load, 0-1.")] = 0.6,
    usd_per_kwh: Annotated[float, typer.Option("--usd-per-kwh", help="Electricity (owned).")] = 0.08,
    cache_share: Annotated[
        float,
        typer.Option("--cache-read-compute-share", help="Share of cache reads prefilled again in house."),
    ] = 0.1,
    development_usd: Annotated[
        float, typer.Option("--development-usd", help="One-off cost of building the model.")
    ] = 0.0,
    amortization_months: Annotated[
        float, typer.Option("--amortization-months", help="Months the model stays in service.")
    ] = 24.0,
    operations_usd: Annotated[
        float, typer.Option("--operations-usd-per-month", help="Fixed serving operations cost a month.")
    ] = 0.0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Vendor prices against self-hosting plus amortised development; the break-even volume."""
    from flopledger.fleet.build_vs_buy import Development, SelfHosting, compare_build_vs_buy
    from flopledger.fleet.ledger_volume import MonthlyVolume, VendorPrices, monthly_volume_from_ledger

    if db is not None and (input_tokens is not None or output_tokens is not None):
        raise InputError("give the monthly tokens or --db, not both", field="--db")
    if db is not None:
        last = _date(until, "--until")
        volume = monthly_volume_from_ledger(
            db, since=_date(since, "--since"), until=last + dt.timedelta(days=1) if last else None
        )
    elif input_tokens is None or output_tokens is None:
        raise InputError(
            "give --db LEDGER, or --monthly-input-tokens and --monthly-output-tokens",
            field="--monthly-input-tokens",
        )
    else:
        volume = MonthlyVolume(
            input_tokens,
            cache_read_tokens,
            cache_write_tokens,
            output_tokens,
            requests,
            None,
            None,
            "given on the command line",
        )
    prices = None
    if any(p is not None for p in (price_input, price_read, price_write, price_output)):
        prices = VendorPrices.from_rates(
            price_input, price_output, cache_read=price_read, cache_write=price_write
        )
    host = SelfHosting(
        model=model,
        accelerator=accelerator,
        node_size=node_size,
        precision=precision,
        owned=owned,
        usd_per_accelerator_hour=usd_per_hour,
        life_years=life_years,
        utilization=utilization,
        usd_per_kwh=usd_per_kwh,
        cache_read_compute_share=cache_share,
        operations_usd_per_month=operations_usd,
    )
    result = compare_build_vs_buy(volume, prices, host, Development(development_usd, amortization_months))
    _render_sections(
        {
            "summary": result.summary(),
            "volume_curve": _records(result.curve),
            "assumptions": result.assumptions,
        },
        fmt,
    )


def _date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"not a date: {value!r}; use YYYY-MM-DD", field=flag) from None
