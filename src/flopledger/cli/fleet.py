"""`flopledger fleet ...` commands: parse, call the library, render."""

from __future__ import annotations

import dataclasses
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
