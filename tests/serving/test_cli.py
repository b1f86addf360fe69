"""`flopledger serving ...` through the Typer app: JSON output and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flopledger.cli import app
from flopledger.errors import InputError, UnknownNameError

runner = CliRunner()


def _json(args: list[str]) -> object:
    result = runner.invoke(app, ["serving", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_accelerators_json_carries_figures_and_sources() -> None:
    rows = _json(["accelerators"])
    assert isinstance(rows, list)
    h100 = next(r for r in rows if r["id"] == "h100-sxm")
    assert h100["fp8_dense_tflops"] == 1978.9 and h100["vendor"] == "nvidia"
    assert h100["sources"]["specs"]["as_of"].startswith("20")


def test_models_json_carries_derived_counts() -> None:
    rows = _json(["models"])
    assert isinstance(rows, list)
    llama = next(r for r in rows if r["id"] == "llama-3.1-70b")
    assert llama["kv_cache_bytes_per_token_bf16"] == 327_680
    assert next(r for r in rows if r["id"] == "deepseek-v3")["attention"] == "mla"


def test_estimate_json_has_the_issue_fields() -> None:
    out = _json(
        [
            "estimate",
            "--model",
            "llama-3.1-70b",
            "--accelerator",
            "h200",
            "--count",
            "8",
            "--precision",
            "fp8",
            "--input-tokens",
            "1000",
            "--output-tokens",
            "200",
            "--tpot-ms",
            "50",
            "--ttft-ms",
            "2000",
            "--usd-per-hour",
            "3",
            "--utilization",
            "0.6",
        ]
    )
    assert isinstance(out, dict)
    for key in (
        "output_tokens_per_s",
        "output_tokens_per_s_per_accelerator",
        "input_tokens_per_s",
        "batch_size",
        "ttft_ms",
        "tpot_ms",
        "bound",
        "usd_per_mtok_input",
        "usd_per_mtok_output",
        "joules_per_output_token",
        "joules_per_output_token_with_pue",
        "assumptions",
    ):
        assert key in out
    assert out["tpot_ms"] <= 50 and out["assumptions"]["utilization"] == 0.6


def test_compare_json_gives_break_even() -> None:
    out = _json(
        [
            "compare",
            "--model",
            "llama-3.1-8b",
            "--device",
            "rtx-5090",
            "--api-usd-per-mtok-input",
            "0.2",
            "--api-usd-per-mtok-output",
            "0.6",
            "--daily-tokens",
            "20000000",
        ]
    )
    assert isinstance(out, dict) and out["break_even_daily_tokens"] > 0
    assert out["cheaper"] in ("device", "api")


def test_compare_table_shows_its_assumptions_as_estimate_does() -> None:
    args = ["--model", "llama-3.1-8b", "--api-usd-per-mtok-input", "0.2", "--api-usd-per-mtok-output", "0.6"]
    table = runner.invoke(
        app,
        ["serving", "compare", *args, "--device", "rtx-5090", "--daily-tokens", "20000000"],
        env={"COLUMNS": "200"},
    )
    assert table.exit_code == 0, table.output
    assert "break_even_daily_tokens" in table.output
    for assumption in ("device_capex_usd", "amortization_years", "usd_per_kwh"):
        assert assumption in table.output


def test_validate_json_on_a_given_file(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "source,benchmark_round,system,accelerator,accelerator_count,model,scenario,precision,tokens_per_s,notes\n"
        's,x,sys,NVIDIA H100 SXM 80GB,1,Llama-3.1-8B-Instruct,"Offline, ISL/OSL 1000/1000",fp8,15220,x\n',
        encoding="utf-8",
    )
    out = _json(["validate", "--measured", str(path)])
    assert isinstance(out, dict)
    assert out["summary"]["rows_compared"] == 1 and len(out["rows"]) == 1
    assert "error_pct" in out["rows"][0]


def test_table_output_renders() -> None:
    result = runner.invoke(
        app,
        [
            "serving",
            "estimate",
            "-m",
            "llama-3.2-1b",
            "-a",
            "apple-m4-max",
            "--input-tokens",
            "500",
            "--output-tokens",
            "200",
        ],
    )
    assert result.exit_code == 0 and "tokens" in result.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["estimate", "-m", "lama-3.1-8b", "-a", "h200", "--input-tokens", "1", "--output-tokens", "1"],
            UnknownNameError,
        ),
        (["validate", "--measured", "no-such-file.csv"], InputError),
    ],
)
def test_library_errors_reach_the_cli_root(args: list[str], error: type[Exception]) -> None:
    result = runner.invoke(app, ["serving", *args])
    assert isinstance(result.exception, error)  # flopledger.cli.main turns it into one line, exit 1
