"""The two detectors as data: which features count, in which direction, and how much.

Each feature is compared with the population's baseline (median and scaled MAD over accounts with
enough traffic, robust to a minority of abusers) as a one-sided robust z-score, capped so no single
feature decides alone. A detector's raw score is the weighted sum; thresholds on it are calibrated on
benign traffic to a stated false-positive rate (:func:`calibrate`), and the reported score maps the
raw score onto 0..1 so that the threshold sits at exactly 0.5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from flopledger.errors import ConfigError
from flopledger.integrity.features import FEATURE_NAMES, FeatureFrame

__all__ = [
    "DETECTORS",
    "Baseline",
    "Detector",
    "FeatureRule",
    "Thresholds",
    "baseline_of",
    "calibrate",
    "combine",
    "default_thresholds",
    "thresholds_from_json",
    "thresholds_to_json",
    "unit_score",
]

_MIN_BASELINE_REQUESTS = 8
CLUSTER_SIZE = "cluster_accounts"


@dataclass(frozen=True)
class FeatureRule:
    feature: str
    weight: float
    scale_floor: float
    """Smallest spread used for the z-score, in the feature's own units (guards a flat baseline)."""
    cap: float = 4.0
    direction: int = 1
    family: str = "any"
    """For a detector that needs two kinds of evidence at once: ``templated``, ``harvest`` or ``scale``."""


@dataclass(frozen=True)
class Detector:
    kind: str
    rules: tuple[FeatureRule, ...]
    pooled: bool
    """Score clusters on their pooled traffic too (an account takes the higher of the two)."""
    conjunctive: bool = False
    """Raw score ``2 sqrt(templated x harvest) + scale`` instead of the plain sum: templated prompts
    alone are what every legitimate integration sends, long chain-of-thought answers alone are what
    a curious person asks for; distillation is both at once."""


DETECTORS: dict[str, Detector] = {
    d.kind: d
    for d in (
        Detector(
            "token_burn",
            (
                FeatureRule("beacon_score", 2.0, 0.15, cap=5.0),
                FeatureRule("burstiness", 0.5, 0.1, direction=-1),
                FeatureRule("near_duplicate_rate", 1.0, 0.05),
                FeatureRule("active_hour_share", 0.5, 0.05),
                FeatureRule("off_hours_share", 0.5, 0.05),
                FeatureRule("usd_per_outcome", 0.5, 0.5),
                FeatureRule("output_input_ratio", 0.25, 0.5),
                FeatureRule("tokens_per_active_day", 0.25, 1e4),
            ),
            pooled=False,
        ),
        Detector(
            "distillation",
            (
                FeatureRule("template_reuse", 1.5, 0.02, family="templated"),
                FeatureRule("topic_collision", 0.5, 0.01, family="templated"),
                FeatureRule("cot_share", 1.0, 0.05, family="harvest"),
                FeatureRule("output_input_ratio", 0.5, 0.5, family="harvest"),
                FeatureRule("new_model_day_share", 0.5, 0.1, family="harvest"),
                FeatureRule("requests", 0.25, 10.0, family="scale"),
                FeatureRule(CLUSTER_SIZE, 0.5, 1.0, cap=6.0, family="scale"),
            ),
            pooled=True,
            conjunctive=True,
        ),
    )
}


@dataclass(frozen=True)
class Baseline:
    """Median and robust spread of each feature over the population's accounts."""

    median: dict[str, float]
    spread: dict[str, float]


