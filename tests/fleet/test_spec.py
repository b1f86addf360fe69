from __future__ import annotations

from pathlib import Path

import pytest

from flopledger.errors import ConfigError
from flopledger.fleet import build_envelope, load_fleet_spec

EXAMPLES = Path(__file__).parents[2] / "examples" / "fleet"

MINIMAL = """
pools:
  - {id: a, accelerator: gpu-a, supplier: nvidia, family: x, count: 8, power_kw_per_accelerator: 1,
     leased: {usd_per_hour: 2}}
workloads:
  - {id: w, kind: inference, demand_tokens_per_day: 1e9, revenue_usd_per_mtok: 1,
     tokens_per_s_per_accelerator: {gpu-a: 100}}
"""


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_examples_load() -> None:
    for path in [EXAMPLES / "three_vendor_envelope.yaml", EXAMPLES / "infeasible_floor.toml"]:
        assert build_envelope(load_fleet_spec(path)).envelope_accelerator_hours > 0


def test_minimal_spec(tmp_path: Path) -> None:
    problem = build_envelope(load_fleet_spec(_write(tmp_path, MINIMAL)))
    assert problem.units_per_accelerator_hour[0, 0] == pytest.approx(0.36)  # 100 tok/s = 0.36 Mtok/h
    assert problem.throughput_source == (("given",),)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("count: 8", "count: -1"), "pools[0].count"),
        (
            (
                "leased: {usd_per_hour: 2}",
                "leased: {usd_per_hour: 2}, owned: {capex_usd_per_accelerator: 1, life_years: 1}",
            ),
            "exactly one of 'owned'",
        ),
        (("kind: inference", "kind: inference-ish"), "workloads[0].kind"),
        (("revenue_usd_per_mtok: 1,", ""), "needs 'revenue_usd_per_mtok'"),
        (("{gpu-a: 100}", "{gpu-aa: 100}"), "did you mean 'gpu-a'"),
        (("family: x,", "family: x, colour: red,"), "pools[0].colour"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    path = _write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as err:
        build_envelope(load_fleet_spec(path), source=str(path))
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_missing_pool_facts_without_catalog_name_the_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path, MINIMAL.replace("supplier: nvidia, family: x, ", "").replace("gpu-a", "no-such-chip")
    )
    with pytest.raises(ConfigError, match=r"pools\[0\]\.(supplier|family)"):
        build_envelope(load_fleet_spec(path), source=str(path))


def test_bad_syntax_and_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_fleet_spec(_write(tmp_path, "name = [", "bad.toml"))
    with pytest.raises(ConfigError, match="unknown spec format"):
        load_fleet_spec(_write(tmp_path, "{}", "spec.json"))
    with pytest.raises(ConfigError, match="no such spec file"):
        load_fleet_spec(tmp_path / "absent.yaml")


def test_serving_and_catalog_fill_the_throughput_matrix() -> None:
    pytest.importorskip("flopledger.serving.estimate")
    problem = build_envelope(load_fleet_spec(EXAMPLES / "catalog_envelope.yaml"))
    assert {p.supplier for p in problem.pools} == {"nvidia", "google", "amazon"}
    assert problem.throughput_source[0] == ("serving", "serving", "serving")
    assert problem.throughput_source[2] == ("catalog", "catalog", "catalog")
    assert (problem.units_per_accelerator_hour > 0).all()
    # the small model makes more tokens per chip-hour than the large one, on every chip
    assert (problem.units_per_accelerator_hour[1] > problem.units_per_accelerator_hour[0]).all()
