"""FinOps FOCUS 1.2 export: one charge row per day x account x model x token class.

Token counts survive as ``ConsumedQuantity`` (``Tokens``) and ``PricingQuantity`` (per
``1000000 Tokens``, how vendors price); ``ListCost`` is the list price, ``EffectiveCost`` (=
``BilledCost`` = ``ContractedCost``) is after negotiated discounts. The billing account is the
``org``, the sub account the ``project``; ``Tags`` is a JSON object: the events' own tags, as they
are (a list or object value as its JSON text: FOCUS tag values are scalars), plus the team under
flopledger's own key prefix, ``flopledger:team`` (events with different tags make separate rows).
A charge holds events of one price point (the rates they were priced at), so its unit prices are
one price list's: a long-context tier, a price change or a discount starting within the day make
rows of their own. ``SkuPriceId`` names the price point (model, class, service tier, and the list
input and output rates per million tokens), the same across catalog and overrides versions.
flopledger's own columns carry the ``x_`` prefix. Unpriced events are left out and counted: a FOCUS
cost cannot be NULL and an unknown model is never silently free.

The column list (feature level, type, null rules) is package data, ``data/focus_1_2_columns.csv``,
transcribed from the FOCUS 1.2 specification (focus.finops.org); the tests check exports against it.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from flopledger.errors import InputError, UnknownNameError
from flopledger.ledger.schema import BILLED_CLASSES, UNIT_CLASSES
from flopledger.ledger.spark import Engine, events_table

__all__ = [
    "EXPORT_FORMATS",
    "FOCUS_ARROW_TYPES",
    "TAG_PREFIX",
    "ExportSummary",
    "FocusColumn",
    "check_output_path",
    "export_ledger",
    "focus_charges",
    "focus_columns",
    "focus_rows",
    "focus_table",
    "write_table",
]

_GROUP_KEYS = (
    "org",
    "project",
    "team",
    "provider",
    "model",
    "service_tier",
    "price_model",
    "price_version",
    "tags",
    "input_usd_per_mtok_applied",  # the price point: a long-context tier, a price change, a discount
    "output_usd_per_mtok_applied",
)

TAG_PREFIX = "flopledger:"
"""The prefix of the tag keys flopledger adds to an export's ``Tags`` (FOCUS: provider-defined tags
are prefixed, and the user's own are not altered)."""
_DECIMAL = pa.decimal128(38, 10)
FOCUS_ARROW_TYPES: dict[str, pa.DataType] = {
    "String": pa.string(),
    "Decimal": _DECIMAL,
    "DateTime": pa.timestamp("us", tz="UTC"),
    "JSON": pa.string(),
}
"""Arrow type of each FOCUS data type in exported files (JSON is text holding a JSON object)."""

_CLASS_LABEL = {
    "input_tokens": "Input Tokens",
    "cache_read_tokens": "Cache Read Tokens",
    "cache_write_5m_tokens": "Cache Write 5m Tokens",
    "cache_write_1h_tokens": "Cache Write 1h Tokens",
    "output_tokens": "Output Tokens",
    "web_search_requests": "Web Searches",
    "requests": "Requests",
}
_TOKENS_PER_PRICING_UNIT = 1_000_000
_UNITS: dict[str, tuple[str, int, str]] = {
    "web_search_requests": ("Searches", 1_000, "1000 Searches"),  # as vendors price them
    "requests": ("Requests", 1, "Requests"),
}
"""(ConsumedUnit, consumed units per pricing unit, PricingUnit) of the classes not counted in tokens."""
_TOKEN_UNIT = ("Tokens", _TOKENS_PER_PRICING_UNIT, f"{_TOKENS_PER_PRICING_UNIT} Tokens")


@dataclass(frozen=True)
class FocusColumn:
    """One column of the FOCUS 1.2 column list."""

    column_id: str
    feature_level: str  # Mandatory, Conditional, Recommended
    data_type: str  # String, Decimal, DateTime, JSON
    allows_nulls: bool
    introduced: str
    not_null_when: str  # "; "-joined clauses: "Col notnull", "Col in A|B", "Col != V"
    allowed_values: tuple[str, ...]


@functools.cache
def focus_columns() -> tuple[FocusColumn, ...]:
    """The FOCUS 1.2 column list, from package data."""
    text = resources.files("flopledger.ledger").joinpath("data/focus_1_2_columns.csv").read_text("utf-8")
    return tuple(
        FocusColumn(
            r["column_id"],
            r["feature_level"],
            r["data_type"],
            r["allows_nulls"] == "true",
            r["introduced"],
            r["not_null_when"],
            tuple(v for v in r["allowed_values"].split("|") if v),
        )
        for r in csv.DictReader(io.StringIO(text))
    )


