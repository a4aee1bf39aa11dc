"""Where ``sim.run``'s time goes: a cProfile of part 1 of bench_sim.py, grouped by area.

cProfile's own overhead per Python call inflates the call-heavy areas (the core), so
read the shares, not the absolute times.  The decision path's numpy work is inside
the functions that call it.

Run: .venv/bin/python benchmarks/profile_sim.py [--tasks N] [--strategy NAME]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from bench_sim import N_INSTANCES, scenario

import sim

AREAS = (  # (label, path fragments of the functions counted there), first match wins
    ("SimPy event loop", ("simpy/",)),
    ("engine callbacks (arrive, begin, end)", ("sim/engine.py",)),
    ("strategy and wait estimates", ("core/strategies/", "core/residual_wait.py")),
    ("queue state (assign, release)", ("core/queues.py",)),
    ("task records (tracker)", ("core/tracker.py",)),
    (
        "prediction and learning",
        ("core/predictor.py", "core/stats.py", "core/shapes.py", "core/pool_stats.py"),
    ),
    ("facade (submit, dispatch, complete)", ("core/scheduler.py", "core/decision.py", "core/clock.py")),
    ("frames and summary (pandas)", ("sim/frames.py", "sim/results.py", "pandas/")),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--strategy", default="shortest_queue")
    args = ap.parse_args()
    spec = scenario(N_INSTANCES, args.tasks, args.strategy)
    prof = cProfile.Profile()
    prof.runcall(sim.run, spec)
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    shares = dict.fromkeys([a for a, _ in AREAS] + ["other (builtins, numpy, ...)"], 0.0)
    for (path, _, _), (_, _, tottime, _, _) in stats.items():
        area = next(
            (a for a, frags in AREAS if any(f in path for f in frags)), "other (builtins, numpy, ...)"
        )
        shares[area] += tottime
    total = sum(shares.values())
    print(f"sim.run, {args.tasks:,} tasks, {args.strategy}: cProfile self time by area (total {total:.2f} s)")
    for area, t in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {area:42s} {100 * t / total:5.1f}%")


if __name__ == "__main__":
    main()
