"""The format registry and the staged row every format produces."""

from __future__ import annotations

import decimal
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from flopledger.errors import InputError, UnknownNameError

__all__ = [
    "COUNT_SCALE",
    "EXACT_DOUBLE",
    "FORMATS",
    "MAX_COUNT",
    "STAGE_COLUMNS",
    "TIER_ALIASES",
    "BadCount",
    "InputFormat",
    "JsonLineError",
    "RecordFormat",
    "StagedRow",
    "array_item_lines",
    "canonical_tier",
    "detect_format",
    "get_format",
    "is_record_array",
    "json_array_hint",
    "register",
    "whole_count",
]

STAGE_COLUMNS: tuple[str, ...] = (
    "ts",
    "request_id",
    "provider",
    "model",
    "org",
    "project",
    "team",
    "user",
    "api_key",
    "service_tier",
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_search_requests",
    "min_request_input_tokens",
    "max_request_input_tokens",
    "tags",
    "prompt",
)
"""Canonical fields as staged (text, validated and cast in SQL afterwards)."""


@dataclass
class StagedRow:
    """One record of a source, as canonical text fields, before validation.

    ``source_id`` is the source's own unique id (request id, span id) or None; ``error`` marks a
    record the parser already knows is bad (then ``error_field`` names the field).
    """

    line: int
    raw: str
    values: dict[str, Any] = field(default_factory=dict)
    source_id: str | None = None
    error: str | None = None
    error_field: str | None = None


TIER_ALIASES = {
    # Every format's names for the four canonical tiers: OpenAI's default/auto/scale, Anthropic's
    # on-demand priority and discounted flex, OpenTelemetry's on_demand. Read lower case, trimmed.
    "": "standard",
    "standard": "standard",
    "default": "standard",
    "auto": "standard",
    "on_demand": "standard",
    "batch": "batch",
    "priority": "priority",
    "scale": "priority",
    "priority_on_demand": "priority",
    "flex": "flex",
    "flex_discount": "flex",
}
"""Every format's names for the canonical service tiers, read lower case and trimmed."""


def canonical_tier(value: Any) -> str:
    """A source's service tier as a canonical one; absent is standard, any other name is kept in
    lower case (validation trims it, reads the aliases again and quarantines an unknown one). The
    staged text is part of a content-hashed event id: for the tier names each format used to map
    it is what earlier versions staged (``tests/ledger/formats/event_ids.json`` pins the samples); a
    name only the shared table maps (Anthropic's ``scale``, OpenAI's ``Scale`` in capitals) stages
    as its canonical tier, so a row of a span or report without an id carrying one gets a new id.

    >>> canonical_tier("scale"), canonical_tier(None), canonical_tier("Batch")
    ('priority', 'standard', 'batch')
    """
    if value is None or value == "":
        return "standard"
    name = str(value).lower()
    return TIER_ALIASES.get(name, name)


MAX_COUNT = 10**16
"""The largest count one row may carry: ten quadrillion, beyond any organisation's day of tokens
(a larger number is a unit or export error), and small enough that sums of many rows stay exact
in BIGINT."""

COUNT_SCALE = 18
"""Decimal places to which text beyond 2**53 is read: ``DECIMAL(38, 18)`` holds every count to MAX_COUNT."""


EXACT_DOUBLE = float(2**53)
"""From here on a double no longer holds every whole number: such text is read exactly."""

_DECIMAL = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)
_SCALE = decimal.Decimal(1).scaleb(-COUNT_SCALE)


def _exact_count(text: str, field: str, value: Any) -> int:
    """A decimal text beyond 2**53 read exactly, to ``COUNT_SCALE`` places (as SQL's DECIMAL does)."""
    number = decimal.Decimal(text).quantize(_SCALE, context=_DECIMAL)
    if number != number.to_integral_value():
        raise BadCount(field, value)
    return int(number)


class BadCount(ValueError):
    """A token count that is not a whole, non-negative number, or is more than :data:`MAX_COUNT`;
    ``field`` names the source's field."""

    def __init__(self, field: str, value: Any, *, too_large: bool = False) -> None:
        what = (
            f"is more than {MAX_COUNT:,}, the most one row may count"
            if too_large
            else "is not a whole, non-negative number of tokens"
        )
        super().__init__(f"{field} {value!r} {what}")
        self.field = field


