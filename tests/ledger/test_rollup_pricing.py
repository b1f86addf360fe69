"""Aggregate-then-price equals price-every-event-then-aggregate, on random events and price tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flopledger.catalog.overrides import load_overrides
from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.report import report_expr
from flopledger.ledger.rollup_pricing import price_breaks, priced_rollup
from flopledger.ledger.store import open_ledger

from .conftest import write_jsonl

_MODELS = [
    ("anthropic", "claude-sonnet-4-5"),  # a long-context tier at 200k input tokens
    ("anthropic", "claude-sonnet-4-6"),
    ("openai", "gpt-5-mini"),
    ("deepseek", "deepseek-chat"),  # off-peak hours: time-of-day breakpoints
    ("acme", "unknown-model"),
]
_SECOND_PROVIDERS = [
    ("openrouter", "gpt-5-mini"),  # a model logged under a second provider: it no longer names one
    (None, "deepseek-chat"),  # and one logged without a provider besides with one
]

_KEYS: dict[str, Any] = {
    "team": lambda t: t.team,
    "model": lambda t: t.model,
    "provider": lambda t: t.provider,
    "day": lambda t: t.ts.truncate("D").cast("date").name("day"),  # as report_expr writes it
    "day_cast": lambda t: t.ts.date().name("day"),  # the same day, written as a plain cast
    "hour": lambda t: t.ts.truncate("h").name("hour"),
}
# With a day key the rollup reuses it; without one it adds its own day to settle the time buckets.
_KEY_SETS = [("team", "model", "day"), ("team", "model", "day_cast"), ("team",), ("provider", "hour")]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "model": st.sampled_from(_MODELS + _SECOND_PROVIDERS),
                "ts": st.datetimes(min_value=dt.datetime(2026, 3, 11), max_value=dt.datetime(2026, 3, 12)),
                "team": st.sampled_from(["a", "b"]),
                "service_tier": st.sampled_from(["standard", "batch"]),
                "requests": st.one_of(st.none(), st.integers(0, 5)),
                "input_tokens": st.integers(0, 600_000),
                "cache_read_tokens": st.integers(0, 200_000),
                "cache_write_5m_tokens": st.integers(0, 50_000),
                "min_request_input_tokens": st.sampled_from([None, None, 200_001]),
                "max_request_input_tokens": st.sampled_from([None, None, 200_000, 1_000_000]),
                "output_tokens": st.integers(0, 50_000),
                "web_search_requests": st.one_of(st.none(), st.integers(0, 30)),
            }
        ),
        min_size=8,
        max_size=40,
    ),
    key_set=st.sampled_from(_KEY_SETS),
    read_map=st.booleans(),
    second=st.booleans(),
)
def test_priced_rollup_equals_per_event_pricing(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[dict[str, Any]],
    key_set: tuple[str, ...],
    read_map: bool,
    second: bool,
) -> None:
    tmp = tmp_path_factory.mktemp("rp")
    rows = []
    for e in events:
        provider, model = e.pop("model")
        if not second and (provider, model) in _SECOND_PROVIDERS:  # half the examples: one provider each
            provider, model = next(pair for pair in _MODELS if pair[1] == model)
        rows.append({**e, "provider": provider, "model": model, "ts": e["ts"].isoformat() + "Z"})
    overrides = tmp / "p.toml"
    overrides.write_text(
        '[[discount]]\nprovider = "anthropic"\npercent = 10\nvalid_from = 2026-03-11T06:30:00\n'
    )
    con = open_ledger(tmp / "l.duckdb")
    ingest_files(con, [write_jsonl(tmp / "e.jsonl", rows)], overrides=load_overrides(overrides))
    version = con.execute("SELECT max(price_version) FROM events").fetchone()[0]  # type: ignore[index]
    backend = ibis.duckdb.from_connection(con)
    prices = backend.table("prices").filter(lambda p: p.price_version == version)
    model_map = backend.table("model_map").filter(lambda m: m.price_version == version)
    events_t = backend.table("events")
    # With the model map read, a model logged under one provider only is rolled up without its
    # provider as a key (the model names it); a model logged under two keeps it.
    breaks = price_breaks(prices, lambda e: e.to_pyarrow().to_pylist(), model_map if read_map else None)
    logged: dict[str, set[str]] = {}
    for r in rows:
        logged.setdefault(r["model"], set()).add(r["provider"] or "")
    assert breaks.provider_follows_model == (read_map and all(len(p) == 1 for p in logged.values()))
    # The cases this test is for: off-peak hours, a long-context tier, a discount starting mid-morning.
    seen = {r["model"] for r in rows}
    assert "deepseek-chat" not in seen or breaks.tod_s
    if seen & {"claude-sonnet-4-5", "claude-sonnet-4-6"}:
        assert breaks.tier_tokens and any(b.time() != dt.time() for b in breaks.instants)
    dims = [k.removesuffix("_cast") for k in key_set]
    fast = priced_rollup(events_t, prices, model_map, breaks, [_KEYS[k](events_t) for k in key_set])
    slow = report_expr(events_t, dims)
    got = {tuple(r[d] for d in dims): r for r in fast.to_pyarrow().to_pylist()}
    want = {tuple(r[d] for d in dims): r for r in slow.to_pyarrow().to_pylist()}
    assert got.keys() == want.keys()
    for k, w in want.items():
        g = got[k]
        for c in ("requests", "input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "output_tokens"):
            assert g[c] == w[c], (k, c)
        assert (g["web_search_requests"] or 0) == (w["web_search_requests"] or 0), k
        assert g["cost_usd"] == pytest.approx(w["cost_usd"], rel=1e-9, abs=1e-9), k
        for c in (
            "output_tokens_cost_usd",
            "cache_write_5m_tokens_cost_usd",
            "web_search_cost_usd",
            "request_cost_usd",
        ):
            assert g[c] == pytest.approx(w[c], rel=1e-9, abs=1e-9), (k, c)
        assert g["unpriced_tokens"] == w["unpriced_tokens"]


def test_an_event_without_a_request_count_is_priced_as_one_request(tmp_path: Any) -> None:
    """Parquet read where the logs live may leave ``requests`` empty: one request, never an unpriced event."""
    from flopledger.ledger.pricing import price_events

    row = {
        "ts": "2026-03-11T10:00:00Z",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "team": "a",
        "input_tokens": 1000,
        "output_tokens": 500,
    }
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [row, {**row, "team": "b"}])])
    con.execute("UPDATE events SET requests = NULL WHERE team = 'b'")
    b = ibis.duckdb.from_connection(con)
    priced = price_events(b.table("events"), b.table("prices"), b.table("model_map"))
    costs = {r["team"]: r["cost_usd"] for r in priced.select("team", "cost_usd").to_pyarrow().to_pylist()}
    assert costs["a"] is not None and costs["b"] == pytest.approx(costs["a"], rel=1e-12)
    events = b.table("events")
    breaks = price_breaks(b.table("prices"), lambda e: e.to_pyarrow().to_pylist())
    rolled = priced_rollup(events, b.table("prices"), b.table("model_map"), breaks, [events.team])
    by_team = {r["team"]: r["cost_usd"] for r in rolled.to_pyarrow().to_pylist()}
    assert by_team == pytest.approx(costs, rel=1e-12)


def test_a_zero_request_event_does_not_push_its_group_over_a_tier(tmp_path: Any) -> None:
    """Each event's input is judged per request with 0 read as 1; a group's mean must be judged alike."""
    row = {"ts": "2026-03-11T10:00:00Z", "provider": "anthropic", "model": "claude-sonnet-4-5", "team": "a"}
    row |= {"input_tokens": 150_000, "output_tokens": 100}
    con = open_ledger(tmp_path / "l.duckdb")
    ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [{**row, "requests": 0}, {**row, "requests": 1}])])
    b = ibis.duckdb.from_connection(con)
    events = b.table("events")
    breaks = price_breaks(b.table("prices"), lambda e: e.to_pyarrow().to_pylist())
    assert 200_000 in breaks.tier_tokens
    rolled = priced_rollup(events, b.table("prices"), b.table("model_map"), breaks, [events.team])
    ((per_event,),) = con.execute("SELECT sum(cost_usd) FROM events").fetchall()
    assert rolled.to_pyarrow().to_pylist()[0]["cost_usd"] == pytest.approx(per_event, rel=1e-12)


def test_a_model_logged_under_a_second_provider_is_grouped_by_provider_again(tmp_path: Any) -> None:
    """A model's provider is joined to its groups only while the model map gives it one provider."""
    row = {"ts": "2026-03-11T10:00:00Z", "model": "gpt-5-mini", "team": "a", "input_tokens": 9_000}
    row |= {"output_tokens": 700}
    con = open_ledger(tmp_path / "l.duckdb")
    b = ibis.duckdb.from_connection(con)
    rows = lambda e: e.to_pyarrow().to_pylist()  # noqa: E731
    for n, provider in enumerate(("openai", "openrouter")):
        ingest_files(
            con, [write_jsonl(tmp_path / f"{n}.jsonl", [{**row, "provider": provider, "team": provider}])]
        )
        events, prices, model_map = b.table("events"), b.table("prices"), b.table("model_map")
        breaks = price_breaks(prices, rows, model_map)
        assert breaks.provider_follows_model == (n == 0)
        rolled = priced_rollup(events, prices, model_map, breaks, [events.team])
        got = {r["team"]: (r["cost_usd"], r["unpriced_tokens"]) for r in rows(rolled)}
        want = con.execute(
            "SELECT team, sum(coalesce(cost_usd, 0)), sum(CASE WHEN priced THEN 0 ELSE input_tokens + "
            "output_tokens END) FROM events GROUP BY team"
        ).fetchall()
        assert got.keys() == {t for t, _, _ in want}
        for team, cost, unpriced in want:
            assert got[team][0] == pytest.approx(cost, rel=1e-12) and got[team][1] == unpriced
