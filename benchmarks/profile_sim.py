"""Where ``sim.run``'s time goes: a cProfile of part 1 of bench_sim.py, grouped by area.

cProfile's own overhead per Python call inflates the call-heavy areas (the core), so
read the shares, not the absolute times.  The decision path's numpy work is inside
the functions that call it.  Then, without a profiler, the engine's CPU time per
task with the real core and with a stub in its place (a fixed round-robin decision,
no books kept): the difference is what the core's ``place`` and ``finish`` cost (the
lean ``submit`` and ``complete`` the engine calls when no recorder listens).

Run: .venv/bin/python benchmarks/profile_sim.py [--tasks N] [--strategy NAME]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import time

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
    ("facade (place, finish)", ("core/scheduler.py", "core/decision.py", "core/clock.py")),
    ("frames and summary (pandas)", ("sim/frames.py", "sim/results.py", "pandas/")),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--strategy", default="shortest_queue")
    args = ap.parse_args()
    spec = scenario(N_INSTANCES, args.tasks, args.strategy)
    shell_and_core(spec, args.tasks)  # first: before the profiler has filled the process
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


class _StubCore:
    """In the engine's place of the Scheduler: a fixed round-robin decision, nothing kept."""

    recorder = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.ids: list[str] = []
        self.turn = itertools.count()

    def in_flight(self) -> int:
        return 0

    def add_instance(self, model: str, *, instance_id: str, **kwargs: object) -> None:
        self.ids.append(instance_id)

    def place(self, model: str, task_id: str, size_ms: object, metadata: object) -> tuple[str, float, float]:
        return self.ids[next(self.turn) % len(self.ids)], 10.0, 10.0

    def finish(self, task_id: str, execution_ms: float, metadata: object) -> None:
        pass


def shell_and_core(spec: dict, tasks: int) -> None:
    import sim.engine as engine

    scn = sim.load_scenario(spec)
    seeds = sim.replication_seeds(scn.seed, 1)[0]
    wl = sim.draw_workload(scn, seeds)
    real = engine.Scheduler
    cpu = {}
    for label, core in (("real core", real), ("stub core", _StubCore)):
        engine.Scheduler = core
        try:
            t0 = time.process_time()
            engine.simulate(scn, wl, scn.strategies[0], seeds["scheduler"])
            cpu[label] = (time.process_time() - t0) / tasks * 1e6
        finally:
            engine.Scheduler = real
    print(
        f"engine alone (sim.simulate, CPU): {cpu['real core']:.1f} us a task with the core, "
        f"{cpu['stub core']:.1f} with a stub in its place: the core's place + finish cost "
        f"{cpu['real core'] - cpu['stub core']:.1f} us a task here"
    )


if __name__ == "__main__":
    main()
