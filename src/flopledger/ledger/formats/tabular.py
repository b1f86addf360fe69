"""Plain tables: CSV, JSONL and Parquet, read by DuckDB and mapped onto canonical columns.

``--map canonical=source`` names the source column, or a dotted path into a nested one
(``usage.prompt_tokens``: a field of a JSON line, of a Parquet struct, or of a column of JSON text), and
``--set canonical=value`` fixes a value for every row. A canonical column not mapped is read from a
source column of the same name when there is one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flopledger.errors import FlopledgerError, InputError
from flopledger.ledger.formats.base import (
    STAGE_COLUMNS,
    InputFormat,
    is_record_array,
    json_array_hint,
    register,
)
from flopledger.ledger.schema import TOKEN_COLUMNS, WEB_SEARCH_CLASS

__all__ = ["Csv", "Jsonl", "Parquet", "TableFormat", "TableSource"]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _numbered_copy(con: duckdb.DuckDBPyConnection, table: str, select: str) -> None:
    """Copy a file's rows into temp table ``table``, committed, so that row ids count them in file order."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select}")
    rows, top = con.execute(f"SELECT count(*), coalesce(max(rowid), -1) FROM {table}").fetchone() or (0, -1)
    if top != rows - 1:
        raise FlopledgerError(
            f"the rows of {table} are not numbered in file order; run the ingest outside an open transaction"
        )


@dataclass(frozen=True)
class TableSource:
    """Staged rows of one file, read by DuckDB.

    ``sql`` is a SELECT of the stage columns (text), ``_line``, ``_source_id``, ``_error`` and
    ``_error_field``; ``raw_sql`` is a SELECT of ``(_line, _raw)``, the raw text of the lines listed
    in the table named where it says ``{lines}`` (only bad rows ever need it; substitute the name with
    ``str.replace``, as the SQL has braces of its own).
    """

    sql: str
    raw_sql: str


_NO_PARSER_VERDICT = (
    "CAST(NULL AS VARCHAR) AS _source_id, CAST(NULL AS VARCHAR) AS _error, "
    "CAST(NULL AS VARCHAR) AS _error_field"
)


_KEY_SAMPLE = 1000
"""Rows read to learn the keys of JSON a --map path goes into (as many as for a file's JSON fields)."""


_JSON_KINDS = {"OBJECT": "object", "ARRAY": "list", "VARCHAR": "text", "BOOLEAN": "true/false"} | {
    t: "number" for t in ("BIGINT", "UBIGINT", "DOUBLE")
}


def json_path(fields: Sequence[str]) -> str:
    """The JSON path of object keys ``fields`` (``$."a"."b"``): any key, dots and quotes included."""
    return "$" + "".join("." + json.dumps(f, ensure_ascii=False) for f in fields)


def check_json_keys(
    con: duckdb.DuckDBPyConnection,
    rows: str,
    value: str,
    at: str,
    fields: Sequence[str],
    said: str,
    path: Path,
) -> None:
    """A --map path into JSON (text, a map, a JSON Lines field) must name keys the file has. The first
    rows are read for the keys at each step; where they have objects there and none has the key
    named (or hold values that are no objects), the whole file is read before the path is refused:
    a key may first appear late (a web search in the 2,000th response). Refused, the error names
    the keys there are. Where the first rows hold no object at all, nothing is known, and the path
    stands (a sparse field)."""
    for depth, field in enumerate(fields):
        parent = sql_literal(json_path(fields[:depth]))
        keys, kinds = con.execute(
            f"SELECT list_sort(list_distinct(flatten(list(json_keys(v, {parent}))))), "
            f"list_sort(list_distinct(list(json_type(v, {parent})))) "
            f"FROM (SELECT {value} AS v FROM {rows} LIMIT {_KEY_SAMPLE})"
        ).fetchone() or ([], [])
        where = ".".join([at, *fields[:depth]])
        kinds = sorted({_JSON_KINDS.get(k, k.lower()) for k in kinds or [] if k != "NULL"})
        if kinds and "object" not in kinds:
            problem = (
                f"{said}: {where!r} holds {' and '.join(kinds)} values, not objects: a path goes on "
                "only into an object"
            )
        elif keys and field not in keys:
            same = [k for k in keys if k.lower() == field.lower()]
            hint = f" (keys are case-sensitive: {same[0]!r})" if same else ""
            problem = (
                f"{said}: no object at {where!r} has a key {field!r}{hint}; "
                f"the keys there are: {', '.join(keys[:30])}"
            )
        else:
            continue
        whole = sql_literal(json_path(fields))
        if con.execute(f"SELECT 1 FROM {rows} WHERE json_exists({value}, {whole}) LIMIT 1").fetchone():
            return  # the path is there, in a row past the first ones
        raise InputError(problem, path=str(path))


