"""Validation of staged rows in SQL: types, required fields, semantics, and the stable event id.

A staged source has every canonical field as text plus ``_line``, ``_source_id`` and
``_error``/``_error_field`` (errors a parser already found). :func:`checked_sql` turns it into the
rows of the ``_checked`` table (:data:`CHECKED_DDL`): the canonical columns typed and normalised,
the first ``error`` and its ``error_field`` (NULL for a good row), and the ``event_id``. Every value
is parsed once, every check evaluated once, and a good row's raw text is never kept.
"""

from __future__ import annotations

from flopledger.catalog.overrides import NAME_WHITESPACE
from flopledger.ledger.formats.base import (
    COUNT_SCALE,
    EXACT_DOUBLE,
    MAX_COUNT,
    ROUNDED_FRACTION,
    STAGE_COLUMNS,
    TIER_ALIASES,
    TOO_SMALL,
)
from flopledger.ledger.schema import TOKEN_COLUMNS, WEB_SEARCH_CLASS

__all__ = [
    "CHECKED_COLUMNS",
    "CHECKED_DDL",
    "TIER_ALIASES",
    "WHITESPACE_SQL",
    "checked_sql",
    "repeat_id_sql",
    "searches_in_tags",
    "shown_value",
]

_INT_FIELDS = TOKEN_COLUMNS
_COUNTED = (*_INT_FIELDS, "requests", WEB_SEARCH_CLASS)
"""Every count a row may give, each checked as a whole, non-negative number."""
_NAMES = ("model", "org", "project", "team", "user", "api_key")
"""Names: stored without the whitespace around them (``web `` is team ``web``; a model name with a
stray space still finds its price), and a blank one as no name. A row's content hash, and so its
id, is of the text as the source wrote it."""

_SPACES = tuple(f"e'\\x{ord(c):02x}'" for c in NAME_WHITESPACE)
"""The whitespace a name is trimmed of, as SQL literals (DuckDB's ``trim`` alone trims spaces only)."""
WHITESPACE_SQL = " || ".join(_SPACES)
"""The same as one SQL string, for ``trim(value, WHITESPACE_SQL)``."""


def _trimmed(col: str) -> str:
    """``col`` without the whitespace around it, NULL when nothing is left. Trimming copies the
    text, so only a value that starts or ends with whitespace (or is empty) pays for it."""
    ends = " AND ".join(f'NOT suffix("{col}", {ch})' for ch in _SPACES)
    return (
        f'CASE WHEN ascii("{col}") > 32 AND {ends} THEN "{col}" '
        f"""ELSE nullif(trim("{col}", {WHITESPACE_SQL}), '') END"""
    )


CHECKED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_fidx", "INTEGER"),
    ("_line", "BIGINT"),
    ("error", "VARCHAR"),
    ("error_field", "VARCHAR"),
    ("_raw", "VARCHAR"),
    ("_source_id", "VARCHAR"),
    ("event_id", "VARCHAR"),
    ("_content_hash", "VARCHAR"),
    ("ts", "TIMESTAMP"),
    ("request_id", "VARCHAR"),
    ("provider", "VARCHAR"),
    *((c, "VARCHAR") for c in _NAMES),
    ("service_tier", "VARCHAR"),
    ("requests", "BIGINT"),
    *((c, "BIGINT") for c in _INT_FIELDS),
    ("web_search_requests", "BIGINT"),
    ("min_request_input_tokens", "BIGINT"),
    ("max_request_input_tokens", "BIGINT"),
    ("tags", "VARCHAR"),
    ("prompt", "VARCHAR"),
)
"""The checked rows: where each came from, its verdict, its id and its typed canonical values."""
CHECKED_DDL = ", ".join(f'"{name}" {kind}' for name, kind in CHECKED_COLUMNS)


def _blank(col: str) -> str:
    return f"({_trimmed(col)} IS NULL)"


_SHOWN_CHARS = 80


def _shown(col: str) -> str:
    """SQL for a value as shown inside an error message: quoted, at most 80 characters."""
    return f"'''' || left(coalesce(CAST(\"{col}\" AS VARCHAR), ''), {_SHOWN_CHARS}) || ''''"


