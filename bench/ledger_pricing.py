"""Bulk pricing and ingest speed, side by side with their peers, in one run.

1. 10,000,000 events from Parquet priced and rolled up by team, model and day (flopledger's priced
   rollup, and for reference pricing every event first), against (a) genai-prices' per-row
   ``calc_price`` on a sample, extrapolated to all rows, and
   (b) the same group-by with no pricing (the floor: the same keys and the same sums; the narrower floor
   recorded first, four token sums and no requests, is shown beside it). Peak memory of the priced
   rollup in a child process.
2. JSONL ingest with validation, dedupe and pricing (``ingest_files``) against a bare DuckDB ``read_json``
   of the same file into a table; also the same file into a ledger that holds 60% of it already, and
   again into one that holds all of it (the re-pulled usage export).

Run: ``.venv/bin/python bench/ledger_pricing.py [--events 10000000] [--jsonl-rows 1000000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-1"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("openai", "gpt-4.1"),
    ("google", "gemini-2.5-pro"),
    ("anthropic", "claude-sonnet-4-6"),
]
START = dt.datetime(2026, 3, 1)


def make_events(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    m = rng.integers(0, len(MODELS), n)
    ts = np.datetime64(START) + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
    # Each engineer works in one team, as in an organisation (and in `flopledger demo`).
    users = rng.integers(0, 500, n)
    team_of_user = rng.integers(0, 24, 500)
    return pa.table(
        {
            "event_id": pa.array(np.char.add("e", np.arange(n).astype(str)))
            if n <= 2_000_000
            else pa.array(np.arange(n).astype(str)),
            "ts": pa.array(ts.astype("datetime64[us]")),
            "provider": pa.array([MODELS[i][0] for i in range(len(MODELS))]).take(pa.array(m)),
            "model": pa.array([MODELS[i][1] for i in range(len(MODELS))]).take(pa.array(m)),
            "team": pa.array([f"team-{i:02d}" for i in range(24)]).take(pa.array(team_of_user[users])),
            "user": pa.array([f"eng-{i:04d}" for i in range(500)]).take(pa.array(users)),
            "service_tier": pa.array(["standard", "batch"]).take(pa.array((rng.random(n) < 0.1).astype(int))),
            "requests": pa.array(np.ones(n, dtype=np.int64)),
            "input_tokens": pa.array(rng.integers(0, 8_000, n)),
            "cache_read_tokens": pa.array(rng.integers(0, 150_000, n)),
            "cache_write_5m_tokens": pa.array(rng.integers(0, 20_000, n)),
            "cache_write_1h_tokens": pa.array(np.zeros(n, dtype=np.int64)),
            "output_tokens": pa.array(rng.integers(0, 4_000, n)),
            "reasoning_tokens": pa.array(np.zeros(n, dtype=np.int64)),
        }
    )


_VIEW = """CREATE OR REPLACE VIEW events_src AS SELECT *, CAST(NULL AS BIGINT) AS min_request_input_tokens,
    CAST(NULL AS BIGINT) AS max_request_input_tokens,
    CAST(NULL AS VARCHAR) AS org, CAST(NULL AS VARCHAR) AS project, CAST(NULL AS VARCHAR) AS api_key,
    CAST(NULL AS VARCHAR) AS request_id FROM read_parquet('{path}')"""

_CHILD = f"""
import json, resource, sys, time
import duckdb, ibis, pandas
# Imported before timing: the Ibis backend, and pandas, which DuckDB imports on the first query with
# parameters (flopledger's own, never the floor's): a one-off import of 0.2 s is no part of either side.
ibis.duckdb
from flopledger.catalog.overrides import PriceOverrides
from flopledger.ledger.price_table import ensure_prices
from flopledger.ledger.pricing import price_events
from flopledger.ledger.rollup_pricing import price_breaks, priced_rollup
from flopledger.ledger.store import create_schema
path, mode = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
create_schema(con)
con.execute({_VIEW!r}.format(path=path))
t0 = time.perf_counter()
if mode == "floor":  # the same group-by as the priced rollup, with the same sums, and no pricing
    rows = con.execute('''SELECT team, model, CAST(ts AS DATE) AS day, sum(coalesce(requests, 1)),
        sum(input_tokens), sum(cache_read_tokens), sum(cache_write_5m_tokens), sum(cache_write_1h_tokens),
        sum(output_tokens), sum(reasoning_tokens), count(*) FROM events_src GROUP BY ALL''').fetchall()
elif mode == "floor-narrow":  # the floor first recorded: four of the six token sums, no requests
    rows = con.execute('''SELECT team, model, CAST(ts AS DATE) AS day, sum(input_tokens),
        sum(cache_read_tokens), sum(cache_write_5m_tokens), sum(output_tokens), count(*)
        FROM events_src GROUP BY ALL''').fetchall()
