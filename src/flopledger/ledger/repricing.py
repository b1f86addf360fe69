"""Prices of the ledger: what applies to a model, what is missing, and re-pricing history.

``reprice`` re-prices every stored event against the current catalog and overrides file in one
transaction (the daily rollup with it), so a catalog update or a newly negotiated discount reaches
history without re-ingesting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flopledger.catalog.overrides import PriceOverrides
from flopledger.catalog.prices import (
    FAR_FUTURE,
    FAR_PAST,
    PRICE_ROW_KEYS,
    TIER_ABOVE_ALL,
    TIER_BELOW_ALL,
    catalog_rows,
    resolve_catalog_model,
)
from flopledger.errors import InputError, LedgerUnreadable
from flopledger.ledger.columns import table_columns
from flopledger.ledger.measures import billed_tokens
from flopledger.ledger.price_table import ensure_prices, priced_sql
from flopledger.ledger.rollups import refresh_rollups
from flopledger.ledger.schema import BILLED_TOKEN_COLUMNS, EVENT_COLUMNS, WEB_SEARCH_CLASS
from flopledger.ledger.store import count_of, create_schema
from flopledger.ledger.transaction import transaction
from flopledger.ledger.validate import searches_in_tags

__all__ = [
    "MISSING_COLUMNS",
    "REPRICED_AT",
    "UNPRICED_USAGE",
    "RepriceResult",
    "all_missing",
    "missing_prices",
    "price_rows",
    "reprice",
    "unpriced_usage",
]

REPRICED_AT = "repriced_at:"
"""``meta`` key prefix: ``repriced_at:<price version>`` holds when that version last repriced history."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class RepriceResult:
    events: int
    changed: int
    cost_before_usd: float
    cost_after_usd: float
    price_version: str
    unpriced_events: int

    def as_row(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "changed": self.changed,
            "cost_before_usd": round(self.cost_before_usd, 6),
            "cost_after_usd": round(self.cost_after_usd, 6),
            "price_version": self.price_version,
            "unpriced_events": self.unpriced_events,
        }


def reprice(
    con: duckdb.DuckDBPyConnection, overrides: PriceOverrides, *, without_overrides: bool = False
) -> RepriceResult:
    """Re-price every event with the current catalog and ``overrides``; returns what changed.

    With no overrides file, a ledger whose events an overrides file priced is refused unless
    ``without_overrides``: repricing would drop their negotiated discounts and private prices.
    """
    if overrides.digest == PriceOverrides.empty().digest and not without_overrides:
        used = con.execute(
            "SELECT count(*), arg_max(price_version, ts) FROM events "
            # a version that names its overrides file (each this flopledger writes does)
            "WHERE priced AND price_version LIKE '%; overrides %' "
            "AND price_version NOT LIKE '%; overrides none'"
        ).fetchone()
        if used and used[0]:
            raise InputError(
                f"{used[0]:,} of the ledger's events were priced with an overrides file ({used[1]}), "
                "and no overrides file is given: repricing would drop any negotiated discount and "
                "private price it gave them. Pass the file with --overrides (or $FLOPLEDGER_OVERRIDES), "
                "or --without-overrides to price them at catalog rates"
            )
    with transaction(con):
        version = ensure_prices(con, overrides, "events")
        (before,) = con.execute("SELECT coalesce(sum(cost_usd), 0)::DOUBLE FROM events").fetchone() or (0.0,)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _repriced AS {priced_sql(con, 'events', version)}")
        changed = count_of(
            con,
            # two organisations' rows of one usage-report bucket share an id
            """SELECT count(*) FROM _repriced r JOIN events e
                 ON r.event_id = e.event_id AND r.org IS NOT DISTINCT FROM e.org
               WHERE r.cost_usd IS DISTINCT FROM e.cost_usd
                  OR r.price_version IS DISTINCT FROM e.price_version""",
        )
        con.execute("DELETE FROM events")
        con.execute("INSERT INTO events BY NAME SELECT * FROM _repriced")
        con.execute("DROP TABLE _repriced")
        refresh_rollups(con)
        # When this price version last priced history: the dashboard shows each model's prices from
        # the version that priced it last (ingests record theirs in the ingests table).
        con.execute("DELETE FROM meta WHERE key = ?", [f"{REPRICED_AT}{version}"])
        con.execute("INSERT INTO meta VALUES (?, ?)", [f"{REPRICED_AT}{version}", _utc_now().isoformat()])
        after, events, unpriced = con.execute(
            "SELECT coalesce(sum(cost_usd), 0)::DOUBLE, count(*), count(*) FILTER (NOT priced) FROM events"
        ).fetchone() or (0.0, 0, 0)
    return RepriceResult(events, changed, before, after, version, unpriced)