def shown_value(value: str) -> str:
    """A value as an error message shows it (:func:`_shown`): what a message about it contains."""
    return f"'{value[:_SHOWN_CHARS]}'"


def _not_count(col: str) -> str:
    """A non-blank value that is not a whole, non-negative, finite number (parsed once as ``_d_col``)."""
    d = f'"_d_{col}"'
    return (
        f"CASE WHEN {d} IS NULL THEN NOT {_blank(col)} "
        f"ELSE NOT isfinite({d}) OR {d} < 0 OR {d} <> floor({d}) "
        # digits grouped by underscores: DuckDB reads some of them wrongly ('9_007_199' as 9)
        f"""OR contains("{col}", '_') """
        # a fraction the double rounds away ('4.9999999999999999' reads 5.0: text of 17 characters
        # or more), judged on the text; and a number too small for a double ('1e-400' reads 0). A
        # CASE, so that only those rare rows pay for the text (an OR would judge every row).
        f"""OR CASE WHEN strlen("{col}") > 16 THEN regexp_matches("{col}", '{ROUNDED_FRACTION}') """
        "ELSE false END "
        f"""OR CASE WHEN {d} = 0 AND strlen("{col}") > 1 THEN regexp_matches("{col}", '{TOO_SMALL}') """
        "ELSE false END "
        # beyond 2**53 a double is not exact: the text itself is judged, as whole_count does
        # (a CASE, so that only those rare rows pay for reading the text as a decimal; beyond
        # what the decimal holds the number is too large, judged next)
        f"OR CASE WHEN abs({d}) >= {EXACT_DOUBLE} "
        f"THEN coalesce({_exact(col)} <> floor({_exact(col)}), false) ELSE false END END"
    )


def _too_large(col: str) -> str:
    """A whole count beyond :data:`MAX_COUNT` (judged on the exact text beyond 2**53; a CASE, so
    that only those rare rows pay for reading the text as a decimal)."""
    d = f'"_d_{col}"'
    return (
        f"coalesce(CASE WHEN abs({d}) >= {EXACT_DOUBLE} "
        f"THEN coalesce({_exact(col)} > {MAX_COUNT}, {d} >= {float(MAX_COUNT)}) "
        f"ELSE {d} > {float(MAX_COUNT)} END, false)"
    )


def _exact(col: str) -> str:
    """The value read exactly as a decimal (NULL beyond it); only evaluated beyond 2**53."""
    return f'TRY_CAST("{col}" AS DECIMAL(38, {COUNT_SCALE}))'


def _count_value(col: str) -> str:
    """The count of a value that passed :func:`_not_count`, exact beyond 2**53 too (0 when blank)."""
    d = f'"_d_{col}"'
    return (
        f"coalesce(CASE WHEN abs({d}) < {EXACT_DOUBLE} THEN TRY_CAST({d} AS BIGINT) "
        f"ELSE TRY_CAST({_exact(col)} AS BIGINT) END, 0)"
    )


def _only_if(guard: str, test: str) -> str:
    """``guard AND test``, with ``test`` judged only where ``guard`` holds. DuckDB judges each side of
    an AND (and an OR) in a projection for every row; only a CASE leaves a branch unjudged, and most
    rows pass the guard by."""
    return f"CASE WHEN {guard} THEN {test} ELSE false END"


