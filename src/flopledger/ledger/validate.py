"""Validation of staged rows in SQL: types, required fields, semantics, and the stable event id.

The staged table has every canonical field as text plus ``_line``, ``_raw``, ``_source_id`` and
``_error``/``_error_field`` (errors a parser found). The checked result adds typed columns, the
first ``error`` and its ``error_field`` (NULL for a good row) and ``_content_hash``; the raw text
stays in the stage (it is needed only for rows sent to quarantine).
"""

from __future__ import annotations

from flopledger.ledger.formats.base import STAGE_COLUMNS
from flopledger.ledger.schema import TOKEN_COLUMNS

__all__ = ["TIER_ALIASES", "checked_sql", "event_id_sql"]

_INT_FIELDS = TOKEN_COLUMNS
TIER_ALIASES = {
    "": "standard",
    "standard": "standard",
    "default": "standard",
    "auto": "standard",
    "on_demand": "standard",
    "batch": "batch",
    "priority": "priority",
    "scale": "priority",
    "flex": "flex",
}


def _blank(col: str) -> str:
    return f'("{col}" IS NULL OR trim("{col}") = \'\')'


def _shown(col: str) -> str:
    """SQL for a value as shown inside an error message: quoted, at most 80 characters."""
    return f"'''' || left(coalesce(CAST(\"{col}\" AS VARCHAR), ''), 80) || ''''"


def _num(col: str) -> str:
    """The column parsed as a number once, in the ``numbers`` step (NULL when it is not one)."""
    return f'"_d_{col}"'


def checked_sql(stage: str) -> str:
    """SELECT over table ``stage`` with typed columns, ``error``, ``error_field`` and ``event_id``."""
    checks: list[tuple[str, str, str]] = [
        ("_error IS NOT NULL", "_error", "_error_field"),
        ("_ts IS NULL AND " + _blank("ts"), "'ts is missing; every row needs a timestamp'", "'ts'"),
        (
            "_ts IS NULL",
            "'ts ' || " + _shown("ts") + " || ' is not a timestamp (use ISO 8601 or Unix seconds)'",
            "'ts'",
        ),
        (_blank("model"), "'model is missing; every row needs a model'", "'model'"),
        (
            " AND ".join(_blank(c) for c in _INT_FIELDS),
            "'no token count; every row needs at least one of the token columns'",
            "'input_tokens'",
        ),
    ]
    for c in _INT_FIELDS:
        checks.append(
            (
                f"NOT {_blank(c)} AND ({_num(c)} IS NULL OR {_num(c)} < 0 OR {_num(c)} <> floor({_num(c)}))",
                f"'{c} ' || {_shown(c)} || ' is not a whole, non-negative number'",
                f"'{c}'",
            )
        )
    checks += [
        (
            f"NOT {_blank('requests')} AND ({_num('requests')} IS NULL OR {_num('requests')} < 0 "
            f"OR {_num('requests')} <> floor({_num('requests')}))",
            "'requests ' || " + _shown("requests") + " || ' is not a whole, non-negative number'",
            "'requests'",
        ),
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
            f"NOT {_blank('tags')} AND (NOT json_valid(tags) OR json_type(tags) <> 'OBJECT')",
            "'tags must be a JSON object'",
            "'tags'",
        ),
    ]
    # Each condition is evaluated once: the first failing check's number picks message and field.
    which = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(checks)) + " END"
    error = "CASE _check " + " ".join(f"WHEN {i} THEN {msg}" for i, (_, msg, _) in enumerate(checks)) + " END"
    field = "CASE _check " + " ".join(f"WHEN {i} THEN {fld}" for i, (_, _, fld) in enumerate(checks)) + " END"
    numbers = ", ".join(f'TRY_CAST(trim("{c}") AS DOUBLE) AS "_d_{c}"' for c in (*_INT_FIELDS, "requests"))

    tiers = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in TIER_ALIASES.items())
    ints = ",\n".join(
        f'CASE WHEN {_blank(c)} THEN 0 ELSE TRY_CAST({_num(c)} AS BIGINT) END AS "_{c}"' for c in _INT_FIELDS
    )
    # Tabular sources may report total input (OpenAI-style); the stage's ``_incl_cache`` flag says
    # so, and the cache tokens are subtracted to give uncached input.
    minus_cache = "(_input_tokens - _cache_read_tokens - _cache_write_5m_tokens - _cache_write_1h_tokens)"
    uncached = f"CASE WHEN coalesce(_incl_cache, false) THEN {minus_cache} ELSE _input_tokens END"
    epoch = "regexp_full_match(trim(ts), '[0-9]+(\\.[0-9]+)?')"
    ts_expr = (
        f"CASE WHEN ts IS NULL THEN NULL WHEN {epoch} THEN "
        "make_timestamp(CAST(TRY_CAST(trim(ts) AS DOUBLE) * "
        "CASE WHEN TRY_CAST(trim(ts) AS DOUBLE) > 1e17 THEN 1e-3 "
        "WHEN TRY_CAST(trim(ts) AS DOUBLE) > 1e14 THEN 1 WHEN TRY_CAST(trim(ts) AS DOUBLE) > 1e11 THEN 1e3 "
        "ELSE 1e6 END AS BIGINT)) "
        "ELSE CAST(timezone('UTC', TRY_CAST(trim(ts) AS TIMESTAMPTZ)) AS TIMESTAMP) END"
    )
    content = " || '|' || ".join(f"coalesce(\"{c}\", '')" for c in STAGE_COLUMNS if c != "prompt")
    return f"""
    WITH numbers AS (
        -- a request id in the data is the source's own id, whatever the format
        SELECT * REPLACE (coalesce(_source_id, nullif(trim(request_id), '')) AS _source_id),
            rowid AS _sid, {numbers} FROM {stage}
    ), typed AS (
        SELECT *,
            {ts_expr} AS _ts,
            CASE lower(trim(coalesce(service_tier, ''))) {tiers} END AS _tier,
            {ints},
            CASE WHEN {_blank("requests")} THEN 1 ELSE TRY_CAST({_num("requests")} AS BIGINT) END AS _requests
        FROM numbers
    ), adjusted AS (
        SELECT * REPLACE ({uncached} AS _input_tokens) FROM typed
    ), checked AS (
        SELECT *, {which} AS _check FROM adjusted
    ), judged AS (
        SELECT * EXCLUDE (_check), {error} AS error, {field} AS error_field,
            md5({content}) AS _content_hash
        FROM checked
    )
    SELECT * EXCLUDE (_raw) FROM judged
    """


def event_id_sql(*, repeated_content: bool) -> str:
    """SQL for the stable event id of a checked row.

    The source's own id (with the event's time), else a hash of the row's content and its
    occurrence in its file, so identical rows inside one file stay distinct events while the same
    file ingested again (or renamed) gives the same ids. ``repeated_content`` says whether any file
    has identical rows; without any, every occurrence number is 1 and no window is needed.
    """
    occurrence = (
        "row_number() OVER (PARTITION BY _content_hash, _file ORDER BY _line)" if repeated_content else "1"
    )
    return (
        "CASE WHEN _source_id IS NOT NULL THEN md5(_source_id || '|' || coalesce(CAST(_ts AS VARCHAR), '')) "
        f"ELSE md5(_content_hash || '|' || {occurrence}) END"
    )
