"""The ledger against the vendor's own bill: cost reports read, compared day by day.

A vendor's cost report says what it charged per day (and, as it was pulled, per workspace or project
and per model). flopledger prices the usage it ingested itself; the two should agree. Reconciling
them tells usage that was never ingested (the ledger short of the bill), usage ingested twice or
priced too high (the ledger over it), and a negotiated discount the overrides file lacks.

Read:

- **Anthropic** ``/v1/organizations/cost_report`` pages: ``amount`` is a decimal string in cents
  (``"123.45"`` is $1.23). ``cost_type`` tells tokens and web searches, which the ledger prices, from
  costs it does not track (code execution, session runtime), which are set apart. Anthropic's cost
  report leaves out Priority Tier costs, so the ledger's priority events are left out of the
  comparison too, and their cost is said.
- **OpenAI** ``/v1/organization/costs`` pages: ``amount.value`` in dollars, ``project_id`` and
  ``line_item`` when grouped by them.

Pages may come one to a file, as a list, or one per line, as ``flopledger ingest`` takes usage pages.
Only the days the cost reports cover are compared; the ledger's cost is ``cost_usd`` (after the
overrides file's discounts), as the vendor bills after its discounts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flopledger.errors import InputError
from flopledger.ledger.formats.base import (
    JsonLineError,
    ReportPage,
    canonical_tier,
    iter_json_documents,
    report_page,
    unfetched_pages,
)

__all__ = [
    "RECONCILE_DIMENSIONS",
    "CostReports",
    "ReconcileRow",
    "Reconciliation",
    "VendorCost",
    "read_cost_reports",
    "reconcile",
    "rounded",
]

RECONCILE_DIMENSIONS: tuple[str, ...] = ("day", "project", "model", "service_tier")
"""What a reconciliation can be grouped by (``provider`` always is)."""

WEB_SEARCHES = "(web searches)"
"""The model of web searches' cost by model: a bill names none for them."""

TRACKED_KINDS = ("tokens", "web_search")
"""The kinds of vendor cost the ledger prices; others (code execution, ...) are set apart."""


@dataclass(frozen=True)
class VendorCost:
    """One result of a vendor's cost report."""

    provider: str
    day: dt.date
    amount_usd: float
    kind: str  # tokens, web_search, or what else the vendor charged for
    project: str | None
    model: str | None  # as the vendor names it; None where the report was not grouped by model
    catalog_model: str | None  # ``provider/model`` of the catalog, as events' ``price_model``
    where: str
    itemised: bool = True  # False: an OpenAI result not grouped by line item (its kind unknown)
    service_tier: str | None = None  # where the report says it (Anthropic's, grouped by description)


@dataclass(frozen=True)
class CostReports:
    """The results of some cost reports, and the days their buckets cover by provider (a day with
    no cost is a bucket with no results: covered, and billed nothing)."""

    costs: list[VendorCost]
    days: dict[str, set[dt.date]]
    notes: list[str] = dataclasses.field(default_factory=list)
    unfetched: dict[Path, ReportPage] = dataclasses.field(default_factory=dict)  # files short of pages


@dataclass(frozen=True)
class ReconcileRow:
    """One group's bill from the vendor against the ledger's cost of the same usage."""

    group: tuple[tuple[str, Any], ...]
    vendor_usd: float
    ledger_usd: float
    unpriced_tokens: int
    status: str

    @property
    def difference_usd(self) -> float:
        return self.ledger_usd - self.vendor_usd

    def as_row(self) -> dict[str, Any]:
        diff = self.difference_usd
        return {
            **dict(self.group),
            "vendor_usd": rounded(self.vendor_usd, 6),
            "ledger_usd": rounded(self.ledger_usd, 6),
            "difference_usd": rounded(diff, 6),
            "difference_pct": rounded(100 * diff / self.vendor_usd, 2) if self.vendor_usd else None,
            "unpriced_tokens": self.unpriced_tokens,
            "status": self.status,
        }


