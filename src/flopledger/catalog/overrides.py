"""The local price overrides file: negotiated discounts and prices of private or self-hosted models.

Example ``flopledger-prices.toml``::

    [[discount]]
    provider = "anthropic"          # catalog provider id (optional)
    model = "claude-sonnet-4*"      # glob over the catalog model id (optional: every model)
    percent = 12.5
    service_tier = ["standard", "priority"]   # optional: the tiers it applies to (default: every one)
    valid_from = 2026-01-01         # optional, inclusive
    valid_to = 2027-01-01           # optional, exclusive

    [[model]]
    provider = "internal"
    model = "llama-3.1-70b-selfhosted"   # as it appears in the logs
    input_usd_per_mtok = 0.35
    output_usd_per_mtok = 0.70
    cache_read_usd_per_mtok = 0.035      # optional, defaults to the input price
    usd_per_web_search = 0.01            # optional, a server-side web search (default 0)
    valid_from = 2026-01-01              # optional
    source = "internal chargeback rate, 2026"

docs/prices.md has every key and the rules they follow.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import itertools
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flopledger.errors import ConfigError

NAME_WHITESPACE = " \t\n\r\x0b\x0c"
"""What a name is trimmed of wherever it is matched: ASCII whitespace, as ingest trims names in SQL
(a no-break space is part of a name, there and here)."""


def trimmed_name(value: str) -> str:
    """``value`` without the :data:`NAME_WHITESPACE` around it."""
    return value.strip(NAME_WHITESPACE)


if TYPE_CHECKING:
    from flopledger.catalog.prices import PriceRow

__all__ = ["PRIVATE_PROVIDER_PREFIX", "PriceOverrides", "load_overrides"]

PRIVATE_PROVIDER_PREFIX = "private:"
_PAST = dt.datetime(1900, 1, 1)
_FUTURE = dt.datetime(2200, 1, 1)


def _as_datetime(value: dt.date | dt.datetime | None, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.combine(value, dt.time())


def _provider_id(value: str | None) -> str | None:
    """Providers are lower case in the catalog and in the ledger: "Anthropic" means anthropic."""
    return trimmed_name(value).lower() or None if value is not None else None


_SERVICE_TIERS = ("standard", "batch", "priority", "flex")  # as flopledger.ledger.schema names them


class _Discount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = None
    model: str = "*"
    percent: float = Field(ge=0, le=100)
    service_tier: tuple[str, ...] | None = None  # the tiers it applies to (absent: every tier)
    valid_from: dt.date | dt.datetime | None = None
    valid_to: dt.date | dt.datetime | None = None

    _provider = field_validator("provider")(_provider_id)

    @field_validator("service_tier", mode="before")
    @classmethod
    def _tiers(cls, value: Any) -> tuple[str, ...] | None:
        """One tier or a list of them, each one flopledger knows."""
        if value is None:
            return None
        tiers = [value] if isinstance(value, str) else value
        if not isinstance(tiers, list | tuple) or not tiers:
            raise ValueError("service_tier is a tier or a list of tiers: standard, batch, priority, flex")
        out = []
        for tier in tiers:
            name = trimmed_name(str(tier)).lower()
            if name not in _SERVICE_TIERS:
                raise ValueError(f"service_tier {tier!r} is not one of {', '.join(_SERVICE_TIERS)}")
            out.append(name)
        return tuple(out)


class _PrivateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = None
    model: str
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    output_reasoning_usd_per_mtok: float | None = Field(default=None, ge=0)  # None: reasoning as output
    cache_read_usd_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_5m_usd_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_1h_usd_per_mtok: float | None = Field(default=None, ge=0)
    usd_per_request: float = Field(default=0.0, ge=0)
    usd_per_web_search: float = Field(default=0.0, ge=0)
    valid_from: dt.date | dt.datetime | None = None
    valid_to: dt.date | dt.datetime | None = None
    source: str = "overrides file"

    _provider = field_validator("provider")(_provider_id)

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        """Names are matched without the whitespace around them, as ingest stores them."""
        name = trimmed_name(value)
        if not name:
            raise ValueError("a private model needs a name")
        return name


class _OverridesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    discount: list[_Discount] = []
    model: list[_PrivateModel] = []

    @model_validator(mode="after")
    def _windows_ordered(self) -> _OverridesFile:
        entries: list[_Discount | _PrivateModel] = [*self.discount, *self.model]
        for entry in entries:
            start = _as_datetime(entry.valid_from, _PAST)
            end = _as_datetime(entry.valid_to, _FUTURE)
            if start >= end:
                raise ValueError(f"valid_from {start} is not before valid_to {end} for model {entry.model!r}")
        return self


def _uncovered(
    window: tuple[dt.datetime, dt.datetime], others: Sequence[tuple[dt.datetime, dt.datetime]]
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The parts of ``window`` (from, to: to exclusive) that none of ``others`` covers, in order.

    >>> d = lambda day: dt.datetime(2026, 9, day)
    >>> [(lo.day, hi.day) for lo, hi in _uncovered((d(1), d(30)), [(d(10), d(20))])]
    [(1, 10), (20, 30)]
    """
    pieces = [window]
    for start, end in others:
        pieces = [
            piece
            for lo, hi in pieces
            for piece in ((lo, min(hi, start)), (max(lo, end), hi))
            if piece[0] < piece[1]
        ]
    return pieces


