"""Small inline SVG charts for the HTML brief: no script, no fonts to fetch, no internet.

>>> bar_chart([("a", 1.0), ("b", 2.0)]).startswith("<svg")
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from html import escape

__all__ = ["bar_chart", "spend_sparkline"]

_INK = "#2b6cb0"
_MUTED = "#a0aec0"


def bar_chart(
    bars: Sequence[tuple[str, float]], *, width: int = 320, fmt: Callable[[float], str] | None = None
) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest magnitude; the last is highlighted."""
    if not bars:
        return ""
    row_h, label_w = 20, 130
    height = row_h * len(bars) + 4
    top = max(abs(v) for _, v in bars) or 1.0
    show = fmt or (lambda v: f"{v:,.4g}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'viewBox="0 0 {width} {height}" style="font:11px sans-serif">'
    ]
    span = width - label_w - 70
    for i, (label, value) in enumerate(bars):
        y = 2 + i * row_h
        w = max(1.0, span * abs(value) / top)
        colour = _INK if i == len(bars) - 1 else _MUTED
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 13}" text-anchor="end">{escape(label[:22])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{escape(show(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def spend_sparkline(days: Sequence[tuple[dt.date, float]], *, width: int = 560, height: int = 70) -> str:
    """Daily spend as columns, the last day highlighted, with the first and last dates under it."""
    if not days:
        return ""
    top = max(v for _, v in days) or 1.0
    plot_h = height - 16
    step = width / len(days)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'viewBox="0 0 {width} {height}" style="font:10px sans-serif">',
        f"<title>Daily spend, {days[0][0].isoformat()} to {days[-1][0].isoformat()}</title>",
    ]
    for i, (day, value) in enumerate(days):
        h = plot_h * value / top
        colour = _INK if i == len(days) - 1 else _MUTED
        parts.append(
            f'<rect x="{i * step + 1:.1f}" y="{plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{day.isoformat()}: ${value:,.2f}</title></rect>'
        )
    parts.append(f'<text x="0" y="{height - 3}">{days[0][0].isoformat()}</text>')
    parts.append(f'<text x="{width}" y="{height - 3}" text-anchor="end">{days[-1][0].isoformat()}</text>')
    parts.append("</svg>")
    return "".join(parts)
