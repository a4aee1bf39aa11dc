"""A null router: the scheduler's web stack with no scheduling, the baseline of bench_live.py.

The same web stack as the scheduler: FastAPI with the fast lane for the two per-task endpoints
(:mod:`scheduler.protocol.fastlane`), the same uvicorn server (:func:`scheduler.protocol.run`, with
its connection guard) and the same JSON client to the instances; and nothing else:
``POST /queue/submit`` validates its body, forwards the task round robin to an instance's
``/queue/enqueue`` and answers; ``POST /notify/task_complete`` records the completion.  No core,
no tracker, no store, no tokens, no body guard.  ``GET /scheduler/stats`` (the counts) and
``POST /task/details`` (submit and completion times of the last 1000 ended tasks) answer in the
scheduler's shape, so the benchmark reads both the same way.

Run: python benchmarks/null_router.py --port 8200 --instance http://127.0.0.1:8100 [...]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from scheduler.protocol import (
    LEAN_APP,
    Answer,
    CompletionNotification,
    EnqueueResponse,
    FastLane,
    json_client,
    parse_body,
    run,
)

WINDOW = 1000  # ended tasks /task/details can tell about


class Submit(BaseModel):
    model_name: str = Field(min_length=1)
    task_input: Any
    metadata: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = None


class Router:
    def __init__(self, instances: list[str], callback_url: str):
        self.instances = instances
        self.callback_url = callback_url
        self.next = itertools.cycle(range(len(instances)))
        self.ids = random.Random(os.urandom(32)).getrandbits  # as the scheduler makes its ids
        self.http = json_client(5.0, 200)  # the scheduler's client to its instances
        self.submitted: dict[str, float] = {}  # task_id -> submit time (s)
        self.completed = self.failed = 0
        # the last WINDOW ended tasks: task_id -> (submit, completion time (s), execution time (ms))
        self.ended: dict[str, tuple[float, float, float]] = {}

    async def submit(self, req: Submit) -> dict:
        task_id = req.task_id or f"task-{self.ids(128):032x}"
        self.submitted[task_id] = time.time()
        i = next(self.next)
        body = {
            "task_id": task_id,
            "input_data": req.task_input,
            "metadata": req.metadata,
            "callback_url": self.callback_url,
        }
        r = await self.http.request("POST", f"{self.instances[i]}/queue/enqueue", body)
        if r.status_code != 200:
            raise RuntimeError(f"enqueue answered HTTP {r.status_code}")
        EnqueueResponse.model_validate_json(r.content)  # the scheduler reads the answer too
        return {"status": "success", "task_id": task_id, "scheduled_ti": str(i)}

    def complete(self, n: CompletionNotification) -> dict:
        t0 = self.submitted.pop(n.task_id, None)
        if t0 is None:
            return {"status": "warning", "message": "unknown task"}
        now = time.time()
        if n.error is None:
            self.completed += 1
        else:
            self.failed += 1
        self.ended[n.task_id] = (t0, now, n.execution_time)
        if len(self.ended) > WINDOW:
            del self.ended[next(iter(self.ended))]
        return {"status": "success", "message": "recorded", "total_time_ms": (now - t0) * 1000.0}

    def stats(self) -> dict:
        return {
            "counts": {"completed": self.completed, "failed": self.failed, "scheduled": len(self.submitted)}
        }

    def details(self, task_ids: list[str]) -> dict:
        found = []
        for tid in task_ids:
            if tid in self.ended:
                submit, end, execution = self.ended[tid]
                found.append(
                    {
                        "task_id": tid,
                        "submit_time": submit,
                        "completion_time": end,
                        "execution_time_ms": execution,
                    }
                )
        return {"tasks": found, "unknown": [t for t in task_ids if t not in self.ended]}


def create_app(instances: list[str], callback_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.router = Router(instances, callback_url)
        yield
        await app.state.router.http.aclose()

    app = FastAPI(title="null router", lifespan=lifespan, **LEAN_APP)  # as the scheduler's app

    # the scheduler's two per-task endpoints, served as the scheduler serves them (its fast lane)
    async def submit(app: Any, scope: Any, body: bytes) -> Answer:
        return Answer(200, await app.state.router.submit(parse_body(Submit, body)))

    async def complete(app: Any, scope: Any, body: bytes) -> Answer:
        return Answer(200, app.state.router.complete(parse_body(CompletionNotification, body)))

    app.add_middleware(
        FastLane, routes={("POST", "/queue/submit"): submit, ("POST", "/notify/task_complete"): complete}
    )

    @app.get("/scheduler/stats")
    async def stats(request: Request) -> dict:
        return request.app.state.router.stats()

    @app.post("/task/details")
    async def details(body: dict, request: Request) -> dict:
        return request.app.state.router.details(body["task_ids"])

    @app.get("/health")
    async def health() -> dict:
        return {"status": "healthy", "service": "null-router"}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--instance", action="append", required=True, help="an instance's base URL (repeat)")
    ns = ap.parse_args()
    callback = f"http://127.0.0.1:{ns.port}/notify/task_complete"
    run(create_app(ns.instance, callback), host="127.0.0.1", port=ns.port, log_level="warning")


if __name__ == "__main__":
    main()
