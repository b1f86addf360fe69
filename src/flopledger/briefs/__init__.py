"""Briefs layer: what to tell a person today, the top insights with their impact and an action.

>>> from flopledger.briefs import window_for
>>> window_for("day", __import__("datetime").date(2026, 3, 15)).previous_end.isoformat()
'2026-03-08'
"""

from __future__ import annotations

from flopledger.briefs.compose import BriefInputs, build_brief, rank
from flopledger.briefs.deliver import (
    Delivery,
    SmtpTarget,
    parse_smtp,
    post_webhook,
    send_email,
    webhook_payload,
)
from flopledger.briefs.history import MATERIAL_CHANGE, is_material, record_sent
from flopledger.briefs.model import Brief, BriefWindow, Insight, KeyNumber, Suppressed, window_for
from flopledger.briefs.render import render, render_html, render_json, render_markdown
from flopledger.briefs.run import (
    EXIT_ALL_DELIVERIES_FAILED,
    EXIT_EMAIL_FAILED,
    EXIT_OK,
    EXIT_WEBHOOK_FAILED,
    BriefRun,
    run_brief,
)

__all__ = [
    "EXIT_ALL_DELIVERIES_FAILED",
    "EXIT_EMAIL_FAILED",
    "EXIT_OK",
    "EXIT_WEBHOOK_FAILED",
    "MATERIAL_CHANGE",
    "Brief",
    "BriefInputs",
    "BriefRun",
    "BriefWindow",
    "Delivery",
    "Insight",
    "KeyNumber",
    "SmtpTarget",
    "Suppressed",
    "build_brief",
    "is_material",
    "parse_smtp",
    "post_webhook",
    "rank",
    "record_sent",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "run_brief",
    "send_email",
    "webhook_payload",
    "window_for",
]
