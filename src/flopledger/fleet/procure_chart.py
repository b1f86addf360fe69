"""The procurement curve as a PNG (matplotlib) and a self-contained HTML page (inline SVG, no CDN)."""

from __future__ import annotations

import html
from pathlib import Path

from flopledger.fleet.procure import ProcurementPlan

__all__ = ["write_procurement_charts"]

_W, _H, _PAD = 760, 380, 60


def _png(plan: ProcurementPlan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = [p.quantity_units for p in plan.curve]
    rec = plan.recommendation
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    ax.plot(q, [p.expected_profit_usd / 1e9 for p in plan.curve], color="#1f77b4", label="expected profit")
    ax.set_xlabel(f"committed quantity ({rec.unit}s)")
    ax.set_ylabel("expected profit over horizon (USD bn)")
    ax.axvline(rec.newsvendor_units, color="#888888", linestyle="--", label="newsvendor quantity")
    ax.axvline(rec.recommended_units, color="#2ca02c", label="recommended")
    risk = ax.twinx()
    risk.plot(q, [p.insolvency_probability for p in plan.curve], color="#d62728", label="P(cash < 0)")
    risk.set_ylabel("probability cash goes below zero")
    risk.set_ylim(-0.02, 1.02)
    lines = ax.get_legend_handles_labels()
    more = risk.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    ax.set_title(f"{plan.name}: {plan.scenarios:,} scenarios x {plan.horizon_months} months")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _polyline(
    xs: list[float], ys: list[float], x_range: tuple[float, float], y_range: tuple[float, float], colour: str
) -> str:
    def sx(x: float) -> float:
        return _PAD + (x - x_range[0]) / ((x_range[1] - x_range[0]) or 1.0) * (_W - 2 * _PAD)

    def sy(y: float) -> float:
        return _H - _PAD - (y - y_range[0]) / ((y_range[1] - y_range[0]) or 1.0) * (_H - 2 * _PAD)

    points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'


def _html(plan: ProcurementPlan, path: Path) -> None:
    rec = plan.recommendation
    q = [p.quantity_units for p in plan.curve]
    profit = [p.expected_profit_usd / 1e9 for p in plan.curve]
    risk = [p.insolvency_probability for p in plan.curve]
    xr = (min(q), max(q))
    pr = (min(profit), max(profit))

    def vline(x: float, colour: str, dash: str) -> str:
        sx = _PAD + (x - xr[0]) / ((xr[1] - xr[0]) or 1.0) * (_W - 2 * _PAD)
        return (
            f'<line x1="{sx:.1f}" y1="{_PAD}" x2="{sx:.1f}" y2="{_H - _PAD}" stroke="{colour}" '
            f'stroke-dasharray="{dash}"/>'
        )

    rows = "".join(
        f"<tr><td>{p.quantity_units:,.0f}</td><td>{p.expected_profit_usd / 1e9:,.2f}</td>"
        f"<td>{p.insolvency_probability:.1%}</td><td>{p.expected_utilisation:.1%}</td></tr>"
        for p in plan.curve
    )
    title = html.escape(plan.name)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flopledger procurement: {title}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px;text-align:right}}</style></head>
<body><h1>Procurement: {title}</h1>
<p>{plan.scenarios:,} scenarios x {plan.horizon_months} months, seed {plan.seed}.
Critical fractile {rec.critical_fractile:.3f};
newsvendor quantity {rec.newsvendor_units:,.0f} {html.escape(rec.unit)}s
(P(cash &lt; 0) {rec.newsvendor_insolvency_probability:.1%}); <b>recommended {rec.recommended_units:,.0f}</b>
(P(cash &lt; 0) {rec.recommended_insolvency_probability:.1%}). {html.escape(rec.reason)}.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img"
 aria-label="expected profit (blue) and probability of insolvency (red) by quantity">
<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="none" stroke="#ccc"/>
{_polyline(q, profit, xr, pr, "#1f77b4")}
{_polyline(q, risk, xr, (0.0, 1.0), "#d62728")}
{vline(rec.newsvendor_units, "#888", "6,4")}
{vline(rec.recommended_units, "#2ca02c", "0")}
<text x="{_PAD}" y="{_PAD - 10}" font-size="12" fill="#1f77b4">expected profit, USD bn
 ({pr[0]:,.1f} to {pr[1]:,.1f})</text>
<text x="{_W - _PAD}" y="{_PAD - 10}" font-size="12" fill="#d62728"
 text-anchor="end">P(cash &lt; 0), 0 to 1</text>
<text x="{_W / 2}" y="{_H - 20}" font-size="12"
 text-anchor="middle">quantity ({xr[0]:,.0f} to {xr[1]:,.0f})</text>
</svg>
<table><tr><th>quantity</th><th>expected profit (USD bn)</th><th>P(cash &lt; 0)</th><th>utilisation</th></tr>
{rows}</table></body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_procurement_charts(plan: ProcurementPlan, stem: Path) -> tuple[Path, Path]:
    """Write ``STEM.png`` and ``STEM.html``; returns both paths."""
    stem = stem.with_suffix("") if stem.suffix in {".png", ".html"} else stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, page = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".html")
    _png(plan, png)
    _html(plan, page)
    return png, page