def _weighted_median(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def baseline_of(accounts: FeatureFrame, weights: npt.NDArray[np.float64] | None = None) -> Baseline:
    """Weighted median and scaled MAD of every feature over accounts with enough traffic.

    ``weights`` (default 1) let the caller count a cluster of linked accounts once in total (weight
    1/size each), so a campaign spread over thousands of accounts, even a majority of them, cannot
    drag the baseline towards itself; when everything is one cluster this is the plain median.
    """
    enough = accounts.column("requests") >= _MIN_BASELINE_REQUESTS
    w_all = np.ones(len(accounts.groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    median: dict[str, float] = {CLUSTER_SIZE: 1.0}
    spread: dict[str, float] = {CLUSTER_SIZE: 1.0}
    for name in FEATURE_NAMES:
        col = accounts.column(name)
        ok = enough & np.isfinite(col)
        if not ok.any():
            median[name], spread[name] = float("nan"), float("nan")
            continue
        med = _weighted_median(col[ok], w_all[ok])
        median[name] = med
        spread[name] = float(1.4826 * _weighted_median(np.abs(col[ok] - med), w_all[ok]))
    return Baseline(median=median, spread=spread)


def feature_values(
    frame: FeatureFrame, name: str, cluster_sizes: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    if name == CLUSTER_SIZE:
        return cluster_sizes
    return frame.column(name)


def contributions(
    detector: Detector, frame: FeatureFrame, baseline: Baseline, cluster_sizes: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Weighted capped z of every rule, shape (groups, rules); NaN features contribute 0."""
    out = np.zeros((len(frame.groups), len(detector.rules)))
    for j, rule in enumerate(detector.rules):
        x = feature_values(frame, rule.feature, cluster_sizes)
        med = baseline.median[rule.feature]
        if not np.isfinite(med):
            continue
        if rule.feature == CLUSTER_SIZE:
            z = np.log2(np.maximum(x, 1.0))
        else:
            scale = max(baseline.spread[rule.feature], rule.scale_floor)
            z = rule.direction * (x - med) / scale
        out[:, j] = rule.weight * np.clip(np.nan_to_num(z, nan=0.0), 0.0, rule.cap)
    return out


def combine(detector: Detector, contrib: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A detector's raw score from its rules' contributions (shape groups x rules)."""
    if not detector.conjunctive:
        plain: npt.NDArray[np.float64] = contrib.sum(axis=1)
        return plain

    def family(name: str) -> npt.NDArray[np.float64]:
        cols = [j for j, r in enumerate(detector.rules) if r.family == name]
        part: npt.NDArray[np.float64] = contrib[:, cols].sum(axis=1)
        return part

    both: npt.NDArray[np.float64] = 2.0 * np.sqrt(family("templated") * family("harvest")) + family("scale")
    return both


def unit_score(raw: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.float64]:
    """Map a raw score to 0..1 with the threshold at 0.5."""
    return raw / (raw + max(threshold, 1e-9))


@dataclass(frozen=True)
class Thresholds:
    """Raw-score thresholds per detector and the false-positive rate they were calibrated to."""

    by_kind: dict[str, float]
    fpr_target: float
    source: str


def calibrate(benign_raw: dict[str, npt.NDArray[np.float64]], fpr_target: float, source: str) -> Thresholds:
    """Thresholds at the (1 - fpr_target) quantile of each detector's raw scores on benign accounts."""
    by_kind = {
        kind: float(np.quantile(scores, 1.0 - fpr_target, method="higher")) + 1e-9
        for kind, scores in benign_raw.items()
    }
    return Thresholds(by_kind=by_kind, fpr_target=fpr_target, source=source)


def thresholds_from_json(text: str, where: str) -> Thresholds:
    """Thresholds from a calibration file's text (``fpr_target``, ``source``, ``thresholds``)."""
    try:
        data = json.loads(text)
        by_kind = {k: float(v) for k, v in data["thresholds"].items()}
        found = Thresholds(by_kind=by_kind, fpr_target=float(data["fpr_target"]), source=str(data["source"]))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{where} is not a calibration file ({exc}); expected keys fpr_target, source, thresholds"
        ) from exc
    missing = sorted(set(DETECTORS) - set(by_kind))
    if missing:
        raise ConfigError(f"{where}: no threshold for {', '.join(missing)} (key 'thresholds')")
    return found


def thresholds_to_json(thresholds: Thresholds) -> str:
    data = {
        "fpr_target": thresholds.fpr_target,
        "source": thresholds.source,
        "thresholds": {k: round(v, 4) for k, v in thresholds.by_kind.items()},
    }
    return json.dumps(data, indent=2) + "\n"


def default_thresholds() -> Thresholds:
    """The thresholds shipped with flopledger (package data ``calibration.json``)."""
    text = resources.files("flopledger.integrity").joinpath("calibration.json").read_text()
    return thresholds_from_json(text, "flopledger/integrity/calibration.json")