def _as_text(expr: str, typ: str) -> str:
    """A column's value as the text the checks read: nested values (a struct or map of tags, say)
    as JSON, not in DuckDB's own ``{team=a}`` notation."""
    nested = typ.startswith(("STRUCT(", "MAP(", "UNION(")) or typ.endswith("]")
    return f"CAST(to_json({expr}) AS VARCHAR)" if nested else f"CAST({expr} AS VARCHAR)"


class TableFormat(InputFormat):
    kind = "table"
    _line_offset = 0
    """Lines before the first record (a header line)."""

    def _reader(self, path: Path) -> str:
        raise NotImplementedError

    def _rows(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[str, str]:
        """The file's rows as a relation (read as ``src``) and the SQL of each row's line in the file."""
        _numbered_copy(con, table, f"SELECT * FROM {self._reader(path)}")
        return table, f"CAST(src.rowid AS BIGINT) + {self._line_offset + 1}"

    def _describe(self, con: duckdb.DuckDBPyConnection, path: Path, select: str = "*") -> dict[str, str]:
        """The names and DuckDB types of ``select``'s columns over the file's rows."""
        try:
            rows = con.execute(f"DESCRIBE SELECT {select} FROM {self._reader(path)} AS src").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"cannot read as {self.name}: {first}", path=str(path)) from exc
        return {r[0]: r[1] for r in rows}

    def source_columns(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        return list(self._describe(con, path))

    def _column_expr(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        columns: list[str],
        path: Path,
        canonical: str,
        texts: dict[str, tuple[str, str]] | None = None,
    ) -> str:
        if source in columns:  # a column whose own name has a dot is that column, not a path
            column = _quote_ident(source)
            return _as_text(f"src.{column}", self._describe(con, path, column)[source])
        top, dot, rest = source.partition(".")
        if not dot or top not in columns:
            known = ", ".join(columns[:30])
            raise InputError(
                f"--map {canonical}={source}: the file has no column {source!r}; its columns are: {known}",
                path=str(path),
            )
        return self._nested_expr(
            con, path, top, rest.split("."), f"--map {canonical}={source}", texts, canonical
        )

    def _nested_expr(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        top: str,
        fields: list[str],
        said: str,
        texts: dict[str, tuple[str, str]] | None = None,
        canonical: str = "",
        check_keys: bool = True,
    ) -> str:
        """The text at ``top.fields...``: struct fields by name (each one checked, so a misspelt one is
        an error naming the fields there are), then JSON (a column of JSON text, a map) by path, its
        keys checked (:func:`check_json_keys`) unless ``check_keys`` is false (a path read where a
        file may have it: nothing there is no error). Text that is not valid JSON reads as NULL;
        ``texts`` gains the column's SQL and the canonical column read from it, so such a row can be
        quarantined rather than read as having no value."""
        expr, typ = f"src.{_quote_ident(top)}", self._describe(con, path, _quote_ident(top))[top]
        for i, field in enumerate(fields):
            at = ".".join([top, *fields[:i]])
            if typ.endswith("]"):
                raise InputError(
                    f"{said}: {at!r} is a list ({typ}): a path reads one value of a row, from struct "
                    "fields or JSON objects, not from a list",
                    path=str(path),
                )
            if not typ.startswith("STRUCT("):
                where = json_path(fields[i:])
                if typ == "VARCHAR":  # text: JSON only where it is valid JSON
                    if texts is not None:
                        texts.setdefault(expr, (at, canonical))
                    doc = f"CASE WHEN json_valid({expr}) THEN CAST({expr} AS JSON) END"
                    found = f"json_extract_string({expr}, {sql_literal(where)})"
                    value = f"CASE WHEN json_valid({expr}) THEN {found} END"
                else:
                    doc = expr if typ == "JSON" else f"to_json({expr})"
                    value = f"json_extract_string({doc}, {sql_literal(where)})"
                if check_keys:
                    check_json_keys(con, f"{self._reader(path)} AS src", doc, at, fields[i:], said, path)
                return value
            inner = self._describe(con, path, f"unnest({expr})")
            named = {name.lower(): name for name in inner}  # DuckDB names struct fields case-blind
            if field.lower() not in named:
                raise InputError(
                    f"{said}: {at!r} has no field {field!r}; its fields are: {', '.join(list(inner)[:30])}",
                    path=str(path),
                )
            name = named[field.lower()]
            expr, typ = f"struct_extract({expr}, {sql_literal(name)})", inner[name]
        return _as_text(expr, typ)

    def source(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
        table: str,
    ) -> TableSource:
        """Read the file (into temp table ``table`` where rows need numbering) and map its columns."""
        types = self._describe(con, path)
        columns = list(types)
        mapping = {**mapping, **case_blind_names(columns, mapping, fixed)}
        searches = self._nested_searches(con, path, mapping, fixed, columns)
        texts: dict[str, tuple[str, str]] = {}  # JSON text a --map reads: SQL -> (its path, canonical)
        exprs = []
        for canonical in STAGE_COLUMNS:
            if canonical in fixed:
                expr = f"CAST({sql_literal(fixed[canonical])} AS VARCHAR)"
            elif canonical in mapping:
                expr = self._column_expr(con, mapping[canonical], columns, path, canonical, texts)
            elif canonical in columns:
                expr = _as_text(f"src.{_quote_ident(canonical)}", types[canonical])
            else:
                expr = "CAST(NULL AS VARCHAR)"
            if canonical == WEB_SEARCH_CLASS and searches is not None:
                expr = f"coalesce({expr}, {searches})"
            exprs.append(f"{expr} AS {_quote_ident(canonical)}")
        _check_required(columns, mapping, fixed, path)  # after each --map is checked: that error is plainer
        rows, line = self._rows(con, path, table)
        whole = "{" + ", ".join(f"{sql_literal(c)}: src.{_quote_ident(c)}" for c in columns) + "}"
        return TableSource(
            f"SELECT {', '.join(exprs)}, {line} AS _line, {_json_text_verdict(texts)} FROM {rows} AS src",
            f"SELECT {line} AS _line, CAST(to_json({whole}) AS VARCHAR) AS _raw FROM {rows} AS src "
            f"WHERE {line} IN (SELECT _line FROM {{lines}})",
        )

    def _nested_searches(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
        columns: list[str],
    ) -> str | None:
        """Anthropic's nested ``server_tool_use.web_search_requests``, read where a row has no
        ``web_search_requests`` of its own (:func:`_server_tool_searches`), when the file's columns
        have it: a struct with that field, or JSON text."""
        found = []
        for nested in _server_tool_searches(mapping, fixed, columns):
            top, _, rest = nested.partition(".")
            if top not in columns:
                continue
            try:
                found.append(
                    self._nested_expr(con, path, top, rest.split("."), "web searches", check_keys=False)
                )
            except InputError:  # a struct without that field: the file has no searches there
                continue
        return f"coalesce({', '.join(found)})" if found else None


def _json_text_verdict(texts: Mapping[str, tuple[str, str]]) -> str:
    """A row's verdict where a --map reads a path into text of JSON: the first such text that is not
    valid JSON (blank text is no value) quarantines the row, under the column it was read for."""
    if not texts:
        return _NO_PARSER_VERDICT
    bad = [
        (
            f"trim({sql}) <> '' AND NOT json_valid({sql})",
            f"{at} is not valid JSON, so {canonical} cannot be read from it",
            canonical,
        )
        for sql, (at, canonical) in texts.items()
    ]
    reason = " ".join(f"WHEN {test} THEN {sql_literal(said)}" for test, said, _ in bad)
    field = " ".join(f"WHEN {test} THEN {sql_literal(canonical)}" for test, _, canonical in bad)
    return (
        f"CAST(NULL AS VARCHAR) AS _source_id, CASE {reason} END AS _error, CASE {field} END AS _error_field"
    )


def case_blind_names(
    columns: Sequence[str], mapping: Mapping[str, str], fixed: Mapping[str, str]
) -> dict[str, str]:
    """The canonical columns a file has under its canonical name in another case (``TS``, ``MODEL``:
    a warehouse's export), where neither ``--map`` nor ``--set`` names them: canonical -> column.

    Only for a file whose columns under their exact names lack what a row needs (a time, a model, a
    token count): such a file was refused whole before, so no stored row of it has an id the other
    columns read now would change (a row without a source id is known by its content)."""
    if not _missing_required(columns, mapping, fixed):
        return {}
    have = set(columns)
    found: dict[str, str] = {}
    for canonical in STAGE_COLUMNS:
        if canonical in have or canonical in mapping or canonical in fixed:
            continue
        alike = [c for c in columns if c.lower() == canonical]
        if len(alike) == 1:
            found[canonical] = alike[0]
    return found


def _missing_required(
    columns: Sequence[str], mapping: Mapping[str, str], fixed: Mapping[str, str]
) -> list[str]:
    """What a row needs that the file has no column for, under its canonical name, ``--map``ped or
    ``--set``: a time, a model, a token count."""
    available = set(columns) | set(mapping) | set(fixed)
    missing = [c for c in ("ts", "model") if c not in available]
    if not any(c in available for c in TOKEN_COLUMNS):
        missing.append("a token count (input_tokens, output_tokens, ...)")
    return missing


def _check_required(
    columns: list[str], mapping: Mapping[str, str], fixed: Mapping[str, str], path: Path
) -> None:
    """One clear error for a file none of whose rows could be stored: it has no column for ``ts``,
    for ``model`` or for any token count, under its canonical name, ``--map``ped or ``--set``."""
    missing = _missing_required(columns, mapping, fixed)
    if not missing:
        return
    known = ", ".join(columns[:30])
    hint = "name the file's columns with --map, e.g. --map ts=time,model=model_name,input_tokens=prompt"
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        hint = "it looks separated by something other than commas: save it as comma-separated (or .tsv)"
    elif {"user", "ts", "kind"} <= {c.strip().lower() for c in columns}:
        hint = "it looks like outcomes (user, ts, kind): ingest it with --format outcomes"
    names = " or ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    raise InputError(f"the file has no column for {names}; its columns are: {known}; {hint}", path=str(path))


@register
class Csv(TableFormat):
    name = "csv"
    description = "CSV with a header row; map columns with --map."
    _line_offset = 1  # the header

    def sniff(self, path: Path, head: str) -> bool:
        return path.suffix.lower() in (".csv", ".tsv")

    def _rows(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[str, str]:
        # Records DuckDB cannot read as the header's columns (too few or too many fields, a stray
        # quote) are left out of the copy and listed in ``{table}_rejects``, to be quarantined.
        rejects = f"rejects_table='{table}_rejects', rejects_scan='{table}_scans'"
        _numbered_copy(con, table, f"SELECT * FROM {self._reader(path, rejects)}")
        rejected = _rejected_records(con, path, table)
        starts = _record_lines(con, path, table, rejected)
        if starts is None:  # one line per record: the record's number is its line's
            return table, f"CAST(src.rowid AS BIGINT) + {self._line_offset + 1}"
        return (
            f"(SELECT r.*, m._line AS _record_line FROM {table} AS r JOIN {starts} AS m ON m._rec = r.rowid)",
            "src._record_line",
        )

    def _reader(self, path: Path, rejects: str = "") -> str:
        # The dialect is RFC 4180, stated rather than sniffed: on a small file DuckDB's sniffer can take
        # the doubled quote of a quoted value for an escape of its own and mangle or merge rows, and a
        # strict sniffer refuses a whole file for one bad record. The columns are the header's.
        # Strict, so a record of more fields than the header (an unquoted 1,000) is rejected, never
        # cut to the header's width; rejected records are kept (``rejects``) when rows are read.
        delim = "\\t" if path.suffix.lower() == ".tsv" else ","
        names = _header_names(path, "\t" if delim == "\\t" else ",")
        columns = "{" + ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names) + "}"
        keep = f", store_rejects=true, {rejects}" if rejects else ""
        return (
            f"read_csv({sql_literal(str(path))}, header=true, auto_detect=false, columns={columns}, "
            f"strict_mode=true, delim='{delim}', quote='\"', escape='\"', ignore_errors=true{keep})"
        )

    def source(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
        table: str,
    ) -> TableSource:
        read = super().source(con, path, mapping, fixed, table)
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {_quote_ident(c)}" for c in STAGE_COLUMNS)
        rejected = f"{table}_rejected"
        return TableSource(
            f"{read.sql} UNION ALL SELECT {nulls}, _line, CAST(NULL AS VARCHAR) AS _source_id, _error, "
            f"_error_field FROM {rejected}",
            f"{read.raw_sql} UNION ALL SELECT _line, _raw FROM {rejected} "
            "WHERE _line IN (SELECT _line FROM {lines})",
        )


def _header_names(path: Path, delim: str) -> list[str]:
    """The column names of CSV ``path``'s header record, as DuckDB names them: a blank name is
    ``column{i}``, a name seen before gains ``_1``, ``_2``, ..."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(
            csv.reader(fh.read(1 << 16).replace("\0", "\ufffd").splitlines(True), delimiter=delim), None
        )
    if header == []:
        raise InputError(
            "the first line is blank: a CSV's header row naming its columns must be its first line; "
            "remove the blank lines before it",
            path=str(path),
        )
    if not header:
        raise InputError(
            "the file is empty: a CSV needs a header row naming its columns (ts, model, input_tokens, ...)",
            path=str(path),
        )
    if any("\ufffd" in name for name in header):
        raise InputError(
            "the header is not UTF-8 text (a binary file, or a CSV saved as UTF-16?): save it as UTF-8 CSV",
            path=str(path),
        )
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw if raw.strip() else f"column{i}"
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


def _line_numbers(path: Path, offsets: list[int]) -> dict[int, int]:
    """The line (from 1) each of the byte ``offsets`` (from 0) of ``path`` is on."""
    found: dict[int, int] = {}
    pending = sorted(set(offsets))
    lines, done, i = 1, 0, 0
    with path.open("rb") as fh:
        while i < len(pending) and (chunk := fh.read(1 << 20)):
            while i < len(pending) and pending[i] < done + len(chunk):
                found[pending[i]] = lines + chunk.count(b"\n", 0, pending[i] - done)
                i += 1
            lines += chunk.count(b"\n")
            done += len(chunk)
    for offset in pending[i:]:  # at the very end of the file
        found[offset] = lines
    return found


def _rejected_records(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[int]:
    """Fill temp table ``{table}_rejected`` (``_line``, ``_raw``, ``_error``, ``_error_field``) with
    the records of CSV ``path`` that DuckDB rejected when reading it into ``table``, one row each and
    numbered by the line it starts on; those lines."""
    rejected = f"{table}_rejected"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {rejected} "
        "(_line BIGINT, _raw VARCHAR, _error VARCHAR, _error_field VARCHAR, _lines BIGINT)"
    )
    rows = con.execute(
        # a record of too few fields is listed once for each field it lacks: the first one says it
        f"""SELECT line_byte_position, arg_min(error_type, coalesce(column_idx, 0)),
                   arg_min(column_name, coalesce(column_idx, 0)), arg_min(csv_line, coalesce(column_idx, 0)),
                   arg_min(error_message, coalesce(column_idx, 0))
            FROM {table}_rejects GROUP BY line_byte_position ORDER BY line_byte_position"""
    ).fetchall()
    if not rows:
        return []
    # DuckDB counts a record's byte position from 1
    lines = _line_numbers(path, [int(r[0]) - 1 for r in rows])
    records = []
    for position, kind, column, raw, message in rows:
        expected, _, found = str(message).partition("Found: ")
        fields = expected.rsplit(":", 1)[-1].strip()
        if kind in ("MISSING COLUMNS", "TOO MANY COLUMNS") and found.strip().isdigit():
            reason = f"the record has {found.strip()} field(s) where the header has {fields}"
            if kind == "TOO MANY COLUMNS":
                reason += '; quote a value that holds a comma ("1,000")'
        else:
            reason = f"not a CSV record: {message}"
        # blank lines before a record are part of it, as DuckDB gives it: its line is after them
        text = str(raw or "")
        record = text.lstrip("\r\n")
        line = lines[int(position) - 1] + text[: len(text) - len(record)].count("\n")
        if kind not in ("MISSING COLUMNS", "TOO MANY COLUMNS") and "\n" in record.rstrip("\r\n"):
            # a quote opened and never closed: what follows it, to the next quote, is read as one value
            raise InputError(
                f"line {line}: a quoted value is never closed, so the lines after it cannot be told "
                f"apart ({message}): close or remove the quote, then ingest the file again",
                path=str(path),
            )
        span = record.rstrip("\r\n").count("\n") + 1
        records.append((line, record, reason, column if kind == "MISSING COLUMNS" else None, span))
    con.executemany(f"INSERT INTO {rejected} VALUES (?, ?, ?, ?, ?)", records)
    return [r[0] for r in records]


def _parsed_record_lines(path: Path, delim: str, rejected: set[int]) -> list[int] | None:
    """The line each record of CSV ``path`` starts on (the header's first), as a CSV reader that
    opens a quoted value only at a value's start finds them; blank lines and the records starting
    on ``rejected`` lines left out. None when the file cannot be read so."""
    starts: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=delim)
            after = 0  # the lines read before this record
            for record in reader:
                first = after + 1
                after = reader.line_num
                if record and first not in rejected:
                    starts.append(first)
    except csv.Error:
        return None
    return starts


def _physical_lines(path: Path) -> int:
    """How many lines the file has (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _record_lines(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, rejected: Sequence[int] = ()
) -> str | None:
    """A table of ``(_rec, _line)``: the line each data record of CSV ``path`` (read into ``table``)
    starts on, where that is not its number plus the header's line: a quoted value holding a
    newline, or a blank line (which DuckDB skips), comes before it. None when every record is one
    line, or when the lines cannot be told (then records are numbered as read).

    A line starts a record when the quotes before it are balanced (RFC 4180 doubles a quote inside a
    quoted value, so doubling keeps the balance) and it is not blank, nor the start of a record
    DuckDB rejected (``rejected``, listed in ``{table}_rejected``).
    """
    records = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    if records is None or (not rejected and _physical_lines(path) == records[0] + 1):
        return None
    text, starts = f"{table}_text", f"{table}_starts"
    _numbered_copy(
        con,
        text,
        f"SELECT j FROM read_csv({sql_literal(str(path))}, columns={{'j': 'VARCHAR'}}, header=false, "
        "delim=chr(1), quote='', escape='', auto_detect=false, strict_mode=false)",
    )
    # a line of a record DuckDB rejected (each from its first, as many as it has) starts none
    rejected_line = (
        f"rowid + 1 IN (SELECT _line + unnest(range(_lines)) FROM {table}_rejected)" if rejected else "false"
    )
    lines = f"SELECT CAST(rowid AS BIGINT) + 1 AS _line, j, {rejected_line} AS _rejected FROM {text}"
    numbered = "CAST(row_number() OVER (ORDER BY _line) AS BIGINT) - 2 AS _rec, _line"
    kept = "j IS NOT NULL AND j <> '' AND NOT _rejected"
    # a line starts a record when the quotes before it, of the records that stay, pair
    candidates = [
        f"""SELECT {numbered} FROM (
                SELECT _line, j, _rejected,
                       coalesce(sum(q) OVER (ORDER BY _line ROWS BETWEEN UNBOUNDED PRECEDING
                                             AND 1 PRECEDING), 0) AS _quotes_before
                FROM (SELECT *, CASE WHEN _rejected THEN 0 ELSE length(j) - length(replace(j, '"', '')) END
                                    AS q FROM ({lines})))
            WHERE _quotes_before % 2 = 0 AND {kept}"""
    ]
    if rejected:  # first: each record that stays is one line, when there are as many such lines as
        # records (no quoted value holds a newline, and a stray quote in a value is no matter)
        candidates.insert(0, f"SELECT {numbered} FROM ({lines}) WHERE {kept}")
    for select in candidates:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {starts} AS {select}")
        found = con.execute(f"SELECT count(*) FROM {starts}").fetchone()
        if found is not None and found[0] == records[0] + 1:  # as DuckDB read them
            con.execute(f"DROP TABLE {text}")
            return starts
    con.execute(f"DROP TABLE {text}")
    con.execute(f"DROP TABLE {starts}")
    # Quotes that do not pair line by line (a quote inside an unquoted value, 'ab"c', which opens
    # nothing): the file read record by record, a quote opening a value only at its start.
    lines_of = _parsed_record_lines(path, "\t" if path.suffix.lower() == ".tsv" else ",", set(rejected))
    if lines_of is not None and len(lines_of) == records[0] + 1:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {starts} (_rec BIGINT, _line BIGINT)")
        con.executemany(f"INSERT INTO {starts} VALUES (?, ?)", [(i - 1, ln) for i, ln in enumerate(lines_of)])
        return starts
    if rejected:  # numbered as read, the records after a rejected one would take its line
        raise InputError(
            f"cannot tell the line each record starts on (quotes that do not pair, and a record near line "
            f"{min(rejected)} that could not be read): fix the quoting, then ingest the file again",
            path=str(path),
        )
    return None  # not RFC 4180: numbered as read


@register
class Parquet(TableFormat):
    name = "parquet"
    description = "Parquet; map columns with --map."

    def sniff(self, path: Path, head: str) -> bool:
        return path.suffix.lower() == ".parquet"

    _line_offset = 0

    def _reader(self, path: Path) -> str:
        return f"read_parquet({sql_literal(str(path))})"

    def _rows(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[str, str]:
        # Parquet numbers its own rows: no copy needed.
        return (
            f"read_parquet({sql_literal(str(path))}, file_row_number=true)",
            "CAST(src.file_row_number AS BIGINT) + 1",
        )


def _server_tool_searches(
    mapping: Mapping[str, str], fixed: Mapping[str, str], columns: list[str]
) -> list[str]:
    """Where a row keeps its web searches when neither ``--map`` nor ``--set`` says and the row has no
    ``web_search_requests`` of its own: Anthropic's ``server_tool_use.web_search_requests``, beside the
    token counts the map reads (``usage.`` in a logged Messages response), or at the top of the row where
    the file has a ``server_tool_use`` (a JSON line's field, a Parquet struct, a column of JSON text; a
    file without one pays nothing for it). A row without it reads no searches, as before. The paths
    in the order they are read: the first a row has a value at counts."""
    if WEB_SEARCH_CLASS in mapping or WEB_SEARCH_CLASS in fixed:
        return []
    paths = []
    for tokens in ("output_tokens", "input_tokens"):
        prefix, dot, _ = mapping.get(tokens, "").rpartition(".")
        if dot:
            paths.append(f"{prefix}.server_tool_use.web_search_requests")
            break
    if "server_tool_use" in columns:
        paths.append("server_tool_use.web_search_requests")
    return paths


def _text_as_json(value: str) -> str:
    """SQL: a JSON Lines field (JSON) whose value is a string of JSON text (CloudWatch's ``message``,
    Azure's ``properties_s``) as the JSON it holds, so a dotted path goes on into it; any other
    value as it is."""
    text = f"json_extract_string({value}, '$')"
    return (
        f"CASE WHEN json_type({value}) = 'VARCHAR' AND json_valid({text}) THEN CAST({text} AS JSON) "
        f"ELSE {value} END"
    )


@register
class Jsonl(TableFormat):
    """One JSON object per line; each line is parsed in SQL so a bad line is quarantined, not lost."""

    name = "jsonl"
    description = "JSON Lines, one object per line; map fields (dotted paths allowed) with --map."

    def sniff(self, path: Path, head: str) -> bool:
        if path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
            return False
        lines = [ln for ln in head.splitlines() if ln.strip()]
        one_line_ok = path.suffix.lower() in (".jsonl", ".ndjson")  # a .json of one line is a document
        if not lines or (len(lines) < 2 and not one_line_ok) or head.lstrip().startswith("["):
            return False
        try:  # JSON Lines: the first line alone is a whole object (a pretty-printed document is not)
            return isinstance(json.loads(lines[0]), dict)
        except json.JSONDecodeError:
            return False

    _line_offset = 0

    def _reader(self, path: Path) -> str:
        # Lines as text: a line that is not JSON is quarantined with its number instead of failing the file.
        return (
            f"read_csv({sql_literal(str(path))}, columns={{'j': 'VARCHAR'}}, header=false, delim=chr(1), "
            "quote='', escape='', auto_detect=false, strict_mode=false)"
        )

    def _has_field(self, con: duckdb.DuckDBPyConnection, path: Path, field: str) -> bool:
        """Whether any line is an object with a top-level ``field`` (the whole file read: a field
        the first lines lack may come later)."""
        where = sql_literal(json_path([field]))
        found = con.execute(
            f"SELECT 1 FROM {self._reader(path)} WHERE json_valid(j) AND json_type(j) = 'OBJECT' "
            f"AND json_exists(j, {where}) LIMIT 1"
        ).fetchone()
        return found is not None

    def source_columns(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        try:
            rows = con.execute(
                f"SELECT DISTINCT unnest(json_keys(j)) FROM (SELECT j FROM {self._reader(path)} "
                "WHERE json_valid(j) AND json_type(j) = 'OBJECT' LIMIT 1000)"
            ).fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"cannot read as JSON Lines: {first}", path=str(path)) from exc
        if not rows:
            with path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", errors="replace").removeprefix("\ufeff")
            if is_record_array(head):
                raise InputError(json_array_hint(path), path=str(path))
        return [r[0] for r in rows]

    def _column_expr(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        columns: list[str],
        path: Path,
        canonical: str,
        texts: dict[str, tuple[str, str]] | None = None,
    ) -> str:
        top, *rest = source.split(".")
        if top not in columns and not self._has_field(con, path, top):
            known = ", ".join(columns[:30])
            raise InputError(
                f"--map {canonical}={source}: no line has a field {top!r}; fields seen: {known}",
                path=str(path),
            )
        if rest:
            value = f"json_extract(CASE WHEN json_valid(j) THEN j END, {sql_literal(json_path([top]))})"
            value = _text_as_json(value)
            check_json_keys(con, self._reader(path), value, top, rest, f"--map {canonical}={source}", path)
        return source

    def source(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
        table: str,
    ) -> TableSource:
        columns = self.source_columns(con, path)
        mapping = {**mapping, **case_blind_names(columns, mapping, fixed)}
        fields: dict[str, str] = {}  # canonical -> source field (a dotted path for a nested one)
        for canonical in STAGE_COLUMNS:
            if canonical in mapping:
                fields[canonical] = self._column_expr(con, mapping[canonical], columns, path, canonical)
            elif canonical not in fixed:
                fields[canonical] = canonical  # absent fields read as NULL
        # a field read where the line has no value in its own: Anthropic's nested web searches
        # a top-level server_tool_use is read wherever a line has one, the first lines or not (it
        # costs the parse nothing where no line has it)
        fallback = _server_tool_searches(mapping, fixed, [*columns, "server_tool_use"])
        read = [*fields.values(), *fallback]
        nested = {f.split(".")[0] for f in read if "." in f}
        # Each line is parsed once, into a struct of the top-level fields it needs: text, or JSON
        # where a mapped path goes deeper.
        struct = {f.split(".")[0]: "JSON" if f.split(".")[0] in nested else "VARCHAR" for f in read}

        def value_of(field: str) -> str:
            top, *rest = field.split(".")
            value = f"src._v.{_quote_ident(top)}"
            if top in nested:
                value = f"json_extract_string({_text_as_json(value)}, {sql_literal(json_path(rest))})"
            return value

        exprs = []
        for canonical in STAGE_COLUMNS:
            if canonical in fixed:
                exprs.append(f"CAST({sql_literal(fixed[canonical])} AS VARCHAR)")
            elif canonical == WEB_SEARCH_CLASS and fallback:
                exprs.append(f"coalesce({', '.join(value_of(f) for f in [fields[canonical], *fallback])})")
            else:
                exprs.append(value_of(fields[canonical]))
        select = ", ".join(f"{e} AS {_quote_ident(c)}" for e, c in zip(exprs, STAGE_COLUMNS, strict=True))
        _numbered_copy(con, table, f"SELECT j FROM {self._reader(path)}")
        spec = sql_literal(json.dumps(struct))
        verdict = (
            "CASE WHEN left(ltrim(src.j), 1) <> '{' THEN CASE WHEN json_valid(src.j) "
            "THEN 'a JSON line that is not an object' ELSE 'not valid JSON' END "
            "WHEN src._v IS NULL THEN 'not valid JSON' END"
        )
        return TableSource(
            f"SELECT {select}, src._line, CAST(NULL AS VARCHAR) AS _source_id, {verdict} AS _error, "
            "CAST(NULL AS VARCHAR) AS _error_field "
            f"FROM (SELECT j, CAST(rowid AS BIGINT) + 1 AS _line, try(from_json(j, {spec})) AS _v "
            # blank lines are skipped; the cheap test first, so a line is trimmed only when it
            # does not start an object (a filter on the parsed value would parse every line twice)
            f"FROM {table} WHERE j IS NOT NULL AND (left(j, 1) = '{{' OR trim(j) <> '')) AS src",
            f"SELECT CAST(rowid AS BIGINT) + 1 AS _line, j AS _raw FROM {table} "
            "WHERE CAST(rowid AS BIGINT) + 1 IN (SELECT _line FROM {lines})",
        )
