"""Labelled abusive and confounding traffic for the integrity detectors' tests and evaluation.

Deterministic under a seed. Account kinds:

* ``human``: office-hours sessions (bursty gaps), diverse prompts, some outcomes.
* ``heavy_human``: the same shape at several times the volume, into the evening; many outcomes.
* ``service``: a legitimate 24/7 service account: renewal arrivals round the clock with a gap CV drawn
  from ``service_gap_cvs`` (real ServeGen clients in the evaluation), one fixed prompt wrapper.
* ``burn_bot``: an engineer whose agent loop fires on a jittered timer for hours, nights included,
  re-sending near-identical prompts, on top of their own human traffic (their outcomes stay human).
* ``distillation``: a campaign spread thin over many accounts: template-wrapped tasks, mostly asking
  for chain-of-thought, long outputs, a shared payment fingerprint in some campaigns, and a jump to
  a newly released model within a day of its release.

>>> traffic = build_traffic(TrafficSpec(humans=5, campaigns=1, campaign_accounts=4), seed=1)
>>> sorted(set(traffic.labels.values()))
['burn_bot', 'distillation', 'heavy_human', 'human', 'service']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from flopledger.ledger.fingerprints import fingerprint_prompts

__all__ = [
    "START",
    "TRAFFIC_COLUMNS",
    "LabelledTraffic",
    "PromptPools",
    "TrafficSpec",
    "build_traffic",
    "default_prompt_pools",
    "store_traffic",
]

START = dt.datetime(2026, 3, 2)  # a Monday, UTC
NEW_MODEL = "frontier-2"
OLD_MODEL = "frontier-1"
_DAY_S = 86_400.0

_SUBJECTS = (
    "my flask app",
    "a postgres query",
    "our onboarding email",
    "the quarterly report",
    "a kubernetes pod",
    "this regex",
    "a birthday poem",
    "the react component",
    "my resume",
    "a rust borrow error",
    "the marketing plan",
    "a python script",
    "a job interview",
    "a docker build",
    "the sales forecast",
)
_ASKS = (
    "Can you help me fix {s}? It keeps failing since yesterday.",
    "why does {s} behave like this",
    "I need ideas to improve {s}, any thoughts?",
    "Rewrite {s} so it sounds more professional",
    "what is wrong with {s}",
    "Hey, quick question about {s}: is there a simpler way?",
    "Compare two approaches for {s} and tell me which is cheaper",
    "summarize the tradeoffs of {s}",
    "ok so {s} broke again after the update, what should I check first",
    "Translate {s} notes into German",
    "Is it normal that {s} takes 10 minutes?",
    "Give me a checklist to review {s}",
)
_DETAILS = (
    "",
    "Thanks!",
    "It runs on a laptop with 8 GB of memory.",
    "My manager wants it by Friday.",
    "We use version 3 of the library.",
    "The logs show a timeout after 30 seconds.",
    "Keep it short please.",
    "I am a beginner.",
    "Our team is five people.",
    "The data comes from a CSV export.",
    "This is for a school project.",
    "We deploy on AWS.",
    "The customer is in Japan.",
)
_TASKS = (
    "Write a function to reverse a linked list.",
    "Write a SQL query to find duplicate emails.",
    "Explain the difference between a process and a thread.",
    "Write a function that checks for primes.",
    "Generate a regular expression that matches dates.",
    "Write a class implementing a LRU cache.",
    "Explain how TCP congestion control works.",
    "Write a program to merge two sorted arrays.",
    "Create a function that parses a CSV line.",
    "Explain the CAP theorem with an example.",
)
_WRAPPERS = (
    "You are an expert assistant. Solve the following task and think step by step, showing all your "
    "reasoning before the final answer. Task: {t}",
    "Answer the question below. First write out your full chain of thought, then give a concise final "
    "answer on its own line. Question: {t}",
    "Act as a senior engineer and teacher. Reason step-by-step about this problem, explain every "
    "intermediate step in detail, then answer. Problem: {t}",
)
_SERVICE_WRAPPERS = (
    "Classify the sentiment of this customer message as positive, negative or neutral: {t}",
    "Extract the product name and order number from the following support ticket: {t}",
    "Summarize the following incident note in one sentence for the on-call channel: {t}",
)
_BOT_PROMPTS = (
    "Refactor the whole repository again and explain every change in detail.",
    "Review all files in the project again and rewrite them to be cleaner.",
    "Generate comprehensive unit tests for every module in the repository again.",
)


@dataclass(frozen=True)
class PromptPools:
    """Prompts to draw from: real human prompts, and templated tasks a campaign wraps."""

    human: tuple[str, ...]
    templated: tuple[str, ...]


def default_prompt_pools() -> PromptPools:
    """Built-in pools (no data files needed): varied human-like asks and short coding tasks."""
    human = tuple(f"{a.format(s=s)} {d}".strip() for a in _ASKS for s in _SUBJECTS for d in _DETAILS)
    templated = tuple(f"{t} Use {lang}." for t in _TASKS for lang in ("Python", "Java", "Go", "C++", "Rust"))
    return PromptPools(human=human, templated=templated)


@dataclass(frozen=True)
class TrafficSpec:
    humans: int = 200
    heavy_humans: int = 10
    services: int = 6
    burn_bots: int = 6
    campaigns: int = 2
    campaign_accounts: int = 30
    campaign_requests_per_account: int = 25
    shared_payment_share: float = 0.5
    """Share of campaigns whose accounts share a payment fingerprint in their tags."""
    days: int = 14
    release_day: int = 10
    service_gap_cvs: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0)
    human_daily_requests: tuple[float, float] = (4.0, 25.0)


@dataclass(frozen=True)
class LabelledTraffic:
    """Canonical events (with prompt text) and the truth about every account."""

    events: pa.Table
    labels: dict[str, str]
    campaign_of: dict[str, str] = field(default_factory=dict)


class _Builder:
    def __init__(self, spec: TrafficSpec, pools: PromptPools, seed: int) -> None:
        self.spec, self.pools = spec, pools
        self.rng = np.random.default_rng(seed)
        self.rows: dict[str, list[object]] = {k: [] for k in TRAFFIC_COLUMNS}

    def emit(
        self,
        account: str,
        times_s: np.ndarray,
        prompts: Sequence[str],
        *,
        out_scale: float,
        tags: dict[str, str] | None = None,
        org: str = "acme",
        model_shift_s: float | None = None,
    ) -> None:
        n = len(times_s)
        release_s = self.spec.release_day * _DAY_S
        adopt = self.rng.random(n) < 0.25
        for i in range(n):
            t = float(times_s[i])
            prompt = prompts[i]
            words = len(prompt.split())
            on_new = t >= release_s and (
                adopt[i] if model_shift_s is None else t >= release_s + model_shift_s
            )
            in_tok = int(words * 1.4 + self.rng.integers(20, 400))
            out_tok = int(max(1.0, self.rng.lognormal(np.log(out_scale), 0.5)))
            self._row(account, org, t, on_new, in_tok, out_tok, prompt, tags)

    def _row(
        self,
        account: str,
        org: str,
        t: float,
        on_new: bool,
        in_tok: int,
        out_tok: int,
        prompt: str,
        tags: dict[str, str] | None,
    ) -> None:
        r = self.rows
        ts = START + dt.timedelta(seconds=t)
        event_id = hashlib.blake2b(f"{account}|{t}|{len(r['ts'])}".encode(), digest_size=8).hexdigest()
        cache = int(in_tok * self.rng.uniform(0.0, 0.6))
        cost = (in_tok * 3.0 + cache * 0.3 + out_tok * 15.0) / 1e6
        for k, v in (
            ("event_id", event_id),
            ("ts", ts),
            ("provider", "anthropic"),
            ("model", NEW_MODEL if on_new else OLD_MODEL),
            ("org", org),
            ("user", account),
            ("api_key", f"key-{account}"),
            ("requests", 1),
            ("input_tokens", in_tok),
            ("cache_read_tokens", cache),
            ("output_tokens", out_tok),
            ("tags", json.dumps(tags or {})),
            ("prompt", prompt),
            ("cost_usd", cost),
        ):
            r[k].append(v)

    # arrival shapes -----------------------------------------------------------------------------------
    def human_times(self, daily: float, evening: bool) -> np.ndarray:
        times: list[float] = []
        for day in range(self.spec.days):
            if day % 7 >= 5 and self.rng.random() < 0.85:
                continue
            n = self.rng.poisson(daily)
            sessions = max(1, n // 5)
            hours = (9, 22) if evening else (8, 18)
            for _ in range(sessions):
                start = day * _DAY_S + self.rng.uniform(*hours) * 3600
                gaps = self.rng.lognormal(np.log(60), 1.2, size=max(1, n // sessions))
                times.extend(start + np.cumsum(gaps))
        return np.sort(np.asarray(times))

    def renewal_times(self, mean_gap_s: float, cv: float, start_s: float, end_s: float) -> np.ndarray:
        shape = 1.0 / (cv * cv)
        n = int((end_s - start_s) / mean_gap_s * 1.3) + 10
        gaps = self.rng.gamma(shape, mean_gap_s / shape, size=n)
        t = start_s + np.cumsum(gaps)
        return t[t < end_s]

    def pick(self, pool: Sequence[str], n: int) -> list[str]:
        return [pool[i] for i in self.rng.integers(0, len(pool), size=n)]


TRAFFIC_COLUMNS: tuple[str, ...] = (
    "event_id",
    "ts",
    "provider",
    "model",
    "org",
    "user",
    "api_key",
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "output_tokens",
    "tags",
    "prompt",
    "cost_usd",
)


def build_traffic(
    spec: TrafficSpec = TrafficSpec(), pools: PromptPools | None = None, *, seed: int = 0
) -> LabelledTraffic:
    """Build labelled traffic: canonical event columns plus ``prompt``; labels by account (``user``)."""
    b = _Builder(spec, pools or default_prompt_pools(), seed)
    labels: dict[str, str] = {}
    campaign_of: dict[str, str] = {}
    end_s = spec.days * _DAY_S
    lo, hi = spec.human_daily_requests
    for i in range(spec.humans):
        t = b.human_times(float(b.rng.uniform(lo, hi)), evening=False)
        b.emit(f"human-{i:04d}", t, b.pick(b.pools.human, len(t)), out_scale=400)
        labels[f"human-{i:04d}"] = "human"
    for i in range(spec.heavy_humans):
        t = b.human_times(float(b.rng.uniform(4 * hi, 8 * hi)), evening=True)
        b.emit(f"heavy-{i:04d}", t, b.pick(b.pools.human, len(t)), out_scale=700)
        labels[f"heavy-{i:04d}"] = "heavy_human"
    for i in range(spec.services):
        cv = spec.service_gap_cvs[i % len(spec.service_gap_cvs)]
        t = b.renewal_times(float(b.rng.uniform(120, 900)), cv, 0.0, end_s)
        wrapper = _SERVICE_WRAPPERS[i % len(_SERVICE_WRAPPERS)]
        prompts = [wrapper.format(t=p) for p in b.pick(b.pools.human, len(t))]
        b.emit(f"service-{i:04d}", t, prompts, out_scale=40, org="acme-services")
        labels[f"service-{i:04d}"] = "service"
    for i in range(spec.burn_bots):
        own = b.human_times(float(b.rng.uniform(lo, hi)), evening=False)
        period = float(b.rng.uniform(45, 300))
        first_day = int(b.rng.integers(0, 3))
        starts = first_day * _DAY_S + np.arange(spec.days - first_day) * _DAY_S + b.rng.uniform(0, 6 * 3600)
        ticks = np.concatenate([s + np.arange(int(14 * 3600 / period)) * period for s in starts])
        bot = ticks + b.rng.normal(0, 0.05 * period, size=ticks.size)
        t = np.sort(np.concatenate([own, bot]))
        base = _BOT_PROMPTS[i % len(_BOT_PROMPTS)]
        is_bot = np.isin(t, bot)
        prompts = [
            base if bot_tick else p for bot_tick, p in zip(is_bot, b.pick(b.pools.human, len(t)), strict=True)
        ]
        b.emit(f"burner-{i:04d}", t, prompts, out_scale=1500)
        labels[f"burner-{i:04d}"] = "burn_bot"
    for c in range(spec.campaigns):
        wrapper = _WRAPPERS[c % len(_WRAPPERS)]
        tags = {"payment_fp": f"card-{c}"} if c < round(spec.shared_payment_share * spec.campaigns) else None
        shift_s = float(b.rng.uniform(1, 20)) * 3600
        for a in range(spec.campaign_accounts):
            n = max(3, int(b.rng.poisson(spec.campaign_requests_per_account)))
            start = float(b.rng.uniform(0, end_s * 0.5))
            t = np.sort(b.rng.uniform(start, end_s, size=n))
            prompts = [wrapper.format(t=p) for p in b.pick(b.pools.templated, n)]
            name = f"camp{c}-{a:04d}"
            b.emit(
                name, t, prompts, out_scale=1800, tags=tags, org=f"org-c{c}-{a % 7}", model_shift_s=shift_s
            )
            labels[name] = "distillation"
            campaign_of[name] = f"campaign-{c}"
    table = pa.table({k: b.rows[k] for k in TRAFFIC_COLUMNS})
    return LabelledTraffic(events=table.sort_by("ts"), labels=labels, campaign_of=campaign_of)


def store_traffic(
    con: duckdb.DuckDBPyConnection, events: pa.Table, key: bytes, *, keep_prompts: bool = False
) -> int:
    """Insert labelled traffic into a ledger as ingest would: fingerprints in, prompt text out."""
    fingerprints = fingerprint_prompts(events.column("prompt").to_pylist(), key)
    table = events if keep_prompts else events.drop_columns(["prompt"])
    for name in fingerprints.column_names:
        table = table.append_column(name, fingerprints.column(name))
    columns = ", ".join(f'"{c}"' for c in table.column_names)
    con.register("incoming_traffic", table)
    try:
        con.execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM incoming_traffic")
    finally:
        con.unregister("incoming_traffic")
    return int(table.num_rows)