@dataclass(frozen=True)
class PriceOverrides:
    """Parsed overrides; ``digest`` identifies them inside the price version."""

    discounts: tuple[_Discount, ...]
    private_models: tuple[_PrivateModel, ...]
    digest: str

    @classmethod
    def empty(cls) -> PriceOverrides:
        return cls((), (), "none")

    def private_key(self, provider: str | None, model: str) -> tuple[str, str] | None:
        """The price key of a logged model declared private in this file, if it is."""
        model = trimmed_name(model)
        for m in self.private_models:
            if m.model == model and (m.provider is None or provider is None or m.provider == provider):
                return f"{PRIVATE_PROVIDER_PREFIX}{m.provider or '*'}", m.model
        return None

    def private_rows(self, provider_id: str, model_id: str) -> list[PriceRow]:
        from flopledger.catalog.prices import TIER_ABOVE_ALL, TIER_BELOW_ALL, PriceRow

        if not provider_id.startswith(PRIVATE_PROVIDER_PREFIX):
            return []
        provider = provider_id.removeprefix(PRIVATE_PROVIDER_PREFIX)
        rows = []
        entries = [m for m in self.private_models if m.model == model_id and (m.provider or "*") == provider]
        for i, m in enumerate(entries):
            cache_read = m.cache_read_usd_per_mtok
            write_5m = m.cache_write_5m_usd_per_mtok
            write_1h = m.cache_write_1h_usd_per_mtok
            # where two entries' dates overlap, the later one in the file holds (as for discounts)
            later = [
                (_as_datetime(n.valid_from, _PAST), _as_datetime(n.valid_to, _FUTURE))
                for n in entries[i + 1 :]
            ]
            own = (_as_datetime(m.valid_from, _PAST), _as_datetime(m.valid_to, _FUTURE))
            for (valid_from, valid_to), variant in itertools.product(_uncovered(own, later), _SERVICE_TIERS):
                rows.append(
                    PriceRow(
                        provider_id=provider_id,
                        model_id=model_id,
                        variant=variant,
                        valid_from=valid_from,
                        valid_to=valid_to,
                        tod_from_s=0,
                        tod_to_s=86_400,
                        tier_above_tokens=TIER_BELOW_ALL,
                        tier_upto_tokens=TIER_ABOVE_ALL,
                        input_usd_per_mtok=m.input_usd_per_mtok,
                        cache_read_usd_per_mtok=m.input_usd_per_mtok if cache_read is None else cache_read,
                        cache_write_5m_usd_per_mtok=m.input_usd_per_mtok if write_5m is None else write_5m,
                        cache_write_1h_usd_per_mtok=m.input_usd_per_mtok if write_1h is None else write_1h,
                        output_usd_per_mtok=m.output_usd_per_mtok,
                        usd_per_request=m.usd_per_request,
                        usd_per_web_search=m.usd_per_web_search,
                        discount_pct=0.0,
                        source=m.source,
                        output_reasoning_usd_per_mtok=m.output_reasoning_usd_per_mtok,
                    )
                )
        return rows

    def unmatched_discounts(self, catalog: Iterable[tuple[str, str]]) -> list[str]:
        """What each discount that matches no model of ``catalog`` (its ``(provider_id, model_id)``
        pairs) says of itself: a typo, or a logged name where the catalog's id is matched."""
        models = list(catalog)
        unmatched = []
        for d in self.discounts:
            if not any(
                (d.provider is None or d.provider == provider) and fnmatch.fnmatchcase(model, d.model)
                for provider, model in models
            ):
                unmatched.append(f"provider={d.provider or 'any'!s} model={d.model!r} ({d.percent:g}%)")
        return unmatched

    def discount_windows(
        self, provider_id: str, model_id: str, service_tier: str | None = None
    ) -> list[tuple[dt.datetime, dt.datetime, float]]:
        """Consecutive windows covering all time, each with the discount in force (0 where none), for
        one service tier (None: the discounts that name no tier).

        Where two discounts overlap, the later entry in the file wins.
        """
        applicable = [
            d
            for d in self.discounts
            if (d.provider is None or d.provider == provider_id)
            and fnmatch.fnmatchcase(model_id, d.model)
            and (d.service_tier is None or service_tier in d.service_tier)
        ]
        cuts = {_PAST, _FUTURE}
        for d in applicable:
            cuts.add(_as_datetime(d.valid_from, _PAST))
            cuts.add(_as_datetime(d.valid_to, _FUTURE))
        edges = sorted(cuts)
        windows: list[tuple[dt.datetime, dt.datetime, float]] = []
        for lo, hi in itertools.pairwise(edges):
            pct = 0.0
            for d in applicable:
                if _as_datetime(d.valid_from, _PAST) <= lo and hi <= _as_datetime(d.valid_to, _FUTURE):
                    pct = d.percent
            if windows and windows[-1][2] == pct:
                windows[-1] = (windows[-1][0], hi, pct)
            else:
                windows.append((lo, hi, pct))
        return windows


