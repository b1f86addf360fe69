"""Fingerprint throughput and Jaccard-estimate accuracy, flopledger versus datasketch, in one run.

Both hash the same word 3-gram shingles with 64 permutations. Throughput is the median of several
runs over the same prompts (tokenising included for both), the two interleaved run by run.
Accuracy is the error of the Jaccard
estimate against the exact shingle Jaccard, over pairs of near-duplicates (a prompt and an edited
copy) and random pairs. Prompts come from ../shared/data when present, else the built-in pools.

    .venv/bin/python bench/integrity_fingerprints.py
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import numpy as np
from datasketch import MinHash

from flopledger.ledger.fingerprints import NUM_PERM, estimate_jaccard, fingerprint_prompts
from flopledger.synthetic.campaigns import default_prompt_pools

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prompts"
_WORD = re.compile(r"[^\W]+")
RUNS = 5


def load_prompts() -> tuple[list[str], str]:
    if not DATA.is_dir():
        pools = default_prompt_pools()
        return [*pools.human, *pools.templated], "built-in pools"
    with (DATA / "human" / "sharegpt_v3_first_turns_500.json").open() as f:
        prompts = [c["conversations"][0]["value"] for c in json.load(f)]
    with (DATA / "human" / "arena_hard_v0.1_questions.jsonl").open() as f:
        prompts += [json.loads(line)["prompt"] for line in f]
    with (DATA / "templated" / "code_alpaca_2k.json").open() as f:
        prompts += [r["instruction"] + (" " + r["input"] if r["input"] else "") for r in json.load(f)]
    return prompts, "shared/data: ShareGPT, Arena-Hard, Code Alpaca"


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def datasketch_signatures(prompts: list[str]) -> list[MinHash]:
    out = []
    for p in prompts:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch([s.encode() for s in shingles(p)])
        out.append(m)
    return out


def edited(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    for _ in range(max(1, len(words) // 10)):
        words[int(rng.integers(0, len(words)))] = "edited"
    return " ".join(words)


def main() -> None:
    prompts, source = load_prompts()
    batch = prompts * max(1, 20_000 // len(prompts))
    words = sum(len(p.split()) for p in batch)
    ours, theirs = [], []
    for _ in range(RUNS):  # interleaved, so both see the same machine load
        t = time.perf_counter()
        fingerprint_prompts(batch, b"bench-key")
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        datasketch_signatures(batch[:4000])
        theirs.append((time.perf_counter() - t) * len(batch) / 4000)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)

    rng = np.random.default_rng(0)
    usable = [p for p in prompts if len(p.split()) >= 8]
    a_idx = rng.integers(0, len(usable), 600)
    pairs = [(usable[i], edited(usable[i], rng)) for i in a_idx[:300]]
    pairs += [
        (usable[i], usable[j]) for i, j in zip(a_idx[300:], rng.integers(0, len(usable), 300), strict=True)
    ]
    truth = np.array([len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b)) for a, b in pairs])
    sig = (
        fingerprint_prompts([x for pair in pairs for x in pair], b"bench-key")
        .column("fp_minhash")
        .to_pylist()
    )
    est_ours = np.array([estimate_jaccard(sig[2 * k], sig[2 * k + 1]) for k in range(len(pairs))])
    ds = datasketch_signatures([x for pair in pairs for x in pair])
    est_ds = np.array([ds[2 * k].jaccard(ds[2 * k + 1]) for k in range(len(pairs))])

    def rmse(est: np.ndarray) -> float:
        return float(np.sqrt(np.mean((est - truth) ** 2)))

    print(
        f"prompts: {len(batch):,} ({words:,} words) from {source}; {NUM_PERM} permutations; median of {RUNS}"
    )
    print(f"flopledger  {len(batch) / ours_s:>10,.0f} prompts/s  Jaccard RMSE {rmse(est_ours):.4f}")
    print(f"datasketch  {len(batch) / theirs_s:>10,.0f} prompts/s  Jaccard RMSE {rmse(est_ds):.4f}")
    print(
        f"speed-up    {theirs_s / ours_s:>10.1f}x  (mean |bias| ours {abs(np.mean(est_ours - truth)):.4f}, "
        f"datasketch {abs(np.mean(est_ds - truth)):.4f}; {len(pairs)} pairs, mean true J {truth.mean():.3f})"
    )


if __name__ == "__main__":
    main()