def _checks() -> list[tuple[str, str, str]]:
    """(condition, message, field) in the order they are judged; the first that holds is the error."""
    checks: list[tuple[str, str, str]] = [
        ("_error IS NOT NULL", "_error", "_error_field"),
        (_only_if("_ts IS NULL", _blank("ts")), "'ts is missing; every row needs a timestamp'", "'ts'"),
        (
            _only_if(
                "_ts IS NULL", f"TRY_CAST(ts AS DOUBLE) >= 0 AND TRY_CAST(ts AS DOUBLE) < {_EPOCH_FLOOR_S}"
            ),
            "'ts ' || " + _shown("ts") + " || ' read as Unix seconds is before 2000, so not a usage time; "
            "write dates as ISO 8601 (2026-03-02, not 20260302)'",
            "'ts'",
        ),
        (
            "_ts IS NULL",
            "'ts ' || " + _shown("ts") + " || ' is not a timestamp (use ISO 8601 or Unix seconds)'",
            "'ts'",
        ),
        ("_model IS NULL", "'model is missing; every row needs a model'", "'model'"),
        (
            # a field that parsed as a number is not blank: the text is looked at only when none did
            _only_if(
                f"coalesce({', '.join(f'_d_{c}' for c in _INT_FIELDS)}) IS NULL",
                " AND ".join(_blank(c) for c in _INT_FIELDS),
            ),
            "'no token count; every row needs at least one of the token columns'",
            "'input_tokens'",
        ),
    ]
    for c in _COUNTED:
        checks.append(
            (_not_count(c), f"'{c} ' || {_shown(c)} || ' is not a whole, non-negative number'", f"'{c}'")
        )
        checks.append(
            (
                _too_large(c),
                f"'{c} ' || {_shown(c)} || ' is more than {MAX_COUNT:,}, the most one row may count'",
                f"'{c}'",
            )
        )
    checks += [
        (
            "_tier IS NULL",
            "'service_tier ' || "
            + _shown("service_tier")
            + " || ' is not one of standard, batch, priority, flex'",
            "'service_tier'",
        ),
        (
            "_reasoning_tokens > _output_tokens",
            "'reasoning_tokens (' || _reasoning_tokens || ') exceed output_tokens (' || _output_tokens || "
            "'); output includes reasoning'",
            "'reasoning_tokens'",
        ),
        (
            "_input_tokens < 0",
            "'cache tokens exceed input tokens although the input was said to include them'",
            "'input_tokens'",
        ),
        (
            _only_if(
                f"NOT {_blank('tags')}",
                # (a CASE: json_type of text that is no JSON raises, and DuckDB judges both sides of an OR)
                "CASE WHEN json_valid(tags) THEN json_type(tags) NOT IN ('OBJECT', 'ARRAY') ELSE true END",
            ),
            "'tags must be a JSON object (or a list of labels)'",
            "'tags'",
        ),
    ]
    return checks


_EPOCH_FLOOR_S = 946_684_800
"""2000-01-01 in Unix seconds: a number read as an earlier time is no usage time (``20260302``, a
date written without dashes, would be 1970-08-23)."""

_MINUTES = r"'([T ]\d\d:\d\d)(Z|[+-]\d\d(:?\d\d)?)$'"
"""A time given to the minute with a zone (``09:00Z``, ``09:00+02:00``), which DuckDB's cast refuses."""


def _timestamp() -> str:
    """``ts`` as a UTC timestamp: Unix seconds, ms, us or ns by magnitude (from 2000 on), else ISO 8601
    (offsets honoured; a time without one is UTC, as the ledger's session time zone is; a time to the
    minute gets its seconds). The common ``...Z`` form is read directly; only other text pays for the
    general parsers."""
    d = "TRY_CAST(ts AS DOUBLE)"
    scale = f"CASE WHEN {d} > 1e17 THEN 1e-3 WHEN {d} > 1e14 THEN 1 WHEN {d} > 1e11 THEN 1e3 ELSE 1e6 END"
    zoned = f"TRY_CAST(regexp_replace(ts, {_MINUTES}, '\\1:00\\2') AS TIMESTAMPTZ)"
    general = f"CAST(timezone('UTC', coalesce(TRY_CAST(ts AS TIMESTAMPTZ), {zoned})) AS TIMESTAMP)"
    return (
        "CASE WHEN ts LIKE '%Z' THEN coalesce(TRY_CAST(ts AS TIMESTAMP), "
        f"CAST(timezone('UTC', {zoned}) AS TIMESTAMP)) "
        f"WHEN {d} >= {_EPOCH_FLOOR_S} THEN make_timestamp(TRY_CAST({d} * {scale} AS BIGINT)) "
        f"WHEN {d} IS NOT NULL THEN NULL "
        # A time of no offset or zone is read as one (UTC), never through the zoned parser: DuckDB's
        # carries a zone named in one row of a batch on to the rows after it that name none.
        f"WHEN NOT regexp_matches(ts, {_ZONED}) THEN coalesce(TRY_CAST(ts AS TIMESTAMP), {general}) "
        f"ELSE {general} END"
    )


