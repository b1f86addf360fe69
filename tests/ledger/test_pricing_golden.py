"""Golden pricing cases, and the bulk price join against genai-prices' per-request calc_price."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopledger.catalog.overrides import load_overrides
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger

from .conftest import oracle_cost_usd, write_jsonl

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "golden" / "pricing" / "cases.yaml").read_text(encoding="utf-8")
)


def _priced(
    tmp_path: Path, events: list[dict[str, Any]], overrides: Path | None = None
) -> list[dict[str, Any]]:
    rows = [{**e, "request_id": f"req-{i}"} for i, e in enumerate(events)]
    path = write_jsonl(tmp_path / "events.jsonl", rows)
    con = open_ledger(tmp_path / "ledger.duckdb")
    ingest_files(con, [path], overrides=load_overrides(overrides))
    cur = con.execute("SELECT request_id, cost_usd, priced, price_version FROM events ORDER BY source_line")
    names = [d[0] for d in cur.description]
    out = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(tmp_path: Path, case: dict[str, Any]) -> None:
    (row,) = _priced(tmp_path, [case["event"]])
    expected = case["expected_cost_usd"]
    if expected is None:
        assert row["cost_usd"] is None and row["priced"] is False
        return
    assert row["priced"] is True and row["price_version"]
    assert row["cost_usd"] == pytest.approx(expected, abs=0.005)
    if case.get("oracle"):
        assert row["cost_usd"] == pytest.approx(
            oracle_cost_usd(case["event"], case.get("oracle_at")) * case.get("oracle_factor", 1.0), abs=0.005
        )


@pytest.mark.parametrize("provider", ["anthropic", "Anthropic"])  # provider ids are lower case
def test_negotiated_discount_applies_from_its_date(tmp_path: Path, provider: str) -> None:
    overrides = tmp_path / "prices.toml"
    overrides.write_text(f'[[discount]]\nprovider = "{provider}"\npercent = 20\nvalid_from = 2026-03-10\n')
    base = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": 100_000}
    before, after = _priced(
        tmp_path, [{**base, "ts": "2026-03-09T23:00:00Z"}, {**base, "ts": "2026-03-10T01:00:00Z"}], overrides
    )
    assert before["cost_usd"] == pytest.approx(0.3)
    assert after["cost_usd"] == pytest.approx(0.24)
    assert before["price_version"] == after["price_version"] and "overrides" in after["price_version"]


def test_two_private_prices_of_one_model_whose_dates_overlap_price_each_event_once(tmp_path: Path) -> None:
    """Where two [[model]] entries of one model overlap in time the later in the file holds, as for
    discounts: each event is priced (and stored) once."""
    overrides = tmp_path / "prices.toml"
    overrides.write_text(
        '[[model]]\nprovider = "self-hosted"\nmodel = "mymodel"\ninput_usd_per_mtok = 1.0\n'
        "output_usd_per_mtok = 1.0\nvalid_to = 2026-10-01\n\n"
        '[[model]]\nprovider = "self-hosted"\nmodel = "mymodel"\ninput_usd_per_mtok = 2.0\n'
        "output_usd_per_mtok = 2.0\nvalid_from = 2026-09-15\nvalid_to = 2026-09-25\n"
    )
    base = {"provider": "self-hosted", "model": "mymodel", "input_tokens": 1_000_000}
    days = ["2026-09-01", "2026-09-20", "2026-09-28", "2026-10-05"]
    rows = _priced(tmp_path, [{**base, "ts": f"{d}T10:00:00Z"} for d in days], overrides)
    # before the second entry, in it, after it (the first again), after both (unpriced)
    assert [r["cost_usd"] for r in rows] == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(1.0), None]


_MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-5"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4-6"),
]
_counts = st.integers(min_value=0, max_value=400_000)


def _events(since: dt.datetime, **more: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of events of :data:`_MODELS` from ``since`` to the end of November 2026, with ``more``
    fields beside the token counts."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "model": st.sampled_from(_MODELS),
        "ts": st.datetimes(min_value=since, max_value=dt.datetime(2026, 11, 30)),
        "input_tokens": _counts,
        "cache_read_tokens": _counts,
        "output_tokens": st.integers(min_value=0, max_value=60_000),
    }
    return st.lists(st.fixed_dictionaries({**fields, **more}), min_size=1, max_size=12)


_PROPERTY = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_PROPERTY
@given(
    events=_events(
        dt.datetime(2025, 6, 1),
        cache_write_5m_tokens=_counts,
        web_search_requests=st.integers(min_value=0, max_value=40),
    )
)
def test_bulk_price_join_matches_per_request_calc_price(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]
) -> None:
    _check_against_calc_price(tmp_path_factory.mktemp("prop"), events)


def _check_against_calc_price(
    tmp: Path, events: list[dict[str, Any]], at: Callable[[dict[str, Any]], str | None] = lambda e: None
) -> None:
    """Ingest generated events (``model`` a (provider, model) pair, ``ts`` naive UTC) and check each
    one's cost against ``calc_price`` at ``at(event)`` (default: the event's own time)."""
    canonical = []
    for e in events:
        provider, model = e.pop("model")
        if provider == "openai" and "cache_write_5m_tokens" in e:
            e["cache_write_5m_tokens"] = 0  # OpenAI bills no cache writes
        canonical.append({**e, "provider": provider, "model": model, "ts": e["ts"].isoformat() + "Z"})
    rows = _priced(tmp, canonical)
    for event, row in zip(canonical, rows, strict=True):
        assert row["cost_usd"] == pytest.approx(oracle_cost_usd(event, at(event)), abs=0.005), event


_LISTED = "2026-10-16T00:00:00Z"  # the catalog lists every tier price of these models by this day
# the standard prices of these models are those they were listed against from this day on (before
# it, claude-sonnet-4-6's long-context tier; the golden cases hold the days before a change)
_SAME_STANDARD = dt.datetime(2026, 3, 13)


def _lists_tier(provider: str, model: str, tier: str) -> bool:
    """Whether the catalog has a price of its own for the model in the tier (else standard's applies)."""
    from genai_prices import data_snapshot

    from flopledger.catalog.prices import TIER_CONTEXTS

    context = TIER_CONTEXTS[tier] or {}
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    return any(all(context.get(k) == w for k, w in v.when.items()) for v in info.price_variants or ())


@_PROPERTY
@given(events=_events(_SAME_STANDARD, service_tier=st.sampled_from(["batch", "priority", "flex"])))
def test_a_tier_is_priced_at_its_listed_price_before_the_catalog_lists_it(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]
) -> None:
    """The catalog dates batch, priority and flex prices from the day it added them: a request of that
    tier before then, on a day of the same standard price, is priced as ``calc_price`` prices it on
    that day, not at standard rates."""

    def at(event: dict[str, Any]) -> str:
        listed = _lists_tier(event["provider"], event["model"], event["service_tier"])
        return max(event["ts"], _LISTED) if listed else event["ts"]  # ISO strings of one form order as times

    _check_against_calc_price(tmp_path_factory.mktemp("tiers"), events, at)
