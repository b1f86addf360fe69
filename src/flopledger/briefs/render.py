"""A brief as Markdown (reads well in a chat tool), as JSON, and as HTML with inline SVG charts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from html import escape

from flopledger.briefs.figures import pct, tokens, usd
from flopledger.briefs.model import Brief
from flopledger.briefs.svg import bar_chart, spend_sparkline
from flopledger.errors import UnknownNameError

__all__ = ["FORMATS", "render", "render_html", "render_json", "render_markdown", "title_of"]

_UNIT_FORMAT: Mapping[str, Callable[[float], str]] = {"usd": usd, "pct": pct, "count": tokens}


def title_of(brief: Brief) -> str:
    w = brief.window
    kind = "Daily" if w.period == "day" else "Weekly"
    return f"flopledger {kind.lower()} brief, {w.date.isoformat()}"


def render_markdown(brief: Brief) -> str:
    """Headline, key numbers as a list, then each insight with impact, action and evidence link."""
    lines = [f"# {title_of(brief)}", "", f"**{brief.headline}**", ""]
    lines += [f"- {k.label}: {k.text}" for k in brief.key_numbers]
    for n, i in enumerate(brief.insights, 1):
        lines += [
            "",
            f"## {n}. {i.title}",
            i.body,
            "",
            f"- **Impact:** {usd(i.impact_usd_per_month)} a month",
            f"- **Action:** {i.action}",
            f"- **Evidence:** {brief.link(i)}",
        ]
    if brief.suppressed:
        count = len(brief.suppressed)
        lines += [
            "",
            f"_{count} insight{'s' if count > 1 else ''} already sent and unchanged, not repeated._",
        ]
    return "\n".join(lines) + "\n"


def render_json(brief: Brief) -> str:
    return json.dumps(brief.as_dict(), indent=2) + "\n"


_STYLE = (
    "body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1a202c;max-width:640px;"
    "margin:16px auto;padding:0 12px}h1{font-size:18px}h2{font-size:15px;margin:18px 0 4px}"
    ".keys{border-collapse:collapse}.keys td{padding:2px 10px 2px 0}.card{border-top:1px solid #e2e8f0;"
    "padding-top:6px}.meta{color:#4a5568}a{color:#2b6cb0}"
)


def render_html(brief: Brief) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external resources."""
    keys = "".join(
        f"<tr><td>{escape(k.label)}</td><td><b>{escape(k.text)}</b></td></tr>" for k in brief.key_numbers
    )
    cards = []
    for n, i in enumerate(brief.insights, 1):
        chart = bar_chart(i.chart, fmt=_UNIT_FORMAT.get(i.chart_unit, usd))
        cards.append(
            f'<div class="card"><h2>{n}. {escape(i.title)}</h2><p>{escape(i.body)}</p>{chart}'
            f'<p class="meta"><b>Impact:</b> {escape(usd(i.impact_usd_per_month))} a month<br>'
            f"<b>Action:</b> {escape(i.action)}<br>"
            f'<a href="{escape(brief.link(i), quote=True)}">Evidence on the dashboard</a></p></div>'
        )
    held = ""
    if brief.suppressed:
        held = f'<p class="meta">{len(brief.suppressed)} already sent and unchanged, not repeated.</p>'
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title_of(brief))}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title_of(brief))}</h1>"
        f"<p><b>{escape(brief.headline)}</b></p>{spend_sparkline(brief.daily_spend)}"
        f'<table class="keys">{keys}</table>{"".join(cards)}{held}</body></html>\n'
    )


FORMATS: Mapping[str, Callable[[Brief], str]] = {
    "markdown": render_markdown,
    "html": render_html,
    "json": render_json,
}


def render(brief: Brief, fmt: str) -> str:
    """Render in the named format (markdown, html or json)."""
    renderer = FORMATS.get(fmt)
    if renderer is None:
        raise UnknownNameError("brief format", fmt, list(FORMATS))
    return renderer(brief)
