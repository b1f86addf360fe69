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

import functools
import json
import re
from typing import Any

__all__ = ["PROMPT_PREFIXES", "WITHHELD", "prompt_key_pattern", "redact_prompts"]

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
PROMPT_PREFIXES: tuple[str, ...] = (
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


def _patterns(extra: tuple[str, ...]) -> tuple[str, str]:
    keys = [*(re.escape(k) for k in (*_KEYS, *extra)), *(re.escape(p) + r'[^"]*' for p in PROMPT_PREFIXES)]
    names = "|".join(keys)
    key_re = r'"(?:' + names + r')"\s*:\s*'
    attribute_re = r'"key"\s*:\s*"(?:' + names + r')"\s*,\s*"value"\s*:\s*'  # an OTLP {key, value}
    return key_re, attribute_re


@functools.lru_cache(maxsize=16)
def _compiled(extra: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The key and attribute patterns, compiled once per prompt column (not once per row)."""
    key_re, attribute_re = _patterns(extra)
    return re.compile(key_re), re.compile(attribute_re)


def prompt_key_pattern(extra: tuple[str, ...] = ()) -> str:
    """A JSON key (or OTLP attribute) that may carry prompt or completion text, as a regex (for a cheap
    SQL pre-filter of the rows to redact); ``extra``: the input's own prompt column (``--map``)."""
    return "|".join(_patterns(extra))


_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*|\s*(true|false|null|none|)\s*", re.I)
_SHORTEST_REPLACED = 8
"""A prompt shorter than this is withheld by its key only: replacing it everywhere would eat other text."""


def _is_prompt_key(key: str, extra: tuple[str, ...]) -> bool:
    return key in _KEYS or key in extra or key.startswith(PROMPT_PREFIXES)


def _is_text(value: Any) -> bool:
    """Whether a value may be prompt text: counts, flags and empty values (CSV cells are text) are kept."""
    if isinstance(value, str):
        return _NUMBER.fullmatch(value) is None
    return isinstance(value, list | dict)


def _walk(value: Any, extra: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        key = value.get("key")
        if isinstance(key, str) and "value" in value and _is_prompt_key(key, extra):
            return {**value, "value": {"stringValue": WITHHELD}}
        return {
            k: WITHHELD if _is_prompt_key(k, extra) and _is_text(v) else _walk(v, extra)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_walk(v, extra) for v in value]
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


def _cut(text: str, extra: tuple[str, ...]) -> str:
    """Each prompt key's value in broken JSON replaced; one that never ends takes the rest of the text."""
    key, attribute = _compiled(extra)
    out: list[str] = []
    pos = 0
    while True:
        found = [m for m in (key.search(text, pos), attribute.search(text, pos)) if m is not None]
        if not found:
            out.append(text[pos:])
            return "".join(out)
        match = min(found, key=lambda m: m.start())
        start = match.end()
        end = _value_end(text, start)
        if end == start or (end is not None and not _is_text(_string_at(text, start, end))):  # not text
            out.append(text[pos:start])
            pos = start
            continue
        out.append(text[pos:start] + json.dumps(WITHHELD))
        if end is None:
            return "".join(out)
        pos = end


def _string_at(text: str, start: int, end: int) -> Any:
    try:
        return json.loads(text[start:end])
    except json.JSONDecodeError:
        return text[start:end]


def redact_prompts(raw: str, prompt: str | None, prompt_keys: tuple[str, ...] = ()) -> str:
    """``raw`` with its prompt and completion text withheld (see the module's description).

    ``prompt_keys``: names the input gives its prompt under besides the usual ones (a ``--map``).
    """
    if prompt and len(prompt) >= _SHORTEST_REPLACED:  # the row's own prompt, under any name, escaped
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
        return _cut(raw, prompt_keys)
    if not isinstance(value, dict | list):
        return raw
    return json.dumps(_walk(value, prompt_keys), separators=(",", ":"), ensure_ascii=False)