def missing_prices(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Models with unpriced events and their volume: never silently free."""
    tokens = " + ".join(f'"{c}"' for c in BILLED_TOKEN_COLUMNS)
    rows = con.execute(
        f"""SELECT provider, model, count(*) AS events, sum(requests)::BIGINT AS requests,
                   sum({tokens})::BIGINT AS tokens, min(ts) AS first_seen, max(ts) AS last_seen,
                   max(price_model) FILTER (starts_with(price_model, 'private:')) AS private
            FROM events WHERE NOT priced GROUP BY provider, model ORDER BY tokens DESC, model"""
    ).fetchall()
    names = ("provider", "model", "events", "requests", "tokens", "first_seen", "last_seen")
    out = []
    for *row, private in rows:
        item = dict(zip(names, row, strict=True))
        found = resolve_catalog_model(item["provider"], item["model"])
        if private is not None:  # a [[model]] names it, and none of its entries covers these events
            item["what_to_do"] = (
                f"the overrides file has a [[model]] for it, but no entry of it covers these events' "
                f"times ({item['first_seen']:%Y-%m-%d %H:%M} to {item['last_seen']:%Y-%m-%d %H:%M} UTC) "
                "or service tier: widen an entry's valid_from / valid_to (see `flopledger prices show "
                f"{item['model']} --overrides FILE`), then run `flopledger reprice`"
            )
            out.append(item)
            continue
        if found is not None and catalog_rows(*found):  # priced by the catalog since these were stored
            item["what_to_do"] = (
                f"the catalog has prices for it (as {found[0]}/{found[1]}): run `flopledger reprice`, as "
                "the events may be older than them; if they stay unpriced, their dates or service tier "
                "are outside the rows `flopledger prices show MODEL` lists"
            )
        else:
            item["what_to_do"] = (
                "add a [[model]] price to the overrides file, or check the model name, "
                "then run `flopledger reprice`"
            )
        out.append(item)
    return out


_TAGGED_USAGE: tuple[str, ...] = ("input_audio_tokens", "output_audio_tokens")
"""OpenAI's audio tokens, which flopledger does not price: kept in each event's ``tags``."""

UNPRICED_USAGE: tuple[str, ...] = (WEB_SEARCH_CLASS, *_TAGGED_USAGE)
"""Usage the vendors bill apart from the token classes, that a cost may leave out: web searches
(their own column) where no price covers them, and the audio tokens of :data:`_TAGGED_USAGE`."""


_WHAT_TO_DO: dict[str, str] = {
    WEB_SEARCH_CLASS: (
        "their model's price has none for them (add usd_per_web_search to its [[model]] in the "
        "overrides file), or they were stored before flopledger priced them (run `flopledger reprice`)"
    ),
    "audio": "flopledger has no price of its own for them; they are kept in each event's tags",
}
"""What to do of the usage :func:`unpriced_usage` finds, by kind (web searches, audio tokens)."""


def unpriced_usage(con: duckdb.DuckDBPyConnection, ingest_id: str | None = None) -> list[dict[str, Any]]:
    """The usage of :data:`UNPRICED_USAGE` the ledger's events hold (of run ``ingest_id`` alone, when
    given) and no cost covers, by provider, model and kind: web searches of priced events whose
    price version has no price for them (an event with no price at all is a missing price, listed by
    :func:`missing_prices`), and every audio token.

    The web searches of a ledger written before they were priced are covered after ``reprice``.
    """

    def value(k: str) -> str:
        return f"TRY_CAST(json_extract_string(tags, '$.{k}') AS DOUBLE)"

    if WEB_SEARCH_CLASS in table_columns(con, "events"):
        # priced by a price version none of whose rows of the model prices a search (a discount
        # of 100% makes the cost 0, not the price); the prices table gains its column with them
        searched = (
            f"{WEB_SEARCH_CLASS} > 0 AND priced AND coalesce(web_search_cost_usd, 0) = 0 "
            "AND NOT EXISTS (SELECT 1 FROM prices p WHERE p.price_version = events.price_version "
            "AND p.provider_id || '/' || p.model_id = events.price_model AND p.usd_per_web_search > 0)"
        )
        count = WEB_SEARCH_CLASS
    else:  # a ledger an older flopledger wrote, read as it is: its rows keep them in the tags
        searched, count = f"{searches_in_tags()} > 0", searches_in_tags()

    def found(amount: str, where: str) -> str:
        return (
            f"sum({amount}) FILTER ({where}), count(*) FILTER ({where}), "
            f"min(ts) FILTER ({where}), max(ts) FILTER ({where})"
        )

    sums = ", ".join([found(count, searched), *(found(value(k), f"{value(k)} > 0") for k in _TAGGED_USAGE)])
    holds = " OR ".join([f"({searched})", *(f"contains(tags, '\"{k}\"')" for k in _TAGGED_USAGE)])
    run = "AND ingest_id = ?" if ingest_id is not None else ""
    rows = con.execute(
        f"""SELECT provider, model, {sums} FROM events
            WHERE ({holds}) {run} GROUP BY ALL ORDER BY provider, model""",
        [ingest_id] if ingest_id is not None else [],
    ).fetchall()
    out = []
    for provider, model, *sums_found in rows:
        for n, kind in enumerate(UNPRICED_USAGE):
            amount, events, first, last = sums_found[4 * n : 4 * n + 4]
            if amount:
                amount = int(amount) if float(amount).is_integer() else float(amount)
                out.append(
                    {
                        "provider": provider,
                        "model": model,
                        "usage": kind,
                        "amount": amount,
                        "events": events,
                        "first_seen": first,
                        "last_seen": last,
                        "what_to_do": _WHAT_TO_DO[WEB_SEARCH_CLASS if kind == WEB_SEARCH_CLASS else "audio"],
                    }
                )
    return out


MISSING_COLUMNS: tuple[str, ...] = (
    "provider",
    "model",
    "usage",
    "amount",
    "events",
    "requests",
    "tokens",
    "first_seen",
    "last_seen",
    "what_to_do",
)
"""The columns of :func:`all_missing`'s rows."""


