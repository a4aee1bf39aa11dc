"""CPU per task of the scheduler's own work, without the HTTP server, sockets or instances.

bench_live.py measures whole processes on loopback, where the HTTP messages cost most of the CPU
and a busy machine moves the figures by tens of microseconds.  This drives the apps in one
process instead, through ASGI, on uvloop: each task is a ``POST /queue/submit`` through the app's
whole middleware stack; the instances are a stand-in for the JSON client that answers
``/queue/enqueue`` at once and sends the completion (``POST /notify/task_complete``, an execution
time of 5-55 us, so the predictor learns a shape as it does from real instances) back through the
app.  What is left is the scheduler's own work per task (fast lane, body checks, service, core,
store, metrics), set beside the null router of bench_live.py driven the same way.

Targets, in interleaved rounds: ``off`` (state store off), ``on`` (the SQLite file, the default),
``null`` (benchmarks/null_router.py).  ``--profile FILE`` writes a cProfile of the last ``on``
round, left out of the medians (cProfile slows Python code about twofold: read it for shares,
not for times).

    python tools/live_inprocess.py [--tasks 20000] [--rounds 3] [--profile on.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import null_router  # noqa: E402  (a sibling folder)

from scheduler.live import LiveConfig, LiveScheduler, create_app  # noqa: E402
from scheduler.protocol.guard import BODY_COMPLETE  # noqa: E402
from scheduler.protocol.jsonhttp import Reply  # noqa: E402
from scheduler.protocol.server import GC_THRESHOLDS  # noqa: E402

INSTANCES = 4
BASE_PORT = 9000  # the stand-in's instances are http://127.0.0.1:9000 ... (nothing is opened)


async def call(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> list[dict]:
    """One POST through the app, as uvicorn's httptools protocol hands it over; the messages sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "app": app,
        "state": {},
        BODY_COMPLETE: True,
    }
    sent: list[dict] = []
    given = False

    async def receive() -> dict:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: the response is complete before this is asked
        raise AssertionError

    async def send(msg: dict) -> None:
        sent.append(msg)

    await app(scope, receive, send)
    return sent


class Instances:
    """The JSON client's stand-in: every instance takes each task at once and reports it done."""

    def __init__(self) -> None:
        self.app: Any = None
        self.callbacks: set[asyncio.Task] = set()
        self.n = 0

    async def request(self, method: str, url: str, body: Any = None, **_: Any) -> Reply:
        i = int(url.split(":")[2].split("/")[0]) - BASE_PORT
        if url.endswith("/status"):
            status = {"instance_id": f"inst-{i}", "model_type": "zero", "replicas_running": 4}
            return Reply(200, orjson.dumps({**status, "queue_size": 0, "status": "idle"}), url)
        task = orjson.loads(orjson.dumps(body))  # as it travels
        self.n += 1
        note = {
            "task_id": task["task_id"],
            "instance_id": f"inst-{i}",
            "execution_time": 0.005 + (self.n % 11) * 0.005,
            "result": {"ok": 1},
            "error": None,
        }
        headers = [(b"content-type", b"application/json")]
        if task.get("callback_token"):
            headers.append((b"authorization", f"Bearer {task['callback_token']}".encode()))
        t = asyncio.get_running_loop().create_task(
            call(self.app, "/notify/task_complete", orjson.dumps(note), headers)
        )
        self.callbacks.add(t)
        t.add_done_callback(self.callbacks.discard)
        answer = {"task_id": task["task_id"], "queue_size": 0, "enqueue_time": time.time()}
        return Reply(200, orjson.dumps(answer), url)

    async def aclose(self) -> None:
        pass


async def drive(app: Any, stand_in: Instances, n: int, concurrency: int) -> None:
    counter = itertools.count()
    json = [(b"content-type", b"application/json")]

    async def worker() -> None:
        while (k := next(counter)) < n:
            body = orjson.dumps({"model_name": "zero", "task_input": {"i": k}})
            sent = await call(app, "/queue/submit", body, json)
            assert sent[0]["status"] == 200, sent

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    while stand_in.callbacks:
        await asyncio.sleep(0)


async def serve(target: str, tmp: str) -> tuple[Any, Instances, asyncio.Queue, asyncio.Task]:
    """The app of ``target``, its lifespan started, instances registered."""
    stand_in = Instances()
    urls = [f"http://127.0.0.1:{BASE_PORT + i}" for i in range(INSTANCES)]
    service = None
    if target == "null":
        app = null_router.create_app(urls, "http://127.0.0.1:8000/notify/task_complete")
    else:
        db = None if target == "off" else str(Path(tmp) / f"state-{time.monotonic_ns()}.db")
        service = LiveScheduler(LiveConfig(state_db=db, seed=0, log_level="warning"))
        service.client._http = stand_in  # what every delivery goes through
        app = create_app(service)
    stand_in.app = app
    events: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def send(msg: dict) -> None:
        if msg["type"] == "lifespan.startup.complete":
            started.set()

    await events.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send))
    await started.wait()
    if service is None:
        app.state.router.http = stand_in
    else:
        for i in range(INSTANCES):
            await service.register("127.0.0.1", BASE_PORT + i)
    return app, stand_in, events, lifespan


async def main_async(args: argparse.Namespace) -> None:
    cpu: dict[str, list[float]] = {t: [] for t in args.targets}
    with tempfile.TemporaryDirectory(prefix="live-inprocess-") as tmp:
        for r in range(args.rounds):
            for target in args.targets:
                app, stand_in, events, lifespan = await serve(target, tmp)
                gc.collect()
                gc.freeze()  # as the servers' tune_gc does
                gc.set_threshold(*GC_THRESHOLDS)
                await drive(app, stand_in, args.warmup, args.concurrency)
                profiled = args.profile and target == "on" and r == args.rounds - 1
                profile = cProfile.Profile() if profiled else None
                t0 = time.process_time()
                if profile is not None:
                    profile.enable()
                await drive(app, stand_in, args.tasks, args.concurrency)
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                if profile is None:  # a profiled round runs slower: left out of the figures
                    cpu[target].append((time.process_time() - t0) / args.tasks * 1e6)
                await events.put({"type": "lifespan.shutdown"})
                await asyncio.wait_for(lifespan, 10)
                gc.unfreeze()
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{t} {cpu[t][r]:.1f} us" if len(cpu[t]) > r else f"{t} profiled" for t in args.targets
                ),
                flush=True,
            )
    print(
        f"\nCPU per task in process, median over the rounds ({args.tasks} tasks each; a profiled one left out):"
    )
    for target in args.targets:
        if cpu[target]:
            print(f"  {target:5} {statistics.median(cpu[target]):7.1f} us over {len(cpu[target])} round(s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--targets", nargs="+", choices=("off", "on", "null"), default=["off", "on", "null"])
    ap.add_argument("--profile", metavar="FILE", help="a cProfile of the last 'on' round")
    args = ap.parse_args()
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
