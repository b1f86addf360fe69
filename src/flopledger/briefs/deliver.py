"""Delivery: a chat-compatible webhook post and an email with HTML and a plain-text alternative.

The webhook body is ``{"text": <markdown>, "blocks": [...]}``: chat tools that take a plain
``text`` field show the Markdown; those that take blocks get a header, one section per insight and
a link button each. Neither channel retries: a failure is reported (and becomes a non-zero exit
code in the CLI) so the scheduler can retry the whole brief.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from flopledger.briefs.figures import usd
from flopledger.briefs.model import Brief
from flopledger.briefs.render import render_html, render_markdown, title_of
from flopledger.errors import InputError

__all__ = [
    "Delivery",
    "SmtpTarget",
    "email_message",
    "parse_smtp",
    "post_webhook",
    "send_email",
    "webhook_payload",
]

TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery: ``ok`` and, when it failed, why."""

    channel: str  # webhook or email
    target: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    to: tuple[str, ...]
    sender: str = "flopledger@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def parse_smtp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` to its parts; a missing or bad port is an :class:`InputError`."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--smtp expects HOST:PORT, got {value!r}", field="--smtp")
    return host, int(port)


def webhook_payload(brief: Brief) -> dict[str, Any]:
    """The chat payload: Markdown ``text`` plus blocks for tools that render them."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title_of(brief)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{brief.headline}*"}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{k.label}: *{k.text}*"} for k in brief.key_numbers][
                :10
            ],
        },
    ]
    for n, i in enumerate(brief.insights, 1):
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{n}. {i.title}*\n{i.body}\n*Impact:* {usd(i.impact_usd_per_month)} a month\n"
                    f"*Action:* {i.action}",
                },
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Evidence"},
                    "url": brief.link(i),
                },
            }
        )
    return {"text": render_markdown(brief), "blocks": blocks, "brief": brief.as_dict()}


def post_webhook(brief: Brief, url: str) -> Delivery:
    """POST the payload as JSON; any 2xx answer is success."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--webhook expects an http(s) URL, got {url!r}", field="--webhook")
    body = json.dumps(webhook_payload(brief)).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "flopledger"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", url, False, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Delivery("webhook", url, False, f"cannot reach the webhook: {reason}")
    return Delivery("webhook", url, 200 <= status < 300, f"HTTP {status}")


def email_message(brief: Brief, target: SmtpTarget) -> EmailMessage:
    """The email: the Markdown as text/plain and the HTML brief as the alternative."""
    msg = EmailMessage()
    msg["Subject"] = f"{title_of(brief)}: {brief.headline}"[:200]
    msg["From"] = target.sender
    msg["To"] = ", ".join(target.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="flopledger.local")
    msg.set_content(render_markdown(brief))
    msg.add_alternative(render_html(brief), subtype="html")
    return msg


def send_email(brief: Brief, target: SmtpTarget) -> Delivery:
    """Send through the SMTP server; every refused recipient or server error is a failed delivery."""
    where = f"{target.host}:{target.port}"
    if not target.to:
        raise InputError("--smtp needs at least one --to address", field="--to")
    try:
        with smtplib.SMTP(target.host, target.port, timeout=TIMEOUT_S) as smtp:
            if target.starttls:
                smtp.starttls()
            if target.username:
                smtp.login(target.username, target.password or "")
            refused = smtp.send_message(email_message(brief, target))
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        return Delivery("email", where, False, f"SMTP {where}: {exc}")
    if refused:
        return Delivery("email", where, False, f"refused recipients: {', '.join(sorted(refused))}")
    return Delivery("email", where, True, f"sent to {', '.join(target.to)}")
