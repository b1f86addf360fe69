"""Detector internals on small real ledgers: synchronised linking, the robust baseline, the
conjunctive distillation score, burstiness, calibration files, and the scan's JSON contract."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import ConfigError, InputError
from flopledger.integrity.clustering import link_accounts
from flopledger.integrity.detectors import (
    DETECTORS,
    baseline_of,
    combine,
    default_thresholds,
    thresholds_from_json,
    thresholds_to_json,
)
from flopledger.integrity.features import FEATURE_NAMES, FeatureFrame, compute_features
from flopledger.ledger.store import open_ledger
from flopledger.synthetic.campaigns import store_traffic

from .conftest import KEY

START = dt.datetime(2026, 3, 2)


def _events(rows: list[tuple[str, float, str]]) -> pa.Table:
    """(account, seconds after START, prompt) rows as canonical events with prompt text."""
    n = len(rows)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "ts": [START + dt.timedelta(seconds=t) for _, t, _ in rows],
            "provider": ["anthropic"] * n,
            "model": ["m1"] * n,
            "user": [a for a, _, _ in rows],
            "requests": [1] * n,
            "input_tokens": [100] * n,
            "output_tokens": [200] * n,
            "tags": ["{}"] * n,
            "prompt": [p for _, _, p in rows],
            "cost_usd": [0.001] * n,
        }
    )


_VOCABULARY = ["".join(chr(97 + (i // 26**k) % 26) for k in range(4)) for i in range(26**3)]


def _distinct(rng: np.random.Generator) -> str:
    """A prompt of random words: shares no template, opening or LSH key with any other."""
    return " ".join(rng.choice(_VOCABULARY, 12))


def test_synchronised_accounts_cluster_and_always_on_services_do_not() -> None:
    rng = np.random.default_rng(3)
    waves = np.sort(rng.uniform(0, 14 * 86_400, 20))
    rows: list[tuple[str, float, str]] = []
    for a in range(12):  # a network in lock-step waves, each account its own distinct prompts
        for w in waves:
            rows.append((f"sync-{a}", float(w + rng.uniform(0, 120)), _distinct(rng)))
    for s in range(4):  # services busy every ten minutes: they overlap everything, proving nothing
        for k in range(0, 14 * 86_400, 400):
            rows.append((f"svc-{s}", float(k + rng.uniform(0, 60)), _distinct(rng)))
    for h in range(30):  # people at random times
        for _ in range(30):
            rows.append((f"human-{h}", float(rng.uniform(0, 14 * 86_400)), _distinct(rng)))
    con = open_ledger(":memory:")
    store_traffic(con, _events(rows), KEY)
    clusters = link_accounts(con)
    sync = {clusters.cluster_of.get(f"sync-{a}") for a in range(12)}
    assert len(sync) == 1 and None not in sync
    (cid,) = sync
    assert clusters.linked_by[cid] == ("sync",)
    assert not any(a.startswith(("svc-", "human-")) for a in clusters.members[cid])
    assert all(f"svc-{s}" not in clusters.cluster_of for s in range(4))


def _frame(values: dict[str, list[float]]) -> FeatureFrame:
    n = len(next(iter(values.values())))
    table = np.full((n, len(FEATURE_NAMES)), np.nan)
    for name, column in values.items():
        table[:, FEATURE_NAMES.index(name)] = column
    return FeatureFrame(groups=tuple(f"a{i}" for i in range(n)), values=table)


def test_a_campaign_majority_cannot_move_the_weighted_baseline() -> None:
    # 40 benign accounts at cot_share 0.02, 60 campaign accounts (one cluster) at 0.9.
    frame = _frame({"requests": [50.0] * 100, "cot_share": [0.02] * 40 + [0.9] * 60})
    plain = baseline_of(frame)
    weighted = baseline_of(frame, weights=np.array([1.0] * 40 + [1 / 60] * 60))
    assert plain.median["cot_share"] == pytest.approx(0.9)
    assert weighted.median["cot_share"] == pytest.approx(0.02)


def test_distillation_needs_templated_prompts_and_harvesting_together() -> None:
    detector = DETECTORS["distillation"]
    families = [r.family for r in detector.rules]
    contrib = np.zeros((3, len(families)))
    contrib[0, families.index("templated")] = 6.0  # a service: one wrapper on every request
    contrib[1, families.index("harvest")] = 6.0  # a person asking for long reasoning
    contrib[2, families.index("templated")] = 6.0  # both at once
    contrib[2, families.index("harvest")] = 6.0
    raw = combine(detector, contrib)
    assert raw[0] == raw[1] == 0.0
    assert raw[2] == pytest.approx(12.0)
    assert combine(DETECTORS["token_burn"], np.ones((1, len(DETECTORS["token_burn"].rules))))[0] == len(
        DETECTORS["token_burn"].rules
    )


def test_burstiness_separates_a_metronome_from_sessions() -> None:
    rng = np.random.default_rng(5)
    rows = [("timer", 60.0 * k, f"again {k}") for k in range(200)]
    t = np.cumsum(rng.lognormal(np.log(60), 1.5, 200))
    rows += [("person", float(x), f"ask {k}") for k, x in enumerate(t)]
    con = open_ledger(":memory:")
    store_traffic(con, _events(rows), KEY)
    frame = compute_features(con)
    burst = dict(zip(frame.groups, frame.column("burstiness"), strict=True))
    assert burst["timer"] < -0.9 < 0.1 < burst["person"]


def test_calibration_files_round_trip_and_bad_ones_are_named(tmp_path: Path) -> None:
    shipped = default_thresholds()
    assert thresholds_from_json(thresholds_to_json(shipped), "x").by_kind == pytest.approx(shipped.by_kind)
    with pytest.raises(ConfigError, match=r"cal\.json: no threshold for distillation"):
        thresholds_from_json(
            '{"fpr_target": 0.01, "source": "s", "thresholds": {"token_burn": 1}}', "cal.json"
        )
    with pytest.raises(ConfigError, match=r"bad\.json is not a calibration file"):
        thresholds_from_json("[]", "bad.json")


def test_scan_json_objects_have_the_documented_fields(ledger_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["integrity", "scan", "--db", str(ledger_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows
    for row in rows:
        assert set(row) == {"account", "kind", "score", "flagged", "cluster", "evidence"}
        assert row["kind"] in ("token_burn", "distillation") and 0.0 <= row["score"] <= 1.0
        assert row["flagged"] is True
        assert row["evidence"] and all(set(e) == {"feature", "value", "baseline"} for e in row["evidence"])
    # A stricter calibration file flags nothing.
    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps({"fpr_target": 0.0, "source": "test", "thresholds": {k: 1e9 for k in DETECTORS}})
    )
    none = runner.invoke(
        app, ["integrity", "scan", "--db", str(ledger_path), "-f", "json", "--thresholds", str(strict)]
    )
    assert none.exit_code == 0, none.output
    assert json.loads(none.output) == []


def test_cli_outcomes_ingests_and_reports_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("user,ts,kind,weight\nana,2026-03-02T10:00:00,commit,1\nbob,yesterday,commit,1\n")
    db = tmp_path / "l.duckdb"
    result = CliRunner().invoke(app, ["integrity", "outcomes", str(path), "--db", str(db), "-f", "json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert (summary["read"], summary["stored"], summary["quarantined"]) == (2, 1, 1)
    assert [(r["line"], r["field"]) for r in summary["rejected"]] == [(3, "ts")]
    weights = tmp_path / "w.csv"
    weights.write_text(
        "user,ts,kind,weight\nana,2026-03-03T10:00:00,commit,inf\nana,2026-03-03T11:00:00,commit,1e308\n"
    )
    result = CliRunner().invoke(app, ["integrity", "outcomes", str(weights), "--db", str(db), "-f", "json"])
    (summary,) = json.loads(result.output)
    assert summary["stored"] == 0 and {r["field"] for r in summary["rejected"]} == {"weight"}
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user,ts,kind\nJos\xe9,2026-03-03T10:00:00,commit\n".encode("latin-1"))
    result = CliRunner().invoke(app, ["integrity", "outcomes", str(latin), "--db", str(db)])
    assert isinstance(result.exception, InputError) and "save the file as UTF-8" in str(result.exception)
    missing = CliRunner().invoke(app, ["integrity", "outcomes", str(tmp_path / "nope.csv"), "--db", str(db)])
    assert missing.exit_code == 1
    assert isinstance(missing.exception, InputError)
    assert "nope.csv: no such outcomes file" in str(missing.exception)