def rounded(value: float, places: int) -> float:
    """``value`` to ``places`` decimals, a zero never negative (a float sum's -1e-9 reads 0, not -0)."""
    return round(value, places) + 0.0


def _bad(path: Path, where: str, said: str) -> InputError:
    return InputError(f"{where}: {said}", path=str(path))


def _day_of(value: Any, path: Path, where: str) -> dt.date:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC).date()
        except (OverflowError, OSError, ValueError):
            raise _bad(path, where, f"bucket start {value!r} is not a time a report can hold") from None
    if isinstance(value, str):
        try:
            at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (at.astimezone(dt.UTC) if at.tzinfo is not None else at).date()
    raise _bad(path, where, f"bucket start {value!r} is not a time (RFC 3339 or Unix seconds)")


def _pages(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for line, doc in iter_json_documents(path):
        if isinstance(doc, JsonLineError):
            raise InputError(f"line {line}: {doc.reason}; the cost report cannot be read", path=str(path))
        for i, page in enumerate(doc if isinstance(doc, list) else [doc]):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise _bad(
                    path,
                    f"line {line}" + (f", page {i + 1}" if isinstance(doc, list) else ""),
                    "not a cost report page (an object with a data list of buckets)",
                )
            yield (
                (f"line {line}" if line > 1 else "") + (f" page {i + 1}" if isinstance(doc, list) else ""),
                page,
            )


def _vendor_of(result: dict[str, Any]) -> str | None:
    if result.get("object") == "organization.costs.result" or isinstance(result.get("amount"), dict):
        return "openai"
    if isinstance(result.get("amount"), str) or "cost_type" in result or "token_type" in result:
        return "anthropic"
    return None


def _usd(text: str, scale: decimal.Decimal, path: Path, where: str) -> float:
    try:
        amount = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise _bad(path, where, f"amount {text!r} is not a number") from None
    usd = float(amount * scale) if amount.is_finite() else math.nan
    if not math.isfinite(usd):
        raise _bad(path, where, f"amount {text!r} is not a number a bill can hold")
    return usd


def _name(result: dict[str, Any], key: str, path: Path, where: str) -> str | None:
    """A result's id field (a workspace, a project): text, or absent."""
    value = result.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(path, where, f"{key} {json.dumps(value)[:80]} is not an id (text)")
    return value


def _anthropic_cost(result: dict[str, Any], day: dt.date, path: Path, where: str) -> VendorCost:
    from flopledger.catalog.prices import resolve_catalog_model

    amount, currency = result.get("amount"), str(result.get("currency") or "USD")
    if currency.upper() != "USD":
        raise _bad(path, where, f"currency {currency!r}: flopledger reconciles US dollars")
    if not isinstance(amount, str | int | float) or isinstance(amount, bool):
        raise _bad(path, where, "amount is not a decimal string of cents")
    model = result.get("model") or None
    found = resolve_catalog_model("anthropic", str(model)) if model else None
    return VendorCost(
        provider="anthropic",
        day=day,
        amount_usd=_usd(str(amount), decimal.Decimal("0.01"), path, where),  # cents
        kind=str(result.get("cost_type") or "tokens"),
        # without group_by[]=description a result has no cost type: tokens and code execution as one
        itemised=bool(result.get("cost_type")),
        project=_name(result, "workspace_id", path, where),
        model=str(model) if model else None,
        catalog_model="/".join(found) if found else None,
        where=f"{path}: {where}",
        service_tier=canonical_tier(result["service_tier"]) if result.get("service_tier") else None,
    )


def _openai_cost(result: dict[str, Any], day: dt.date, path: Path, where: str) -> VendorCost:
    amount = result.get("amount") or {}
    if not isinstance(amount, dict) or not isinstance(amount.get("value"), int | float | str):
        raise _bad(path, where, "amount has no value")
    currency = str(amount.get("currency") or "usd")
    if currency.lower() != "usd":
        raise _bad(path, where, f"currency {currency!r}: flopledger reconciles US dollars")
    line_item = str(result.get("line_item") or "")
    return VendorCost(
        provider="openai",
        day=day,
        amount_usd=_usd(str(amount["value"]), decimal.Decimal(1), path, where),
        kind=_openai_kind(line_item) if line_item else "tokens",
        itemised=bool(line_item),
        project=_name(result, "project_id", path, where),
        model=None,  # a line item ("gpt-4o, input"), not a model id flopledger can match
        catalog_model=None,
        where=f"{path}: {where}",
    )


_TOKEN_LINE = re.compile(r",\s*(cached\s+)?(input|output)\b", re.IGNORECASE)
"""An OpenAI token line item: ``gpt-4o-2024-08-06, input``, ``o3, cached input``, ``gpt-5, output``."""


def _openai_kind(line_item: str) -> str:
    """What an OpenAI line item charges for: tokens or web searches, which the ledger prices, or what
    else (``audio input``, ``file search storage``, fine-tuning), set apart."""
    lower = line_item.lower()
    if "web search" in lower:
        return "web_search"
    charged = line_item.rpartition(",")[2].strip()  # after the model: an audio model's text input is text
    if _TOKEN_LINE.search(line_item) and not any(w in charged.lower() for w in ("audio", "image")):
        return "tokens"
    return charged or line_item


def read_cost_reports(paths: Sequence[Path]) -> CostReports:
    """Every result of the cost report pages in ``paths`` (Anthropic's or OpenAI's, told apart by
    their buckets and results). A file that is not one, or a result that cannot be read, is one clear
    error. A day's results that go on from a page that said more follow (``has_more``) onto the next
    page read are one bucket. A day's bucket read twice (pulls that overlap) counts once: the same
    results are one, and other results for the day replace the earlier ones (the later pull, in the
    order given), said in ``notes``. A file whose last page says more follow, and no file given has
    them, is in ``unfetched``."""
    buckets: dict[tuple[str, dt.date], tuple[Path, list[str], list[VendorCost], int]] = {}
    notes: list[str] = []
    pages: dict[Path, list[ReportPage]] = {}
    read = 0  # pages read, in the order given: a page's number
    going_on = False  # whether the page before said more follow (its last bucket may go on)
    for path in paths:
        if not path.is_file():
            raise InputError("no such file" if not path.is_dir() else "a folder, not a file", path=str(path))
        pages[path] = []
        for page_at, page in _pages(path):
            read += 1
            pages[path].append(report_page(page))
            for b, bucket in enumerate(page["data"]):
                at = f"{page_at + ' ' if page_at else ''}data[{b}]"
                if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
                    raise _bad(path, at, "a bucket has no results list")
                openai = "start_time" in bucket or bucket.get("object") == "bucket"
                day = _day_of(bucket.get("start_time") if openai else bucket.get("starting_at"), path, at)
                costs = []
                for r, result in enumerate(bucket["results"]):
                    where = f"{at}.results[{r}]"
                    vendor = _vendor_of(result) if isinstance(result, dict) else None
                    if vendor is None or not isinstance(result, dict):
                        raise _bad(
                            path,
                            where,
                            "not a cost result (Anthropic's has an amount in cents, OpenAI's an "
                            "amount object); usage reports go to `flopledger ingest`",
                        )
                    make = _anthropic_cost if vendor == "anthropic" else _openai_cost
                    costs.append(make(result, day, path, where))
                provider = "openai" if openai else "anthropic"
                results = [json.dumps(r, sort_keys=True) for r in bucket["results"]]
                earlier = buckets.get((provider, day))
                if earlier is not None and going_on and earlier[3] == read - 1:
                    # the day's results go on from the page before, which said more follow: one pull
                    buckets[(provider, day)] = (path, earlier[1] + results, earlier[2] + costs, read)
                    continue
                if earlier is not None and sorted(earlier[1]) != sorted(results):
                    notes.append(
                        f"{provider} {day} is in {earlier[0]} and again, with other costs, in {path}: "
                        f"the later ({path}) is compared"
                    )
                buckets[(provider, day)] = (path, results, costs, read)
            going_on = pages[path][-1].has_more
    days: dict[str, set[dt.date]] = defaultdict(set)
    for provider, day in buckets:
        days[provider].add(day)
    every = [c for _, _, costs, _ in buckets.values() for c in costs]
    return CostReports(every, dict(days), notes, unfetched_pages(pages))


_LEDGER_SQL = """
SELECT provider, CAST(ts AS DATE) AS day, project, price_model, model,
       coalesce(service_tier, 'standard') AS tier,
       sum(coalesce(cost_usd, 0)) AS cost_usd, sum(coalesce(web_search_cost_usd, 0)) AS web_usd,
       sum(CASE WHEN priced THEN 0 ELSE input_tokens + cache_read_tokens + cache_write_5m_tokens
           + cache_write_1h_tokens + output_tokens END) AS unpriced_tokens
FROM events
WHERE provider = ? AND CAST(ts AS DATE) BETWEEN ? AND ?
GROUP BY ALL
"""


@dataclass(frozen=True)
class Reconciliation:
    """The rows, and what was set apart from the comparison."""

    rows: list[ReconcileRow]
    untracked_usd: dict[str, float]  # vendor costs of kinds the ledger does not price, by kind
    priority_usd: float  # the ledger's Anthropic priority-tier cost, which its cost report leaves out
    days: tuple[dt.date, dt.date]  # the first and last day the reports cover
    notes: list[str] = dataclasses.field(default_factory=list)  # what the reader should know

    @property
    def mismatched(self) -> list[ReconcileRow]:
        return [r for r in self.rows if r.status != "matches"]


def reconcile(
    con: duckdb.DuckDBPyConnection,
    reports: CostReports,
    by: Sequence[str] = ("day",),
    *,
    tolerance_pct: float = 1.0,
    tolerance_usd: float = 0.01,
) -> Reconciliation:
    """Each group's vendor bill against the ledger's cost of the same provider, days (those the
    reports' buckets cover) and, as asked, project and model. A group matches when the two are
    within ``tolerance_pct`` of the bill or ``tolerance_usd``, whichever is more."""
    dims = list(dict.fromkeys(d.strip() for d in by if d.strip() and d.strip() != "provider"))
    unknown = [d for d in dims if d not in RECONCILE_DIMENSIONS]
    if unknown:
        from flopledger.errors import UnknownNameError

        raise UnknownNameError("reconcile dimension", unknown[0], list(RECONCILE_DIMENSIONS))
    if not reports.days:
        raise InputError("the cost reports have no buckets: pull a window of days")
    untracked: dict[str, float] = defaultdict(float)
    vendor: dict[tuple[Any, ...], float] = defaultdict(float)
    notes = list(reports.notes)
    if any(not c.itemised for c in reports.costs if c.provider == "openai"):
        notes.append(
            "OpenAI's costs are not grouped by line item, so all of them are compared as tokens (storage, "
            "fine-tuning and credits too): pull them with group_by=line_item to set those apart"
        )
    if any(not c.itemised for c in reports.costs if c.provider == "anthropic"):
        notes.append(
            "Anthropic's costs are not grouped by description, so all of them are compared as tokens (code "
            "execution too): pull them with group_by[]=description to set that apart"
        )
    if "project" in dims:
        for provider, grouped in (
            ("openai", "group_by=project_id"),
            ("anthropic", "group_by[]=workspace_id"),
        ):
            of = [c for c in reports.costs if c.provider == provider]
            if provider == "openai" and any(c.project is None for c in of):
                bare = next(c for c in of if c.project is None)
                raise InputError(
                    f"{bare.where}: the result names no project, so --by project cannot match it; pull the "
                    f"costs with {grouped}, or reconcile by day"
                )
            if of and all(c.project is None for c in of):
                notes.append(
                    f"no {provider} result names a workspace: if the report was not pulled with {grouped}, "
                    "its whole bill is compared with the ledger's default workspace alone"
                )
    for c in reports.costs:
        if c.kind not in TRACKED_KINDS:
            untracked[f"{c.provider} {c.kind}"] += c.amount_usd
            continue
        if "service_tier" in dims and c.kind == "tokens" and c.service_tier is None:
            hint = (
                "pull it with group_by[]=description"
                if c.provider == "anthropic"
                else "OpenAI's costs name no service tier: reconcile them by day or project"
            )
            raise InputError(
                f"{c.where}: the result names no service tier, so --by service_tier cannot match it; {hint}"
            )
        if "model" in dims and c.kind == "tokens" and c.model is None:
            hint = (
                "pull it with group_by[]=description"
                if c.provider == "anthropic"
                else "OpenAI's costs name line items, not models: reconcile by day or project"
            )
            raise InputError(f"{c.where}: the result names no model, so --by model cannot match it; {hint}")
        searches = c.kind == "web_search"  # a bill names no model or tier for its web searches
        model = WEB_SEARCHES if searches and "model" in dims else _model_of(c)
        tier = WEB_SEARCHES if searches and "service_tier" in dims else c.service_tier
        vendor[_key(dims, c.provider, c.day, c.project, model, tier)] += c.amount_usd
    ledger: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    priority = 0.0
    for provider, covered in reports.days.items():
        for row in con.execute(_LEDGER_SQL, [provider, min(covered), max(covered)]).fetchall():
            _, day, project, price_model, model, tier, cost, web, unpriced = row
            if day not in covered:  # a day between two reports' windows: not on them
                continue
            if provider == "anthropic" and tier == "priority":  # not in Anthropic's cost report
                priority += float(cost or 0)
                continue
            catalog = price_model or f"{provider}/{model}"
            key = _key(dims, provider, day, project, catalog, tier)
            if web and ("model" in dims or "service_tier" in dims):  # a group of their own on the bill
                apart = _key(
                    dims,
                    provider,
                    day,
                    project,
                    WEB_SEARCHES if "model" in dims else catalog,
                    WEB_SEARCHES if "service_tier" in dims else tier,
                )
                ledger[apart][0] += float(web)
                cost = float(cost or 0) - float(web)
            ledger[key][0] += float(cost or 0)
            ledger[key][1] += float(unpriced or 0)
    rows = []
    for key in sorted(set(vendor) | set(ledger), key=_sort_key):
        bill, (cost, unpriced) = vendor.get(key, 0.0), ledger.get(key, [0.0, 0.0])
        rows.append(
            ReconcileRow(
                group=tuple(zip(["provider", *dims], key, strict=True)),
                vendor_usd=bill,
                ledger_usd=cost,
                unpriced_tokens=int(unpriced),
                status=_status(bill, cost, key in vendor, key in ledger, tolerance_pct, tolerance_usd),
            )
        )
    every = [d for covered in reports.days.values() for d in covered]
    return Reconciliation(rows, dict(untracked), priority, (min(every), max(every)), notes)


def _model_of(c: VendorCost) -> str | None:
    return c.catalog_model or (f"{c.provider}/{c.model}" if c.model else None)


def _key(
    dims: Sequence[str], provider: str, day: dt.date, project: Any, model: Any, tier: Any = None
) -> tuple[Any, ...]:
    values = {"day": day, "project": project, "model": model, "service_tier": tier}
    return (provider, *(values[d] for d in dims))


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, str(v)) for v in key)


def _status(
    bill: float, cost: float, billed: bool, ingested: bool, tolerance_pct: float, tolerance_usd: float
) -> str:
    if abs(cost - bill) <= max(tolerance_usd, abs(bill) * tolerance_pct / 100):
        return "matches"  # a day billed nothing and used nothing, or less than a cent, too
    if not ingested:
        return "no usage in the ledger"
    if not billed:
        return "not on the bill"
    return "ledger short" if cost < bill else "ledger over"
