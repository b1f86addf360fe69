from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flopledger.fleet import allocate_envelope, assess_concentration, build_envelope, parse_fleet_spec

GOLDEN = Path(__file__).parent / "golden"


def test_losing_a_supplier_hand_checked() -> None:
    spec = yaml.safe_load((GOLDEN / "allocate_heterogeneous.yaml").read_text(encoding="utf-8"))["spec"]
    problem = build_envelope(parse_fleet_spec(spec))
    risk = assess_concentration(problem, allocate_envelope(problem))
    shares = {(s.dimension, s.name): s.share for s in risk.shares}
    assert shares[("supplier", "google")] == pytest.approx(0.5)
    assert shares[("family", "gpu")] == pytest.approx(0.5)
    assert risk.herfindahl_supplier == pytest.approx(0.5)
    loss = {s.supplier: s for s in risk.supplier_loss}
    # without the TPU pool, gpu-g still serves w-fast: 1,728 Mtok x $10; the 864 Mtok from tpu-t are lost
    assert loss["google"].revenue_lost_usd == pytest.approx(8640.0)
    assert loss["google"].extra_unmet_inference_mtok == pytest.approx(864.0)
    assert loss["nvidia"].revenue_lost_usd == pytest.approx(25920.0 - 8640.0)


def test_floor_not_kept_is_reported() -> None:
    spec = yaml.safe_load((GOLDEN / "allocate_heterogeneous.yaml").read_text(encoding="utf-8"))["spec"]
    spec["workloads"].append(
        {
            "id": "train",
            "kind": "development",
            "need_flop": 1e21,
            "value_usd": 1,
            "effective_pflops_per_accelerator": {"tpu-t": 1.0},
        }
    )
    spec["policy"]["development_floor_accelerator_hours"] = 100
    problem = build_envelope(parse_fleet_spec(spec))
    risk = assess_concentration(problem, allocate_envelope(problem))
    loss = {s.supplier: s for s in risk.supplier_loss}
    assert loss["nvidia"].floor_kept is True
    assert loss["google"].floor_kept is False and loss["google"].feasible is True
