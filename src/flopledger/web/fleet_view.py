"""The fleet page: the last envelope allocation and capacity plan, with their shadow prices.

A plan is read from the ledger's ``meta`` table (keys ``fleet.allocation`` and ``fleet.capacity``,
each the JSON document the fleet commands print with ``--format json``) or from the files given to
``flopledger serve --allocation FILE --capacity FILE``; the files win when both exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from flopledger.errors import InputError
from flopledger.web.state import WebConfig

__all__ = ["META_KEYS", "fleet_page"]

META_KEYS: dict[str, str] = {"allocation": "fleet.allocation", "capacity": "fleet.capacity"}
_FILL = {
    "allocation": "flopledger fleet allocate SPEC --format json > allocation.json; "
    "flopledger serve --allocation allocation.json",
    "capacity": "flopledger fleet capacity --revenue-increase USD --format json > capacity.json; "
    "flopledger serve --capacity capacity.json",
}


def _document(con: duckdb.DuckDBPyConnection, kind: str, path: Path | None) -> tuple[Any, str] | None:
    if path is not None:
        try:
            return json.loads(path.read_text("utf-8")), str(path)
        except FileNotFoundError as exc:
            raise InputError(f"no such {kind} file; write it with `{_FILL[kind]}`", path=str(path)) from exc
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not JSON ({exc.msg}); write it with `{_FILL[kind]}`", path=str(path), line=exc.lineno
            ) from exc
    row = con.execute("SELECT value FROM meta WHERE key = ? LIMIT 1", [META_KEYS[kind]]).fetchone()
    if row is None or row[0] is None:
        return None
    try:
        return json.loads(row[0]), f"ledger meta {META_KEYS[kind]}"
    except json.JSONDecodeError as exc:
        raise InputError(
            f"ledger meta key {META_KEYS[kind]} is not JSON: {exc.msg}", field=META_KEYS[kind]
        ) from exc


def _section(doc: Any, name: str) -> list[dict[str, Any]]:
    body = doc.get(name) if isinstance(doc, dict) else None
    return [r for r in body if isinstance(r, dict)] if isinstance(body, list) else []


def fleet_page(con: duckdb.DuckDBPyConnection, config: WebConfig) -> dict[str, Any]:
    """Allocation summary, pools (shadow price per accelerator-hour), workloads (demand shadow
    price) and capacity results; an empty section says which command fills it."""
    out: dict[str, Any] = {}
    found = _document(con, "allocation", config.allocation)
    if found is None:
        out["allocation"] = {"available": False, "how_to_fill": _FILL["allocation"]}
    else:
        doc, source = found
        summary = doc.get("summary") if isinstance(doc, dict) else None
        out["allocation"] = {
            "available": True,
            "source": source,
            "summary": summary if isinstance(summary, dict) else {},
            "pools": _section(doc, "pools"),
            "workloads": _section(doc, "workloads"),
            "supplier_loss": _section(doc, "supplier_loss"),
        }
    found = _document(con, "capacity", config.capacity)
    if found is None:
        out["capacity"] = {"available": False, "how_to_fill": _FILL["capacity"]}
    else:
        doc, source = found
        out["capacity"] = {"available": True, "source": source, "results": _section(doc, "results")}
    return out
