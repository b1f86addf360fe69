"""Schemathesis against /openapi.json: generated requests to every operation, zero server errors.

Bounded: a few examples per operation, for an admin and for a viewer. Cases are drawn from each
operation's Hypothesis strategy directly (schemathesis' own pytest plugin does not load under this
pytest version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from flopledger.web import create_app
from flopledger.web.state import ServerState

if TYPE_CHECKING:
    from tests.web.conftest import Fixture

EXAMPLES_PER_OPERATION = 8


@pytest.fixture(scope="module")
def operations(state: ServerState) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(state.config, state=state))
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 10
    return ops


@pytest.mark.parametrize("role", ["admin", "agents"])
def test_no_server_errors(operations: list[Any], golden: Fixture, role: str) -> None:
    headers = {"Authorization": f"Bearer {golden.tokens[role]}"}
    seen: dict[str, set[int]] = {}
    for op in operations:
        _fuzz(op, headers, seen)
    assert len(seen) == len(operations)
    assert all(code < 500 for codes in seen.values() for code in codes), seen


def _fuzz(op: Any, headers: dict[str, str], seen: dict[str, set[int]]) -> None:
    @given(case=op.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        seen.setdefault(op.label, set()).add(response.status_code)

    run()
