"""Prompt text withheld from the raw text of a quarantined row.

A bad row is kept as read so nothing is lost, but the ledger never stores prompt (or completion)
text unless ingest is told to keep prompts. The raw text may be valid JSON (the values under prompt
keys are replaced), broken JSON (a truncated line: each prompt key's value is cut out up to where it
ends, or to the end of the text when it never does), CSV, or carry the prompt under a name only the
``--map`` knows (the row's own prompt value is replaced wherever it appears, in every escaping).

>>> redact_prompts('{"model": "m", "prompt": "K\\\\u00fcndigung", "input_tokens": 5}', None)
'{"model":"m","prompt":"[prompt withheld]","input_tokens":5}'
>>> redact_prompts('{"model": "m", "messages": [{"role": "user", "content": "secret', None)
'{"model": "m", "messages": "[prompt withheld]"'
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["PROMPT_KEY_PATTERN", "WITHHELD", "redact_prompts"]

WITHHELD = "[prompt withheld]"

_KEYS = (
    "prompt",
    "prompts",
    "messages",
    "input",
    "system",
    "content",
    "output",
    "response",
    "completion",
    "choices",
    "proxy_server_request",
    "system_instructions",
)
_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input",
    "gen_ai.output",
    "gen_ai.system_instructions",
    "llm.prompts",
    "llm.completions",
    "traceloop.entity.input",
    "traceloop.entity.output",
)
_NAMES = "|".join([*(re.escape(k) for k in _KEYS), *(re.escape(p) + r'[^"]*' for p in _PREFIXES)])
_KEY_RE = r'"(?:' + _NAMES + r')"\s*:\s*'
_ATTRIBUTE_RE = r'"key"\s*:\s*"(?:' + _NAMES + r')"\s*,\s*"value"\s*:\s*'  # an OTLP {key, value}
PROMPT_KEY_PATTERN = f"{_KEY_RE}|{_ATTRIBUTE_RE}"
"""A JSON key (or OTLP attribute) that may carry prompt or completion text, as a regex (for a cheap
SQL pre-filter of the rows to redact)."""

_KEY = re.compile(_KEY_RE)
_ATTRIBUTE = re.compile(_ATTRIBUTE_RE)


def _is_prompt_key(key: str) -> bool:
    return key in _KEYS or key.startswith(_PREFIXES)


def _is_text(value: Any) -> bool:
    return isinstance(value, str | list | dict)  # numbers and flags under such a key are kept


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("key"), str) and "value" in value and _is_prompt_key(value["key"]):
            return {**value, "value": {"stringValue": WITHHELD}}
        return {k: WITHHELD if _is_prompt_key(k) and _is_text(v) else _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value


def _value_end(text: str, start: int) -> int | None:
    """Where the JSON value starting at ``start`` ends (exclusive); None when it runs past the text."""
    if start >= len(text):
        return None
    if text[start] == '"':
        i = start + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                return i + 1
            i += 1
        return None
    if text[start] in "[{":
        depth, i, in_string = 0, start, False
        while i < len(text):
            c = text[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None
    return start  # a number or a literal: no text to withhold


def _cut(text: str) -> str:
    """Each prompt key's value in broken JSON replaced; one that never ends takes the rest of the text."""
    out: list[str] = []
    pos = 0
    while True:
        found = [m for m in (_KEY.search(text, pos), _ATTRIBUTE.search(text, pos)) if m is not None]
        if not found:
            out.append(text[pos:])
            return "".join(out)
        match = min(found, key=lambda m: m.start())
        start = match.end()
        end = _value_end(text, start)
        if end == start:  # not text
            out.append(text[pos:start])
            pos = start
            continue
        out.append(text[pos:start] + json.dumps(WITHHELD))
        if end is None:
            return "".join(out)
        pos = end


def redact_prompts(raw: str, prompt: str | None) -> str:
    """``raw`` with its prompt and completion text withheld (see the module's description)."""
    if prompt:  # the row's own prompt, under whatever name the input gave it, in each escaping
        for form in {
            prompt,
            json.dumps(prompt)[1:-1],
            json.dumps(prompt, ensure_ascii=False)[1:-1],
            prompt.replace('"', '""'),
        }:
            if form:
                raw = raw.replace(form, WITHHELD)
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return _cut(raw)
    if not isinstance(value, dict | list):
        return raw
    return json.dumps(_walk(value), separators=(",", ":"), ensure_ascii=False)