else:
    version = ensure_prices(con, PriceOverrides.empty(), "events_src")
    b = ibis.duckdb.from_connection(con)
    prices, mm = b.table("prices"), b.table("model_map")
    prices, mm = prices.filter(prices.price_version == version), mm.filter(mm.price_version == version)
    ev = b.table("events_src")
    day = ev.ts.date().name("day")  # CAST(ts AS DATE), as in the floor
    if mode == "per-event":  # price every event, then roll up
        priced = price_events(ev, prices, mm)
        pday = priced.ts.date().name("day")
        rollup = priced.group_by([priced.team, priced.model, pday]).aggregate(
            cost_usd=priced.cost_usd.sum(), events=priced.count())
    else:  # flopledger's priced rollup: aggregate between price breakpoints, then price the groups
        breaks = price_breaks(prices, lambda e: e.to_pyarrow().to_pylist(), mm)
        rollup = priced_rollup(ev, prices, mm, breaks, [ev.team, ev.model, day])
    sql = b.compile(rollup, pretty=False)  # as executing the expression does; pretty-printing is slow
t1 = time.perf_counter()  # setup done: catalog flattened, breakpoints read, expression compiled
rows = con.execute(sql).fetchall() if not mode.startswith("floor") else rows
elapsed = time.perf_counter() - t0
setup = (t1 - t0) if not mode.startswith("floor") else 0.0
try:  # this process's own high-water mark: getrusage's ru_maxrss also counts the parent before exec
    with open("/proc/self/status") as fh:
        peak_mb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
except OSError:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "setup_seconds": setup, "groups": len(rows), "peak_rss_mb": peak_mb}}))
"""


def run_child(path: Path, mode: str, cache_dir: Path) -> dict[str, float]:
    """One measurement in a fresh process; ``cache_dir`` holds its flattened-catalog cache."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def per_row_rate(table: pa.Table, sample: int) -> float:
    """Rows per second of genai-prices' calc_price, one call per event (the test oracle)."""
    import warnings

    from genai_prices import Usage, calc_price

    rows = table.slice(0, sample).to_pylist()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in rows:
            u = Usage(
                input_tokens=r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_5m_tokens"],
                cache_read_tokens=r["cache_read_tokens"],
                cache_write_tokens=r["cache_write_5m_tokens"],
                output_tokens=r["output_tokens"],
            )
            calc_price(
                u,
                r["model"],
                provider_id=r["provider"],
                genai_request_timestamp=r["ts"].replace(tzinfo=dt.UTC),
            )
    return sample / (time.perf_counter() - t0)


_STAGES = (  # (stage, how its statements start), in pipeline order; the first match names a statement
    ("read the lines", ("CREATE OR REPLACE TEMP TABLE _src",)),
    ("parse, check, give ids", ("INSERT INTO _checked",)),
    (
        "dedupe",
        (
            "SELECT count(*), count(*) FILTER (error IS NOT NULL)",
            "UPDATE _checked",
            "SELECT count(DISTINCT event_id) FROM _checked",
            "SELECT count(*) FROM events WHERE ts BETWEEN",
            "DELETE FROM _checked",
        ),
    ),
    (
        "price table",
        (
            "SELECT DISTINCT coalesce(provider",
            "INSERT INTO model_map",
            "SELECT DISTINCT provider_id",
            "INSERT INTO prices",
            "CREATE OR REPLACE TEMP VIEW _priced",
        ),
    ),
    (  # the batch is priced as the rollup and the events' insert read it
        "price and roll up",
        (
            "SELECT CAST(ts AS DATE), count(*)",
            "SELECT day, count(*) FILTER (compacted)",
            "INSERT INTO rollup_daily",
            "CREATE OR REPLACE TEMP TABLE _rollup_sum",
            "DELETE FROM rollup_daily",
        ),
    ),
    (
        "price and store the events",
        ("INSERT INTO events", "SELECT count(*), count(*) FILTER (NOT priced)", "COMMIT"),
    ),
)


