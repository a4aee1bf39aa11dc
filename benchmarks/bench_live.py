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

Both phases run twice, side by side in one run: with the durable state store
off (``--state-db none``) and on (a SQLite file in a temporary directory);
target: with it on, at least 90% of the throughput with it off.

3. burst (store on): ``--burst`` (10,000) submits as fast as ``--burst-concurrency``
   connections can send them.  Every submit must be answered 200 or 429
   (``--max-pending`` back-pressure), and every accepted task must end
   ``completed``: none lost.

Targets on a 2-core machine: >= 300 tasks/s, p50 added latency <= 5 ms.
Bounded: every phase stops submitting after ``--max-seconds``.  The client
uses the same lean HTTP transport as the scheduler, so that the load generator
takes little of the CPU it measures.

Run: .venv/bin/python benchmarks/bench_live.py [--tasks 3000] [--concurrency 16] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from scheduler.live import LocalCluster, pooled_transport

TARGET_TASKS_PER_S = 300.0
TARGET_P50_MS = 5.0
TARGET_STORE_RATIO = 0.9


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


async def burst(url: str, n: int, concurrency: int) -> tuple[dict[int, int], list[str]]:
    """``n`` submits as fast as ``concurrency`` connections send them: status counts, accepted ids."""
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    next_i = 0
    async with httpx.AsyncClient(
        base_url=url, transport=pooled_transport(concurrency), timeout=60.0
    ) as client:

        async def worker() -> None:
            nonlocal next_i
            while next_i < n:
                i = next_i
                next_i += 1
                try:
                    r = await client.post(
                        "/queue/submit", json={"model_name": "zero", "task_input": {"b": i}}
                    )
                except httpx.HTTPError:
                    statuses[-1] = statuses.get(-1, 0) + 1
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    accepted.append(r.json()["task_id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, accepted


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


def measure(args: argparse.Namespace, state_db: str, do_burst: bool) -> dict:
    """Warm-up, latency and throughput phases (and the burst) on a fresh cluster."""
    zero = {"dist": "deterministic", "value_ms": 0}
    spec = [
        dict(model="zero", replicas=args.replicas, service_time=zero, seed=i) for i in range(args.instances)
    ]
    out: dict = {}
    with LocalCluster(spec, scheduler=dict(log_level="warning", seed=0, state_db=state_db)) as cluster:
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
        out["ended"] = counts["completed"] + counts["failed"] - done
        out["failed"], out["refused"], out["submitted"] = counts["failed"], failures, len(rtts)
        out["elapsed"] = elapsed
        out["rate"] = out["ended"] / elapsed
        out["added"] = lat_stats["wait_ms"]
        out["lat"] = np.percentile(lat_rtts, [50, 99])
        out["sat"] = np.percentile(rtts, [50, 99])
        if do_burst:
            t = time.perf_counter()
            out["burst_statuses"], accepted = asyncio.run(
                burst(cluster.url, args.burst, args.burst_concurrency)
            )
            out["burst_s"] = time.perf_counter() - t
            out["burst_accepted"] = len(accepted)
            out["burst_final"] = final_states(cluster.url, accepted, 120.0)
    return out


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
    ap.add_argument(
        "--burst", type=int, default=10_000, help="burst submits, store on (default 10000; 0: skip)"
    )
    ap.add_argument("--burst-concurrency", type=int, default=64, help="burst connections (default 64)")
    args = ap.parse_args()

    print(f"{args.instances} instances x {args.replicas} replicas, zero-time model; store off, then on")
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        runs = {
            "off": measure(args, "none", False),
            "on": measure(args, str(Path(tmp) / "state.db"), args.burst > 0),
        }
    print(f"latency phase: {args.latency_tasks} tasks open loop at {args.rate:g}/s")
    for name, r in runs.items():
        print(
            f"  store {name:3}: submit round trip p50 {r['lat'][0]:6.2f} ms  p99 {r['lat'][1]:6.2f} ms | "
            f"added latency p50 {r['added']['p50']:6.2f} ms  p99 {r['added']['p99']:6.2f} ms"
            f"   (target p50 <= {TARGET_P50_MS:g} ms)"
        )
    print(f"throughput phase: {args.tasks} tasks, concurrency {args.concurrency}, completed end to end")
    for name, r in runs.items():
        print(
            f"  store {name:3}: {r['rate']:6.0f} tasks/s ({r['ended']} ended in {r['elapsed']:.2f} s, "
            f"{r['failed']} failed, {r['refused']} refused) | saturated submit p50 {r['sat'][0]:6.2f} ms "
            f"p99 {r['sat'][1]:6.2f} ms   (target >= {TARGET_TASKS_PER_S:g}/s)"
        )
    ratio = runs["on"]["rate"] / runs["off"]["rate"]
    verdict = "met" if ratio >= TARGET_STORE_RATIO else "NOT met"
    print(f"  store on / off throughput: {ratio:.2f}   (target >= {TARGET_STORE_RATIO:g}: {verdict})")
    if args.burst > 0:
        r = runs["on"]
        other = {k: v for k, v in r["burst_statuses"].items() if k not in (200, 429)}
        final = r["burst_final"]
        lost = r["burst_accepted"] - final.get("completed", 0)
        print(
            f"burst (store on): {args.burst} submits from {args.burst_concurrency} connections in "
            f"{r['burst_s']:.1f} s: answers {dict(sorted(r['burst_statuses'].items()))}; "
            f"{r['burst_accepted']} accepted, final states {final}"
        )
        ok = not other and lost == 0
        print(
            f"  every submit 200 or 429, every accepted task completed: {'yes' if ok else 'NO'} "
            f"({len(other) and sum(other.values())} other answers, {lost} accepted but not completed)"
        )


if __name__ == "__main__":
    main()