def all_missing(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Everything no cost covers, as one list (what ``prices missing`` prints as JSON or CSV): each
    model with unpriced events (``usage`` ``tokens``, its billed tokens the ``amount``;
    :func:`missing_prices`), then the usage billed apart that a cost leaves out (:func:`unpriced_usage`).
    Every row has every column of :data:`MISSING_COLUMNS`, and says what to do."""
    models = [{**row, "usage": "tokens", "amount": row["tokens"]} for row in missing_prices(con)]
    return [{k: row.get(k) for k in MISSING_COLUMNS} for row in (*models, *unpriced_usage(con))]


def describe_unpriced_usage(rows: list[dict[str, Any]]) -> str:
    """One line saying what :func:`unpriced_usage` found, and what it means for the bill."""
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["usage"]] = totals.get(row["usage"], 0) + row["amount"]
    said = ", ".join(f"{amount:,} {kind.replace('_', ' ')}" for kind, amount in totals.items())
    what = []
    if WEB_SEARCH_CLASS in totals:
        what.append(f"web searches: {_WHAT_TO_DO[WEB_SEARCH_CLASS]}")
    if set(totals) - {WEB_SEARCH_CLASS}:
        what.append(f"audio tokens: {_WHAT_TO_DO['audio']}")
    return (
        f"{said}: cost_usd leaves them out, though they are billed. {'; '.join(what)}. "
        "See `flopledger prices missing`."
    )


def price_rows(
    model: str, provider: str | None, overrides: PriceOverrides, *, ledger: Path | None = None
) -> list[dict[str, Any]]:
    """The flat price rows a logged model is priced with: tiers, service tiers and dates.

    With ``ledger`` (a ledger file), each row also says how much of the ledger's use of the model it
    prices: ``events``, ``requests``, ``tokens`` (billed) and ``cost_usd``, over the ledger's events
    whose logged name maps to this model now, priced afresh with these rows (what ``flopledger
    reprice`` would store with the same overrides); ``stored_cost_usd``, the cost the ledger holds for
    them, ``stored_otherwise``, how many of them it holds priced with other prices, and
    ``stored_price_version``, the price version of the latest of those (:data:`_USE`). Events that
    no row prices (a service tier or a date the rows do not cover) are summed in one more row whose
    price columns are all None. Open bounds (dates, the lowest and highest tier) are None.
    """
    key = overrides.private_key(provider, model) or resolve_catalog_model(provider, model)
    if key is None:
        priced = _priced_in_ledger(ledger, provider, model) if ledger is not None else None
        raise InputError(
            f"no price for model {model!r}"
            + (f" of provider {provider!r}" if provider else "")
            + (
                f" in the catalog or these overrides (overrides {overrides.digest}); the ledger's "
                f"{priced[0]:,} events of it were priced with {priced[1]!r}: pass the overrides file "
                "they were priced with (--overrides or $FLOPLEDGER_OVERRIDES)"
                if priced
                else "; check the name, or add it as a [[model]] in the overrides file"
            ),
            field="model",
        )
    use = _ledger_use(ledger, key, overrides) if ledger is not None else None
    rows = []
    for r in catalog_rows(key[0], key[1], overrides):
        rec = r.as_record("current")
        rec.pop("price_version", None)
        if use is not None:
            rec.update(
                use.pop(
                    tuple(rec[k] for k in PRICE_ROW_KEYS),
                    {**dict.fromkeys(_USE, 0), "stored_price_version": None},
                )
            )
        for k, unbounded in _OPEN.items():
            if rec.get(k) == unbounded:
                rec[k] = None
        rows.append(rec)
    if use is not None:
        unpriced = use.pop((None,) * len(PRICE_ROW_KEYS), None)
        if use:  # a bug, not the user's: say so rather than fold priced events into "unpriced"
            raise RuntimeError(f"ledger use of price rows not matched to a row of {key}: {sorted(use)}")
        if unpriced is not None:
            template = rows[0] if rows else {"provider_id": key[0], "model_id": key[1]}
            kept = ("provider_id", "model_id")
            rows.append({k: (template.get(k) if k in kept else None) for k in template} | unpriced)
    return rows


def _priced_in_ledger(ledger: Path, provider: str | None, model: str) -> tuple[int, str] | None:
    """How many of the ledger's events of the model are priced, and the price version that priced
    the latest of them; None when none is (or the ledger cannot be read: the caller's error stands)."""
    from flopledger.ledger.store import open_ledger

    try:
        con = open_ledger(ledger, read_only=True)
    except InputError:
        return None
    try:
        row = con.execute(
            "SELECT count(*), arg_max(price_version, ts) FROM events WHERE model = ? AND priced "
            "AND (? IS NULL OR provider = lower(?))",
            [model, provider, provider],
        ).fetchone()
    finally:
        con.close()
    return (int(row[0]), str(row[1])) if row and row[0] else None


_OPEN = {
    "valid_from": FAR_PAST,
    "valid_to": FAR_FUTURE,
    "tier_above_tokens": TIER_BELOW_ALL,
    "tier_upto_tokens": TIER_ABOVE_ALL,
}
"""A flat row's bound that stands for no bound at all, shown as None."""


_USE = (
    "events",
    "requests",
    "tokens",
    "cost_usd",
    "stored_cost_usd",
    "stored_otherwise",
    "stored_price_version",
)
"""What :func:`price_rows` says of the ledger's use of each row: the events it prices now, their
requests, billed tokens and cost; the cost the ledger holds for them, how many of them it holds
priced with other prices (another catalog, or other overrides: ``flopledger reprice`` stores these),
and the price version of the latest of those (None when there are none)."""

_OLDER_VALUES = {"web_search_requests": searches_in_tags("e.tags")}
"""What a column a ledger an older flopledger wrote lacks holds in its rows (as the upgrade fills it in)."""


def _ledger_use(
    ledger: Path, key: tuple[str, str], overrides: PriceOverrides
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The ledger's events that map to catalog model ``key`` now, priced with its current rows,
    summed per price row (all-None key: no row priced them).

    The ledger is only read: prices are flattened into an in-memory database that attaches it.
    """
    import ibis

    from flopledger.ledger.formats.tabular import sql_literal
    from flopledger.ledger.pricing import price_events

    con = duckdb.connect()
    try:
        create_schema(con)
        con.execute(f"ATTACH {sql_literal(str(ledger))} AS ledger (READ_ONLY)")
        # Every logged name is mapped as reprice would map it; the events of those that map to the
        # model are priced (whatever they were priced as when stored).
        version = ensure_prices(con, overrides, "(SELECT DISTINCT provider, model FROM ledger.events)")
        # a ledger an older flopledger wrote (read, not upgraded) may lack newer columns: NULL
        present = table_columns(con, "events", database="ledger")
        columns = ", ".join(
            f'e."{c.name}"'
            if c.name in present
            else f'CAST({_OLDER_VALUES.get(c.name, "NULL")} AS {c.duckdb_type}) AS "{c.name}"'
            for c in EVENT_COLUMNS
        )
        con.execute(
            f"""CREATE TEMP VIEW _model_events AS SELECT {columns}, e.cost_usd AS _stored_cost_usd,
                  e.price_version AS _stored_version,
                  e.price_version IS DISTINCT FROM {sql_literal(version)} AS _stored_otherwise
                FROM ledger.events e
                JOIN model_map m ON m.price_version = {sql_literal(version)}
                  AND m.provider = coalesce(e.provider, '') AND m.model = e.model
                WHERE m.provider_id = {sql_literal(key[0])} AND m.model_id = {sql_literal(key[1])}"""
        )
        b = ibis.duckdb.from_connection(con)
        prices, mm = b.table("prices"), b.table("model_map")
        priced = price_events(
            b.table("_model_events"),
            prices.filter(prices.price_version == version),
            mm.filter(mm.price_version == version),
            with_row=True,
        )
        keys = [f"row_{k}" for k in PRICE_ROW_KEYS]
        used = priced.group_by(keys).aggregate(
            events=priced.count(),
            requests=priced.requests.sum(),
            tokens=billed_tokens(priced).sum(),
            cost_usd=priced.cost_usd.fill_null(0).sum(),
            stored_cost_usd=priced._stored_cost_usd.fill_null(0).sum(),
            stored_otherwise=priced._stored_otherwise.sum(),
            stored_price_version=priced._stored_version.argmax(priced.ts, where=priced._stored_otherwise),
        )
        found = used.to_pyarrow().to_pylist()
        for r in found:  # as summed from the ledger's stored costs: no float noise in what is shown
            r["stored_cost_usd"] = round(r["stored_cost_usd"], 9)
        return {tuple(r[k] for k in keys): {u: r[u] for u in _USE} for r in found}
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise LedgerUnreadable(
            f"cannot read the ledger: {first}; check --db (a ledger another process holds for writing, "
            "such as `flopledger serve`, cannot be read meanwhile)",
            path=str(ledger),
        ) from exc
    finally:
        con.close()