def _ts(day: dt.date) -> ir.Scalar:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


def focus_charges(
    events: ir.Table, *, since: dt.date | None = None, until: dt.date | None = None
) -> ir.Table:
    """Priced usage summed per UTC day and charge key (an Ibis expression; runs on DuckDB and Spark).

    ``since`` and ``until`` are inclusive days.
    """
    t = _in_range(events.filter(events.cost_usd.notnull()), since, until)
    sums = {c: t[c].sum() for c in (*(q for q, _ in BILLED_CLASSES), "reasoning_tokens")}
    sums |= {k: t[k].sum() for k in (*(cost for _, cost in BILLED_CLASSES), "list_cost_usd", "cost_usd")}
    # A discount applies to every class of an event alike, so a class's list cost is its cost over the
    # share the event kept; an event with no cost left (a 100% discount) shares its list cost by tokens.
    free = t.cost_usd == 0
    sums |= {
        f"{cost}_list": ibis.ifelse(free, 0.0, t[cost] * t.list_cost_usd / t.cost_usd).sum()
        for _, cost in BILLED_CLASSES
    }
    sums["free_list_usd"] = ibis.ifelse(free, t.list_cost_usd, 0.0).sum()
    sums |= {
        f"{q}_free": ibis.ifelse(free, t[q], 0).sum() for q, _ in BILLED_CLASSES if q not in UNIT_CLASSES
    }
    return (
        t.group_by(day=t.ts.date(), **{k: t[k] for k in _GROUP_KEYS})
        .aggregate(**sums)
        .order_by(["day", *_GROUP_KEYS])
    )


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _tags_json(tags: str | None, team: str | None) -> str:
    """The events' tags (a JSON object) with the team added under :data:`TAG_PREFIX`, as sorted
    JSON; a list or object value as its JSON text (FOCUS tag values are strings, numbers, booleans
    or null)."""
    try:
        merged = json.loads(tags) if tags else {}
    except json.JSONDecodeError:
        merged = None
    if not isinstance(merged, dict):
        # Ingest checks tags; events written by another pipeline (a Spark table) may not be.
        raise InputError(f"tags {tags!r} is not a JSON object; fix the events' tags column", field="tags")
    merged = {
        k: json.dumps(v, sort_keys=True, ensure_ascii=False) if isinstance(v, list | dict) else v
        for k, v in merged.items()
    }
    if team is not None:
        merged[f"{TAG_PREFIX}team"] = team
    return json.dumps(merged, sort_keys=True)


def _price_point(c: dict[str, Any]) -> str:
    """The list price the charge's events were priced at, named by its input and output rates per
    million tokens (a long-context tier and a price change have rates of their own): the rates
    applied, over the share of the list price the events kept (a discount takes the same share of
    every class). The same whatever the catalog or overrides version, and whatever the mix of
    classes the day had."""
    cost, listed = float(c["cost_usd"] or 0.0), float(c["list_cost_usd"] or 0.0)
    scale = listed / cost if cost > 0 else 1.0
    rates = [
        float(c[k] or 0.0) * scale for k in ("input_usd_per_mtok_applied", "output_usd_per_mtok_applied")
    ]
    return f"list {rates[0]:.6g}/{rates[1]:.6g} USD per 1000000 input/output Tokens"


