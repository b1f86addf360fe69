"""A deterministic synthetic engineering organisation, written as the raw logs real vendors produce.

Twenty-four teams and 520 engineers over 75 days (September to mid-November 2026, adoption growing):
coding agents behind a LiteLLM proxy (sessions whose context is cached, so most input tokens are
cache reads), a research workspace billed through the
Anthropic Admin usage report (standard and batch, below and above the 200k context tier), a nightly
batch job in the OpenAI usage API export, an internal support service traced with OpenTelemetry, a
self-hosted model in a plain CSV (with a few malformed rows), a negotiated discount that starts mid-period,
outcomes (commits, merged changes, closed tickets), and five engineers whose bots burn tokens around the
clock to climb the usage leaderboard.

Everything is drawn from one seeded generator: the same seed gives the same files byte for byte.

>>> org = DemoOrganisation()
>>> len(org.teams), org.engineers
(24, 520)
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flopledger.synthetic.campaigns import default_prompt_pools

__all__ = ["DemoFiles", "DemoOrganisation", "IngestStep", "write_demo_logs"]

TEAMS: tuple[str, ...] = (
    "payments",
    "search",
    "ads",
    "growth",
    "mobile",
    "web",
    "infra",
    "sre",
    "security",
    "data-platform",
    "ml-platform",
    "research",
    "checkout",
    "identity",
    "messaging",
    "maps",
    "billing",
    "support-tools",
    "devex",
    "storage",
    "networking",
    "compliance",
    "analytics",
    "design-systems",
)
_DAY_S = 86_400

# Coding-agent model mix behind the proxy: (provider, model, share of sessions, reasoning share of output)
_AGENT_MODELS: tuple[tuple[str, str, float, float], ...] = (
    ("anthropic", "claude-sonnet-4-5", 0.62, 0.0),
    ("anthropic", "claude-opus-4-1", 0.10, 0.0),
    ("anthropic", "claude-haiku-4-5", 0.10, 0.0),
    ("openai", "gpt-5", 0.13, 0.55),
    ("openai", "gpt-5-mini", 0.05, 0.5),
)
_BOT_PROMPT = "Continue the refactor of the current module and keep going until told to stop."


@dataclass(frozen=True)
class IngestStep:
    """One ``flopledger ingest`` call the demo makes: files, format and options."""

    paths: tuple[Path, ...]
    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`write_demo_logs` wrote, in the order the demo ingests it."""

    steps: tuple[IngestStep, ...]
    outcomes: Path
    overrides: Path
    bot_users: tuple[str, ...]


@dataclass(frozen=True)
class DemoOrganisation:
    """The organisation's shape; every figure is a parameter so tests can shrink it."""

    teams: tuple[str, ...] = TEAMS
    engineers: int = 520
    days: int = 75
    start: dt.date = dt.date(2026, 9, 1)
    bots: int = 5
    bot_start_day: int = 62
    bot_gap_s: float = 240.0
    sessions_per_workday: float = 0.55
    turns_per_session: float = 8.0
    growth_per_day: float = 0.008
    """Adoption grows: each engineer's activity rises this share a day (compounded)."""
    seed: int = 0

    @property
    def start_s(self) -> float:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC).timestamp()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(path: Path, records: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, separators=(",", ":")))
            fh.write("\n")


