"""Strategy quality on identical instances: residual-life estimates against the countdown.

8 identical instances, Poisson arrivals at load 0.9, the oracle predictor,
3 replications of 60,000 tasks (6,000 of them warm-up) per service-time
distribution; ``shortest_queue``, ``least_requests`` and ``weighted`` see the
same arrivals and sizes (common random numbers), with residual-life estimates
(the default) and with the countdown (``predictor: {residual: false}``, the
estimate before residual life).  Prints mean latency (ms) and the paired
differences with their 95% confidence half-widths over replications.

Run: .venv/bin/python benchmarks/bench_quality.py [--tasks N] [--replications R] [--workers W]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import sim

SERVICES = {
    "exponential, mean 100": {"dist": "exponential", "mean_ms": 100.0},
    "lognormal cv 2": {"dist": "lognormal", "mean_ms": 100.0, "cv": 2.0},
    "lognormal cv 0.5": {"dist": "lognormal", "mean_ms": 100.0, "cv": 0.5},
}
STRATEGIES = ["shortest_queue", "least_requests", "weighted"]


def run(job: tuple[str, bool, int, int]) -> dict[str, np.ndarray]:
    """Per-replication mean latency of each strategy for one service and estimate."""
    service, residual, tasks, reps = job
    spec = {
        "name": "quality",
        "seed": 2024,
        "replications": reps,
        "tasks": tasks,
        "warmup_tasks": tasks // 10,
        "predictor": {"mode": "oracle", "residual": residual},
        "models": {"m": {"service_time": SERVICES[service]}},
        "instances": [{"model": "m", "count": 8}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 0.9 * 8 * 1000.0 / 100.0}},
        "strategies": STRATEGIES,
    }
    r = sim.run(spec).replications
    r = r[r["model"] == sim.ALL_MODELS]
    lat = r.pivot(index="replication", columns="strategy", values="latency_mean_ms")
    return {s: lat[s].to_numpy() for s in STRATEGIES}


def diff(a: np.ndarray, b: np.ndarray) -> str:
    d = a - b
    return f"{d.mean():+.1f} ± {sim.ci_half_width(d):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=60_000)
    ap.add_argument("--replications", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [(s, res, args.tasks, args.replications) for s in SERVICES for res in (True, False)]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        out = dict(zip([(s, res) for s, res, *_ in jobs], pool.map(run, jobs)))
    print(
        f"8 identical instances, load 0.9, oracle predictor, {args.replications} replications x "
        f"{args.tasks:,} tasks; mean latency (ms), paired differences ± 95% CI half-width "
        f"({time.time() - t0:.0f} s)\n"
    )
    print(
        "| service | shortest_queue | least_requests | weighted | shortest_queue − least_requests "
        "| weighted − least_requests | countdown: shortest_queue | countdown: shortest_queue − least_requests |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in SERVICES:
        on, off = out[(s, True)], out[(s, False)]
        sq, lr, w = on["shortest_queue"], on["least_requests"], on["weighted"]
        print(
            f"| {s} | {sq.mean():.1f} | {lr.mean():.1f} | {w.mean():.1f} | {diff(sq, lr)} | {diff(w, lr)} "
            f"| {off['shortest_queue'].mean():.1f} | {diff(off['shortest_queue'], off['least_requests'])} |"
        )


if __name__ == "__main__":
    main()