def _charge_rows(c: dict[str, Any]) -> list[dict[str, Any]]:
    """Split one aggregated charge into a FOCUS row per billed class: token classes, web searches
    and per-request fees."""
    day: dt.date = c["day"]
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    classes = [
        (k, float(c[k] or 0), float(c[cost] or 0.0), float(c[f"{cost}_list"] or 0.0))
        for k, cost in BILLED_CLASSES
    ]
    free_list = float(c["free_list_usd"] or 0.0)
    free_qty = {k: float(c[f"{k}_free"] or 0) for k, *_ in classes if k not in UNIT_CLASSES}
    free_total = sum(free_qty.values()) or 1.0
    provider = c["provider"] or "unknown"
    tier = c["service_tier"] or "standard"
    point = _price_point(c)
    common = {
        "BillingAccountId": c["org"] or "default",
        "BillingAccountName": c["org"],
        "BillingCurrency": "USD",
        "BillingPeriodStart": _utc(month),
        "BillingPeriodEnd": _utc(next_month),
        "ChargePeriodStart": _utc(day),
        "ChargePeriodEnd": _utc(day + dt.timedelta(days=1)),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": provider,
        "ProviderName": provider,
        "PublisherName": provider,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "ServiceName": f"{provider} API",
        "PricingCategory": "Standard",
        "SubAccountId": c["project"],
        "SubAccountName": c["project"],
        "SubAccountType": "Project" if c["project"] is not None else None,
        "Tags": _tags_json(c["tags"], c["team"]),
        "x_Team": c["team"],
        "x_Model": c["model"],
        "x_ServiceTier": c["service_tier"],
        "x_PriceVersion": c["price_version"],
    }
    rows = []
    for cls, qty, cls_cost, priced_list in classes:
        if qty == 0 and cls_cost == 0:
            continue
        cls_list = priced_list + free_list * free_qty.get(cls, 0.0) / free_total
        consumed_unit, per_pricing_unit, pricing_unit = _UNITS.get(cls, _TOKEN_UNIT)
        pricing_qty = qty / per_pricing_unit
        sku = f"{c['price_model'] or c['model']}:{cls}"
        list_unit = cls_list / pricing_qty if pricing_qty else 0.0
        rows.append(
            {
                **common,
                "BilledCost": cls_cost,
                "EffectiveCost": cls_cost,
                "ContractedCost": cls_cost,
                "ListCost": cls_list,
                "ChargeDescription": f"{c['model']} {_CLASS_LABEL[cls].lower()} ({tier})",
                "ConsumedQuantity": qty,
                "ConsumedUnit": consumed_unit,
                "PricingQuantity": pricing_qty,
                "PricingUnit": pricing_unit,
                "ListUnitPrice": list_unit,
                "ContractedUnitPrice": cls_cost / pricing_qty if pricing_qty else 0.0,
                "SkuId": sku,
                "SkuMeter": _CLASS_LABEL[cls],
                "SkuPriceId": f"{sku}:{tier}:{point}",
                "x_TokenClass": cls,
                "x_ReasoningTokens": float(c["reasoning_tokens"] or 0) if cls == "output_tokens" else None,
            }
        )
    return rows


