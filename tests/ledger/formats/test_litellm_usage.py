"""LiteLLM spend logs as its releases wrote the usage: cache writes split by TTL, and releases whose
``prompt_tokens`` held Anthropic's cache reads but not its cache writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flopledger.ledger.ingest import ingest_files
from flopledger.ledger.store import open_ledger


def _log(request_id: str, prompt: int, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "call_type": "acompletion",
        "spend": 0.01,
        "prompt_tokens": prompt,
        "completion_tokens": 100,
        "startTime": "2026-03-02T10:00:00+00:00",
        "model": "claude-sonnet-4-5",
        "custom_llm_provider": "anthropic",
        "user": "u-1",
        "metadata": {"usage_object": usage},
    }


def _stored(tmp_path: Path, *logs: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "spend.json"
    path.write_text(json.dumps(list(logs)), encoding="utf-8")
    con = open_ledger(tmp_path / "l.duckdb")
    result = ingest_files(con, [path], format="litellm")
    assert result.reconciles
    rows = con.execute(
        "SELECT request_id, input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens "
        "FROM events ORDER BY request_id"
    ).fetchall()
    reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine ORDER BY source_line").fetchall()]
    return rows, reasons


def test_cache_writes_split_by_ttl_are_priced_as_their_own_class(tmp_path: Path) -> None:
    split = {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 19_000}
    rows, reasons = _stored(
        tmp_path,
        _log("a", 25_000, {"cache_creation_input_tokens": 20_000, "cache_creation_token_details": split}),
        _log(  # the split under prompt_tokens_details, the total there too
            "b",
            25_000,
            {
                "prompt_tokens_details": {
                    "cache_creation_tokens": 20_000,
                    "cache_creation_token_details": split,
                }
            },
        ),
        _log(  # more in the hour's writes than in all of them: inconsistent, quarantined
            "c",
            25_000,
            {
                "cache_creation_input_tokens": 100,
                "cache_creation_token_details": {"ephemeral_1h_input_tokens": 19_000},
            },
        ),
    )
    assert rows == [("a", 5_000, 0, 1_000, 19_000), ("b", 5_000, 0, 1_000, 19_000)]
    assert reasons == [
        "metadata.usage_object.cache_creation_token_details.ephemeral_1h_input_tokens (19000) "
        "exceed the cache writes (100)"
    ]
    # a whole split that does not sum to the total is no split of it
    _, said = _stored(
        tmp_path / "d",
        _log(
            "d",
            25_000,
            {
                "cache_creation_input_tokens": 20_000,
                "cache_creation_token_details": {
                    "ephemeral_5m_input_tokens": 100,
                    "ephemeral_1h_input_tokens": 100,
                },
            },
        ),
    )
    assert said == [
        "metadata.usage_object.cache_creation_token_details sums to 200, not the 20000 cache writes of "
        "metadata.usage_object.cache_creation_input_tokens"
    ]


def test_prompt_tokens_holding_the_reads_but_not_the_writes_are_read_so(tmp_path: Path) -> None:
    rows, reasons = _stored(
        tmp_path,
        # LiteLLM issue 11364: 30946 = 6 uncached + 30940 read; the 460 written are outside
        _log("old", 30_946, {"cache_read_input_tokens": 30_940, "cache_creation_input_tokens": 460}),
        # a later release: 98805 = 10 uncached + 66360 read + 32435 written
        _log("new", 98_805, {"cache_read_input_tokens": 66_360, "cache_creation_input_tokens": 32_435}),
        _log("bad", 100, {"cache_read_input_tokens": 110}),  # reads beyond the prompt: no release wrote it
    )
    assert rows == [("new", 10, 66_360, 32_435, 0), ("old", 6, 30_940, 460, 0)]
    assert reasons == [
        "cache reads (110) exceed prompt_tokens (100); LiteLLM's prompt_tokens includes cached tokens"
    ]