class _Writer:
    def __init__(self, org: DemoOrganisation) -> None:
        self.org = org
        self.rng = np.random.default_rng(org.seed)
        self.pools = default_prompt_pools()
        sizes = self.rng.dirichlet(np.full(len(org.teams), 4.0)) * org.engineers
        team_of = np.repeat(np.arange(len(org.teams)), np.maximum(1, np.round(sizes)).astype(int))
        self.team_of = np.resize(team_of, org.engineers)
        self.activity = self.rng.lognormal(0.0, 0.6, org.engineers)
        self.users = [f"eng-{i:04d}" for i in range(org.engineers)]
        shares = np.array([m[2] for m in _AGENT_MODELS])
        self.model_of = self.rng.choice(len(_AGENT_MODELS), org.engineers, p=shares / shares.sum())
        bots = self.rng.choice(org.engineers, org.bots, replace=False)
        self.bots = sorted(int(b) for b in bots)

    # -- coding agents through the LiteLLM proxy -------------------------------------------------
    def agent_logs(self) -> list[dict[str, object]]:
        org, rng = self.org, self.rng
        records: list[dict[str, object]] = []
        n = 0
        for day in range(org.days):
            day_s = org.start_s + day * _DAY_S
            weekend = dt.date.fromordinal(org.start.toordinal() + day).weekday() >= 5
            ramp = (1.0 + org.growth_per_day) ** day
            rate = self.activity * org.sessions_per_workday * ramp * (0.08 if weekend else 1.0)
            for e in np.nonzero(sessions := rng.poisson(rate))[0]:
                for _ in range(int(sessions[e])):
                    n = self._session(records, int(e), day_s, n)
        for b in self.bots:
            n = self._bot(records, b, n)
        records.sort(key=lambda r: str(r["startTime"]))
        return records

    def _session(self, records: list[dict[str, object]], e: int, day_s: float, n: int) -> int:
        rng = self.rng
        provider, model, _, reasoning_share = _AGENT_MODELS[int(self.model_of[e])]
        if rng.random() < 0.15:  # engineers try other models now and then
            provider, model, _, reasoning_share = _AGENT_MODELS[int(rng.integers(len(_AGENT_MODELS)))]
        t = day_s + rng.uniform(8.0, 18.5) * 3600 + (e % 7) * 900
        turns = 1 + int(rng.poisson(self.org.turns_per_session))
        context = int(rng.integers(12_000, 40_000))  # system prompt, tools and repository context
        long_session = rng.random() < 0.04
        prompt = self.pools.human[int(rng.integers(len(self.pools.human)))]
        new_ctx = rng.integers(1_500, 9_000, turns) * (6 if long_session else 1)
        outputs = rng.lognormal(6.6, 0.7, turns).astype(int)
        uncached = rng.integers(200, 2_500, turns)
        gaps = rng.uniform(20, 240, turns)
        write_1h = provider == "anthropic" and rng.random() < 0.2
        for turn in range(turns):
            output = int(outputs[turn])
            read, write = (0, context) if turn == 0 else (context, int(new_ctx[turn]))
            context += int(new_ctx[turn]) + output
            records.append(
                self._litellm(
                    n,
                    t,
                    e,
                    provider,
                    model,
                    int(uncached[turn]),
                    read,
                    0 if provider == "openai" else write,
                    output,
                    int(output * reasoning_share),
                    prompt if turn == 0 else f"{prompt} (step {turn + 1})",
                    write_1h and turn == 0,
                )
            )
            n += 1
            t += float(gaps[turn])
        return n

    def _bot(self, records: list[dict[str, object]], e: int, n: int) -> int:
        org, rng = self.org, self.rng
        t = org.start_s + org.bot_start_day * _DAY_S + rng.uniform(0, 3600)
        end = org.start_s + org.days * _DAY_S
        count = int((end - t) / org.bot_gap_s)
        times = t + np.cumsum(org.bot_gap_s + rng.normal(0, 2.0, count))
        inputs = rng.integers(900, 1_100, count)
        outputs = rng.integers(3_800, 4_200, count)
        for i in np.nonzero(times < end)[0]:
            records.append(
                self._litellm(
                    n,
                    float(times[i]),
                    e,
                    "anthropic",
                    "claude-sonnet-4-5",
                    int(inputs[i]),
                    60_000,
                    800,
                    int(outputs[i]),
                    0,
                    _BOT_PROMPT,
                    False,
                )
            )
            n += 1
        return n

    def _litellm(
        self,
        n: int,
        t: float,
        e: int,
        provider: str,
        model: str,
        uncached: int,
        read: int,
        write: int,
        output: int,
        reasoning: int,
        prompt: str,
        write_1h: bool,
    ) -> dict[str, object]:
        usage: dict[str, object] = {
            "prompt_tokens": uncached + read + write,
            "completion_tokens": output,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        tags = ["coding-agent"] + (["cache-1h"] if write_1h else [])
        return {
            "request_id": f"chatcmpl-demo-{self.org.seed}-{n:08d}",
            "call_type": "acompletion",
            "api_key": f"sk-hash-{e:04d}",
            "spend": 0.0,
            "startTime": _iso(t),
            "endTime": _iso(t + 8),
            "model": model,
            "custom_llm_provider": provider,
            "user": self.users[e],
            "team_id": self.org.teams[int(self.team_of[e])],
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": output,
            "total_tokens": int(str(usage["prompt_tokens"])) + output,
            "metadata": {
                "user_api_key_team_alias": self.org.teams[int(self.team_of[e])],
                "usage_object": usage,
            },
            "request_tags": tags,
            "messages": [{"role": "user", "content": prompt}],
        }

    # -- research workspace in the Anthropic usage report -----------------------------------------
    def anthropic_report(self) -> dict[str, object]:
        org, rng = self.org, self.rng
        buckets = []
        for day in range(org.days):
            start = org.start_s + day * _DAY_S
            results = []
            for model, scale in (("claude-opus-4-1", 1.0), ("claude-sonnet-4-5", 3.0)):
                for tier, window, share in (
                    ("standard", "0-200k", 1.0),
                    ("batch", "0-200k", 0.6),
                    ("standard", "200k-1m", 0.08),
                ):
                    reqs = int(rng.poisson(400 * scale * share))
                    per_req = 260_000 if window == "200k-1m" else 30_000
                    results.append(
                        {
                            "api_key_id": f"apikey_research_{tier}",
                            "workspace_id": "wrkspc_research",
                            "model": model,
                            "service_tier": tier,
                            "context_window": window,
                            "num_requests": reqs,
                            "uncached_input_tokens": int(reqs * per_req * 0.25),
                            "cache_read_input_tokens": int(reqs * per_req * 0.7),
                            "cache_creation": {
                                "ephemeral_5m_input_tokens": int(reqs * per_req * 0.04),
                                "ephemeral_1h_input_tokens": int(reqs * per_req * 0.01),
                            },
                            "output_tokens": int(reqs * rng.uniform(700, 1_400)),
                            "server_tool_use": {"web_search_requests": int(reqs * 0.02)},
                        }
                    )
            buckets.append(
                {"starting_at": _iso(start), "ending_at": _iso(start + _DAY_S), "results": results}
            )
        return {"data": buckets, "has_more": False, "next_page": None}

    # -- nightly batch job in the OpenAI usage export ---------------------------------------------
    def openai_usage(self) -> dict[str, object]:
        org, rng = self.org, self.rng
        buckets = []
        for day in range(org.days):
            start = int(org.start_s + day * _DAY_S)
            reqs = int(rng.normal(50_000, 4_000))
            input_total = reqs * int(rng.integers(1_300, 1_700))
            results = [
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": input_total,
                    "input_cached_tokens": int(input_total * 0.4),
                    "output_tokens": reqs * 60,
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    "num_model_requests": reqs,
                    "project_id": "proj_nightly_labels",
                    "user_id": None,
                    "api_key_id": "key_batch_labels",
                    "model": "gpt-5-mini",
                    "batch": True,
                    "service_tier": None,
                },
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": reqs // 10 * 3_000,
                    "input_cached_tokens": 0,
                    "output_tokens": reqs // 10 * 400,
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    "num_model_requests": reqs // 10,
                    "project_id": "proj_nightly_labels",
                    "user_id": None,
                    "api_key_id": "key_batch_labels",
                    "model": "gpt-5",
                    "batch": False,
                    "service_tier": "default",
                },
            ]
            buckets.append(
                {"object": "bucket", "start_time": start, "end_time": start + _DAY_S, "results": results}
            )
        return {"object": "page", "data": buckets, "has_more": False, "next_page": None}

    # -- support service traced with OpenTelemetry ------------------------------------------------
    def otel_traces(self) -> list[dict[str, object]]:
        org, rng = self.org, self.rng
        lines: list[dict[str, object]] = []
        for day in range(org.days):
            spans: list[dict[str, object]] = []
            for i in range(int(rng.poisson(180))):
                t_ns = int((org.start_s + day * _DAY_S + rng.uniform(0, _DAY_S)) * 1e9)
                prompt_total = int(rng.integers(2_000, 9_000))
                attrs = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4.1-mini",
                    "gen_ai.response.model": "gpt-4.1-mini",
                    "gen_ai.usage.input_tokens": prompt_total,
                    "gen_ai.usage.cache_read.input_tokens": int(prompt_total * 0.5),
                    "gen_ai.usage.output_tokens": int(rng.integers(150, 700)),
                    "team": "support-tools",
                    "user.id": "svc-support-bot",
                }
                spans.append(
                    {
                        "traceId": f"{org.seed:08x}{day:08x}{i:016x}",
                        "spanId": f"{day:04x}{i:012x}",
                        "name": "chat gpt-4.1-mini",
                        "kind": 3,
                        "startTimeUnixNano": str(t_ns),
                        "endTimeUnixNano": str(t_ns + 2_000_000_000),
                        "attributes": [
                            {
                                "key": k,
                                "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v},
                            }
                            for k, v in attrs.items()
                        ],
                    }
                )
            lines.append(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [
                                    {"key": "service.name", "value": {"stringValue": "support-assistant"}}
                                ]
                            },
                            "scopeSpans": [
                                {"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": spans}
                            ],
                        }
                    ]
                }
            )
        return lines

    # -- self-hosted model, exported as a plain CSV ------------------------------------------------
    def selfhosted_csv(self, path: Path) -> None:
        org, rng = self.org, self.rng
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "model_name", "team", "user", "prompt_tokens", "completion_tokens"])
            for day in range(org.days):
                for _ in range(int(rng.poisson(60))):
                    t = org.start_s + day * _DAY_S + rng.uniform(0, _DAY_S)
                    e = int(rng.integers(org.engineers))
                    w.writerow(
                        [
                            _iso(t),
                            "acme-coder-70b",
                            org.teams[int(self.team_of[e])],
                            self.users[e],
                            int(rng.integers(500, 6_000)),
                            int(rng.integers(100, 1_500)),
                        ]
                    )
            # What real exports contain now and then: a truncated line, a negative count, a bad date.
            w.writerow([_iso(org.start_s + 3600), "acme-coder-70b", "infra", "eng-0001", "-12", "40"])
            w.writerow(["yesterday", "acme-coder-70b", "infra", "eng-0002", "100", "40"])
            w.writerow([_iso(org.start_s + 7200), "", "infra", "eng-0003", "100", "40"])

    # -- outcomes ----------------------------------------------------------------------------------
    def outcomes(self, path: Path) -> None:
        org, rng = self.org, self.rng
        kinds = ("commit", "merged_change", "closed_ticket", "review")
        weights = (1.0, 3.0, 2.0, 0.5)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["user", "ts", "kind", "weight"])
            for day in range(org.days):
                if dt.date.fromordinal(org.start.toordinal() + day).weekday() >= 5:
                    continue
                counts = rng.poisson(np.minimum(self.activity, 3.0) * 2.5)
                for e in np.nonzero(counts)[0]:
                    if int(e) in self.bots and day >= org.bot_start_day and rng.random() < 0.7:
                        continue  # the bots' owners ship less while their bots run
                    for _ in range(int(counts[e])):
                        k = int(rng.choice(len(kinds), p=(0.5, 0.2, 0.15, 0.15)))
                        t = org.start_s + day * _DAY_S + rng.uniform(9, 19) * 3600
                        w.writerow([self.users[int(e)], _iso(t), kinds[k], weights[k]])


