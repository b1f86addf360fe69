"""Score every account for token burn and distillation, with the evidence behind each score.

>>> from flopledger.ledger.store import open_ledger
>>> scan(open_ledger(":memory:"))
[]
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from flopledger.integrity.clustering import Clusters, link_accounts
from flopledger.integrity.detectors import (
    CLUSTER_SIZE,
    DETECTORS,
    Baseline,
    Thresholds,
    baseline_of,
    combine,
    contributions,
    default_thresholds,
    unit_score,
)
from flopledger.integrity.features import FeatureFrame, compute_features

__all__ = ["Evidence", "Finding", "ScanResult", "findings_of", "raw_scan", "scan"]

_EVIDENCE_PER_FINDING = 3


@dataclass(frozen=True)
class Evidence:
    feature: str
    value: float
    baseline: float


@dataclass(frozen=True)
class Finding:
    account: str
    kind: str
    score: float
    flagged: bool
    cluster: str | None
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class ScanResult:
    """Raw scores per detector for every account (before thresholds), for calibration and evaluation."""

    accounts: tuple[str, ...]
    raw: dict[str, npt.NDArray[np.float64]]
    evidence: dict[str, list[tuple[Evidence, ...]]]
    clusters: Clusters


def _cluster_frame(con: duckdb.DuckDBPyConnection, clusters: Clusters) -> FeatureFrame | None:
    if not clusters.members:
        return None
    pairs = [(a, cid) for cid, members in clusters.members.items() for a in members]
    con.execute("CREATE OR REPLACE TEMP TABLE integrity_cluster_map (account VARCHAR, grp VARCHAR)")
    con.executemany("INSERT INTO integrity_cluster_map VALUES (?, ?)", pairs)
    try:
        return compute_features(con, "integrity_cluster_map")
    finally:
        con.execute("DROP TABLE IF EXISTS integrity_cluster_map")


def _evidence(
    kind: str,
    frame: FeatureFrame,
    row: int,
    contrib: npt.NDArray[np.float64],
    baseline: Baseline,
    size: float,
) -> tuple[Evidence, ...]:
    rules = DETECTORS[kind].rules
    order = np.argsort(-contrib[row])[:_EVIDENCE_PER_FINDING]
    items = []
    for j in order:
        if contrib[row, j] <= 0:
            continue
        name = rules[j].feature
        value = size if name == CLUSTER_SIZE else float(frame.column(name)[row])
        items.append(Evidence(name, round(value, 4), round(baseline.median[name], 4)))
    return tuple(items)


def raw_scan(con: duckdb.DuckDBPyConnection) -> ScanResult:
    """Features, clusters and raw scores for every account in the ledger."""
    accounts = compute_features(con)
    clusters = link_accounts(con)
    names = accounts.groups
    sizes = np.array(
        [len(clusters.members.get(clusters.cluster_of.get(a, ""), (a,))) for a in names], dtype=np.float64
    )
    baseline = baseline_of(accounts, weights=1.0 / sizes)
    cluster_frame = _cluster_frame(con, clusters)
    raw: dict[str, npt.NDArray[np.float64]] = {}
    evidence: dict[str, list[tuple[Evidence, ...]]] = {}
    for kind, detector in DETECTORS.items():
        contrib = contributions(detector, accounts, baseline, sizes)
        scores = combine(detector, contrib)
        ev = [_evidence(kind, accounts, i, contrib, baseline, sizes[i]) for i in range(len(names))]
        if detector.pooled and cluster_frame is not None:
            csizes = np.array([len(clusters.members[c]) for c in cluster_frame.groups], dtype=np.float64)
            ccontrib = contributions(detector, cluster_frame, baseline, csizes)
            cscores = combine(detector, ccontrib)
            row_of = {c: i for i, c in enumerate(cluster_frame.groups)}
            for i, a in enumerate(names):
                r = row_of.get(clusters.cluster_of.get(a, ""))
                if r is not None and cscores[r] > scores[i]:
                    scores[i] = cscores[r]
                    ev[i] = _evidence(kind, cluster_frame, r, ccontrib, baseline, csizes[r])
        raw[kind], evidence[kind] = scores, ev
    return ScanResult(accounts=names, raw=raw, evidence=evidence, clusters=clusters)


def scan(
    con: duckdb.DuckDBPyConnection, thresholds: Thresholds | None = None, *, flagged_only: bool = False
) -> list[Finding]:
    """One finding per account and detector, highest score first.

    Scores are 0..1 with 0.5 at the calibrated threshold; ``flagged`` is ``score >= 0.5``.
    """
    return findings_of(raw_scan(con), thresholds, flagged_only=flagged_only)


def findings_of(
    result: ScanResult, thresholds: Thresholds | None = None, *, flagged_only: bool = False
) -> list[Finding]:
    """The findings of a :func:`raw_scan`, for callers that also need its clusters."""
    limits = thresholds or default_thresholds()
    findings: list[Finding] = []
    for kind in DETECTORS:
        scores = unit_score(result.raw[kind], limits.by_kind[kind])
        for i, account in enumerate(result.accounts):
            cluster = result.clusters.cluster_of.get(account)
            flagged = bool(result.raw[kind][i] >= limits.by_kind[kind])
            if flagged_only and not flagged:
                continue
            findings.append(
                Finding(account, kind, round(float(scores[i]), 4), flagged, cluster, result.evidence[kind][i])
            )
    findings.sort(key=lambda f: (-f.score, f.kind, f.account))
    return findings