ROUNDED_FRACTION = r"^[^eE]*\.[0-9]*[1-9][^eE]*$"
"""Text of a number with a fraction and no exponent: a count only if a double rounded it whole."""
TOO_SMALL = r"[1-9][^eE]*[eE]"
"""Text of a number with an exponent whose digits are not all 0: no count where a double reads 0."""


def whole_count(value: Any, field: str) -> int:
    """A source's token count as an int, by the rule validation applies to every format.

    Absent (None or blank) is 0. A whole, non-negative, finite number is a count, written as an int,
    a float (``12.0``) or text (``"12"``, ``"12.0"``, ``"1e3"``); anything else (a fraction, a
    negative, a boolean, other text, beyond MAX_COUNT) raises :class:`BadCount`.

    >>> whole_count("12.0", "input_tokens"), whole_count(None, "input_tokens")
    (12, 0)
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadCount(field, value)
    number: int | float
    if isinstance(value, str):
        text = value.strip()
        # int() would read other scripts' digits, and digits grouped by underscores; SQL does not
        # read either reliably, so neither is a count.
        if not text.isascii() or "_" in text:
            raise BadCount(field, value)
        try:
            number = int(text)  # exact for long digit strings
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise BadCount(field, value) from None
            # judged on the text where a double would round it: a fraction ('4.9999999999999999'
            # reads 5.0) or a number too small for one ('1e-400' reads 0), as validation does
            if re.search(ROUNDED_FRACTION, text) or (number == 0 and re.search(TOO_SMALL, text)):
                raise BadCount(field, value) from None
            if math.isfinite(number) and EXACT_DOUBLE <= abs(number) <= 10**20:
                number = _exact_count(text, field, value)
    else:
        number = value
    if isinstance(number, float):
        if not number.is_integer():  # also NaN and infinity
            raise BadCount(field, value)
        number = int(number)
    if number < 0:
        raise BadCount(field, value)
    if number > MAX_COUNT:
        raise BadCount(field, value, too_large=True)
    return number


class InputFormat:
    """Base of every input format. Subclasses set ``name`` and ``description``."""

    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str] = "records"  # "records" (parsed in Python) or "table" (read by DuckDB)

    def sniff(self, path: Path, head: str) -> bool:
        """Whether a file whose first characters are ``head`` is certainly of this format."""
        return False


class RecordFormat(InputFormat):
    """A format parsed in Python into :class:`StagedRow` records."""

    def rows(self, path: Path) -> Iterator[StagedRow]:
        raise NotImplementedError


FORMATS: dict[str, InputFormat] = {}


def register(cls: type[InputFormat]) -> type[InputFormat]:
    FORMATS[cls.name] = cls()
    return cls


def get_format(name: str) -> InputFormat:
    if name not in FORMATS:
        raise UnknownNameError("input format", name, list(FORMATS))
    return FORMATS[name]


_COST_PAGE = re.compile(
    r'^\s*\[?\s*\{[^{}\[\]]*"data"\s*:\s*\[\s*\{[^\[\]]*?"results"\s*:\s*\[\s*\{[^{}]*?'
    r'("organization\.costs\.result"|"cost_type"\s*:|"amount"\s*:\s*("-?[0-9]|\{))'
)
"""The head of a cost report page too long to decode whole: its first bucket's first result."""


def _is_cost_report(head: str) -> bool:
    """Whether the file's first page is a vendor's cost report (OpenAI's costs, Anthropic's
    cost_report): buckets of results with amounts, not token counts."""
    value = first_json_value(head)
    page = value[0] if isinstance(value, list) and value else value
    if isinstance(page, dict) and isinstance(page.get("data"), list):
        for bucket in page["data"][:1]:
            results = bucket.get("results") if isinstance(bucket, dict) else None
            first = results[0] if isinstance(results, list) and results else None
            if isinstance(first, dict):
                return (
                    first.get("object") == "organization.costs.result"
                    or "cost_type" in first
                    or isinstance(first.get("amount"), str | dict)
                )
        return False
    return bool(_COST_PAGE.search(head[:20_000]))


