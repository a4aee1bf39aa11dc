"""``regression`` against ``online`` on the token-sized workload (examples/scenarios/tokens.yaml).

Runs the scenario once per predictor mode (same arrivals, tokens and sizes: common
random numbers) with ``shortest_queue`` and prints, per mode, the prediction MAE
and the p95 latency with their 95% confidence half-widths over replications,
and whether the intervals are apart.

Run: .venv/bin/python benchmarks/bench_regression.py [--replications R] [--tasks N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim

ROOT = Path(__file__).resolve().parents[1]
MODES = ("online", "regression", "oracle")


def measure(replications: int | None = None, tasks: int | None = None) -> dict[str, dict[str, float]]:
    """Per predictor mode: MAE and p95 latency (ms) of shortest_queue, with CI half-widths."""
    scn = sim.load_scenario(ROOT / "examples" / "scenarios" / "tokens.yaml")
    out = {}
    for mode in MODES:
        res = sim.run(
            scn.with_changes({"predictor.mode": mode}),
            strategies=["shortest_queue"],
            replications=replications,
            tasks=tasks,
        )
        row = res.summary[(res.summary["model"] == "all") & (res.summary["class"] == "all")].iloc[0]
        out[mode] = {
            k: float(row[k])
            for k in (
                "prediction_mae_ms",
                "prediction_mae_ms_ci",
                "latency_p95_ms",
                "latency_p95_ms_ci",
                "count",
            )
        }
    return out


def apart(a: dict, b: dict, metric: str) -> bool:
    """Whether a's interval lies wholly below b's."""
    return a[metric] + a[f"{metric}_ci"] < b[metric] - b[f"{metric}_ci"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int)
    ap.add_argument("--tasks", type=int)
    args = ap.parse_args(argv)
    m = measure(args.replications, args.tasks)
    for mode, r in m.items():
        print(
            f"{mode:10s} tasks {int(r['count']):7,d}  MAE {r['prediction_mae_ms']:6.1f} ±{r['prediction_mae_ms_ci']:4.1f} ms"
            f"  p95 {r['latency_p95_ms']:6.1f} ±{r['latency_p95_ms_ci']:4.1f} ms"
        )
    reg, onl = m["regression"], m["online"]
    print(f"MAE regression < online, intervals apart: {apart(reg, onl, 'prediction_mae_ms')}")
    print(f"p95 regression < online, intervals apart: {apart(reg, onl, 'latency_p95_ms')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
