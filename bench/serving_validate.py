"""Validate the serving estimator against measured throughput and print the table.

Usage (from the project root, with ../shared/data present):

    .venv/bin/python bench/serving_validate.py [--measured FILE]

Prints each row's measured and estimated output tokens/s with the signed error, then the median and mean
absolute percentage error, and the time the whole validation took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from flopledger.serving import validate_serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, default=None, help="measured results CSV")
    args = parser.parse_args()
    started = time.perf_counter()
    report = validate_serving(args.measured)
    elapsed_s = time.perf_counter() - started
    print(
        "| line | accelerator | n | model | scenario | precision | measured tok/s | estimated tok/s | error |"
    )
    print("|---:|---|---:|---|---|---|---:|---:|---:|")
    for r in report.rows:
        scenario = r.scenario.split(",")[0]
        print(
            f"| {r.line} | {r.accelerator} | {r.count} | {r.model} | {scenario} | {r.precision} | "
            f"{r.measured_tokens_per_s:,.0f} | {r.estimated_tokens_per_s:,.0f} | {r.error_pct:+.1f}% |"
        )
    for line, why in report.skipped:
        print(f"skipped line {line}: {why}")
    s = report.summary()
    print(
        f"\nrows {s['rows_compared']}, skipped {s['rows_skipped']}; median APE {s['median_ape_pct']}%, "
        f"mean APE {s['mean_ape_pct']}%, within 15%: {s['share_within_15_pct']:.0%}; {elapsed_s:.2f} s"
    )


if __name__ == "__main__":
    main()