_RECORD_ARRAY = re.compile(r"\s*\[\s*\{")


def is_record_array(head: str) -> bool:
    """Whether a file's head starts one JSON array of records (`jq -s`, an API's list)."""
    return _RECORD_ARRAY.match(head) is not None


def json_array_hint(path: Path) -> str:
    """What to say of a file that is one JSON array of records, read as a table."""
    lines = f"{path.stem}.jsonl" if path.suffix.lower() != ".jsonl" else f"{path.stem}-lines.jsonl"
    return (
        "the file is one JSON array of records, not JSON Lines (one object per line): write its records "
        f"one per line (`jq -c '.[]' {path.name} > {lines}`) and ingest that"
    )


def detect_format(path: Path) -> InputFormat:
    """The format of ``path`` when its extension and first records make it unambiguous."""
    try:
        with path.open("rb") as fh:
            head_bytes = fh.read(65_536)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", path=str(path)) from exc
    if head_bytes.startswith(b"PAR1"):
        return FORMATS["parquet"]
    head = head_bytes.decode("utf-8", errors="replace").removeprefix("\ufeff")  # a byte-order mark
    if _is_cost_report(head):
        raise InputError(
            "this is a cost report (amounts billed, not tokens used): compare it with the ledger by "
            "`flopledger reconcile FILE`, and ingest the usage report of the same days (if it is usage "
            "after all, name its format with --format)",
            path=str(path),
        )
    matches = [f for f in FORMATS.values() if f.sniff(path, head)]
    specific = [f for f in matches if f.kind == "records"]
    if specific:  # a vendor format that recognises the file beats a generic table reader
        matches = specific
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(sorted(FORMATS))
    if not matches:
        if is_record_array(head):
            raise InputError(json_array_hint(path), path=str(path))
        raise InputError(
            f"cannot tell the format of this file; pass --format (one of: {names})", path=str(path)
        )
    found = ", ".join(sorted(f.name for f in matches))
    raise InputError(f"this file could be any of {found}; pass --format to choose", path=str(path))


def first_json_value(head: str) -> Any:
    """The first JSON value of a document or JSONL file, from its first characters (or None)."""
    text = head.lstrip()
    if not text:
        return None
    first_line = text.split("\n", 1)[0]
    for candidate in (first_line, text):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return _partial_keys(text)
    return value


def _partial_keys(text: str) -> dict[str, Any] | list[Any] | None:
    """Top-level keys of a JSON document too long to decode from its head (a cheap scan)."""
    keys = re.findall(r'"([A-Za-z_][A-Za-z0-9_.]*)"\s*:', text[:20_000])
    if not keys:
        return None
    marker: dict[str, Any] = {k: None for k in keys}
    return [marker] if text.startswith("[") else marker


class JsonLineError(InputError):
    """A JSONL line that is not valid JSON; keeps the line's text so the quarantine loses nothing."""

    def __init__(self, reason: str, *, text: str, path: str, line: int) -> None:
        self.reason = reason
        self.text = text
        super().__init__(reason, path=path, line=line)

    def staged(self) -> StagedRow:
        """The quarantine-bound row of this line."""
        return StagedRow(line=self.line or 0, raw=self.text, error=self.reason)


def iter_json_documents(path: Path) -> Iterator[tuple[int, Any]]:
    """Each JSON document of ``path``: the whole file, or one per line (JSONL). Yields (line, value).

    A JSONL line that is not valid JSON yields ``(line, JsonLineError)`` so the caller can quarantine it.
    """
    text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: without a byte-order mark
    stripped = text.strip()
    if not stripped:
        return
    try:
        yield 1, json.loads(stripped)
        return
    except (json.JSONDecodeError, RecursionError):  # JSONL, or a line of it too deep: read by line
        pass
    if _pretty_printed(stripped):
        yield from _json_documents(text, path)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except RecursionError:
            yield (
                number,
                JsonLineError(
                    "not a usage record: it nests too deeply", text=line, path=str(path), line=number
                ),
            )
        except json.JSONDecodeError as exc:
            where = "column" if exc.msg.endswith(" at") else "at column"  # "string starting at"
            reason = f"not valid JSON: {exc.msg} {where} {exc.colno}"
            yield number, JsonLineError(reason, text=line, path=str(path), line=number)


