"""Detection evaluation on labelled traffic built from real prompts and real arrival shapes.

No public labelled distillation log exists: no lab has released one. This evaluation therefore builds
labelled traffic from real parts in ../shared/data and says which parts are assumptions:

* benign humans: real prompts (ShareGPT first turns, Arena-Hard, self-instruct user-oriented and
  seed tasks), real token counts (Azure 2023 conversation trace; the code trace for heavy users), and
  within-session gaps resampled from the Azure trace's real inter-arrival gaps, rescaled to human
  think time (the shape, dispersion and skew are real; the scale is an assumption). Workday sessions
  in each user's own time zone.
* legitimate 24/7 services (confounders): one account per ServeGen client, arrivals drawn window by
  window from that client's real rate, inter-arrival CV and distribution (Gamma/Weibull), volume
  scaled down; each sends a fixed prompt wrapper, as real integrations do.
* heavy human users (confounders): several times the volume, into the evening, coding token counts.
* token-burn bots: an engineer's own traffic plus an agent loop on a jittered timer for hours, nights
  included, re-sending near-identical prompts with long outputs (assumed shape: "timer-like").
* distillation campaigns: prompts from the template-generated Code Alpaca instructions and from the
  Stanford Alpaca generation prompt filled with seed tasks, spread over many small accounts, mixed
  with cover traffic of human prompts, chain-of-thought elicitation in part, long outputs, a move to
  a newly released model within hours of its release; linked in some campaigns by shared payment
  fingerprints, in others only by synchronised waves of activity. Attacker shares of all requests
  5% to 50%.

Thresholds are calibrated on a separate benign-only population (its own seed) to a 1% account
false-positive rate, then frozen; each attacker share is evaluated on fresh seeds.

    .venv/bin/python bench/integrity_eval.py            # evaluate
    .venv/bin/python bench/integrity_eval.py --write-calibration   # also refresh the shipped thresholds
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from flopledger.integrity.detectors import DETECTORS, Thresholds, calibrate, thresholds_to_json
from flopledger.integrity.scan import raw_scan
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.campaigns import TRAFFIC_COLUMNS, store_traffic

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CALIBRATION = Path(__file__).resolve().parents[1] / "src" / "flopledger" / "integrity" / "calibration.json"
KEY = b"eval-fingerprint-key"
START = dt.datetime(2026, 3, 2)
DAYS, RELEASE_DAY = 14, 10
DAY_S = 86_400.0
SHARES = (0.05, 0.10, 0.20, 0.35, 0.50)
FPR_TARGET = 0.005
"""Calibrated at half the 1% target: a fresh population's rate scatters around the calibrated one."""
_SERVICE_WRAPPERS = (
    "Classify the following customer message into one of: billing, bug, feature request, other.\n\n{p}",
    "You are a support assistant for our product. Draft a short, polite reply to this ticket:\n{p}",
    "Extract every named entity (people, organisations, places) from the text below as JSON.\nText: {p}",
    "Summarise the following document in three bullet points for an executive audience.\n---\n{p}",
    "Translate the user's message into English, keeping formatting.\nMessage: {p}",
)
_COT_SUFFIXES = (
    " Think step by step and show your full reasoning before the final answer.",
    " Let's think step by step.",
    " Explain your reasoning in detail, then give the answer.",
)
_BOT_PROMPTS = (
    "Go through every file in the repository again, refactor anything that could be cleaner, and "
    "explain each change in detail. Iteration {i}.",
    "Re-run the full review of the project: list all possible bugs, rewrite the affected functions "
    "and write unit tests for them. Pass {i}.",
    "Continue improving the codebase. Read all modules, suggest improvements, apply them and summarise "
    "the diff. Round {i}.",
)


