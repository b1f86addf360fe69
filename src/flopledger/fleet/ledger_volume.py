"""Monthly token volume by class, given or read from a ledger's events table.

Build versus buy starts from what an organisation sends to vendors each month. The ledger keeps the
token classes apart (uncached input, cache reads, cache writes, output) and the cost of each, so the
vendor side of the comparison is the bill actually paid, and the per-class rates follow from it::

    volume = monthly_volume_from_ledger("ledger.duckdb")
    volume.total_tokens, volume.vendor_usd
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from flopledger.errors import InputError
from flopledger.ledger.store import open_ledger

__all__ = ["DAYS_PER_MONTH", "MonthlyVolume", "VendorPrices", "monthly_volume_from_ledger"]

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class VendorPrices:
    """What a vendor charges per million tokens of each class (after discounts)."""

    usd_per_mtok_input: float
    usd_per_mtok_cache_read: float
    usd_per_mtok_cache_write: float
    usd_per_mtok_output: float

    @classmethod
    def from_rates(
        cls,
        usd_per_mtok_input: float | None,
        usd_per_mtok_output: float | None,
        *,
        cache_read: float | None = None,
        cache_write: float | None = None,
    ) -> VendorPrices:
        """Input and output rates are required; cache rates default to the common vendor scheme
        (reads at 10% of the input rate, 5-minute writes at 125%).

        >>> VendorPrices.from_rates(3.0, 15.0).usd_per_mtok_cache_read
        0.3
        """
        if usd_per_mtok_input is None or usd_per_mtok_output is None:
            raise InputError(
                "vendor prices need at least the input and output rates",
                field="vendor_usd_per_mtok_input/output",
            )
        return cls(
            usd_per_mtok_input,
            round(0.1 * usd_per_mtok_input, 12) if cache_read is None else cache_read,
            round(1.25 * usd_per_mtok_input, 12) if cache_write is None else cache_write,
            usd_per_mtok_output,
        )

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 0:
                raise InputError(f"vendor price {name} cannot be negative", field=name)


@dataclass(frozen=True)
class MonthlyVolume:
    """Tokens a month by class; ``vendor_usd`` is the monthly bill when the ledger priced every row."""

    input_tokens: float  # uncached input
    cache_read_tokens: float
    cache_write_tokens: float
    output_tokens: float
    requests: float | None
    vendor_usd: float | None
    vendor_prices: VendorPrices | None  # effective per-class rates of the ledger's bill
    source: str

    def __post_init__(self) -> None:
        for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} per month cannot be negative", field=name)
        if self.output_tokens <= 0:
            raise InputError(
                "output tokens per month must be positive (nothing to serve)", field="output_tokens"
            )

    @property
    def total_tokens(self) -> float:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens

    def cost_at(self, prices: VendorPrices) -> float:
        """The monthly bill of this volume at ``prices``."""
        return (
            self.input_tokens * prices.usd_per_mtok_input
            + self.cache_read_tokens * prices.usd_per_mtok_cache_read
            + self.cache_write_tokens * prices.usd_per_mtok_cache_write
            + self.output_tokens * prices.usd_per_mtok_output
        ) / 1e6


_VOLUME_SQL = """
SELECT count(*),
       sum(input_tokens), sum(cache_read_tokens),
       sum(coalesce(cache_write_5m_tokens, 0) + coalesce(cache_write_1h_tokens, 0)),
       sum(output_tokens), sum(requests),
       count(*) FILTER (WHERE NOT coalesce(priced, false)),
       sum(cost_usd),
       sum(input_tokens_cost_usd), sum(cache_read_tokens_cost_usd),
       sum(coalesce(cache_write_5m_tokens_cost_usd, 0) + coalesce(cache_write_1h_tokens_cost_usd, 0)),
       sum(output_tokens_cost_usd),
       min(ts), max(ts)
FROM events
WHERE (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?)
"""


def _rate(cost: float | None, tokens: float) -> float:
    return float(cost or 0.0) / tokens * 1e6 if tokens > 0 else 0.0


def monthly_volume_from_ledger(
    db_path: str | Path, *, since: dt.date | None = None, until: dt.date | None = None
) -> MonthlyVolume:
    """Average monthly tokens per class over the ledger's events in ``[since, until)``.

    The span is ``[since, until)`` where given, else the days from the first to the last event
    (inclusive), so a partial month is not mistaken for a full one. The vendor bill and per-class
    rates come from the priced columns when every event is priced; otherwise they are left out and
    prices must be given.
    """
    path = Path(db_path)
    if not path.is_file():
        raise InputError("no ledger file here; ingest usage first or give monthly tokens", path=str(path))
    con = open_ledger(path, read_only=True)
    try:
        lo = dt.datetime.combine(since, dt.time()) if since else None
        hi = dt.datetime.combine(until, dt.time()) if until else None
        row = con.execute(_VOLUME_SQL, [lo, lo, hi, hi]).fetchone()
    finally:
        con.close()
    if row is None or not row[0]:
        raise InputError(
            "the ledger has no events in that period; ingest usage or widen --since/--until", path=str(path)
        )
    (_, inp, read, write, out, requests, unpriced, cost, c_in, c_read, c_write, c_out, first, last) = row
    # the period asked for when given, else first to last event day inclusive
    days = ((until or last.date() + dt.timedelta(days=1)) - (since or first.date())).days
    months = days / DAYS_PER_MONTH
    tokens = [float(v or 0) / months for v in (inp, read, write, out)]
    priced = not unpriced
    prices = None
    if priced:
        prices = VendorPrices(
            _rate(c_in, float(inp or 0)),
            _rate(c_read, float(read or 0)),
            _rate(c_write, float(write or 0)),
            _rate(c_out, float(out or 0)),
        )
    return MonthlyVolume(
        input_tokens=tokens[0],
        cache_read_tokens=tokens[1],
        cache_write_tokens=tokens[2],
        output_tokens=tokens[3],
        requests=float(requests) / months if requests else None,
        vendor_usd=float(cost or 0.0) / months if priced else None,
        vendor_prices=prices,
        source=(
            f"ledger {path.name}: {row[0]:,} events from {first.date()} to {last.date()} "
            f"over {days} days = {months:.2f} months" + ("" if priced else f"; {unpriced:,} unpriced")
        ),
    )
