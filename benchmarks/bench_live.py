"""Live mode on loopback: tasks per second through the scheduler, and the latency it adds.

Starts four reference task instances whose model takes no time
(``{dist: deterministic, value_ms: 0}``, four replicas each) and a scheduler,
as subprocesses on 127.0.0.1, and registers the instances.  After
``--warmup`` tasks (not measured), two phases:

1. latency, at a moderate load: ``--latency-tasks`` tasks submitted open loop
   at ``--rate`` tasks/s (each on its own schedule, not waiting for the
   previous one).  Printed, p50 and p99:

   * submit round trip, client-measured: ``POST /queue/submit`` until its
     answer; it includes the decision and the delivery to the instance (a
     ``/queue/enqueue`` round trip);
   * added latency, scheduler-measured: per task, total time (submit received
     -> completion recorded) minus the execution time the instance measured,
     i.e. decision, delivery, queueing at the instance and the completion
     callback (``/scheduler/stats`` over the last 1000 tasks, which are this
     phase's when ``--latency-tasks`` is 1000).

2. throughput: ``--tasks`` tasks from ``--concurrency`` concurrent client
   connections, closed loop; throughput = tasks / (first submit -> the
   scheduler records the last one as ended), i.e. completed end to end.

Targets on a 2-core machine: >= 300 tasks/s, p50 added latency <= 5 ms.
Bounded: every phase stops submitting after ``--max-seconds``.  The client
uses the same lean HTTP transport as the scheduler, so that the load generator
takes little of the CPU it measures.

Run: .venv/bin/python benchmarks/bench_live.py [--tasks 3000] [--concurrency 16] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import numpy as np

from scheduler.live import LocalCluster, pooled_transport

TARGET_TASKS_PER_S = 300.0
TARGET_P50_MS = 5.0


async def submit_all(
    url: str, n: int, concurrency: int, max_seconds: float
) -> tuple[list[float], int, float]:
    """Submit up to ``n`` tasks; returns client round trips (ms), failures, and the start time."""
    rtts: list[float] = []
    failures = 0
    next_i = 0
    t_start = time.perf_counter()
    deadline = t_start + max_seconds
    transport = pooled_transport(concurrency)  # the client's own CPU cost stays small
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal next_i, failures
            while next_i < n and time.perf_counter() < deadline:
                i = next_i
                next_i += 1
                t0 = time.perf_counter()
                r = await client.post("/queue/submit", json={"model_name": "zero", "task_input": {"i": i}})
                rtts.append((time.perf_counter() - t0) * 1000.0)
                if r.status_code != 200:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rtts, failures, t_start


async def open_loop(url: str, n: int, rate: float, max_seconds: float) -> list[float]:
    """Submit ``n`` tasks at ``rate`` per second, each on its own schedule; returns round trips (ms)."""
    rtts: list[float] = []
    async with httpx.AsyncClient(base_url=url, transport=pooled_transport(256), timeout=30.0) as client:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            r = await client.post("/queue/submit", json={"model_name": "zero", "task_input": {"i": i}})
            if r.status_code == 200:
                rtts.append((time.perf_counter() - t0) * 1000.0)

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
    return rtts


def wait_ended(url: str, expected: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while True:
            stats = client.get("/scheduler/stats").json()
            c = stats["counts"]
            if c["completed"] + c["failed"] >= expected or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=3000, help="throughput phase (default 3000)")
    ap.add_argument("--concurrency", type=int, default=16, help="throughput phase (default 16)")
    ap.add_argument("--latency-tasks", type=int, default=1000, help="latency phase (default 1000)")
    ap.add_argument("--rate", type=float, default=200.0, help="latency phase, tasks/s (default 200)")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=30.0, help="per phase (default 30)")
    args = ap.parse_args()

    zero = {"dist": "deterministic", "value_ms": 0}
    spec = [
        dict(model="zero", replicas=args.replicas, service_time=zero, seed=i) for i in range(args.instances)
    ]
    with LocalCluster(spec, scheduler=dict(log_level="warning", seed=0)) as cluster:
        print(
            f"{args.instances} instances x {args.replicas} replicas, zero-time model; scheduler at {cluster.url}"
        )
        asyncio.run(submit_all(cluster.url, args.warmup, args.concurrency, args.max_seconds))
        done = args.warmup
        wait_ended(cluster.url, done, 30.0)

        lat_rtts = asyncio.run(open_loop(cluster.url, args.latency_tasks, args.rate, args.max_seconds))
        done += len(lat_rtts)
        lat_stats = wait_ended(cluster.url, done, 30.0)

        rtts, failures, t0 = asyncio.run(
            submit_all(cluster.url, args.tasks, args.concurrency, args.max_seconds)
        )
        stats = wait_ended(cluster.url, done + len(rtts), 60.0)
        elapsed = time.perf_counter() - t0
    counts = stats["counts"]
    ended = counts["completed"] + counts["failed"] - done
    rate = ended / elapsed
    added = lat_stats["wait_ms"]
    lp50, lp99 = np.percentile(lat_rtts, [50, 99])
    tp50, tp99 = np.percentile(rtts, [50, 99])
    print(f"latency phase: {len(lat_rtts)} tasks open loop at {args.rate:g}/s")
    print(f"  submit round trip (client):             p50 {lp50:6.2f} ms   p99 {lp99:6.2f} ms")
    print(
        f"  added latency (total - execution):      p50 {added['p50']:6.2f} ms   p99 {added['p99']:6.2f} ms"
        f"   (target p50 <= {TARGET_P50_MS:g} ms)"
    )
    print(
        f"throughput phase: {len(rtts)} tasks, concurrency {args.concurrency}, {ended} ended "
        f"({counts['failed']} failed in all, {failures} refused) in {elapsed:.2f} s"
    )
    print(
        f"  throughput, completed end to end:       {rate:6.0f} tasks/s   (target >= {TARGET_TASKS_PER_S:g})"
    )
    print(f"  submit round trip (client, saturated):  p50 {tp50:6.2f} ms   p99 {tp99:6.2f} ms")


if __name__ == "__main__":
    main()