def _event_id(seed: int, account: str, i: int) -> str:
    return hashlib.blake2b(f"{seed}|{account}|{i}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class RealData:
    human_prompts: tuple[str, ...]
    code_tasks: tuple[str, ...]
    seed_tasks: tuple[str, ...]
    generation_template: str
    azure_gaps_s: np.ndarray
    conv_tokens: np.ndarray
    code_tokens: np.ndarray
    servegen: tuple[np.ndarray, ...]


def load_real() -> RealData:
    p = DATA / "prompts"
    human = [json.loads(x)["prompt"] for x in (p / "human/arena_hard_v0.1_questions.jsonl").open()]
    sharegpt = json.load((p / "human/sharegpt_v3_first_turns_500.json").open())
    human += [c["conversations"][0]["value"] for c in sharegpt]
    human += [json.loads(x)["instruction"] for x in (p / "human/self_instruct_user_oriented.jsonl").open()]
    seeds = [json.loads(x)["instruction"] for x in (p / "human/self_instruct_seed_tasks.jsonl").open()]
    code = [
        r["instruction"] + ("\n" + r["input"] if r["input"] else "")
        for r in json.load((p / "templated/code_alpaca_2k.json").open())
    ]
    template = (p / "templated/alpaca_generation_prompt.txt").read_text()

    def trace(name: str) -> tuple[np.ndarray, np.ndarray]:
        with (DATA / "traces" / name).open() as f:
            rows = list(csv.DictReader(f))
        ts = np.array([dt.datetime.fromisoformat(r["TIMESTAMP"][:26]).timestamp() for r in rows])
        tokens = np.array([[int(r["ContextTokens"]), int(r["GeneratedTokens"])] for r in rows])
        return np.diff(np.sort(ts)), tokens

    gaps, conv = trace("azure_llm_2023_conv.csv")
    _, code_tok = trace("azure_llm_2023_code.csv")
    clients = []
    for path in sorted((DATA / "traces" / "servegen_m_small").glob("chunk-*-trace.csv")):
        arr = np.genfromtxt(path, delimiter=",", usecols=(0, 1, 2))
        if arr.ndim == 2 and (arr[:, 1] > 0).mean() > 0.05:
            clients.append(arr)
    return RealData(
        tuple(h for h in human if h.strip()),
        tuple(code),
        tuple(seeds),
        template,
        gaps[gaps > 0],
        conv,
        code_tok,
        tuple(clients),
    )


@dataclass
class Traffic:
    rows: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in TRAFFIC_COLUMNS})
    labels: dict[str, str] = field(default_factory=dict)
    campaign_of: dict[str, str] = field(default_factory=dict)

    def table(self) -> pa.Table:
        return pa.table({k: self.rows[k] for k in TRAFFIC_COLUMNS}).sort_by("ts")


