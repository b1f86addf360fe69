"""Validation against measured throughput: parsing, mapping and the error summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from flopledger.errors import InputError
from flopledger.serving import validate_serving
from flopledger.serving.validate import DEFAULT_MEASURED_PATH

HEADER = (
    "source,benchmark_round,system,accelerator,accelerator_count,model,scenario,precision,"
    "tokens_per_s,notes\n"
)
SHARED = Path(__file__).resolve().parents[2] / DEFAULT_MEASURED_PATH


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "measured.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_rows_are_mapped_and_scored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        's,"MLPerf Inference v4.1 (closed, datacenter)",sys,NVIDIA H200-SXM-141GB,8,'
        'Llama-2-70B-chat (llama2-70b-99),Offline,fp8,31302.7,"mean output tokens/sample 301.1"',
        's,"MLPerf Inference v4.1 (closed, datacenter)",sys,NVIDIA H200-SXM-141GB,8,'
        'Llama-2-70B-chat (llama2-70b-99),Server,fp8,29228.2,"mean output tokens/sample 301.1"',
        's,"TensorRT-LLM perf-overview",sys,NVIDIA H100 SXM 80GB,1,Llama-3.1-8B-Instruct,'
        '"Offline max throughput, ISL/OSL 1000/1000",fp8,15220,x',
        "s,other,sys,Intel Gaudi 3,8,Llama-2-70B-chat,Offline,fp8,1000,x",
    )
    report = validate_serving(path)
    assert [r.line for r in report.rows] == [2, 3, 4]
    assert report.skipped[0][0] == 5 and "unknown accelerator" in report.skipped[0][1]
    first, server, trt = report.rows
    assert (first.input_tokens, first.output_tokens) == (222, 301)
    assert (trt.input_tokens, trt.output_tokens) == (1000, 1000)
    assert server.estimated_tokens_per_s < first.estimated_tokens_per_s  # p99 limits and queueing headroom
    assert first.error_pct == pytest.approx((first.estimated_tokens_per_s - 31302.7) / 31302.7 * 100)
    assert report.median_ape_pct == pytest.approx(sorted(abs(r.error_pct) for r in report.rows)[1])


def test_bad_number_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "s,MLPerf,sys,NVIDIA H200-SXM-141GB,8,Llama-2-70B,Offline,fp8,lots,x")
    with pytest.raises(InputError, match=r"measured\.csv:2: .*tokens_per_s"):
        validate_serving(path)


def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing columns"):
        validate_serving(bad)
    with pytest.raises(InputError, match="not found"):
        validate_serving(tmp_path / "absent.csv")


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/data is absent")
def test_median_error_on_public_measurements_is_within_target() -> None:
    report = validate_serving(SHARED)
    assert len(report.rows) >= 50 and not report.skipped
    assert report.median_ape_pct <= 15.0