_ZONED = r"'\d:\d\d(:\d\d)?(\.\d*)?\s*[+-]\d\d(:?\d\d){0,2}\s*$|[A-SU-Za-su-z]'"
"""A time's text that names an offset (``10:00+02:00``) or a zone (``UTC``, ``Europe/Berlin``): any
letter but the ``T`` between date and time."""


_NOT_CONTENT = ("prompt", "max_request_input_tokens", WEB_SEARCH_CLASS)
"""Left out of a row's content: the prompt, and two fields added after ids were first given, so
ids stay as they were: the upper bound of its requests' input (only a usage report's
context-window bucket sets it, and report rows have ids of their own) and its web searches (rows
alike but for them are told apart as repeats, by their place in the file)."""


def _content() -> str:
    """The row's content as the source wrote it, the id of an event without a source id (without
    :data:`_NOT_CONTENT`). A file is always read the same way, so the same rows give the same ids."""
    return "concat(" + ", '|', ".join(f'"{c}"' for c in STAGE_COLUMNS if c not in _NOT_CONTENT) + ")"


def searches_in_tags(tags: str = "tags") -> str:
    """SQL: the web searches a row's tags (the column ``tags``) hold, where flopledger kept them
    before they had a column of their own; NULL unless a whole, non-negative count."""
    value = f"TRY_CAST(json_extract_string({tags}, '$.web_search_requests') AS DOUBLE)"
    return (
        f"""CASE WHEN contains({tags}, '"web_search_requests"') AND json_valid({tags}) AND {value} >= 0 """
        f"AND {value} = floor({value}) AND {value} < 1e15 THEN CAST({value} AS BIGINT) END"
    )