def _pretty_printed(text: str) -> bool:
    """Whether ``text`` (stripped) starts as a pretty-printed JSON document, not as JSON Lines: its
    first line opens an object or array (``{``, ``[``, ``[ {``) and its next is no JSON value of its
    own (a JSON Lines file whose first line is a stray brace goes on with whole records)."""
    first, _, rest = text.partition("\n")
    if first.strip().replace(" ", "") not in ("{", "[", "[{"):
        return False
    found = re.search(r"\S", rest)  # the next line with anything on it, the text not copied
    if found is None:
        return True
    end = rest.find("\n", found.start())
    second = rest[found.start() : end if end >= 0 else len(rest)]
    try:
        return not isinstance(json.loads(second), dict | list)
    except (json.JSONDecodeError, RecursionError):
        return True


def _json_documents(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """Each of the pretty-printed JSON documents ``text`` holds one after another (``jq . a.json
    b.json``), with the line it starts on. One that is cut short or damaged fails the file: its
    lines are no records to quarantine one by one."""
    decoder = json.JSONDecoder()
    at = _skip_space(text, 0)
    line, counted = 1, 0  # the line of character ``counted``: newlines are counted once
    while at < len(text):
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg.removesuffix(' at')}): "
                "the file is cut short or damaged; download or export it again",
                path=str(path),
            ) from exc
        except RecursionError as exc:
            raise InputError("a JSON document nests too deeply to read", path=str(path)) from exc
        line += text.count("\n", counted, at)
        counted = at
        yield line, value
        at = _skip_space(text, end)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def array_item_lines(text: str, key: str | None = None, start: int = 0) -> list[int] | None:
    """The line each item of a JSON document's array starts on: the document itself, or its member
    ``key`` (an object's ``data``); None when the document is not shaped so. The document starts at
    character ``start`` of ``text`` (one of several, one after another)."""
    decoder = json.JSONDecoder()
    at = _skip_space(text, start)
    try:
        if key is not None:  # walk the object's members to the array
            if text[at : at + 1] != "{":
                return None
            at = _skip_space(text, at + 1)
            while text[at : at + 1] == '"':
                name, at = decoder.raw_decode(text, at)
                at = _skip_space(text, at)
                if text[at : at + 1] != ":":
                    return None
                at = _skip_space(text, at + 1)
                if name == key:
                    break
                _, at = decoder.raw_decode(text, at)
                at = _skip_space(text, at)
                if text[at : at + 1] == ",":
                    at = _skip_space(text, at + 1)
            else:
                return None
        if text[at : at + 1] != "[":
            return None
        lines, line, counted = [], 1, 0
        at = _skip_space(text, at + 1)
        while at < len(text) and text[at] != "]":
            line += text.count("\n", counted, at)
            counted = at
            lines.append(line)
            _, at = decoder.raw_decode(text, at)
            at = _skip_space(text, at)
            if text[at : at + 1] == ",":
                at = _skip_space(text, at + 1)
        return lines
    except (json.JSONDecodeError, IndexError):
        return None


ReportRow = Callable[[int, str, dict[str, Any], Any], StagedRow]
"""Makes one staged row from (line, where in the document, bucket, result)."""


def iter_report_results(path: Path, make_row: ReportRow) -> Iterator[StagedRow]:
    """Rows of a vendor usage report: pages (one, a list, or one per line) -> ``data`` buckets -> ``results``.

    The Anthropic and OpenAI usage APIs share this shape; a page or bucket of the wrong shape is one
    quarantined row, and each result is turned into a row by ``make_row``.
    """
    for line, doc in iter_json_documents(path):
        if isinstance(doc, JsonLineError):
            yield doc.staged()
            continue
        for p, page in enumerate(doc if isinstance(doc, list) else [doc]):
            buckets = page.get("data") if isinstance(page, dict) else None
            if not isinstance(buckets, list):
                yield StagedRow(
                    line=line,
                    raw=compact(page)[:2000],
                    error="a page without a 'data' list",
                    error_field="data",
                )
                continue
            for b, bucket in enumerate(buckets):
                results = bucket.get("results") if isinstance(bucket, dict) else None
                if not isinstance(results, list):
                    yield StagedRow(
                        line=line,
                        raw=compact(bucket)[:2000],
                        error_field="results",
                        error=f"bucket data[{b}] has no 'results' list",
                    )
                    continue
                for r, result in enumerate(results):
                    yield make_row(line, f"page {p} data[{b}].results[{r}]", bucket, result)


