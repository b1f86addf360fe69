"""The price table: the ``genai-prices`` catalog flattened into rows that join in bulk.

Each row gives the USD per million tokens of every token class for one catalog model, service
tier, validity window (start dates and time-of-day windows such as off-peak hours) and long-context
tier. Rows are derived by asking ``genai-prices`` itself what one million tokens of each class
cost under each resolved price, so the flattened table agrees with its per-request ``calc_price``
by construction; the test suite checks that agreement on random requests.

Flattening is lazy and memoised: only models that appear in the ledger are flattened, once per
process and, across processes, once per catalog version: the flat rows and model resolutions are
kept in a JSON file under the user cache directory (``$XDG_CACHE_HOME/flopledger``, else
``~/.cache/flopledger``), named by a digest of the ``genai-prices`` version and of this module and
its package data, so a new catalog or a change to the flattening never reads stale rows. A cache
hit does not load the ``genai-prices`` catalog at all. New entries are written once per batch
(:func:`save_catalog_cache`, which ingest calls) and at exit. The cache is best effort: an
unreadable or unwritable file is ignored and the rows are derived again.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterator, Mapping
from copy import copy
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from flopledger.catalog.overrides import PriceOverrides, trimmed_name
from flopledger.catalog.price_cache import DiskCache, cache_file, digest_of, load_cache

__all__ = [
    "CATALOG_VERSION",
    "FAR_FUTURE",
    "FAR_PAST",
    "GATEWAY_VENDORS",
    "MAPPING_RULES",
    "PRICE_CLASSES",
    "PRICE_ROW_KEYS",
    "TIER_ABOVE_ALL",
    "TIER_BELOW_ALL",
    "TIER_CONTEXTS",
    "PriceRow",
    "catalog_models",
    "catalog_rows",
    "resolve_catalog_model",
    "save_catalog_cache",
]

PRICE_ROW_KEYS: tuple[str, ...] = (
    "variant",
    "valid_from",
    "valid_to",
    "tod_from_s",
    "tod_to_s",
    "tier_above_tokens",
    "tier_upto_tokens",
)
"""What tells one flat price row of a catalog model from its others (in one price version)."""

FAR_PAST = dt.datetime(1900, 1, 1)
FAR_FUTURE = dt.datetime(2200, 1, 1)
TIER_BELOW_ALL = -1
"""The lower tier bound of a row for any input (a row applies above its bound)."""
TIER_ABOVE_ALL = 2**62
"""The upper tier bound of a row for any input."""
_DAY_S = 86_400
_MTOK = 1_000_000
_WEB_SEARCHES = 1_000
"""The searches a web-search price is probed with: the catalog prices them per thousand."""

PRICE_CLASSES: tuple[str, ...] = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")

TIER_CONTEXTS: Mapping[str, Mapping[str, str] | None] = {
    "standard": None,
    "batch": {"processing": "batch"},
    "priority": {"service_tier": "priority"},
    "flex": {"service_tier": "flex"},
}
"""How a canonical service tier selects a ``genai-prices`` price variant."""


def _catalog_version() -> str:
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


CATALOG_VERSION = _catalog_version()


@dataclass(frozen=True)
class PriceRow:
    """One flat price: all token classes of one model, tier, window and context-length tier."""

    provider_id: str
    model_id: str
    variant: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    tod_from_s: int
    tod_to_s: int
    tier_above_tokens: int
    tier_upto_tokens: int
    input_usd_per_mtok: float
    cache_read_usd_per_mtok: float
    cache_write_5m_usd_per_mtok: float
    cache_write_1h_usd_per_mtok: float
    output_usd_per_mtok: float
    usd_per_request: float
    usd_per_web_search: float
    discount_pct: float
    source: str
    output_reasoning_usd_per_mtok: float | None = None  # reasoning output priced apart (None: as output)

    def as_record(self, price_version: str) -> dict[str, Any]:
        record = {"price_version": price_version}
        record.update(self.__dict__)
        return record


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    return data_snapshot.get_snapshot()


@functools.lru_cache(maxsize=8192)
def resolve_catalog_model(provider: str | None, model: str) -> tuple[str, str] | None:
    """The catalog ``(provider_id, model_id)`` a logged provider and model name price as, or None.

    >>> resolve_catalog_model("anthropic", "claude-sonnet-4-20250514")
    ('anthropic', 'claude-sonnet-4-0')
    """
    provider = trimmed_name(provider or "").lower() or None  # provider ids are lower case, as the ledger's
    model = trimmed_name(model)  # as ingest stores it; a name stored with spaces by an older flopledger too
    cache = _disk_cache()
    name = f"{provider or ''}\t{model}"
    if name in cache.models:
        hit = cache.models[name]
        if hit is None:
            return None
        if isinstance(hit, list) and len(hit) == 2 and all(isinstance(h, str) for h in hit):
            return hit[0], hit[1]
    found = _resolve(provider, model)
    cache.models[name] = None if found is None else list(found)
    cache.dirty = True
    return found


SELF_HOSTED_PROVIDERS: frozenset[str] = frozenset(
    {
        "self-hosted",
        "self_hosted",
        "selfhosted",
        "local",
        "internal",
        "on-prem",
        "onprem",
        "on_prem",
        "vllm",
        "hosted_vllm",
        "ollama",
        "ollama_chat",
        "tgi",
        "sglang",
        "llamacpp",
        "llama.cpp",
        "lmstudio",
    }
)
"""Logged providers that mean the organisation's own hardware: never priced at a vendor's API rates
(declare their prices as private models in the overrides file)."""

SOLE_VENDORS: frozenset[str] = frozenset(
    {
        "anthropic",
        "openai",
        "deepseek",
        "x-ai",
        "mistral",
        "cohere",
        "moonshotai",
        "zai",
        "zhipuai",
        "minimax",
        "voyageai",
        "perplexity",
        "meta",
    }
)
"""Catalog providers whose APIs serve only their own models: a model they do not list, logged under
them, is a mislabelled row and stays unpriced rather than priced at another vendor's rates. Hosts and
resellers (google's Vertex, aws, azure, openrouter, ...) fall back to the model's own vendor."""


@functools.cache
def _batch_discounts_data() -> bytes:
    """The package's batch_discounts.yaml, read once: it is parsed and it names the cache file."""
    from importlib.resources import files

    return files("flopledger.catalog").joinpath("data/batch_discounts.yaml").read_bytes()


GATEWAY_VENDORS: dict[str, str] = {
    "gemini": "google",
    "models": "google",  # the Gemini API's resource name: models/gemini-2.5-pro
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "azure_ai": "azure",
    "xai": "x-ai",
    "mistralai": "mistral",
    "text-completion-openai": "openai",
}
"""Gateways' names of vendors (LiteLLM's ``custom_llm_provider``, a model name's ``vendor/`` prefix)
as the vendor ids the catalog and the ledger use; the other names are the vendors' own."""


@functools.cache
def _provider_ids() -> frozenset[str]:
    return frozenset(p.id for p in _snapshot().providers)


MAPPING_RULES = digest_of(
    [
        *("\n".join(sorted(names)).encode() + b"|" for names in (SELF_HOSTED_PROVIDERS, SOLE_VENDORS)),
        b"model names trimmed|",
        b"catalog models found by id|",
        b"web searches priced|",
        b"tier prices applied before their listing|",
        b"reasoning priced apart where the catalog does|",
        b"a vendor/model name priced as the vendor's model, a host's listing first|",
        "\n".join(f"{k}={v}" for k, v in sorted(GATEWAY_VENDORS.items())).encode(),
        _batch_discounts_data(),
    ]
)[:8]
"""A digest of the rules that map a logged provider to catalog models (the two sets above, a model
name matched without the whitespace around it, a catalog model found by its id, web searches priced,
a service tier's first listed price applied before the catalog's date for it, reasoning output at
its own rate where the catalog gives one) and of the published batch discounts: part of the price
version, so changing them makes ingest and ``reprice`` map every name again, and tells a ledger
priced before them from one priced after."""


def _resolve(provider: str | None, model: str) -> tuple[str, str] | None:
    snap = _snapshot()
    if provider in SELF_HOSTED_PROVIDERS:
        return None
    candidates: list[str | None] = [provider] if provider else []
    if provider not in SOLE_VENDORS:  # a host's or an unknown provider's model: its vendor's price
        candidates.append(None)
    for provider_id in candidates:
        try:
            prov, info = snap.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return prov.id, info.id
    prefix, slash, rest = model.partition("/")
    if slash and prefix and rest:  # a gateway's "vendor/model" (LiteLLM's, Portkey's, Langfuse's)
        vendor = GATEWAY_VENDORS.get(prefix.lower(), prefix.lower())
        ids = _provider_ids()
        if vendor not in ids:  # not a vendor's name (a team's fine-tunes, a local server): unpriced
            return None
        if provider in SOLE_VENDORS and vendor != provider:  # a mislabelled row, as without the prefix
            return None
        if provider in ids and provider != vendor:  # a host's own listing of the model first
            found = _resolve(provider, rest)
            if found is not None:
                return found
        return _resolve(vendor, rest)
    return None


@functools.cache
def _by_id() -> dict[tuple[str, str], tuple[Any, Any]]:
    """Every catalog model, by ``(provider_id, model_id)``: its provider and model."""
    return {(p.id, m.id): (p, m) for p in _snapshot().providers for m in p.models}


def catalog_models() -> list[tuple[str, str]]:
    """Every catalog model, as ``(provider_id, model_id)``: what discounts are matched against."""
    return list(_by_id())


def _find(provider_id: str, model_id: str) -> tuple[Any, Any, bool]:
    """The catalog provider and model of ids ``provider_id`` and ``model_id`` (as
    :func:`resolve_catalog_model` gives them), and whether the model is the provider's own.

    By id first: some models' match rules do not match their own id (``regional.anthropic...`` on
    aws, ``ft:gpt-4o-mini``, ``codestral``), only the names they are logged under.
    """
    if (found := _by_id().get((provider_id, model_id))) is not None:
        return *found, True
    prov, info = _snapshot().find_provider_model(model_id, None, provider_id, None)
    owns_model = any(info is m for m in prov.models)
    return prov, info, owns_model


def _constraints(info: Any) -> list[Any]:
    """Every constraint of a model's conditional prices and price variants."""
    found = [cp.constraint for cp in info.prices] if isinstance(info.prices, list) else []
    return found + [v.constraint for v in info.price_variants or ()]


def _date_breaks(info: Any) -> list[dt.date]:
    from genai_prices.types import StartDateConstraint

    return sorted({c.start_date for c in _constraints(info) if isinstance(c, StartDateConstraint)})


def _tod_breaks(info: Any) -> list[int]:
    from genai_prices.types import TimeOfDateConstraint, _utc_timetz

    secs: set[int] = {0, _DAY_S}
    for c in _constraints(info):
        if isinstance(c, TimeOfDateConstraint):
            for t in (_utc_timetz(c.start_time), _utc_timetz(c.end_time)):
                secs.add(t.hour * 3600 + t.minute * 60 + t.second)
    return sorted(secs)


def _tier_ranges(model_price: Any) -> list[tuple[int, int]]:
    from genai_prices.types import TieredPrices

    starts: set[int] = set()
    for value in model_price.__dict__.values():
        if isinstance(value, TieredPrices):
            starts.update(t.start for t in value.tiers)
    bounds = [TIER_BELOW_ALL, *sorted(starts)]
    upper = [*sorted(starts), TIER_ABOVE_ALL]
    return list(zip(bounds, upper, strict=True))


def _at_tier(model_price: Any, above_tokens: int) -> Any:
    """A copy of ``model_price`` with every tiered price replaced by its rate above ``above_tokens``."""
    from genai_prices.types import TieredPrices

    resolved = copy(model_price)
    for key, value in list(model_price.__dict__.items()):
        if isinstance(value, TieredPrices):
            rate = value.base
            for tier in reversed(value.tiers):
                if above_tokens >= tier.start and above_tokens >= 0:
                    rate = tier.price
                    break
            resolved.__dict__[key] = rate
    return resolved


def _probe(model_price: Any) -> tuple[dict[str, float], float | None]:
    """USD per million tokens of each class, and per request, as ``genai-prices`` computes them; and
    of reasoning output where the model prices it apart (else None)."""
    from genai_prices.types import Usage

    def total(**usage: int) -> Decimal:
        return Decimal(model_price.calc_price(Usage(**usage))["total_price"])

    fee = total()
    m = _MTOK
    probes = {
        "input": total(input_tokens=m),
        "cache_read": total(input_tokens=m, cache_read_tokens=m),
        "cache_write_5m": total(input_tokens=m, cache_write_tokens=m, cache_write_5m_tokens=m),
        "cache_write_1h": total(input_tokens=m, cache_write_tokens=m, cache_write_1h_tokens=m),
        "output": total(output_tokens=m),
    }
    rates = {f"{k}_usd_per_mtok": float(v - fee) for k, v in probes.items()}
    # reasoning is part of the output; a model may price it apart (else it is output like the rest)
    reasoning = float(total(output_tokens=m, output_reasoning_tokens=m) - fee)
    rates["usd_per_request"] = float(fee)
    rates["usd_per_web_search"] = float((total(web_searches=_WEB_SEARCHES) - fee) / _WEB_SEARCHES)
    return rates, None if reasoning == rates["output_usd_per_mtok"] else reasoning


def _cells(info: Any) -> Iterator[tuple[dt.datetime, dt.datetime, int, int]]:
    dates = _date_breaks(info)
    starts = [FAR_PAST, *(dt.datetime.combine(d, dt.time()) for d in dates)]
    ends = [*(dt.datetime.combine(d, dt.time()) for d in dates), FAR_FUTURE]
    tods = _tod_breaks(info)
    for valid_from, valid_to in zip(starts, ends, strict=True):
        for tod_from, tod_to in itertools.pairwise(tods):
            yield valid_from, valid_to, tod_from, tod_to


_BACKDATED = re.compile(r"; (\w+) price listed from (\S+) applied before it$")
"""How a price row's ``source`` says its tier price is applied before the catalog's date for it."""


def backdated_tier(source: str) -> tuple[str, str] | None:
    """(tier, day listed) of a price row whose tier price is applied before its listing, else None."""
    m = _BACKDATED.search(source)
    return (m[1], m[2]) if m else None


def _tier_prices(info: Any, at: dt.datetime, context: Mapping[str, str] | None) -> tuple[Any, dt.date | None]:
    """A model's prices at ``at`` in a service tier, and the day its tier price was listed from, where
    that price is applied before that day.

    The catalog dates every tier variant (batch, priority, flex) from the day it was added to the
    catalog, not from the day the vendor began to charge it: before that day ``get_prices`` would
    price a priority or batch request at standard rates. A tier price's first listing therefore
    applies back over the days whose standard price is the one it was listed against (a price set
    against another standard, before a price cut say, is not known: those days keep standard's, or the
    published batch discount); a later dated change of the same tier still takes effect on its own day.
    Otherwise this is ``info.get_prices``: the first matching variant sets each class.
    """
    from genai_prices.types import StartDateConstraint

    if context is None:
        return info.get_prices(at, None), None
    matching = [v for v in info.price_variants or () if all(context.get(k) == w for k, w in v.when.items())]
    if not matching or any(v.constraint is None or v.constraint.active(at) for v in matching):
        return info.get_prices(at, context), None
    starts = [v.constraint.start_date for v in matching if isinstance(v.constraint, StartDateConstraint)]
    if len(starts) != len(matching) or min(starts) <= at.date():  # a time-of-day variant, say: as listed
        return info.get_prices(at, context), None
    listed = min(starts)
    standard = info.get_prices(at, None)
    on_listing = dt.datetime.combine(listed, dt.time(), tzinfo=dt.UTC)
    if standard != info.get_prices(on_listing, None):  # a tier price is set against its day's standard
        return info.get_prices(at, context), None
    overrides: dict[str, Any] = {}
    for v in matching:
        if v.constraint.start_date == listed:
            for key, price in v.prices.__dict__.items():
                if price is not None:
                    overrides.setdefault(key, price)
    resolved = copy(standard)
    resolved.__dict__.update(overrides)
    return resolved, listed


@dataclass(frozen=True)
class BatchDiscount:
    provider: str
    percent: float
    source: str
    as_of: str


@functools.cache
def batch_discounts() -> dict[str, BatchDiscount]:
    """Published batch discounts by provider (package data), used where the catalog has no batch price."""
    import yaml

    raw = yaml.safe_load(_batch_discounts_data().decode("utf-8"))
    out = {}
    for entry in raw:
        d = BatchDiscount(
            str(entry["provider"]), float(entry["percent"]), str(entry["source"]), str(entry["as_of"])
        )
        if not 0 <= d.percent <= 100:
            raise ValueError(f"batch_discounts.yaml: percent {d.percent} for {d.provider} is not in 0..100")
        out[d.provider] = d
    return out


_RATE_FIELDS = (
    "input_usd_per_mtok",
    "cache_read_usd_per_mtok",
    "cache_write_5m_usd_per_mtok",
    "cache_write_1h_usd_per_mtok",
    "output_usd_per_mtok",
)


def _with_batch_fallback(rows: list[PriceRow]) -> list[PriceRow]:
    """Batch rows identical to their standard row get the provider's published batch discount."""
    standard = {(r.valid_from, r.tod_from_s, r.tier_above_tokens): r for r in rows if r.variant == "standard"}
    out = []
    for r in rows:
        base = standard.get((r.valid_from, r.tod_from_s, r.tier_above_tokens))
        discount = batch_discounts().get(r.provider_id)
        same = base is not None and all(
            getattr(r, f) == getattr(base, f) for f in (*_RATE_FIELDS, "output_reasoning_usd_per_mtok")
        )
        if r.variant == "batch" and same and discount is not None:
            keep = 1.0 - discount.percent / 100.0
            r = replace(
                r,
                source=(
                    f"{r.source}; batch at {100 - discount.percent:g}% ({discount.source}, {discount.as_of})"
                ),
                **{f: getattr(r, f) * keep for f in _RATE_FIELDS},
                output_reasoning_usd_per_mtok=(
                    None
                    if r.output_reasoning_usd_per_mtok is None
                    else r.output_reasoning_usd_per_mtok * keep
                ),
            )
        out.append(r)
    return out


@functools.lru_cache(maxsize=4096)
def _catalog_rows_cached(provider_id: str, model_id: str) -> tuple[PriceRow, ...]:
    cache = _disk_cache()
    name = f"{provider_id}\t{model_id}"
    try:
        return tuple(_row_from_json(r) for r in cache.rows[name])
    except (KeyError, TypeError, ValueError):  # not cached yet, or a damaged entry: derive the rows
        pass
    rows = _flatten(provider_id, model_id)
    cache.rows[name] = [_row_to_json(r) for r in rows]
    cache.dirty = True
    return rows


def _flatten(provider_id: str, model_id: str) -> tuple[PriceRow, ...]:
    prov, info, owns_model = _find(provider_id, model_id)
    rows: list[PriceRow] = []
    for valid_from, valid_to, tod_from, tod_to in _cells(info):
        probe_day = valid_from if valid_from != FAR_PAST else dt.datetime(2000, 1, 1)
        at = probe_day.replace(tzinfo=dt.UTC) + dt.timedelta(seconds=tod_from)
        for variant, context in TIER_CONTEXTS.items():
            model_price, listed = _tier_prices(info, at, context if owns_model else None)
            source = CATALOG_VERSION
            if listed is not None:
                source += (
                    f"; {variant} price listed from {listed.isoformat()} applied before it"  # _BACKDATED
                )
            for above, upto in _tier_ranges(model_price):
                rates, reasoning = _probe(_at_tier(model_price, above))
                rows.append(
                    PriceRow(
                        provider_id=prov.id,
                        model_id=info.id,
                        variant=variant,
                        valid_from=valid_from,
                        valid_to=valid_to,
                        tod_from_s=tod_from,
                        tod_to_s=tod_to,
                        tier_above_tokens=above,
                        tier_upto_tokens=upto,
                        discount_pct=0.0,
                        source=source,
                        output_reasoning_usd_per_mtok=reasoning,
                        **rates,
                    )
                )
    return tuple(_with_batch_fallback(rows))


_TIMES = ("valid_from", "valid_to")


def _row_to_json(row: PriceRow) -> dict[str, Any]:
    return {k: v.isoformat() if k in _TIMES else v for k, v in row.__dict__.items()}


def _row_from_json(raw: Mapping[str, Any]) -> PriceRow:
    fields: dict[str, Any] = {k: dt.datetime.fromisoformat(v) if k in _TIMES else v for k, v in raw.items()}
    return PriceRow(**fields)


def _cache_path() -> Path | None:
    """The cache file of this catalog version, this flattening code and its package data."""
    data = _batch_discounts_data()
    return cache_file(digest_of([CATALOG_VERSION.encode(), Path(__file__).read_bytes(), data]))


@functools.cache
def _disk_cache() -> DiskCache:
    return load_cache(_cache_path())


def save_catalog_cache() -> None:
    """Write the models resolved and flattened so far to the cache file, once for a whole batch
    (and, for whatever a process derived after its last batch, at exit)."""
    if _disk_cache.cache_info().currsize:
        _disk_cache().save()


atexit.register(save_catalog_cache)


def catalog_rows(provider_id: str, model_id: str, overrides: PriceOverrides | None = None) -> list[PriceRow]:
    """Flat price rows of one catalog model, with negotiated discounts from ``overrides`` applied.

    Private models declared in the overrides file are returned from there.
    """
    if overrides is not None and (private := overrides.private_rows(provider_id, model_id)):
        return private
    try:
        rows = list(_catalog_rows_cached(provider_id, model_id))
    except (LookupError, ValueError):
        return []
    if overrides is None:
        return rows
    out: list[PriceRow] = []
    for row in rows:
        for start, end, pct in overrides.discount_windows(row.provider_id, row.model_id, row.variant):
            lo, hi = max(row.valid_from, start), min(row.valid_to, end)
            if lo < hi:
                out.append(replace(row, valid_from=lo, valid_to=hi, discount_pct=pct))
    return out
