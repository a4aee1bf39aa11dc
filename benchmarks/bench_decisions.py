"""Microseconds per submit-plus-complete, for every strategy, at 8, 64 and 1024 instances.

The core is driven as the shells drive it: a task arrives (``submit``), and
the oldest task in flight completes (``complete``), keeping about two tasks
per instance in flight so that queue estimates have real work to do.  The
clock is a ManualClock advanced between events; nothing else runs.  The
online predictor has learned the sizes' shape by then, so running tasks are
estimated by their residual life; a last table measures, side by side, what
that costs against the countdown (``Predictor(residual=False)``).

Run: .venv/bin/python benchmarks/bench_decisions.py [--tasks N] [--markdown]
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

import scheduler as S

TARGET_US = {"probabilistic": 100.0, "min_quantile": 100.0}
DEFAULT_TARGET_US = 20.0


def bench(
    strategy: str, n_instances: int, tasks: int, replicas: int = 1, repeats: int = 3, residual: bool = True
) -> float:
    best = float("inf")
    for r in range(repeats):
        clock = S.ManualClock()
        pred = S.Predictor("online", min_samples=3, residual=residual)
        sched = S.Scheduler(strategy, clock=clock, rng=r, predictor=pred)
        for _ in range(n_instances):
            sched.add_instance("m", replicas=replicas)
        warm = max(2 * n_instances, 600)  # past the online shape's first fits: no table built while timed
        sizes = np.random.default_rng(r).exponential(40.0, tasks + warm)
        # about two tasks per replica in flight: some running, some waiting
        in_flight = collections.deque(sched.submit("m").task_id for _ in range(2 * replicas * n_instances))
        # warm the online predictor so every instance predicts from its own history
        for k in range(warm):
            clock.advance(1.0)
            in_flight.append(sched.submit("m").task_id)
            sched.complete(in_flight.popleft(), float(sizes[k]))
        sizes = sizes[warm:]
        submit, complete, advance, popleft, append = (
            sched.submit,
            sched.complete,
            clock.advance,
            in_flight.popleft,
            in_flight.append,
        )
        t0 = time.perf_counter()
        for k in range(tasks):
            advance(0.5)
            append(submit("m").task_id)
            complete(popleft(), float(sizes[k]))
        best = min(best, (time.perf_counter() - t0) / tasks * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20000, help="submit+complete pairs per measurement")
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 1024])
    ap.add_argument(
        "--replicas", type=int, nargs="+", default=[1, 2], help="replicas per instance (one table each)"
    )
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    for replicas in args.replicas:
        print(f"\n{replicas} replica(s) per instance, {args.tasks} submit+complete pairs, best of 3 runs")
        table(args, replicas)
    residual_cost(args)


def residual_cost(args, n: int = 64, target_us: float = 3.0) -> None:
    """Residual life against the countdown, at n instances, measured alternately."""
    print(f"\nresidual-life estimate against the countdown, {n} instances, 1 replica, us per submit+complete")
    head = ["strategy", "countdown", "residual life", "added", f"target <= {target_us:g}", "met"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    for name in ("shortest_queue", "weighted", "least_requests"):
        off = on = float("inf")
        for _ in range(2):  # alternate, so that a noisy neighbour hits both
            off = min(off, bench(name, n, args.tasks, residual=False))
            on = min(on, bench(name, n, args.tasks, residual=True))
        cells = [
            name,
            f"{off:.1f}",
            f"{on:.1f}",
            f"{on - off:+.1f}",
            "",
            "yes" if on - off <= target_us else "no",
        ]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{c:>14s}" for c in cells))


def table(args, replicas: int) -> None:
    rows = []
    for name in S.strategy_names():
        us = [
            bench(name, n, args.tasks if n < 1024 else max(2000, args.tasks // 4), replicas)
            for n in args.sizes
        ]
        target = TARGET_US.get(name, DEFAULT_TARGET_US)
        rows.append((name, us, target))
    head = ["strategy"] + [f"{n} inst (us)" for n in args.sizes] + ["target @64", "met"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        print("  ".join(f"{h:>14s}" for h in head))
    for name, us, target in rows:
        at64 = us[args.sizes.index(64)] if 64 in args.sizes else float("nan")
        cells = [name] + [f"{u:.1f}" for u in us] + [f"<= {target:g}", "yes" if at64 <= target else "no"]
        if args.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print("  ".join(f"{c:>14s}" for c in cells))


if __name__ == "__main__":
    main()