class _Timed:
    """A connection that adds each statement's time to the pipeline stage it belongs to ("other SQL"
    for the rest: temp tables, the run's record, cleanup)."""

    def __init__(self, con: object) -> None:
        self._con = con
        self.stages: dict[str, float] = {name: 0.0 for name, _ in _STAGES} | {"other SQL": 0.0}

    def _timed(self, method: str, sql: str, *args: object) -> object:
        t0 = time.perf_counter()
        out = getattr(self._con, method)(sql, *args)
        head = " ".join(sql.split())
        stage = next((name for name, starts in _STAGES if head.startswith(starts)), "other SQL")
        self.stages[stage] += time.perf_counter() - t0
        return out

    def execute(self, sql: str, *args: object) -> object:
        return self._timed("execute", sql, *args)

    def executemany(self, sql: str, *args: object) -> object:
        return self._timed("executemany", sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def jsonl_bench(rows: int, runs: int, tmp: Path) -> dict[str, float]:
    import duckdb

    from flopledger.ledger.ingest import ingest_files
    from flopledger.ledger.store import NEW_LEDGER_CONFIG, open_ledger

    table = make_events(rows, seed=1).drop_columns(["event_id", "reasoning_tokens", "cache_write_1h_tokens"])
    path = tmp / "events.jsonl"
    with path.open("w") as fh:
        for r in table.to_pylist():
            r["ts"] = r["ts"].isoformat() + "Z"
            fh.write(json.dumps(r) + "\n")
    # A usage export pulled again over a window it shares with the last pull: the first 60% of the
    # file is in the ledger already, the whole file is ingested (40% new events, 60% duplicates).
    prefix = tmp / "prefix.jsonl"
    with path.open() as src, prefix.open("w") as dst:
        for _, line in zip(range(rows * 6 // 10), src, strict=False):
            dst.write(line)
    bare, bare15, ours, ours10, store, overlap, again = [], [], [], [], [], [], []
    stages: list[dict[str, float]] = []
    for i in range(runs):  # interleaved, so machine load hits all of them alike
        con = duckdb.connect(str(tmp / f"bare{i}.duckdb"))
        os.sync()  # no step pays for the writes of the one before, still in flight
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_json('{path}', format='newline_delimited')")
        bare.append(time.perf_counter() - t0)
        con.close()
        # The same into a file of the storage a new ledger is written in (DuckDB's 1.5), which
        # writes faster than the 1.0 storage DuckDB writes by default.
        con = duckdb.connect(str(tmp / f"bare15_{i}.duckdb"), config=NEW_LEDGER_CONFIG)
        os.sync()
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_json('{path}', format='newline_delimited')")
        bare15.append(time.perf_counter() - t0)
        con.close()
        con = open_ledger(tmp / f"ours{i}.duckdb")
        timed = _Timed(con)  # a clock read per statement: nothing next to a 4 s ingest
        os.sync()
        t0 = time.perf_counter()
        result = ingest_files(timed, [path], format="jsonl")  # type: ignore[arg-type]
        ours.append(time.perf_counter() - t0)
        stages.append(timed.stages | {"Python": ours[-1] - sum(timed.stages.values())})
        assert result.rows_stored == rows and result.reconciles
        os.sync()
        t0 = time.perf_counter()
        result = ingest_files(con, [path], format="jsonl")  # the same file again: all duplicates
        again.append(time.perf_counter() - t0)
        assert result.rows_duplicate == rows and result.reconciles
        con.close()
        # The same ingest into a ledger of DuckDB's default 1.0 storage, as ledgers were written before.
        older = tmp / f"ours10_{i}.duckdb"
        duckdb.connect(str(older)).close()
        con = open_ledger(older)
        os.sync()
        t0 = time.perf_counter()
        result = ingest_files(con, [path], format="jsonl")
        ours10.append(time.perf_counter() - t0)
        assert result.rows_stored == rows and result.reconciles
        con.close()
        con = open_ledger(tmp / f"overlap{i}.duckdb")
        ingest_files(con, [prefix], format="jsonl")
        os.sync()
        t0 = time.perf_counter()
        result = ingest_files(con, [path], format="jsonl")
        overlap.append(time.perf_counter() - t0)
        assert result.rows_stored == rows - rows * 6 // 10 and result.reconciles
        con.close()
        # The floor of storing the ledger's own rows: the same priced events rows (every column), already in
        # memory, appended to a fresh ledger with no reading, checking, pricing or rollup at all.
        con = open_ledger(tmp / f"store{i}.duckdb")
        con.execute(f"ATTACH '{tmp / f'ours{i}.duckdb'}' AS o (READ_ONLY)")
        con.execute("CREATE TEMP TABLE mem AS SELECT * FROM o.events")
        os.sync()
        t0 = time.perf_counter()
        con.execute("INSERT INTO events SELECT * FROM mem")
        store.append(time.perf_counter() - t0)
        con.close()
    return {
        "bare_read_json_s": statistics.median(bare),
        "bare_read_json_v15_s": statistics.median(bare15),
        "flopledger_ingest_s": statistics.median(ours),
        "flopledger_ingest_v10_s": statistics.median(ours10),
        "store_only_s": statistics.median(store),
        "overlap_s": statistics.median(overlap),
        "again_s": statistics.median(again),
        **{f"stage {k}": statistics.median(s[k] for s in stages) for k in stages[0]},
    }


def main() -> None:
    from flopledger.ledger.store import EVENTS_TABLE_COLUMNS

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--jsonl-rows", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        table = make_events(args.events)
        path = tmp / "events.parquet"
        pq.write_table(table, path, row_group_size=1_000_000)
        rate = per_row_rate(table, args.sample)
        del table
        cache = tmp / "cache"  # a fresh catalog cache: the first priced run flattens the catalog
        cold = run_child(path, "priced", cache)
        priced, floor, narrow, per_event = [], [], [], []
        for _ in range(args.runs):  # interleaved, so machine load hits all four alike
            priced.append(run_child(path, "priced", cache))
            floor.append(run_child(path, "floor", cache))
            narrow.append(run_child(path, "floor-narrow", cache))
            per_event.append(run_child(path, "per-event", cache))
        ours = statistics.median(p["seconds"] for p in priced)
        floor_s = statistics.median(p["seconds"] for p in floor)
        narrow_s = statistics.median(p["seconds"] for p in narrow)
        per_row_s = args.events / rate
        print(f"events: {args.events:,}  groups: {int(priced[0]['groups']):,}")
        print(
            f"flopledger price + rollup (median of {args.runs}): {ours:.2f} s, "
            f"peak RSS {max(p['peak_rss_mb'] for p in priced):.0f} MB"
        )
        setup_s = statistics.median(p["setup_seconds"] for p in priced)
        print(
            f"  of which setup (price table from the cached catalog, breakpoints, compile): {setup_s:.2f} s; "
            f"the query itself {ours - setup_s:.2f} s"
        )
        print(
            f"  first run, empty catalog cache (flattening the catalog): {cold['seconds']:.2f} s, "
            f"setup {cold['setup_seconds']:.2f} s"
        )
        print(
            f"floor, same group-by and sums without pricing: {floor_s:.2f} s  -> ratio {ours / floor_s:.2f}x "
            f"end to end, {(ours - setup_s) / floor_s:.2f}x for the query"
        )
        print(
            f"narrower floor (4 token sums, no requests):    {narrow_s:.2f} s  -> ratio "
            f"{ours / narrow_s:.2f}x end to end, {(ours - setup_s) / narrow_s:.2f}x for the query"
        )
        pe = statistics.median(p["seconds"] for p in per_event)
        print(
            f"pricing every event, then the group-by:      {pe:.2f} s, "
            f"peak RSS {max(p['peak_rss_mb'] for p in per_event):.0f} MB (what ingest does per batch)"
        )
        print(
            f"per-row calc_price: {rate:,.0f} rows/s on {args.sample:,} rows -> {per_row_s:,.0f} s for all "
            f"-> flopledger is {per_row_s / ours:,.0f}x faster"
        )
        if args.jsonl_rows <= 0:
            return
        j = jsonl_bench(args.jsonl_rows, args.runs, tmp)
        print(
            f"JSONL {args.jsonl_rows:,} rows: bare read_json {j['bare_read_json_s']:.2f} s, "
            "flopledger ingest "
            f"(validate, dedupe, price, store) {j['flopledger_ingest_s']:.2f} s -> "
            f"{j['bare_read_json_s'] / j['flopledger_ingest_s']:.2f} of bare speed"
        )
        print(
            "  bare read_json into a file of the ledger's storage (DuckDB 1.5): "
            f"{j['bare_read_json_v15_s']:.2f} s -> "
            f"{j['bare_read_json_v15_s'] / j['flopledger_ingest_s']:.2f} of that bare speed"
        )
        print(
            "  the same ingest into a ledger of DuckDB's default 1.0 storage (as written before): "
            f"{j['flopledger_ingest_v10_s']:.2f} s -> "
            f"{j['bare_read_json_s'] / j['flopledger_ingest_v10_s']:.2f} of bare speed"
        )
        print(
            f"  storing the same priced events rows from memory, nothing else: {j['store_only_s']:.2f} s "
            f"({j['store_only_s'] / j['bare_read_json_s']:.2f}x the bare read_json)"
        )
        print(
            f"  the whole file into a ledger holding its first 60% (40% new): {j['overlap_s']:.2f} s "
            f"({j['bare_read_json_s'] / j['overlap_s']:.2f} of bare speed); "
            f"the same file again (all duplicates): {j['again_s']:.2f} s "
            f"({j['bare_read_json_s'] / j['again_s']:.2f})"
        )
        stages = {k.removeprefix("stage "): v for k, v in j.items() if k.startswith("stage ")}
        print(
            f"  where the ingest's time goes (s, median of {args.runs} per stage): "
            + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        )
        checked = sum(stages[k] for k in ("read the lines", "parse, check, give ids", "dedupe"))
        print(
            f"  of which validation and dedupe (read, parse, check, ids, dedupe): {checked:.2f} s "
            f"({j['bare_read_json_s'] / checked:.2f} of bare speed); pricing, the rollup and storing "
            f"the {len(EVENTS_TABLE_COLUMNS)}-column rows are the rest"
        )


if __name__ == "__main__":
    main()