def focus_rows(charges: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """FOCUS rows from the rows of :func:`focus_charges`."""
    return [row for c in charges for row in _charge_rows(c)]


def _schema(columns: Sequence[str]) -> pa.Schema:
    types = {c.column_id: FOCUS_ARROW_TYPES[c.data_type] for c in focus_columns()}
    extra = {"x_ReasoningTokens": _DECIMAL}
    return pa.schema([(name, types.get(name) or extra.get(name, pa.string())) for name in columns])


def focus_table(engine: Engine, *, since: dt.date | None = None, until: dt.date | None = None) -> pa.Table:
    """The FOCUS 1.2 rows of the priced events on ``engine`` as an Arrow table."""
    rows = focus_rows(engine.rows(focus_charges(events_table(engine), since=since, until=until)))
    emitted = _emitted_columns()
    order = [c.column_id for c in focus_columns()]
    names = [n for n in order if n in emitted] + sorted(n for n in emitted if n not in order)
    schema = _schema(names)
    arrays = [_column(name, [r.get(name) for r in rows], schema.field(name).type) for name in names]
    return pa.Table.from_arrays(arrays, schema=schema)


def _emitted_columns() -> set[str]:
    """The columns every FOCUS row carries (one sample charge, run through the same code)."""
    sample: dict[str, Any] = {k: None for k in ("day", *_GROUP_KEYS, "reasoning_tokens")}
    sample |= {k: 0 for k in (*(q for q, _ in BILLED_CLASSES), "list_cost_usd", "cost_usd")}
    sample |= {cost: 0.0 for _, cost in BILLED_CLASSES}
    sample |= {f"{cost}_list": 0.0 for _, cost in BILLED_CLASSES} | {"free_list_usd": 0.0}
    sample |= {f"{q}_free": 0 for q, _ in BILLED_CLASSES}
    sample["input_tokens"], sample["day"] = 1, dt.date(2000, 1, 1)
    return set(_charge_rows(sample)[0])


def _column(name: str, values: list[Any], typ: pa.DataType) -> pa.Array:
    if pa.types.is_decimal(typ):
        # Through float64, rounded to the decimal's scale: costs are sums of float prices.
        return pa.array(
            [None if v is None else round(float(v), typ.scale) for v in values], pa.float64()
        ).cast(typ)
    return pa.array(values, typ)


def _plain(value: decimal.Decimal) -> str:
    """A decimal in plain notation with no trailing zeros: ``0``, ``1.5``, ``0.00000012``."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _plain_floats(col: pa.ChunkedArray) -> pa.Array:
    """Floats as text in plain notation, each the shortest that reads back as the same float."""
    import pyarrow.compute as pc

    text = pc.cast(col, pa.string())
    exponent = pc.fill_null(pc.match_substring(text, "e"), False)
    if not pc.any(exponent).as_py():
        return text
    values = col.to_pylist()
    return pa.array(
        [
            _plain(decimal.Decimal(repr(values[i]))) if hit else t
            for i, (t, hit) in enumerate(zip(text.to_pylist(), exponent.to_pylist(), strict=True))
        ],
        pa.string(),
    )


def check_output_path(out: Path) -> None:
    """An :class:`InputError` saying what to do when ``out`` cannot be written as a file: a folder,
    or a file in a folder that does not exist."""
    if out.is_dir():
        raise InputError(f"{out} is a folder: give the file to write, e.g. {out / 'focus.parquet'}")
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: its folder {out.parent} does not exist; create it first")


def write_table(table: pa.Table, out: Path, file_format: str) -> None:
    """Write ``table`` as Parquet, or as CSV with ISO 8601 UTC times (``2026-01-01T00:00:00Z``; a
    column with fractions of a second keeps them: ``2026-01-01T00:00:00.250000Z``) and decimals in
    plain notation, decimal and floating alike (``0.00000012``, never ``1.200E-7`` or ``1.2e-7``)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if file_format == "parquet":
        pq.write_table(table, out)
        return
    cols = []
    for field, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            try:  # whole seconds print as such
                utc = col.cast(pa.timestamp("s", tz="UTC"))
            except pa.ArrowInvalid:  # fractions of a second: kept, never rounded away
                utc = col.cast(pa.timestamp(field.type.unit, tz="UTC"))
            col = pa.compute.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_decimal(field.type):  # Arrow would write 0E-10 and 1.200E-7
            col = pa.array([None if v is None else _plain(v) for v in col.to_pylist()], pa.string())
        elif pa.types.is_floating(field.type):  # Arrow would write 1.2e-7: only those are rewritten
            col = _plain_floats(col)
        cols.append(col)
    pacsv.write_csv(pa.Table.from_arrays(cols, names=table.column_names), out)


EXPORT_FORMATS: tuple[str, ...] = ("focus", "parquet", "csv")
_EVENT_EXPORT_EXCLUDE = ("prompt",)  # prompt text never leaves the ledger in an export


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    path: Path
    export_format: str
    rows: int
    effective_cost_usd: float
    list_cost_usd: float
    unpriced_events: int  # left out of a FOCUS export (NULL cost), kept with NULL cost in the others


def _in_range(t: ir.Table, since: dt.date | None, until: dt.date | None) -> ir.Table:
    """Events of the days ``since`` through ``until`` (inclusive, UTC)."""
    if since is not None:
        t = t.filter(t.ts >= _ts(since))
    if until is not None:
        t = t.filter(t.ts < _ts(until + dt.timedelta(days=1)))
    return t


def export_ledger(
    engine: Engine,
    out: Path,
    export_format: str,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> ExportSummary:
    """Export the priced events between ``since`` and ``until`` (inclusive days) to ``out``.

    ``focus``: FOCUS 1.2 rows, as CSV when ``out`` ends in ``.csv``, else Parquet. ``parquet`` and
    ``csv``: the priced events themselves (what ``--engine spark --source`` reads back).
    """
    if export_format not in EXPORT_FORMATS:
        raise UnknownNameError("export format", export_format, list(EXPORT_FORMATS))
    check_output_path(out)
    events = _in_range(events_table(engine), since, until)
    stats = engine.rows(
        events.aggregate(
            unpriced=events.cost_usd.isnull().sum(),
            cost_usd=events.cost_usd.sum(),
            list_cost_usd=events.list_cost_usd.sum(),
            n=events.count(),
        )
    )[0]
    if export_format == "focus":
        table = focus_table(engine, since=since, until=until)
        write_table(table, out, "csv" if out.suffix.lower() == ".csv" else "parquet")
        rows = table.num_rows
    else:
        keep = [c for c in events.columns if c not in _EVENT_EXPORT_EXCLUDE and not c.startswith("fp_")]
        write_table(engine.to_arrow(events.select(keep).order_by("ts")), out, export_format)
        rows = int(stats["n"] or 0)
    return ExportSummary(
        out,
        export_format,
        rows,
        round(float(stats["cost_usd"] or 0.0), 6),
        round(float(stats["list_cost_usd"] or 0.0), 6),
        int(stats["unpriced"] or 0),
    )
