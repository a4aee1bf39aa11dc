"""Simulator speed: simulated tasks per wall second, against bare SimPy, and a big run.

Part 1 (``--tasks``, default 200,000): 8 exponential instances at load 0.8,
``shortest_queue`` with the oracle predictor, simulated by ``sim.run`` (the
whole thing: validation, drawing, simulation, DataFrames and summary) and, in
the same process and on the same arrivals and sizes, by bare SimPy loops that
route each arrival to the instance with the fewest tasks and record nothing:

* ``bare-process``: the textbook SimPy model, one process per task holding a
  ``simpy.Resource`` request per instance;
* ``bare-worker``: one worker process per instance pulling from a
  ``simpy.Store`` (cheaper per task than a process per task).

The ratio ``sim / bare`` is printed for both (target: >= 0.5).  Each rate is
the best of ``--repeats`` runs, to damp noise from other processes.

Part 2 (``--big-tasks``, default 1,000,000; 0 skips): 256 instances, same
load, ``sim.run`` once: wall time and peak memory, measured as the process's
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which
includes the interpreter and the libraries, and tracemalloc is not used (it
would slow the run down several times).  Run part 2 in its own process
(``--tasks 0``) for a clean peak.

Run: .venv/bin/python benchmarks/bench_sim.py [--tasks N] [--big-tasks N] [--repeats R]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import simpy

import sim

MEAN_MS = 10.0
LOAD = 0.8


def scenario(n_instances: int, tasks: int) -> dict:
    rate_per_s = LOAD * n_instances * 1000.0 / MEAN_MS
    return {
        "name": f"bench-{n_instances}",
        "seed": 1,
        "replications": 1,
        "tasks": tasks,
        "strategies": ["shortest_queue"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": MEAN_MS}}},
        "instances": [{"model": "m", "count": n_instances}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": rate_per_s}},
    }


def bare_process(arrival_ms: np.ndarray, size_ms: np.ndarray, n_instances: int) -> None:
    """Textbook SimPy: a process per task, a Resource per instance, join the fewest tasks."""
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(n_instances)]
    in_system = [0] * n_instances

    def task(k, size):
        with servers[k].request() as req:
            yield req
            yield env.timeout(size)
        in_system[k] -= 1

    def source():
        for a, size in zip(arrival_ms.tolist(), size_ms.tolist()):
            yield env.timeout(a - env.now)
            k = min(range(n_instances), key=in_system.__getitem__)
            in_system[k] += 1
            env.process(task(k, size))

    env.process(source())
    env.run()


def bare_worker(arrival_ms: np.ndarray, size_ms: np.ndarray, n_instances: int) -> None:
    """Leaner SimPy: a worker process per instance pulling sizes from a Store."""
    env = simpy.Environment()
    queues = [simpy.Store(env) for _ in range(n_instances)]
    in_system = [0] * n_instances

    def worker(k):
        q = queues[k]
        while True:
            size = yield q.get()
            yield env.timeout(size)
            in_system[k] -= 1

    def source():
        for a, size in zip(arrival_ms.tolist(), size_ms.tolist()):
            yield env.timeout(a - env.now)
            k = min(range(n_instances), key=in_system.__getitem__)
            in_system[k] += 1
            queues[k].put(size)

    for k in range(n_instances):
        env.process(worker(k))
    env.process(source())
    env.run()


def best_rates(fns: dict, tasks: int, repeats: int) -> dict[str, float]:
    """Tasks per second of each callable, best of ``repeats``.  The callables take
    turns within every repeat, so a burst of load from other processes hits
    them alike instead of one of them."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: tasks / t for name, t in best.items()}


def part1(tasks: int, repeats: int) -> None:
    spec = scenario(8, tasks)
    scn = sim.load_scenario(spec)
    seeds = sim.replication_seeds(scn.seed, 1)[0]
    wl = sim.draw_workload(scn, seeds)
    n = len(wl)
    strategy = scn.strategies[0]
    rates = best_rates(
        {
            "sim.run (end to end)": lambda: sim.run(spec),
            "sim.simulate (engine only)": lambda: sim.simulate(scn, wl, strategy, seeds["scheduler"]),
            "bare-process": lambda: bare_process(wl.arrival_ms, wl.size_ms, 8),
            "bare-worker": lambda: bare_worker(wl.arrival_ms, wl.size_ms, 8),
        },
        n,
        repeats,
    )
    print(
        f"part 1: {n:,} tasks, 8 exponential instances, load {LOAD}, shortest_queue, oracle "
        f"(best of {repeats}, interleaved)"
    )
    for name, rate in rates.items():
        print(f"  {name:28s} {rate:12,.0f} tasks/s")
    for sim_name in ("sim.run (end to end)", "sim.simulate (engine only)"):
        for bare in ("bare-process", "bare-worker"):
            ratio = rates[sim_name] / rates[bare]
            print(
                f"  ratio {sim_name:28s} / {bare:13s} = {ratio:5.2f}  (target >= 0.5: "
                f"{'met' if ratio >= 0.5 else 'not met'})"
            )


def part2(tasks: int) -> None:
    spec = scenario(256, tasks)
    t0 = time.perf_counter()
    res = sim.run(spec)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if sys.platform == "darwin":  # bytes on macOS
        peak_kib //= 1024
    print(
        f"part 2: {res.simulated_tasks:,} tasks over 256 instances: wall {wall:.1f} s "
        f"({res.simulated_tasks / wall:,.0f} tasks/s), peak RSS {peak_kib / 1024:,.0f} MiB "
        f"(ru_maxrss of the whole process)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200_000, help="tasks for part 1 (0 skips it)")
    ap.add_argument("--big-tasks", type=int, default=1_000_000, help="tasks for part 2 (0 skips it)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per rate in part 1; the best is kept")
    args = ap.parse_args()
    if args.tasks:
        part1(args.tasks, args.repeats)
    if args.big_tasks:
        part2(args.big_tasks)


if __name__ == "__main__":
    main()
