"""Budgets on the overview: the ledger's own :func:`check_budgets`, run on the daily rollup.

The rollup has every column the budget check reads (team, user, model, token and cost columns, the
price segment), so a temporary view over it, with ``ts`` at each day's midnight, stands in for the
events table and the check stays fast on a large ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import ibis

from flopledger.errors import FlopledgerError
from flopledger.ledger.budgets import check_budgets, load_budgets
from flopledger.ledger.spark import Engine
from flopledger.web.queries import Scope, rollup_as_events, rollup_source

__all__ = ["budget_rows"]

_VIEW = "web_budget_days"


def budget_rows(con: duckdb.DuckDBPyConnection, scope: Scope, path: Path | None) -> dict[str, Any]:
    """``{"configured": bool, "rows": [...]}`` (and an ``error`` when the budgets file cannot be
    read now); a viewer sees its own team's budget only."""
    if path is None:
        return {
            "configured": False,
            "rows": [],
            "hint": "start `flopledger serve --budgets BUDGETS.toml` to compare the forecast with budgets",
        }
    try:  # an edited (or removed) file is read on each request: a mistake in it stays in this section
        budgets = load_budgets(path)
    except FlopledgerError as exc:
        return {
            "configured": True,
            "rows": [],
            "error": f"{exc}; the overview reads the budgets file again once it is fixed",
        }
    if scope.team is not None:
        budgets = tuple(b for b in budgets if b.scope == "team" and b.name == scope.team)
    if not budgets:
        return {"configured": True, "rows": []}
    cur = con.cursor()
    try:
        cur.execute(f"CREATE OR REPLACE TEMP VIEW {_VIEW} AS {rollup_as_events(rollup_source(cur))}")
        engine = Engine("duckdb", ibis.duckdb.from_connection(cur), _VIEW)
        has_spend = cur.execute(f"SELECT count(*) FROM {_VIEW} WHERE cost_usd IS NOT NULL").fetchone()
        if not has_spend or not has_spend[0]:
            return {"configured": True, "rows": []}
        return {"configured": True, "rows": [s.as_row() for s in check_budgets(engine, budgets)]}
    finally:
        cur.close()