class Generator:
    def __init__(self, real: RealData, seed: int) -> None:
        self.real, self.rng, self.t = real, np.random.default_rng(seed), Traffic()
        self.seed = seed

    def emit(
        self,
        account: str,
        label: str,
        times_s: np.ndarray,
        prompts: list[str],
        tokens: np.ndarray,
        *,
        out_scale: float = 1.0,
        tags: dict[str, str] | None = None,
        shift_s: float | None = None,
        org: str | None = None,
    ) -> None:
        release = RELEASE_DAY * DAY_S
        adopt = self.rng.random(len(times_s)) < 0.2  # benign users adopt a new model gradually
        rows = self.t.rows
        for i, t in enumerate(times_s):
            on_new = t >= release and (adopt[i] if shift_s is None else t >= release + shift_s)
            ctx, gen = tokens[i]
            cache = int(ctx * self.rng.uniform(0.0, 0.5))
            out = max(1, int(gen * out_scale))
            uncached = max(1, int(ctx) - cache)
            for k, v in (
                ("event_id", _event_id(self.seed, account, i)),
                ("ts", START + dt.timedelta(seconds=float(t))),
                ("provider", "anthropic"),
                ("model", "frontier-2" if on_new else "frontier-1"),
                ("org", org or f"org-{account}"),
                ("user", account),
                ("api_key", f"key-{account}"),
                ("requests", 1),
                ("input_tokens", uncached),
                ("cache_read_tokens", cache),
                ("output_tokens", out),
                ("tags", json.dumps(tags or {})),
                ("prompt", prompts[i]),
                ("cost_usd", (uncached * 3.0 + cache * 0.3 + out * 15.0) / 1e6),
            ):
                rows[k].append(v)
        self.t.labels[account] = label

    def pick(self, pool: tuple[str, ...], n: int) -> list[str]:
        return [pool[i] for i in self.rng.integers(0, len(pool), size=n)]

    def tokens(self, source: np.ndarray, n: int) -> np.ndarray:
        return source[self.rng.integers(0, len(source), size=n)]

    def session_gaps(self, n: int, think_s: float) -> np.ndarray:
        gaps = self.rng.choice(self.real.azure_gaps_s, size=n)
        return gaps / np.median(self.real.azure_gaps_s) * think_s

    def human_times(self, daily: float, tz_h: float, evening: bool) -> np.ndarray:
        out: list[np.ndarray] = []
        for day in range(DAYS):
            if day % 7 >= 5 and self.rng.random() < 0.8:
                continue
            n = int(self.rng.poisson(daily))
            if n == 0:
                continue
            sessions = int(max(1, self.rng.poisson(max(1.0, n / 6))))
            for chunk in np.array_split(np.arange(n), sessions):
                if not chunk.size:
                    continue
                hour = self.rng.uniform(8, 23 if evening else 18) - tz_h
                start = day * DAY_S + hour * 3600
                out.append(start + np.cumsum(self.session_gaps(chunk.size, self.rng.uniform(30, 120))))
        times = np.sort(np.concatenate(out)) if out else np.zeros(0)
        return times[(times > 0) & (times < DAYS * DAY_S)]

    def human(self, name: str, label: str = "human", heavy: bool = False) -> None:
        tz = float(self.rng.choice([-8, -5, 0, 1, 5.5, 8, 9]))
        daily = self.rng.uniform(30, 80) if heavy else self.rng.lognormal(np.log(6), 0.7)
        t = self.human_times(daily, tz, evening=heavy)
        if t.size:
            source = self.real.code_tokens if heavy else self.real.conv_tokens
            self.emit(name, label, t, self.pick(self.real.human_prompts, t.size), self.tokens(source, t.size))

    def service(self, name: str, client: np.ndarray) -> None:
        windows, rates, cvs = client[:, 0], client[:, 1], client[:, 2]
        scale = min(1.0, 2500.0 / max(1.0, float(np.sum(rates * 600))))
        times: list[np.ndarray] = []
        for w0, rate, cv in zip(windows, rates * scale, cvs, strict=True):
            n = int(self.rng.poisson(rate * 600))
            if n == 0:
                continue
            cv = cv if cv > 0 else 1.0
            shape = 1.0 / (cv * cv)
            gaps = self.rng.gamma(shape, (600.0 / n) / shape, size=n)
            t = w0 + np.cumsum(gaps)
            times.append(t[t < w0 + 600])
        t = np.sort(np.concatenate(times)) if times else np.zeros(0)
        t = t[t < DAYS * DAY_S]
        if t.size:
            wrapper = _SERVICE_WRAPPERS[int(self.rng.integers(0, len(_SERVICE_WRAPPERS)))]
            prompts = [wrapper.format(p=p[:400]) for p in self.pick(self.real.human_prompts, t.size)]
            self.emit(name, "service", t, prompts, self.tokens(self.real.conv_tokens, t.size), out_scale=0.5)

    def burn_bot(self, name: str) -> None:
        self.human(name, "burn_bot")
        period = float(self.rng.uniform(30, 600))
        jitter = float(self.rng.uniform(0.02, 0.2))
        hours = float(self.rng.uniform(4, 16))
        first_day, start_s = int(self.rng.integers(0, 4)), float(self.rng.uniform(0, 24 * 3600))
        starts = np.arange(first_day, DAYS) * DAY_S + start_s
        ticks = np.concatenate([s + np.arange(int(hours * 3600 / period)) * period for s in starts])
        t = np.sort(ticks + self.rng.normal(0, jitter * period, ticks.size))
        t = t[(t > 0) & (t < DAYS * DAY_S)]
        base = _BOT_PROMPTS[int(self.rng.integers(0, len(_BOT_PROMPTS)))]
        prompts = [base.format(i=int(i)) for i in self.rng.integers(1, 500, t.size)]
        self.emit(name, "burn_bot", t, prompts, self.tokens(self.real.code_tokens, t.size), out_scale=3.0)

    def campaign(self, cid: str, requests: int, recipe: int) -> None:
        real = self.real
        per_account = self.rng.uniform(10, 40)
        n_accounts = max(3, int(requests / per_account))
        cards = [f"card-{cid}-{k}" for k in range(max(1, n_accounts // 50))] if recipe % 2 == 0 else []
        shift_s = float(self.rng.uniform(0.5, 20)) * 3600
        synchronised = recipe % 2 == 1
        wave_starts = np.sort(self.rng.uniform(0, DAYS * DAY_S, size=max(20, requests // max(1, n_accounts))))
        cot_share = float(self.rng.uniform(0.3, 0.9))
        for a in range(n_accounts):
            name = f"{cid}-{a:05d}"
            n = max(3, int(self.rng.poisson(per_account)))
            if synchronised:  # a harness dispatching its queue in waves over the whole network
                waves = np.sort(self.rng.choice(wave_starts, size=n))
                t = waves + self.rng.uniform(0, 300, n)
            else:
                start = float(self.rng.uniform(0, DAYS * DAY_S * 0.6))
                t = np.sort(self.rng.uniform(start, DAYS * DAY_S, n))
            if recipe % 3 == 2:
                prompts = [self.generation_prompt() for _ in range(n)]
            else:
                prompts = self.pick(real.code_tasks, n)
            prompts = [
                p + _COT_SUFFIXES[recipe % len(_COT_SUFFIXES)] if self.rng.random() < cot_share else p
                for p in prompts
            ]
            cover = self.rng.random(n) < 0.2  # mixing with normal traffic
            human = self.pick(real.human_prompts, n)
            prompts = [h if c else p for c, p, h in zip(cover, prompts, human, strict=True)]
            tags = {"payment_fp": cards[a % len(cards)]} if cards else None
            self.emit(
                name,
                "distillation",
                t,
                prompts,
                self.tokens(real.conv_tokens, n),
                out_scale=4.0,
                tags=tags,
                shift_s=shift_s,
            )
            self.t.campaign_of[name] = cid

    def generation_prompt(self) -> str:
        tasks = self.pick(self.real.seed_tasks, 3)
        listing = "\n".join(f"{i + 1}. Instruction: {t}" for i, t in enumerate(tasks))
        return self.real.generation_template + "\n" + listing + "\n4. Instruction:"


def build(real: RealData, seed: int, share: float) -> Traffic:
    g = Generator(real, seed)
    for i in range(400):
        g.human(f"human-{i:04d}")
    for i in range(30):
        g.human(f"heavy-{i:04d}", "heavy_human", heavy=True)
    for i, client in enumerate(real.servegen):
        g.service(f"service-{i:04d}", client)
    for i in range(15):
        g.burn_bot(f"burner-{i:04d}")
    benign = len(g.t.rows["ts"])
    if share > 0:
        total = int(benign * share / (1 - share))
        n_campaigns = 4
        for c in range(n_campaigns):
            g.campaign(f"camp{seed}x{c}", total // n_campaigns, recipe=c + seed)
    return g.t


def scores(traffic: Traffic) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    con = open_ledger(":memory:")
    store_traffic(con, traffic.table(), KEY)
    result = raw_scan(con)
    con.close()
    return result.accounts, result.raw


def evaluate(
    accounts: tuple[str, ...], raw: dict[str, np.ndarray], traffic: Traffic, limits: Thresholds
) -> dict[str, float]:
    labels = np.array([traffic.labels[a] for a in accounts])
    benign = np.isin(labels, ("human", "heavy_human", "service"))
    flagged = {k: raw[k] >= limits.by_kind[k] for k in DETECTORS}
    any_flag = flagged["token_burn"] | flagged["distillation"]
    out: dict[str, float] = {"accounts": float(len(accounts)), "fpr_any": float(any_flag[benign].mean())}
    for kind, positive in (("token_burn", labels == "burn_bot"), ("distillation", labels == "distillation")):
        f = flagged[kind]
        tp = float((f & positive).sum())
        out[f"{kind}_recall"] = tp / max(1.0, float(positive.sum()))
        out[f"{kind}_precision"] = tp / max(1.0, float(f.sum()))
        out[f"{kind}_fpr"] = float(f[benign].mean())
    camp = np.array([traffic.campaign_of.get(a, "") for a in accounts])
    caught = [float(flagged["distillation"][camp == c].mean()) for c in sorted(set(camp) - {""})]
    out["campaigns_caught"] = float(np.mean([c >= 0.5 for c in caught])) if caught else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-calibration", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit("../shared/data is absent: this evaluation needs the real prompt and trace files")
    began = time.perf_counter()
    real = load_real()
    benign_raw: dict[str, list[np.ndarray]] = {k: [] for k in DETECTORS}
    for seed in (1000, 1001):  # two benign-only populations, pooled: a steadier 99th percentile
        calib = build(real, seed=seed, share=0.0)
        accounts, raw = scores(calib)
        labels = np.array([calib.labels[a] for a in accounts])
        keep = np.isin(labels, ("human", "heavy_human", "service"))
        for k in DETECTORS:
            benign_raw[k].append(raw[k][keep])
    pooled = {k: np.concatenate(v) for k, v in benign_raw.items()}
    benign = np.ones(len(pooled["token_burn"]), dtype=bool)
    source = (
        f"{1 - FPR_TARGET:.1%} quantile (upper {FPR_TARGET:.1%} tail) of raw scores over "
        f"{int(benign.sum())} benign accounts (real prompts, Azure gaps and token counts, ServeGen "
        "service clients) built by bench/integrity_eval.py, seeds 1000-1001"
    )
    limits = calibrate(pooled, FPR_TARGET, source)
    print(
        f"calibration: {int(benign.sum())} benign accounts; thresholds "
        + ", ".join(f"{k} {v:.3f}" for k, v in limits.by_kind.items())
    )
    if args.write_calibration:
        CALIBRATION.write_text(thresholds_to_json(limits))
    header = (
        "share",
        "accounts",
        "burn R",
        "burn P",
        "burn FPR",
        "distil R",
        "distil P",
        "distil FPR",
        "campaigns",
        "FPR any",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for k, share in enumerate(SHARES):
        traffic = build(real, seed=2000 + k, share=share)
        m = evaluate(*scores(traffic), traffic, limits)
        cells = [f"{share:.0%}", str(int(m["accounts"]))]
        for kind in ("token_burn", "distillation"):
            cells += [
                f"{m[kind + '_recall']:.3f}",
                f"{m[kind + '_precision']:.3f}",
                f"{m[kind + '_fpr']:.4f}",
            ]
        cells += [f"{m['campaigns_caught']:.2f}", f"{m['fpr_any']:.4f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
