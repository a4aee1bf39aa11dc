#!/usr/bin/env python3
"""A strategy written once, evaluated in the simulator, then served live with no edit.

1. defines ``IdleFirst`` ("join the idle queue, else the better of d"), a
   strategy class of about twenty lines, and registers it as ``idle_first``
   with :func:`scheduler.register_strategy`;
2. simulates it against two built-ins, ``shortest_queue`` and
   ``power_of_two``, on a small scenario (same arrivals and task sizes for
   all three) and prints the summary;
3. starts three reference task instances and the live scheduler as plain
   ``python -m scheduler serve --strategy-module examples/custom_strategy.py
   --strategy idle_first`` (subprocesses): the scheduler imports this very
   file, so the class it serves is the class the simulator evaluated;
4. submits tasks over HTTP, waits for them, prints where they ran and their
   results, and stops everything (also on error).

Everything listens on free 127.0.0.1 ports; it takes about ten seconds.
Run from the repository root: ``.venv/bin/python examples/custom_strategy.py``.
"""

from __future__ import annotations

import collections
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

import sim
from scheduler import Candidates, Strategy, argmin_random, check_integer, register_strategy
from scheduler.live import start_instance, start_scheduler, wait_for_tasks

DEADLINE_S = 90.0


# -- 1. the strategy ------------------------------------------------------------------
@register_strategy
class IdleFirst(Strategy):
    """Join the idle queue, else the better of ``d`` random candidates.

    An instance with a free replica starts the task at once, so when there is
    one the task goes to the idle instance that runs it fastest (least
    predicted execution time).  The idle test reads only task counts, which
    are exact in both shells, so it works before the predictor has learned
    anything.  When every replica is busy, ``d`` candidates are sampled and
    the one with the least expected completion time (wait plus execution)
    wins: a power-of-d choice, which spreads the tasks when predictions are
    poor instead of sending each one to the single instance they favour.
    """

    name = "idle_first"
    description = "an idle instance if any (the fastest), else the best of d random ones by completion time"

    def __init__(self, d: int = 2):
        # a bad value raises SpecError naming the parameter and what is accepted ("an integer >= 1")
        self.d = check_integer("d", d, low=1)

    def params(self) -> dict:
        return {"d": self.d}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        idle = np.flatnonzero(view.in_flight < view.replicas)
        if idle.size:
            return int(idle[argmin_random(view.exec_mean[idle], rng)])
        sample = rng.choice(view.n, size=min(self.d, view.n), replace=False)
        return int(sample[argmin_random(view.completion_mean[sample], rng)])


# -- 2. the simulator -----------------------------------------------------------------
SCENARIO = {
    "name": "custom-strategy",
    "seed": 11,
    "replications": 3,
    "tasks": 6000,
    "warmup_tasks": 500,
    "predictor": {"mode": "online"},
    "models": {"llm": {"service_time": {"dist": "lognormal", "mean_ms": 100, "cv": 1.0}}},
    "instances": [  # capacity 4 x 1.0 + 2 x (2 replicas x 0.5) = 6 speed-1 servers
        {"model": "llm", "count": 4, "replicas": 1, "speed": 1.0},
        {"model": "llm", "count": 2, "replicas": 2, "speed": 0.5},
    ],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 51}},  # offered load 0.85
}


def simulate() -> None:
    res = sim.run(SCENARIO, strategies=["idle_first", "shortest_queue", "power_of_two"])
    cols = [
        "strategy",
        "count",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "latency_p99_ms_ci",
        "utilization",
    ]
    print(
        f"== simulator: {SCENARIO['name']}, offered load {sim.offered_load(SCENARIO):.2f}, "
        f"{SCENARIO['replications']} replications of {SCENARIO['tasks']} tasks (latencies in ms)"
    )
    print(res.summary[res.summary["model"] == "all"][cols].round(2).to_string(index=False))


# -- 3. and 4. live mode ------------------------------------------------------------------
def live(tasks: int = 40, rate_per_s: float = 50.0) -> None:
    logs = tempfile.mkdtemp(prefix="infersched-custom-")  # the servers' logs: removed unless it fails
    ok = False
    llm = {"dist": "lognormal", "mean_ms": 40, "cv": 0.8}
    kinds = [{"replicas": 1, "speed": 1.0}, {"replicas": 1, "speed": 1.0}, {"replicas": 2, "speed": 0.5}]
    instances = [
        start_instance("llm", service_time=llm, seed=i, log_dir=logs, instance_id=f"llm-{i}", **k)
        for i, k in enumerate(kinds)
    ]
    scheduler = None
    try:
        for p in instances:
            p.wait_ready()
        scheduler = start_scheduler(
            strategy_module=str(Path(__file__).resolve()),
            strategy="idle_first",
            strategy_params={"d": 2},
            seed=1,
            log_dir=logs,
        )
        scheduler.wait_ready()
        print(
            f"\n== live: python -m scheduler serve --strategy-module {Path(__file__).name} --strategy idle_first"
            f" at {scheduler.url}; logs in {logs}"
        )
        with httpx.Client(base_url=scheduler.url, timeout=10) as c:
            names = {}  # ti_uuid -> our name for the instance
            for k, (p, kind) in enumerate(zip(instances, kinds)):
                body = c.post(
                    "/ti/register",
                    json={"host": "127.0.0.1", "port": int(p.url.rsplit(":", 1)[1]), "model_name": "llm"},
                ).json()
                if body["status"] != "success":
                    raise RuntimeError(f"registering {p.url} failed: {body['message']}")
                names[body["ti_uuid"]] = f"llm-{k}"
                print(f"registered llm-{k} at {p.url} ({kind['replicas']} replica(s), speed {kind['speed']})")
            print(f"strategy in use: {c.get('/scheduler/stats').json()['strategy']}")
            submitted = []
            for i in range(tasks):  # a steady stream, so that queues form now and then
                r = c.post(
                    "/queue/submit", json={"model_name": "llm", "task_input": {"prompt": f"question {i}"}}
                )
                r.raise_for_status()
                submitted.append(r.json()["task_id"])
                time.sleep(1.0 / rate_per_s)
            done = wait_for_tasks(c, submitted)
            for tid in submitted[:8]:
                t = done[tid]
                print(
                    f"  {tid[:13]}  {t['task_status']:9}  on {names.get(t['scheduled_ti'], t['scheduled_ti'][:8])}"
                    f"  result {t['result']}"
                )
            print(f"  ... {len(submitted) - 8} more")
            per_instance = collections.Counter(names.get(t["scheduled_ti"], "?") for t in done.values())
            completed = sum(t["task_status"] == "completed" for t in done.values())
            print(
                f"completed {completed}/{len(submitted)} tasks; tasks per instance: "
                f"{dict(sorted(per_instance.items()))} (llm-2 has two replicas at half speed)"
            )
            s = c.get("/scheduler/stats").json()
            print(
                f"latency mean {s['total_ms']['mean']:.1f} ms, wait mean {s['wait_ms']['mean']:.1f} ms "
                f"(GET /scheduler/stats)"
            )
        ok = True
    finally:
        if scheduler is not None:
            scheduler.stop()
        for p in instances:
            p.stop()
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"\nsomething failed: the servers' logs are kept in {logs}")


def main() -> None:
    started = time.monotonic()
    simulate()
    live()
    print(f"\nall processes stopped, logs removed; {time.monotonic() - started:.1f} s in all")
    if time.monotonic() - started > DEADLINE_S:
        raise TimeoutError(f"the example took more than {DEADLINE_S:g} s")


if __name__ == "__main__":
    main()
