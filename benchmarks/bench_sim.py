"""Simulator speed: simulated tasks per second, against bare SimPy and Ciw, and a big run.

Part 1 (``--tasks``, default 200,000): 8 single-server instances with
exponential service (mean 10 ms) at load 0.8, the same arrivals and task sizes
for every contender, measured in one run, in interleaved rounds (every
contender once per round, so that load from other processes hits them alike);
each rate is the median over ``--repeats`` rounds.  Every run is made in a fresh
child process (none runs in a process the others have filled) and timed there in CPU
time (``time.process_time``: other processes sharing the machine count less), the
workload drawn before the clock starts:

* ``sim.run``, end to end (validation, drawing, simulation, DataFrames and
  summary), with ``shortest_queue`` and with ``round_robin`` (oracle predictor);
* ``bare SimPy``: the textbook SimPy model of join-shortest-queue, one process
  per task holding a ``simpy.Resource`` request at the instance with the fewest
  tasks, that records nothing but the sum of the waits;
* ``Ciw`` (optional: ``pip install -e '.[bench]'``): the same system in Ciw, a
  zero-time dispatch node routing each arrival with Ciw's ``LoadBalancing``
  (join the shortest queue, counting the task in service) to 8 single-server
  nodes, each task served for its own size.

Each rate is printed beside the mean wait it simulated: ``shortest_queue`` on
exponential service makes the choices of join-the-shortest-queue (each running
task keeps its full mean), so the three join-shortest-queue contenders simulate
the same system and their mean waits agree (ties are broken differently, so not
to the last digit).  ``round_robin`` is another policy (a longer wait), measured
against the same bare loop.  Targets: ``shortest_queue`` at least 0.7x the bare
loop and at least 4x Ciw, ``round_robin`` at least 0.9x the bare loop.

``--baseline DIR`` also times ``sim.run`` of another source tree (for example
an export of an older commit: ``git archive REV | tar -x -C DIR``) in a child
process per round, within the same rounds, and prints a table of both rates and
this tree's ratio, against issue 8's target (at least 0.95x: within 5% of the
tree before, or faster).

Part 2 (``--big-tasks``, default 1,000,000; 0 skips): 256 instances, same
load, ``sim.run`` once: wall time and peak memory, measured as the process's
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which
includes the interpreter and the libraries, and tracemalloc is not used (it
would slow the run down several times).  Run part 2 in its own process
(``--tasks 0``) for a clean peak.

Run: .venv/bin/python benchmarks/bench_sim.py [--tasks N] [--repeats R] [--baseline DIR] [--big-tasks N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import simpy

import sim

MEAN_MS = 10.0
LOAD = 0.8
N_INSTANCES = 8
TARGETS = (  # (contender, reference, at least)
    ("sim.run shortest_queue", "bare SimPy", 0.7),
    ("sim.run shortest_queue", "Ciw", 4.0),
    ("sim.run round_robin", "bare SimPy", 0.9),
)


def scenario(n_instances: int, tasks: int, strategy: str = "shortest_queue") -> dict:
    rate_per_s = LOAD * n_instances * 1000.0 / MEAN_MS
    return {
        "name": f"bench-{n_instances}",
        "seed": 1,
        "replications": 1,
        "tasks": tasks,
        "strategies": [strategy],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": MEAN_MS}}},
        "instances": [{"model": "m", "count": n_instances}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": rate_per_s}},
    }


def bare_process(arrival_ms: np.ndarray, size_ms: np.ndarray, n_instances: int) -> float:
    """Textbook SimPy: a process per task, a Resource per instance, join the fewest tasks.
    Returns the mean wait (ms)."""
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(n_instances)]
    in_system = [0] * n_instances
    waited = [0.0]

    def task(k, size):
        arrived = env.now
        with servers[k].request() as req:
            yield req
            waited[0] += env.now - arrived
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
    return waited[0] / len(arrival_ms)


def ciw_jsq(arrival_ms: np.ndarray, size_ms: np.ndarray, n_instances: int) -> float:
    """The same system in Ciw: arrivals enter a dispatch node of zero service time with
    unlimited servers, which routes each one by ``LoadBalancing`` (the fewest tasks,
    in service included, ties at random) to ``n_instances`` single-server nodes; task
    ``i`` is served for ``size_ms[i]``.  Returns the mean wait (ms) at those nodes."""
    import ciw

    sizes = size_ms.tolist()

    class TaskSize(ciw.dists.Distribution):
        def sample(self, t=None, ind=None):
            return sizes[ind.id_number - 1]  # customers are numbered from 1 in arrival order

    gaps = np.diff(arrival_ms, prepend=0.0).tolist() + [float("inf")]  # then no more arrivals
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Sequential(gaps)] + [None] * n_instances,
        service_distributions=[ciw.dists.Deterministic(0.0)] + [TaskSize()] * n_instances,
        number_of_servers=[float("inf")] + [1] * n_instances,
        routing=ciw.routing.NetworkRouting(
            [ciw.routing.LoadBalancing(destinations=list(range(2, n_instances + 2)))]
            + [ciw.routing.Leave()] * n_instances
        ),
    )
    ciw.seed(1)
    q = ciw.Simulation(network)
    q.simulate_until_max_time(float(arrival_ms[-1]) * 2 + 1e6)
    waits = [r.waiting_time for r in q.get_all_records() if r.node > 1]
    if len(waits) != len(sizes):
        raise RuntimeError(f"Ciw served {len(waits)} of {len(sizes)} tasks")
    return sum(waits) / len(waits)


BASELINE_TARGET = 0.95  # sim.run at least this fraction of the --baseline tree's rate

CONTENDERS = ("sim.run shortest_queue", "sim.run round_robin", "bare SimPy", "Ciw")


def measure(name: str, tasks: int) -> tuple[float, float]:
    """CPU seconds of one contender on ``tasks`` tasks (the workload drawn beforehand, not
    timed), and the mean wait (ms) it simulated."""
    spec = scenario(N_INSTANCES, tasks, name.split()[-1] if name.startswith("sim.run") else "shortest_queue")
    if name.startswith("sim.run"):
        t0 = time.process_time()
        res = sim.run(spec)
        return time.process_time() - t0, float(res.tasks["wait_ms"].mean())
    scn = sim.load_scenario(spec)
    wl = sim.draw_workload(scn, sim.replication_seeds(scn.seed, 1)[0])
    fn = bare_process if name == "bare SimPy" else ciw_jsq
    t0 = time.process_time()
    wait = fn(wl.arrival_ms, wl.size_ms, N_INSTANCES)
    return time.process_time() - t0, wait


def in_child(name: str, tasks: int, tree: str | None = None) -> tuple[float, float]:
    """:func:`measure` in a fresh child process (so that no contender runs in a process
    the others have filled), with the ``sim`` and ``scheduler`` packages of ``tree`` if given."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.path.abspath(tree)
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", name, "--tasks", str(tasks)],
        env=env,
        cwd=tree or None,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds, wait = json.loads(out.splitlines()[-1])
    return float(seconds), float(wait)