def checked_sql(source: str, *, fidx: str, incl_cache: str, raw: str, excl_reasoning: str = "false") -> str:
    """SELECT over staged rows ``source`` giving the columns of :data:`CHECKED_COLUMNS`, in order.

    ``fidx``, ``incl_cache``, ``raw`` and ``excl_reasoning`` are SQL expressions over the source
    (columns or literals): the file's index, whether its input tokens include the cache (then the
    cache tokens are subtracted), the raw text kept for a bad row, and whether its output tokens
    leave the reasoning out (then it is added: output includes reasoning, as the ledger keeps it).

    A row's ``event_id`` is the source's own id with the event's time, or a hash of its normalised
    content; identical rows inside one file are told apart afterwards by :func:`repeat_id_sql`.
    """
    checks = _checks()
    which = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(checks)) + " END"
    error = "CASE _check " + " ".join(f"WHEN {i} THEN {msg}" for i, (_, msg, _) in enumerate(checks)) + " END"
    field = "CASE _check " + " ".join(f"WHEN {i} THEN {fld}" for i, (_, _, fld) in enumerate(checks)) + " END"
    numbers = ", ".join(f'TRY_CAST("{c}" AS DOUBLE) AS "_d_{c}"' for c in _COUNTED)
    tiers = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in TIER_ALIASES.items())
    ints = ", ".join(f'{_count_value(c)} AS "_{c}"' for c in _INT_FIELDS)
    minus_cache = "_input_tokens - _cache_read_tokens - _cache_write_5m_tokens - _cache_write_1h_tokens"
    # A row without a source id is its content's first occurrence in its file (later ones are
    # numbered by repeat_id_sql): the ids flopledger has always given, so a re-ingest stays idempotent.
    content_hash = f"CASE WHEN _check IS NULL AND _sid IS NULL THEN md5({_content()}) END"
    ident = (
        "CASE WHEN _check IS NOT NULL THEN NULL "
        "WHEN _sid IS NOT NULL THEN md5(concat(_sid, '|', _ts)) "
        "ELSE md5(concat(_content_hash, '|1')) END"
    )
    text = ", ".join(f'_model AS "{c}"' if c == "model" else f'{_trimmed(c)} AS "{c}"' for c in _NAMES)
    tokens = ", ".join(f'_{c} AS "{c}"' for c in _INT_FIELDS)
    tagged = f"coalesce({WEB_SEARCH_CLASS}, CAST({searches_in_tags()} AS VARCHAR))"
    return f"""
    WITH tagged AS (
        -- web searches an older flopledger kept in the tags (an export of its events ingested
        -- again): the count where the row gives none of its own
        SELECT * REPLACE ({tagged} AS {WEB_SEARCH_CLASS})
        FROM ({source})
    ), parsed AS (
        SELECT *, {numbers},
            coalesce(_source_id, nullif(trim(request_id), '')) AS _sid,
            {fidx} AS _c_fidx, {incl_cache} AS _c_incl, {excl_reasoning} AS _c_excl
        FROM tagged
    ), typed AS (
        SELECT *,
            {_timestamp()} AS _ts,
            lower({_trimmed("provider")}) AS _provider,
            {_trimmed("model")} AS _model,
            CASE WHEN service_tier IS NULL THEN 'standard'
                 WHEN service_tier IN ('standard', 'batch', 'priority', 'flex') THEN service_tier
                 ELSE CASE lower(coalesce({_trimmed("service_tier")}, '')) {tiers} END END AS _tier,
            CASE WHEN "_d_requests" IS NULL THEN 1 ELSE TRY_CAST("_d_requests" AS BIGINT) END AS _requests,
            CASE WHEN "_d_{WEB_SEARCH_CLASS}" IS NOT NULL THEN {_count_value(WEB_SEARCH_CLASS)} END
                AS _web_searches,
            TRY_CAST(min_request_input_tokens AS BIGINT) AS _min_in,
            TRY_CAST(max_request_input_tokens AS BIGINT) AS _max_in,
            {ints}
        FROM parsed
    ), adjusted AS (
        SELECT * REPLACE (CASE WHEN coalesce(_c_incl, false) THEN {minus_cache} ELSE _input_tokens END
                          AS _input_tokens,
                          CASE WHEN coalesce(_c_excl, false) THEN _output_tokens + _reasoning_tokens
                               ELSE _output_tokens END AS _output_tokens)
        FROM typed
    ), checked AS (
        SELECT *, {which} AS _check FROM adjusted
    ), hashed AS (
        SELECT *, {content_hash} AS _content_hash FROM checked
    )
    SELECT CAST(_c_fidx AS INTEGER) AS _fidx, CAST(_line AS BIGINT) AS _line,
        {error} AS error, {field} AS error_field,
        CASE WHEN _check IS NOT NULL THEN {raw} END AS _raw, _sid AS _source_id, {ident} AS event_id,
        _content_hash,
        _ts AS ts, coalesce({_trimmed("request_id")}, _sid) AS request_id, _provider AS provider, {text},
        _tier AS service_tier, _requests AS requests, {tokens}, _web_searches AS {WEB_SEARCH_CLASS},
        _min_in AS min_request_input_tokens,
        _max_in AS max_request_input_tokens,
        -- a list of labels (Langfuse's, Datadog's tags) is kept as the object's "labels"
        CASE WHEN contains(tags, '[') AND json_valid(tags)
             THEN CASE WHEN json_type(tags) = 'ARRAY' THEN CAST(json_object('labels', json(tags)) AS VARCHAR)
                       ELSE tags END
             ELSE tags END AS tags, prompt
    FROM hashed
    """


def repeat_id_sql(checked: str) -> str:
    """UPDATE giving the 2nd, 3rd, ... identical row of one file (no source id) an id of its own.

    The k-th occurrence's id hashes the content's hash and k, so the same file ingested again, or
    renamed, gives the same ids, while identical rows inside one file stay distinct events.
    """
    return f"""
    UPDATE {checked} SET event_id = md5(concat({checked}._content_hash, '|', r.occurrence))
    FROM (
        SELECT c.rowid AS rid,
            row_number() OVER (PARTITION BY c._content_hash, c._fidx ORDER BY c._line) AS occurrence
        FROM {checked} AS c JOIN (
            SELECT _content_hash, _fidx FROM {checked} WHERE _content_hash IS NOT NULL
            GROUP BY ALL HAVING count(*) > 1
        ) AS repeated USING (_content_hash, _fidx)
    ) AS r
    WHERE {checked}.rowid = r.rid AND r.occurrence > 1
    """
