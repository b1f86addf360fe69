"""The flattened catalog is kept on disk per catalog version and read back without genai-prices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flopledger.catalog import prices


def _forget_in_process() -> None:
    prices._disk_cache.cache_clear()
    prices._catalog_rows_cached.cache_clear()
    prices.resolve_catalog_model.cache_clear()


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _forget_in_process()
    yield tmp_path
    _forget_in_process()


def _no_catalog() -> None:
    raise AssertionError("the genai-prices catalog was loaded on a cache hit")


def test_second_process_reads_rows_and_resolutions_from_the_cache(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = prices.resolve_catalog_model("anthropic", "claude-sonnet-4-5")
    assert key is not None
    cold = prices.catalog_rows(*key)
    assert prices.resolve_catalog_model("acme", "no-such-model") is None
    assert not (cache_home / "flopledger").exists()  # written once for the batch, not per model
    prices.save_catalog_cache()
    files = list((cache_home / "flopledger").glob("catalog-*.json"))
    assert len(files) == 1
    _forget_in_process()  # as a fresh process would start
    monkeypatch.setattr(prices, "_snapshot", _no_catalog)
    assert prices.resolve_catalog_model("anthropic", "claude-sonnet-4-5") == key
    assert prices.resolve_catalog_model("acme", "no-such-model") is None
    assert prices.catalog_rows(*key) == cold
    assert any(r.tier_above_tokens > 0 for r in cold)  # the tiered rows made the round trip


def test_a_damaged_cache_file_is_ignored_and_rewritten(cache_home: Path) -> None:
    key = prices.resolve_catalog_model("openai", "gpt-5-mini")
    assert key is not None
    want = prices.catalog_rows(*key)
    prices.save_catalog_cache()
    (path,) = (cache_home / "flopledger").glob("catalog-*.json")
    damaged = {"models": {"openai\tgpt-5-mini": 7}, "rows": {"\t".join(key): [{"x": 1}]}}
    path.write_text(json.dumps(damaged))
    _forget_in_process()
    assert prices.resolve_catalog_model("openai", "gpt-5-mini") == key
    assert prices.catalog_rows(*key) == want
    path.write_text("not json")
    _forget_in_process()
    assert prices.catalog_rows(*key) == want
    prices.save_catalog_cache()
    assert path.read_text().startswith("{")


def test_the_cache_file_is_named_by_catalog_version_and_flattening_code(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prices._cache_path()
    assert first is not None and first.parent == cache_home / "flopledger"
    assert prices._cache_path() == first  # the same code and catalog: the same file
    # The flattening code changed (one comment more): rows it flattens may differ, so another file.
    edited = cache_home / "prices.py"
    edited.write_bytes(Path(prices.__file__).read_bytes() + b"\n# changed\n")
    with monkeypatch.context() as m:
        m.setattr(prices, "__file__", str(edited))
        assert prices._cache_path() not in (None, first)
    monkeypatch.setattr(prices, "CATALOG_VERSION", "genai-prices 99.0.0")
    assert prices._cache_path() != first


def test_an_unwritable_cache_directory_only_costs_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the directory should be
    _forget_in_process()
    try:
        key = prices.resolve_catalog_model("openai", "gpt-5-mini")
        assert key is not None and prices.catalog_rows(*key)
        prices.save_catalog_cache()  # cannot write: ignored
    finally:
        _forget_in_process()


def test_an_ingest_leaves_the_cache_written(cache_home: Path, tmp_path: Path) -> None:
    """Ingest resolves and flattens its models, then writes the cache once: a later process reads it."""
    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import open_ledger

    path = tmp_path / "u.jsonl"
    rows = [
        {"ts": "2026-03-02T10:00:00Z", "provider": p, "model": m, "input_tokens": 10, "output_tokens": 5}
        for p, m in (("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4.1"))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_files(open_ledger(tmp_path / "l.duckdb"), [path])
    (written,) = (cache_home / "flopledger").glob("catalog-*.json")
    cached = json.loads(written.read_text())
    assert {"anthropic\tclaude-haiku-4-5", "openai\tgpt-4.1"} <= set(cached["models"])
    assert len(cached["rows"]) >= 2