REPORT_FORMATS = ("anthropic", "openai")
"""The formats of paged usage-API reports (``has_more`` and ``next_page`` on each page)."""


@dataclass(frozen=True)
class ReportPage:
    """What a paged usage report's page says of the pages after it, and where its buckets start and end
    (ISO text or Unix seconds, as the vendor gives them)."""

    has_more: bool
    next_page: str | None
    last_start: str | int | None  # its latest bucket's start
    first_start: str | int | None = None  # its earliest bucket's start
    last_end: str | int | None = None  # its latest bucket's end
    unreadable: bool = False  # a line of the file that is no JSON (quarantined): what it held is not known


def _bound(bucket: Any, *names: str) -> Any:
    if not isinstance(bucket, dict):
        return None
    value = next((bucket[n] for n in names if n in bucket), None)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def report_page(page: Mapping[str, Any]) -> ReportPage:
    """What one page of a paged report (usage or cost) says of the pages after it."""
    data = page.get("data")
    buckets = [
        (start, _bound(b, "ending_at", "end_time"))
        for b in (data if isinstance(data, list) else ())
        if (start := _bound(b, "starting_at", "start_time")) is not None
    ]
    kind = type(buckets[0][0]) if buckets else None
    same = [(start, end) for start, end in buckets if type(start) is kind]  # one vendor's kind of time
    latest = max(same, key=lambda b: b[0], default=(None, None))
    cursor = page.get("next_page")
    return ReportPage(
        page.get("has_more") is True,
        str(cursor) if cursor else None,
        latest[0],
        min((start for start, _ in same), default=None),
        latest[1] if type(latest[1]) is kind else None,
    )


def report_pages(path: Path) -> list[ReportPage]:
    """The pages of a usage-report file (one, a list, or one per line), in the file's order."""
    return [
        ReportPage(False, None, None, unreadable=True)
        if isinstance(doc, JsonLineError)
        else report_page(page)
        for _, doc in iter_json_documents(path)
        for page in (doc if isinstance(doc, list) else [doc])
        if isinstance(page, dict) or isinstance(doc, JsonLineError)
    ]


def unfetched_pages(files: Mapping[Path, list[ReportPage]]) -> dict[Path, ReportPage]:
    """The files whose report stops short of its last page: a page says ``has_more`` and no page of
    the run goes on from it; of each file, its last such page. A page goes on from one that says
    more follow when its first bucket starts where that one's last bucket starts (its results go on)
    or ends, or between, and it reaches later (or as far, read after it: another file, or later in
    the file). Pages may come in any order. A report of later days does not go on from it, nor the
    page itself downloaded twice into one file; a line after it that is no JSON (quarantined) may."""
    every = [(path, i, p) for path, pages in files.items() for i, p in enumerate(pages)]

    def goes_on(page: ReportPage, q: ReportPage) -> bool:
        start, first = page.last_start, q.first_start
        end = page.last_end if page.last_end is not None else start
        if start is None or first is None or not type(start) is type(first) is type(end):
            return False
        return bool(start <= first <= end)  # type: ignore[operator]

    def after(page: ReportPage, q: ReportPage, later: bool) -> bool:
        """Whether ``q`` can come after ``page``: it reaches later, or as far and is read later."""
        if type(q.last_start) is not type(page.last_start):
            return False
        return bool(q.last_start > page.last_start or (later and q.last_start == page.last_start))  # type: ignore[operator]

    def answered(path: Path, i: int, page: ReportPage) -> bool:
        return any(
            (q.unreadable and other == path and j > i)  # the next page may be a line that is no JSON
            or (goes_on(page, q) and after(page, q, other != path or j > i))
            for other, j, q in every
            if (other, j) != (path, i)
        )

    short: dict[Path, ReportPage] = {}
    for path, i, page in every:
        if page.has_more and not answered(path, i, page):
            short[path] = page
    return short


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
