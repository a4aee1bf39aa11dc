"""Where a live scheduler (or reference instance) spends its CPU, sampled with py-spy.

Starts four zero-time reference instances and a scheduler with its state file on loopback (as
benchmarks/bench_live.py does), warms up, then records the chosen process with ``py-spy record``
while ``--tasks`` tasks run closed loop from 32 connections, and prints the share of samples by
where the sampled code was (its innermost frame), grouped into the parts of the stack.
``--target null`` records the null router of bench_live.py instead (same instances, same load),
so the two profiles can be set side by side.

py-spy samples wall time in running code: a socket write on loopback that wakes its reader (and
is preempted by it on a busy machine) counts for as long as it waits, so "socket writes" weighs
more in a profile than in the process's CPU time (bench_live.py prints that).

py-spy is not a dependency of the project: ``pip install py-spy`` first (it may need the
``SYS_PTRACE`` capability in a container).

    python tools/profile_live.py [--target scheduler|instance|null] [--tasks 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_live import MODEL, NULL_ROUTER, closed_loop, ended, wait_ended  # noqa: E402  (a sibling folder)

from scheduler.live import LocalCluster, ServerProcess, free_port  # noqa: E402

# (what the part is, substrings of an innermost frame's file or function that put it there)
PARTS = [
    ("socket writes", ("CoalescingWrites.write", "http_writer.py", "RequestResponseCycle.send")),
    ("event loop, socket reads (uvloop)", ("runners.py", "uvloop", "asyncio/")),
    ("state store (commits, puts, flushes, checkpoints)", ("store/", "threading.py", "sqlite3")),
    ("outgoing HTTP client (aiohttp)", ("aiohttp", "yarl", "multidict", "jsonhttp.py")),
    ("HTTP server protocol (uvicorn, httptools)", ("uvicorn/",)),
    ("FastAPI / Starlette layers", ("fastapi/", "starlette/")),
    ("scheduling core", ("scheduler/core/",)),
    ("JSON and validation", ("pydantic", "json/", "orjson")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("service, routes, guards", ("scheduler/",)),
]


# a thread waiting shows up in samples too: the state checkpointer between checkpoints
IDLE = ("Condition.wait", "Event.wait")


def part_of(frame: str) -> str:
    for name, marks in PARTS:
        if any(m in frame for m in marks):
            return name
    return "other"


def start_null_router(cluster: LocalCluster, log_dir: str) -> ServerProcess:
    """bench_live.py's null router in front of the cluster's instances, ready."""
    port = free_port()
    argv = [NULL_ROUTER, "--port", str(port)]
    for inst in cluster.instances:
        argv += ["--instance", inst.url]
    proc = ServerProcess("null-router", argv, f"http://127.0.0.1:{port}", "/health", log_dir=log_dir)
    proc.wait_ready()
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--target", choices=("scheduler", "instance", "null"), default="scheduler")
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    ap.add_argument("--keep", metavar="FILE", help="also copy py-spy's raw samples (collapsed stacks) here")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    zero = {"dist": "deterministic", "value_ms": 0}
    spec = [dict(model=MODEL, replicas=4, service_time=zero, seed=i) for i in range(4)]
    with tempfile.TemporaryDirectory(prefix="profile-live-") as tmp:
        out = Path(tmp) / "samples.txt"
        sched = dict(log_level="warning", state_db=str(Path(tmp) / "state.db"))
        with LocalCluster(spec, scheduler=sched, log_dir=tmp) as cluster, contextlib.ExitStack() as stop:
            url, proc = cluster.url, cluster.scheduler if args.target == "scheduler" else cluster.instances[0]
            if args.target == "null":
                proc = start_null_router(cluster, tmp)
                stop.callback(proc.stop)
                url = proc.url
            assert proc is not None
            asyncio.run(closed_loop(url, 500, 32, 30.0))
            cmd = [spy, "record", "-p", str(proc.proc.pid), "-f", "raw", "-o", str(out)]
            recorder = subprocess.Popen(
                [*cmd, "-r", str(args.rate), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            base = ended(url)
            _, accepted = asyncio.run(closed_loop(url, args.tasks, 32, 120.0))
            wait_ended(url, base + len(accepted), 60.0)
            recorder.send_signal(2)
            recorder.wait(30)
        if args.keep:
            shutil.copyfile(out, args.keep)
        shares: collections.Counter[str] = collections.Counter()
        idle = 0
        for line in out.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            leaf = stack.split(";")[-1]
            if leaf.split(" (")[0] in IDLE:
                idle += int(n)
            else:
                shares[part_of(leaf)] += int(n)
    total = sum(shares.values())
    print(
        f"{args.target}: {total} samples over {len(accepted)} tasks by innermost frame "
        f"({idle} more of a thread waiting, left out)"
    )
    for name, count in shares.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
