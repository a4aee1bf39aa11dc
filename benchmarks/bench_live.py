"""Live mode on loopback: tasks per second through the scheduler, the latency it adds, its CPU cost.

Starts four reference task instances whose model takes no time
(``{dist: deterministic, value_ms: 0}``, four replicas each) and, registered with the same
instances, the routers compared side by side:

* ``store off``: the scheduler with ``--state-db none``;
* ``store on``: the scheduler with its SQLite state file (the default of ``serve``);
* ``null router`` (``benchmarks/null_router.py``): the same web stack (FastAPI, uvicorn, the pooled
  transport) forwarding each submit round robin and recording the completion; no core, no
  tracker, no store: the cost of the HTTP messages alone.

After a warm-up, ``--rounds`` rounds; in each round every router (in an order rotated from round
to round, so a busy moment of the shared machine does not fall on one of them) runs the
throughput phase, one router after the other, then each runs the latency phase:

1. throughput: ``--tasks`` tasks from ``--concurrency`` client connections, closed loop;
   throughput = tasks / (first submit -> the router records the last one as ended), i.e.
   completed end to end.  The router's CPU time (user + system, from ``/proc``) and the four
   instances' over the phase, divided by the tasks, give the CPU time per completed task.
2. latency: ``--latency-tasks`` tasks open loop at ``--rate`` tasks/s (each on its own schedule).
   Added latency, router-measured: per task, total time (submit received -> completion recorded)
   minus the execution time the instance measured, i.e. decision, delivery, queueing at the
   instance and the completion callback (p50 and p99 over these tasks, from ``/task/details``).

Figures are medians over the rounds; ratios are taken per round, then the median.  Then:

3. batch (store on): ``--batch-tasks`` tasks through ``POST /queue/submit_batch`` in batches of
   ``--batch-size``; tasks/s accepted, and completed end to end.
4. burst (store on, ``--burst-max-pending`` as ``--max-pending``): ``--burst`` submits as fast
   as ``--burst-concurrency`` connections send them.  Every submit must be answered 200 or 429,
   and every accepted task must end ``completed``: none lost.

Every target is printed with met or missed.  The client uses the same lean JSON client as the
scheduler (:func:`scheduler.protocol.json_client`), so that the load generator takes little of the
CPU it measures; it shares the machine
with everything it measures (and, on a shared machine, with whatever else runs).

Run: .venv/bin/python benchmarks/bench_live.py [--rounds 3] [--tasks 3000] [--rate 200] [--burst 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from host import live_reference

from scheduler.live import ServerProcess, free_port, start_instance, start_scheduler
from scheduler.protocol import HttpFailure, json_client

TARGET_STORE_RATIO = 0.9  # store on / store off throughput (issue 9)
TARGET_NULL_RATIO = 0.8  # scheduler / null router throughput (issue 12)
TARGET_TASKS_PER_S = 1000.0
TARGET_ADDED_P50_MS, TARGET_ADDED_P99_MS = 1.0, 3.0
TARGET_CPU_SCHEDULER_US, TARGET_CPU_INSTANCE_US = 600.0, 400.0
MODEL = "zero"
NULL_ROUTER = str(Path(__file__).with_name("null_router.py"))


@dataclass
class Router:
    name: str
    proc: ServerProcess
    runs: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.proc.url


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def submit_body(i: int) -> dict:
    return {"model_name": MODEL, "task_input": {"i": i}}


async def closed_loop(
    url: str, n: int, concurrency: int, max_seconds: float, path: str = "/queue/submit", body=submit_body
) -> tuple[dict[int, int], list[str]]:
    """Up to ``n`` requests from ``concurrency`` connections, each sent when the last answer came:
    answers by status code (-1: no answer; -1000 - code: a task of a batch refused with that code)
    and the task ids accepted."""
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    next_i = 0
    deadline = time.perf_counter() + max_seconds
    client = json_client(60.0, concurrency)  # the scheduler's own lean client: the load costs little CPU
    try:

        async def worker() -> None:
            nonlocal next_i
            while next_i < n and time.perf_counter() < deadline:
                i = next_i
                next_i += 1
                try:
                    r = await client.request("POST", url + path, body(i))
                except HttpFailure:
                    statuses[-1] = statuses.get(-1, 0) + 1
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    answer = r.json()
                    if "results" in answer:  # a batch: one answer per task; refusals counted by code
                        for t in answer["results"]:
                            if t["status"] == "success":
                                accepted.append(t["task_id"])
                            else:
                                key = -1000 - int(t.get("status_code", 0))  # -1429: a task refused with 429
                                statuses[key] = statuses.get(key, 0) + 1
                    else:
                        accepted.append(answer["task_id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return statuses, accepted


async def open_loop(url: str, n: int, rate: float, max_seconds: float) -> list[str]:
    """``n`` submits at ``rate`` per second, each on its own schedule; returns the ids accepted."""
    accepted: list[str] = []
    client = json_client(30.0, 256)
    try:

        async def one(i: int) -> None:
            r = await client.request("POST", url + "/queue/submit", submit_body(i))
            if r.status_code == 200:
                accepted.append(r.json()["task_id"])

        start = time.perf_counter()
        pending = []
        for i in range(n):
            due = start + i / rate
            if due - start > max_seconds:
                break
            if due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
    finally:
        await client.aclose()
    return accepted


def added_ms(url: str, ids: list[str]) -> np.ndarray:
    """Per task: total time (submit received -> completion recorded) minus the instance's execution."""
    out = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for k in range(0, len(ids), 1000):
            for t in client.post("/task/details", json={"task_ids": ids[k : k + 1000]}).json()["tasks"]:
                if t["completion_time"] is not None and t["execution_time_ms"] is not None:
                    total = (t["completion_time"] - t["submit_time"]) * 1000.0
                    out.append(total - t["execution_time_ms"])
    return np.array(out)