def part1(tasks: int, repeats: int, baseline: str | None) -> None:
    try:
        import ciw

        ciw_version: str | None = ciw.__version__
    except ImportError:
        ciw_version = None
    runs: list[tuple[str, str | None]] = []  # (label, tree): every contender, in a child each
    for name in CONTENDERS:
        if name == "Ciw" and ciw_version is None:
            continue
        runs.append((name, None))
        if baseline and name.startswith("sim.run"):
            runs.append((f"baseline {name}", baseline))
    load = os.getloadavg()
    got: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in runs}
    for _ in range(repeats):  # interleaved: every contender once per round
        for label, tree in runs:
            got[label].append(in_child(label.removeprefix("baseline "), tasks, tree))
    load_after = os.getloadavg()
    n = tasks
    rate = {label: n / statistics.median(t for t, _ in r) for label, r in got.items()}
    print(
        f"part 1: {n:,} tasks, {N_INSTANCES} single-server instances, exponential service "
        f"(mean {MEAN_MS:g} ms), load {LOAD}; CPU time, each run in a fresh process, "
        f"median of {repeats} interleaved rounds"
    )
    print(
        f"  load average (1 min) {load[0]:.2f} before, {load_after[0]:.2f} after, "
        f"on {os.cpu_count()} cores: other processes shared the machine when above 0"
    )
    names = {
        "bare SimPy": "bare SimPy, process per task, JSQ",
        "Ciw": f"Ciw {ciw_version}, LoadBalancing (JSQ)",
    }
    print(f"  {'contender':42s} {'tasks/s':>10s} {'mean wait ms':>13s} {'/ bare SimPy':>13s}")
    for label, r in got.items():
        print(
            f"  {names.get(label, label):42s} {rate[label]:10,.0f} {r[0][1]:13.3f} "
            f"{rate[label] / rate['bare SimPy']:13.2f}"
        )
    if ciw_version is None:
        print("  Ciw: not installed (pip install -e '.[bench]'), its target is not measured")
    for who, ref, target in TARGETS:
        if ref not in rate:
            continue
        ratio = rate[who] / rate[ref]
        print(f"  target {who} >= {target:g}x {ref}: {ratio:.2f}x, {'met' if ratio >= target else 'MISSED'}")
    if baseline:
        print(f"  against the baseline tree {baseline} (same rounds; issue 8: within 5% of it or faster)")
        print(f"  {'contender':42s} {'this tree':>10s} {'baseline':>10s} {'ratio':>7s}  target")
        for name in CONTENDERS[:2]:
            ratio = rate[name] / rate[f"baseline {name}"]
            verdict = "met" if ratio >= BASELINE_TARGET else "MISSED"
            print(
                f"  {name:42s} {rate[name]:10,.0f} {rate[f'baseline {name}']:10,.0f} {ratio:6.2f}x"
                f"  >= {BASELINE_TARGET:g}x {verdict}"
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
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds in part 1; medians are kept")
    ap.add_argument("--baseline", metavar="DIR", help="another source tree to time side by side in part 1")
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # one measurement, for part 1 of a parent process
        print(json.dumps(measure(args.child, args.tasks)))
        return
    if args.tasks:
        part1(args.tasks, args.repeats, args.baseline)
    if args.big_tasks:
        part2(args.big_tasks)


if __name__ == "__main__":
    main()