_OVERRIDES = """\
# Negotiated prices for the demo organisation.
[[discount]]
provider = "anthropic"
percent = 12.0
valid_from = {discount_from}

[[model]]
provider = "self-hosted"
model = "acme-coder-70b"
input_usd_per_mtok = 0.40
output_usd_per_mtok = 0.90
source = "internal chargeback: 8 x H100 at $2.10/h, 70% utilised"
"""


def write_demo_logs(out_dir: Path, org: DemoOrganisation | None = None) -> DemoFiles:
    """Write the organisation's raw logs into ``out_dir`` and say how each is ingested."""
    org = org or DemoOrganisation()
    out_dir.mkdir(parents=True, exist_ok=True)
    w = _Writer(org)
    proxy = out_dir / "litellm_spend_logs.jsonl"
    _dump(proxy, w.agent_logs())
    anthropic = out_dir / "anthropic_usage_report.json"
    anthropic.write_text(json.dumps(w.anthropic_report(), indent=1), encoding="utf-8")
    openai = out_dir / "openai_usage_completions.json"
    openai.write_text(json.dumps(w.openai_usage(), indent=1), encoding="utf-8")
    otel = out_dir / "otel_support_assistant.jsonl"
    _dump(otel, w.otel_traces())
    selfhosted = out_dir / "selfhosted_inference.csv"
    w.selfhosted_csv(selfhosted)
    outcomes = out_dir / "outcomes.csv"
    w.outcomes(outcomes)
    overrides = out_dir / "flopledger-prices.toml"
    discount_from = dt.date.fromordinal(org.start.toordinal() + org.days // 2).isoformat()
    overrides.write_text(_OVERRIDES.format(discount_from=discount_from), encoding="utf-8")
    steps = (
        IngestStep((proxy,)),
        IngestStep((anthropic,), fixed={"team": "research"}),
        IngestStep((openai,), fixed={"team": "data-platform"}),
        IngestStep((otel,)),
        IngestStep(
            (selfhosted,),
            format="csv",
            mapping={
                "ts": "timestamp",
                "model": "model_name",
                "input_tokens": "prompt_tokens",
                "output_tokens": "completion_tokens",
            },
            fixed={"provider": "self-hosted"},
        ),
    )
    return DemoFiles(
        steps=steps, outcomes=outcomes, overrides=overrides, bot_users=tuple(w.users[b] for b in w.bots)
    )