def stats(url: str) -> dict:
    return httpx.get(f"{url}/scheduler/stats", timeout=10.0).json()


def ended(url: str) -> int:
    c = stats(url)["counts"]
    return c["completed"] + c["failed"]


def wait_ended(url: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        n = ended(url)
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


def throughput(r: Router, args: argparse.Namespace, instances: list[ServerProcess]) -> dict:
    base = ended(r.url)
    cpu0 = cpu_s(r.proc.proc.pid), sum(cpu_s(p.proc.pid) for p in instances), time.process_time()
    t0 = time.perf_counter()
    statuses, accepted = asyncio.run(closed_loop(r.url, args.tasks, args.concurrency, args.max_seconds))
    done = wait_ended(r.url, base + len(accepted), 60.0) - base
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_s(r.proc.proc.pid), sum(cpu_s(p.proc.pid) for p in instances), time.process_time()
    return {
        "rate": done / elapsed,
        "ended": done,
        "refused": len(accepted) < args.tasks,
        "cpu_router_us": (cpu1[0] - cpu0[0]) / max(done, 1) * 1e6,
        "cpu_instance_us": (cpu1[1] - cpu0[1]) / max(done, 1) * 1e6,
        "cpu_client_us": (cpu1[2] - cpu0[2]) / max(done, 1) * 1e6,  # this process: the load generator
    }


def latency(r: Router, args: argparse.Namespace) -> dict:
    base = ended(r.url)
    ids = asyncio.run(open_loop(r.url, args.latency_tasks, args.rate, args.max_seconds))
    wait_ended(r.url, base + len(ids), 30.0)
    p50, p99 = np.percentile(added_ms(r.url, ids), [50, 99])
    return {"added_p50": p50, "added_p99": p99}


def start_routers(args: argparse.Namespace, instances: list[ServerProcess], tmp: str) -> list[Router]:
    common = dict(log_dir=tmp, log_level="warning", seed=0, max_pending=args.burst_max_pending)
    routers = [
        Router("store off", start_scheduler(state_db="none", **common)),
        Router("store on", start_scheduler(state_db=str(Path(tmp) / "state.db"), **common)),
    ]
    if not args.no_null:
        port = free_port()
        argv = [NULL_ROUTER, "--port", str(port)]
        for inst in instances:
            argv += ["--instance", inst.url]
        routers.append(
            Router("null router", ServerProcess("null-router", argv, f"http://127.0.0.1:{port}", "/health"))
        )
    for r in routers:
        r.proc.wait_ready()
        if r.name != "null router":
            for inst in instances:
                where = httpx.URL(inst.url)
                body = {"host": where.host, "port": where.port}
                answer = httpx.post(f"{r.url}/ti/register", json=body, timeout=10).json()
                assert answer["status"] == "success", answer
    return routers


def final_states(url: str, ids: list[str], timeout_s: float) -> dict[str, int]:
    """Poll ``/task/details`` until every id has ended (or time runs out); counts by status."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30.0) as client:
        while True:
            counts: dict[str, int] = {}
            for k in range(0, len(ids), 1000):
                body = client.post("/task/details", json={"task_ids": ids[k : k + 1000]}).json()
                for t in body["tasks"]:
                    counts[t["task_status"]] = counts.get(t["task_status"], 0) + 1
                counts["unknown"] = counts.get("unknown", 0) + len(body["unknown"])
            if (
                counts.get("completed", 0) + counts.get("failed", 0) == len(ids)
                or time.monotonic() > deadline
            ):
                return counts
            time.sleep(0.2)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def med(runs: list[dict], key: str) -> float:
    return float(np.median([run[key] for run in runs]))


def report_rounds(routers: list[Router], args: argparse.Namespace) -> None:
    by = {r.name: r for r in routers}
    print(
        f"\n{args.rounds} rounds, medians; throughput: {args.tasks} tasks, {args.concurrency} connections, "
        f"closed loop, completed end to end; latency: {args.latency_tasks} tasks open loop at {args.rate:g}/s"
    )
    print(
        f"{'router':12} {'tasks/s':>8} {'added p50':>10} {'added p99':>10} "
        f"{'CPU/task router':>16} {'CPU/task instances':>19} {'CPU/task client':>16}"
    )
    for r in routers:
        print(
            f"{r.name:12} {med(r.runs, 'rate'):8.0f} {med(r.runs, 'added_p50'):8.2f}ms "
            f"{med(r.runs, 'added_p99'):8.2f}ms {med(r.runs, 'cpu_router_us'):14.0f}us "
            f"{med(r.runs, 'cpu_instance_us'):17.0f}us {med(r.runs, 'cpu_client_us'):14.0f}us"
        )
    on, off = by["store on"].runs, by["store off"].runs

    def ratio(a: list[dict], b: list[dict]) -> float:
        return float(np.median([x["rate"] / y["rate"] for x, y in zip(a, b)]))

    targets: list[tuple[str, float, str, bool]] = []
    store = ratio(on, off)
    targets.append(("store on / store off throughput", store, f">= {TARGET_STORE_RATIO}", store >= 0.9))
    if "null router" in by:
        null = by["null router"].runs
        r_on = ratio(on, null)
        targets.append(("scheduler (store on) / null router", r_on, f">= {TARGET_NULL_RATIO}", r_on >= 0.8))
    rate = med(on, "rate")
    targets.append(("scheduler tasks/s end to end", rate, f">= {TARGET_TASKS_PER_S:g}", rate >= 1000))
    for key, target in (("added_p50", TARGET_ADDED_P50_MS), ("added_p99", TARGET_ADDED_P99_MS)):
        v = med(on, key)
        targets.append((f"scheduler added latency {key[-3:]} (ms)", v, f"<= {target:g}", v <= target))
    for key, name, target in (
        ("cpu_router_us", "scheduler", TARGET_CPU_SCHEDULER_US),
        ("cpu_instance_us", "instance", TARGET_CPU_INSTANCE_US),
    ):
        v = med(on, key)
        targets.append((f"{name} CPU per completed task (us)", v, f"<= {target:g}", v <= target))
    print("\ntargets (scheduler = store on, the default):")
    for what, value, target, ok in targets:
        print(f"  {what:40} {value:10.2f}   target {target:8}  {verdict(ok)}")


def run_batch(r: Router, args: argparse.Namespace) -> None:
    size = args.batch_size

    def body(i: int) -> dict:
        return {"tasks": [submit_body(i * size + k) for k in range(size)]}

    base = ended(r.url)
    t0 = time.perf_counter()
    statuses, accepted = asyncio.run(
        closed_loop(r.url, args.batch_tasks // size, 4, args.max_seconds, "/queue/submit_batch", body)
    )
    t_acc = time.perf_counter() - t0
    done = wait_ended(r.url, base + len(accepted), 60.0) - base
    t_done = time.perf_counter() - t0
    print(
        f"\nbatch ({r.name}): {args.batch_tasks} tasks in batches of {size} from 4 connections: "
        f"{len(accepted)} accepted at {len(accepted) / t_acc:.0f} tasks/s, "
        f"{done} completed end to end at {done / t_done:.0f} tasks/s (answers {statuses}; "
        "-1000 - code: tasks of a batch refused with that code, e.g. 429 past --max-pending)"
    )


def run_burst(r: Router, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    statuses, accepted = asyncio.run(
        closed_loop(r.url, args.burst, args.burst_concurrency, 600.0, body=lambda i: submit_body(-i))
    )
    took = time.perf_counter() - t0
    final = final_states(r.url, accepted, 120.0)
    other = sum(v for k, v in statuses.items() if k not in (200, 429))
    lost = len(accepted) - final.get("completed", 0)
    print(
        f"\nburst ({r.name}, --max-pending {args.burst_max_pending}): {args.burst} submits from "
        f"{args.burst_concurrency} connections in {took:.1f} s ({args.burst / took:.0f}/s): answers "
        f"{dict(sorted(statuses.items()))}; {len(accepted)} accepted, final states {final}"
    )
    print(
        f"  every submit answered 200 or 429: {verdict(other == 0)} ({other} other); every accepted "
        f"task completed, none lost: {verdict(lost == 0)} ({lost} not completed)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--tasks", type=int, default=3000, help="throughput phase (default 3000)")
    ap.add_argument("--concurrency", type=int, default=64, help="throughput phase (default 64)")
    ap.add_argument("--latency-tasks", type=int, default=600, help="latency phase (default 600)")
    ap.add_argument("--rate", type=float, default=200.0, help="latency phase, tasks/s (default 200)")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=30.0, help="per phase (default 30)")
    ap.add_argument("--no-null", action="store_true", help="skip the null router")
    ap.add_argument("--batch-tasks", type=int, default=10_000, help="batch phase (default 10000; 0: skip)")
    ap.add_argument("--batch-size", type=int, default=500, help="tasks per batch (default 500)")
    ap.add_argument("--burst", type=int, default=10_000, help="burst submits (default 10000; 0: skip)")
    ap.add_argument("--burst-concurrency", type=int, default=256, help="burst connections (default 256)")
    ap.add_argument(
        "--burst-max-pending", type=int, default=2000, help="--max-pending of the schedulers (default 2000)"
    )
    args = ap.parse_args(argv)

    zero = {"dist": "deterministic", "value_ms": 0}
    load = os.getloadavg()
    print(
        f"{args.instances} instances x {args.replicas} replicas, zero-time model; {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start; python {sys.version.split()[0]}"
    )
    print(live_reference(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        instances = [
            start_instance(MODEL, replicas=args.replicas, service_time=zero, seed=i, log_dir=tmp)
            for i in range(args.instances)
        ]
        routers: list[Router] = []
        try:
            for p in instances:
                p.wait_ready()
            routers = start_routers(args, instances, tmp)
            for r in routers:
                asyncio.run(closed_loop(r.url, args.warmup, args.concurrency, args.max_seconds))
            for k in range(args.rounds):
                order = routers[k % len(routers) :] + routers[: k % len(routers)]
                # the throughput phases back to back, then the latency phases: the figures a ratio
                # compares are taken seconds apart, so a busy moment of the machine falls on both
                runs = {r.name: throughput(r, args, instances) for r in order}
                for r in order:
                    run = runs[r.name]
                    run.update(latency(r, args))
                    r.runs.append(run)
                    print(
                        f"round {k + 1}, {r.name:11}: {run['rate']:6.0f} tasks/s, added p50 "
                        f"{run['added_p50']:.2f} ms p99 {run['added_p99']:.2f} ms, CPU/task "
                        f"{run['cpu_router_us']:.0f} us router {run['cpu_instance_us']:.0f} us instances",
                        flush=True,
                    )
            report_rounds(routers, args)
            on = next(r for r in routers if r.name == "store on")
            if args.batch_tasks > 0:
                run_batch(on, args)
            if args.burst > 0:
                run_burst(on, args)
        finally:
            procs = [r.proc for r in routers] + instances
            for p in procs:
                if p.alive:
                    p.proc.terminate()
            for p in procs:
                p.stop()
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print(live_reference())


if __name__ == "__main__":
    main()
