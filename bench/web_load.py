"""Dashboard speed at 10M events, and a bounded loopback load test with OTLP ingest running alongside.

1. Builds a ledger of 10,000,000 synthetic events (90 days, 5,000 users in 50 teams, 6 models) with
   DuckDB SQL, then the daily rollup with the ledger's own ``refresh_rollups``.
2. Starts ``flopledger serve`` on 127.0.0.1 (a subprocess) and times GET /api/v1/overview
   sequentially: p50/p95 against the 300 ms limit (median of several runs).
3. Load: N client threads hit the overview for a fixed time, first alone, then while another
   thread POSTs OTLP/HTTP JSON batches of GenAI spans; requests/s, p50/p99, spans stored/s.

Run from the project root: ``.venv/bin/python bench/web_load.py`` (``--events`` to change the scale).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from flopledger.ledger.rollups import refresh_rollups
from flopledger.ledger.store import open_ledger
from flopledger.web.tokens import create_token

LIMIT_P95_MS = 300.0
MODELS = (  # (model, input, cache read, output USD per Mtok), list prices at the time of writing
    ("claude-sonnet-4-5", 3.0, 0.3, 15.0),
    ("claude-opus-4-1", 15.0, 1.5, 75.0),
    ("claude-haiku-4-5", 1.0, 0.1, 5.0),
    ("gpt-4o", 2.5, 1.25, 10.0),
    ("gpt-4o-mini", 0.15, 0.075, 0.6),
    ("gemini-2.5-pro", 1.25, 0.31, 10.0),
)


def build_ledger(path: Path, events: int, days: int, users: int, teams: int) -> dict[str, float]:
    con = open_ledger(path)
    models = ", ".join(f"('{m}', {inp}, {cr}, {out})" for m, inp, cr, out in MODELS)
    t0 = time.perf_counter()
    con.execute(f"""
        CREATE TEMP TABLE m AS SELECT * FROM (VALUES {models}) v(model, inp, cr, outp);
        INSERT INTO events (event_id, ts, provider, model, project, team, "user", api_key, service_tier,
            requests,
            input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
            reasoning_tokens, input_tokens_cost_usd, cache_read_tokens_cost_usd,
            cache_write_5m_tokens_cost_usd, cache_write_1h_tokens_cost_usd, output_tokens_cost_usd,
            reasoning_tokens_cost_usd, request_cost_usd,
            list_cost_usd, cost_usd, priced, price_model, price_version, source_format)
        WITH e AS (
            SELECT i, hash(i) AS h, (hash(i * 7 + 1) % {users}) AS u FROM range({events}) t(i)
        ), f AS (
            SELECT i, h, u, u % {teams} AS team_no,
                   list_element(['claude-sonnet-4-5','claude-opus-4-1','claude-haiku-4-5','gpt-4o','gpt-4o-mini',
                                 'gemini-2.5-pro'],
                                CAST((u * 3 + (h >> 20) % 2) % 6 AS INTEGER) + 1) AS model,
                   200 + h % 6000 AS inp, (h >> 8) % 20000 AS cr, 20 + (h >> 16) % 1500 AS outp
            FROM e
        )
        SELECT 'b' || i, TIMESTAMP '2026-01-01' + to_seconds(CAST((h >> 24) % ({days} * 86400) AS BIGINT)),
               CASE WHEN f.model LIKE 'claude%' THEN 'anthropic' WHEN f.model LIKE 'gpt%' THEN 'openai'
                    ELSE 'google' END,
               f.model, 'project-' || (team_no % 7), 'team-' || team_no, 'user-' || u, 'key-' || u,
               'standard', 1,
               f.inp, f.cr, 0, 0, f.outp, 0,
               f.inp * m.inp / 1e6, f.cr * m.cr / 1e6, 0, 0, f.outp * m.outp / 1e6, 0, 0,
               (f.inp * m.inp + f.cr * m.cr + f.outp * m.outp) / 1e6,
               (f.inp * m.inp + f.cr * m.cr + f.outp * m.outp) / 1e6, true, f.model, 'bench', 'bench'
        FROM f JOIN m USING (model)
    """)
    t1 = time.perf_counter()
    refresh_rollups(con)
    t2 = time.perf_counter()
    (rows,) = con.execute("SELECT count(*) FROM rollup_daily").fetchone() or (0,)
    (n,) = con.execute("SELECT count(*) FROM events").fetchone() or (0,)
    con.close()
    return {"events": n, "rollup_rows": rows, "generate_s": t1 - t0, "rollup_s": t2 - t1}


def make_tokens(path: Path) -> str:
    con = open_ledger(path)
    secret = create_token(con, role="admin").secret
    con.close()
    return secret


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "flopledger", "serve", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sequential(url: str, token: str, n: int) -> list[float]:
    out = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        c.get(f"{url}/api/v1/overview").raise_for_status()  # warm
        for _ in range(n):
            t = time.perf_counter()
            c.get(f"{url}/api/v1/overview").raise_for_status()
            out.append((time.perf_counter() - t) * 1000)
    return out


def _span(i: int, batch: int) -> dict[str, object]:
    def a(k: str, v: object) -> dict[str, object]:
        return {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}}

    attrs = [
        a("gen_ai.provider.name", "anthropic"),
        a("gen_ai.request.model", "claude-sonnet-4-5"),
        a("gen_ai.usage.input_tokens", 1500 + i),
        a("gen_ai.usage.output_tokens", 200),
        a("user.id", f"user-{i % 5000}"),
        a("team", f"team-{i % 50}"),
    ]
    return {
        "traceId": f"{batch:016x}{i:016x}",
        "spanId": f"{batch:08x}{i:08x}",
        "name": "chat",
        "startTimeUnixNano": str(1_777_000_000_000_000_000 + i * 1_000_000),
        "attributes": attrs,
    }


def load(
    url: str, token: str, seconds: float, clients: int, ingest: bool, spans_per_batch: int
) -> dict[str, float]:
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    stored = [0]
    lock = threading.Lock()

    def reader() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = c.get(f"{url}/api/v1/overview")
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(ms)
                    errors[0] += r.status_code != 200

    def writer() -> None:
        batch = int(time.time() * 1000) & 0xFFFFFFFF
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            while time.monotonic() < stop:
                batch += 1
                doc = {
                    "resourceSpans": [
                        {
                            "resource": {"attributes": []},
                            "scopeSpans": [{"spans": [_span(i, batch) for i in range(spans_per_batch)]}],
                        }
                    ]
                }
                r = c.post(f"{url}/v1/traces", json=doc)
                if r.status_code == 200:
                    stored[0] += int(r.json()["ingest"]["rows_stored"])
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(clients)]
    if ingest:
        threads.append(threading.Thread(target=writer))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "errors": errors[0],
        "spans_per_s": stored[0] / elapsed,
        "requests": len(latencies),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--requests", type=int, default=60, help="sequential overview requests per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load phase")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--spans-per-batch", type=int, default=200)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flopledger-bench-") as tmp:
        db = Path(tmp) / "ledger.duckdb"
        built = build_ledger(db, args.events, args.days, args.users, args.teams)
        print(
            f"ledger: {built['events']:,} events -> {built['rollup_rows']:,} rollup rows; "
            f"generated in {built['generate_s']:.1f} s, rollup in {built['rollup_s']:.1f} s"
        )
        token = make_tokens(db)
        proc = start_server(db, args.port)
        url = f"http://127.0.0.1:{args.port}"
        try:
            runs = [sequential(url, token, args.requests) for _ in range(args.runs)]
            p50 = statistics.median(pct(r, 0.5) for r in runs)
            p95 = statistics.median(pct(r, 0.95) for r in runs)
            print(
                f"overview, sequential ({args.runs} runs x {args.requests}): median p50 {p50:.1f} ms, "
                f"median p95 {p95:.1f} ms; limit {LIMIT_P95_MS:.0f} ms -> "
                f"{p95 / LIMIT_P95_MS:.2f} of the limit"
            )
            for ingest in (False, True):
                r = load(url, token, args.seconds, args.clients, ingest, args.spans_per_batch)
                label = "with OTLP ingest" if ingest else "alone"
                print(
                    f"load {label}: {args.clients} clients x {args.seconds:.0f} s: "
                    f"{r['requests_per_s']:.1f} req/s, "
                    f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, "
                    f"spans stored {r['spans_per_s']:.0f}/s ({r['requests']} requests)"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