def load_overrides(path: str | Path | None, *, required: bool = False) -> PriceOverrides:
    """Read the overrides TOML at ``path``; no path, or a missing default file, means no overrides.

    ``required``: the user named the file (an option or the environment variable), so a missing file
    is an error: pricing without it would drop every negotiated discount and private price unseen.
    """
    if path is None:
        return PriceOverrides.empty()
    p = Path(path)
    if not p.exists():
        if required:
            raise ConfigError(
                f"{p}: no such overrides file; check the path, or leave --overrides and "
                "$FLOPLEDGER_OVERRIDES unset to price at catalog rates"
            )
        return PriceOverrides.empty()
    if p.is_dir():
        raise ConfigError(f"{p} is a folder, not an overrides file: give the TOML file's path")
    try:
        raw_bytes = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the overrides file {p}: {exc.strerror or exc}") from exc
    try:
        raw: dict[str, Any] = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    try:
        parsed = _OverridesFile.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key first: the required key it was meant as is missing only because of it
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"{p}: unknown key {key!r}; docs/prices.md lists the keys of [[discount]] and [[model]]"
            ) from exc
        where = f"key {key!r}: " if key else ""
        raise ConfigError(f"{p}: {where}{first['msg'].removeprefix('Value error, ')}") from exc
    digest = hashlib.sha256(raw_bytes).hexdigest()[:12]
    return PriceOverrides(tuple(parsed.discount), tuple(parsed.model), digest)
