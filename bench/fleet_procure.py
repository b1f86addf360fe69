"""Benchmark: procurement under uncertainty, 100,000 scenarios x 36 months (vectorised NumPy).

Times the whole plan (demand simulation, newsvendor fractile, expected profit and insolvency risk
for every quantity on the curve) on the shipped example spec; median of several runs.

    .venv/bin/python bench/fleet_procure.py [--scenarios 100000] [--months 36] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from flopledger.fleet.procure import load_procurement_spec, plan_procurement, simulate_demand

SPEC = Path(__file__).parents[1] / "examples" / "fleet" / "procure_inference.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spec = load_procurement_spec(SPEC).model_copy(
        update={"scenarios": args.scenarios, "horizon_months": args.months}
    )
    sim, plan_times = [], []
    plan = None
    for _ in range(args.runs):
        start = time.perf_counter()
        simulate_demand(spec.demand, spec.scenarios, spec.horizon_months, spec.seed)
        sim.append(time.perf_counter() - start)
        start = time.perf_counter()
        plan = plan_procurement(spec)
        plan_times.append(time.perf_counter() - start)
    assert plan is not None
    rec = plan.recommendation
    print(f"{args.scenarios:,} scenarios x {args.months} months, {len(plan.curve)} quantities on the curve")
    print(f"demand simulation: median {statistics.median(sim):.3f} s of {args.runs}")
    print(
        f"whole plan: median {statistics.median(plan_times):.3f} s of {args.runs} "
        f"(newsvendor {rec.newsvendor_units:,.0f}, recommended {rec.recommended_units:,.0f})"
    )


if __name__ == "__main__":
    main()
