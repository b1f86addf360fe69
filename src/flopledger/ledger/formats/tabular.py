"""Plain tables: CSV, JSONL and Parquet, read by DuckDB and mapped onto canonical columns.

``--map canonical=source`` names the source column (for JSONL a dotted path such as
``usage.prompt_tokens``) and ``--set canonical=value`` fixes a value for every row. A canonical
column not mapped is read from a source column of the same name when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.formats.base import STAGE_COLUMNS, InputFormat, register

__all__ = ["Csv", "Jsonl", "Parquet", "TableFormat", "TableSource"]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableSource:
    """A SELECT producing the stage columns, ``_line`` and ``_raw`` from one file."""

    sql: str


class TableFormat(InputFormat):
    kind = "table"

    def _reader(self, path: Path) -> str:
        raise NotImplementedError

    def source_columns(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {self._reader(path)}").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"cannot read as {self.name}: {first}", path=str(path)) from exc
        return [r[0] for r in rows]

    def _column_expr(self, source: str, columns: list[str], path: Path, canonical: str) -> str:
        if source not in columns:
            known = ", ".join(columns[:30])
            raise InputError(
                f"--map {canonical}={source}: the file has no column {source!r}; its columns are: {known}",
                path=str(path),
            )
        return f"CAST(src.{_quote_ident(source)} AS VARCHAR)"

    def source(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
    ) -> TableSource:
        columns = self.source_columns(con, path)
        exprs = []
        for canonical in STAGE_COLUMNS:
            if canonical in fixed:
                expr = f"CAST({sql_literal(fixed[canonical])} AS VARCHAR)"
            elif canonical in mapping:
                expr = self._column_expr(mapping[canonical], columns, path, canonical)
            elif canonical in columns:
                expr = f"CAST(src.{_quote_ident(canonical)} AS VARCHAR)"
            else:
                expr = "CAST(NULL AS VARCHAR)"
            exprs.append(f"{expr} AS {_quote_ident(canonical)}")
        select = ", ".join(exprs)
        return TableSource(
            f"SELECT {select}, CAST(row_number() OVER () AS BIGINT) + {self._line_offset} AS _line, "
            f"{self._raw_expr} AS _raw, CAST(NULL AS VARCHAR) AS _source_id, "
            f"CAST(NULL AS VARCHAR) AS _error, CAST(NULL AS VARCHAR) AS _error_field "
            f"FROM {self._reader(path)} AS src"
        )

    _line_offset = 0
    _raw_expr = "to_json(src)::VARCHAR"


@register
class Csv(TableFormat):
    name = "csv"
    description = "CSV with a header row; map columns with --map."
    _line_offset = 1  # the header

    def sniff(self, path: Path, head: str) -> bool:
        return path.suffix.lower() in (".csv", ".tsv")

    def _reader(self, path: Path) -> str:
        # The dialect is RFC 4180, stated rather than sniffed: on a small file DuckDB's sniffer can take
        # the doubled quote of a quoted value for an escape of its own and mangle or merge rows.
        delim = "\\t" if path.suffix.lower() == ".tsv" else ","
        return (
            f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, strict_mode=false, "
            f"delim='{delim}', quote='\"', escape='\"')"
        )


@register
class Parquet(TableFormat):
    name = "parquet"
    description = "Parquet; map columns with --map."

    def sniff(self, path: Path, head: str) -> bool:
        return path.suffix.lower() == ".parquet"

    def _reader(self, path: Path) -> str:
        return f"read_parquet({sql_literal(str(path))})"


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

    def _reader(self, path: Path) -> str:
        return (
            f"read_csv({sql_literal(str(path))}, columns={{'j': 'VARCHAR'}}, header=false, delim=chr(1), "
            "quote='', escape='', auto_detect=false, strict_mode=false)"
        )

    def source_columns(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        try:
            rows = con.execute(
                f"SELECT DISTINCT unnest(json_keys(j)) FROM (SELECT j FROM {self._reader(path)} "
                "WHERE json_valid(j) AND json_type(j) = 'OBJECT' LIMIT 1000)"
            ).fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"cannot read as JSON Lines: {first}", path=str(path)) from exc
        return [r[0] for r in rows]

    def _path_expr(self, source: str) -> str:
        json_path = "$." + ".".join(f'"{part}"' for part in source.split("."))
        return f"CASE WHEN json_valid(src.j) THEN json_extract_string(src.j, {sql_literal(json_path)}) END"

    def _column_expr(self, source: str, columns: list[str], path: Path, canonical: str) -> str:
        if source.split(".")[0] not in columns:
            known = ", ".join(columns[:30])
            raise InputError(
                f"--map {canonical}={source}: no line has a field {source.split('.')[0]!r}; "
                f"fields seen: {known}",
                path=str(path),
            )
        return self._path_expr(source)

    def source(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        mapping: Mapping[str, str],
        fixed: Mapping[str, str],
    ) -> TableSource:
        columns = self.source_columns(con, path) if mapping else []
        paths: list[str] = []
        exprs = []
        for canonical in STAGE_COLUMNS:
            if canonical in fixed:
                exprs.append(f"CAST({sql_literal(fixed[canonical])} AS VARCHAR)")
                continue
            if canonical in mapping:
                self._column_expr(mapping[canonical], columns, path, canonical)  # checks the field exists
                field = mapping[canonical]
            else:
                field = canonical  # absent fields read as NULL, wherever in the file they first appear
            paths.append("$." + ".".join(f'"{part}"' for part in field.split(".")))
            exprs.append(f"src._v[{len(paths)}]")
        select = ", ".join(f"{e} AS {_quote_ident(c)}" for e, c in zip(exprs, STAGE_COLUMNS, strict=True))
        path_list = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
        # Each line is parsed once: validity, its type, then every field in one multi-path extract.
        return TableSource(
            f"SELECT {select}, src._line, src.j AS _raw, CAST(NULL AS VARCHAR) AS _source_id, "
            "CASE WHEN NOT src._ok THEN 'not valid JSON' WHEN NOT src._obj "
            "THEN 'a JSON line that is not an object' END AS _error, CAST(NULL AS VARCHAR) AS _error_field "
            "FROM (SELECT j, _line, _ok, _obj, "
            f"json_extract_string(CASE WHEN _obj THEN j ELSE '{{}}' END, {path_list}) AS _v "
            "FROM (SELECT j, _line, json_valid(j) AS _ok, "
            "CASE WHEN json_valid(j) THEN json_type(j) = 'OBJECT' ELSE false END AS _obj FROM "
            f"(SELECT j, CAST(row_number() OVER () AS BIGINT) AS _line FROM {self._reader(path)}) "
            "WHERE j IS NOT NULL AND trim(j) <> '')) AS src"
        )
