"""SwarmPilot-style task instances for the dialect tests, written from the contract (docs/api.md,
"Dialects") and nothing else: no import from ``scheduler``.  Run as a process:

    python tests/swarmpilot_instances.py --dialect enqueue|submit --port P --model M
        [--replicas N] [--service-ms MS] [--scheduler-url URL] [--drop-notifications]
        [--host 127.0.0.1] [--source-address ADDR]

* ``enqueue`` (the seed's era): ``GET /status``; ``POST /queue/enqueue {input_data, metadata}``
  answers with an id the instance assigns (a ``task_id`` in the body is ignored);
  ``GET /results/{id}``, ``GET /results`` (a list), no ``/queue/cancel``.  Completions go to the
  body's ``callback_url`` (or ``--scheduler-url``), under the instance's own id, without a bearer.
* ``submit`` (later instances): ``GET /info {instance_id, deployed_model {model_name, replicas},
  queue_info {length_of_queue}, instance_status}``; ``POST /queue/submit {model_name, task_input,
  metadata, task_id}`` (keeps ``task_id``); ``GET /results`` as ``{"results": {id: ...}}``.
  Completions go to ``--scheduler-url``/notify/task_complete only.

A task sleeps ``--service-ms`` and its result is ``{"echo": <input>, "by": <instance_id>}``.
``--drop-notifications`` sends no completion at all (only ``/results`` tells); ``--source-address``
binds the completions' source address (e.g. 127.0.0.2).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class Instance:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.instance_id = f"{args.dialect}-{args.port}-{uuid.uuid4().hex[:6]}"
        self.jobs: dict[str, dict[str, Any]] = {}
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.running = 0
        self.http: httpx.AsyncClient | None = None

    def add(self, task_id: str, task_input: Any, callback_url: str | None) -> dict[str, Any]:
        job = {"task_id": task_id, "status": "queued", "input": task_input, "callback": callback_url}
        job["enqueue_time"] = time.time()
        self.jobs[task_id] = job
        self.queue.put_nowait(task_id)
        return job

    async def worker(self) -> None:
        while True:
            job = self.jobs[await self.queue.get()]
            self.running += 1
            job["status"] = "running"
            t0 = time.perf_counter()
            await asyncio.sleep(self.args.service_ms / 1000.0)
            self.running -= 1
            job.update(
                status="completed",
                result={"echo": job["input"], "by": self.instance_id},
                execution_time=(time.perf_counter() - t0) * 1000.0,
            )
            if not self.args.drop_notifications:
                asyncio.create_task(self.notify(job))

    async def notify(self, job: dict[str, Any]) -> None:
        url = job["callback"] if self.args.dialect == "enqueue" else None
        if url is None and self.args.scheduler_url:
            url = self.args.scheduler_url.rstrip("/") + "/notify/task_complete"
        if url is None or self.http is None:
            return
        body = {
            "task_id": job["task_id"],
            "instance_id": self.instance_id,
            "execution_time": job["execution_time"],
            "result": job["result"],
        }
        for _ in range(3):
            try:
                await self.http.post(url, json=body)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.5)

    def result(self, job: dict[str, Any]) -> dict[str, Any]:
        keys = ("task_id", "status", "result", "execution_time", "enqueue_time")
        return {k: job.get(k) for k in keys}


def build(args: argparse.Namespace) -> FastAPI:
    inst = Instance(args)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        transport = httpx.AsyncHTTPTransport(local_address=args.source_address)
        inst.http = httpx.AsyncClient(timeout=5.0, transport=transport)
        workers = [asyncio.create_task(inst.worker()) for _ in range(args.replicas)]
        yield
        for w in workers:
            w.cancel()
        await inst.http.aclose()

    app = FastAPI(lifespan=lifespan)
    backlog = lambda: inst.queue.qsize() + inst.running  # noqa: E731

    if args.dialect == "enqueue":

        @app.get("/status")
        async def status() -> dict:
            return {
                "instance_id": inst.instance_id,
                "model_type": args.model,
                "replicas_running": args.replicas,
                "queue_size": backlog(),
                "status": "running" if backlog() else "idle",
            }

        @app.post("/queue/enqueue")
        async def enqueue(request: Request) -> dict:
            body = await request.json()
            job = inst.add(f"own-{uuid.uuid4().hex}", body["input_data"], body.get("callback_url"))
            return {"task_id": job["task_id"], "queue_size": backlog(), "enqueue_time": job["enqueue_time"]}

        @app.get("/results")
        async def all_results() -> list:
            return [inst.result(j) for j in inst.jobs.values()]

    else:

        @app.get("/info")
        async def info() -> dict:
            return {
                "instance_id": inst.instance_id,
                "deployed_model": {"model_name": args.model, "replicas": args.replicas},
                "queue_info": {"length_of_queue": backlog()},
                "instance_status": "running",
            }

        @app.post("/queue/submit")
        async def submit(request: Request) -> dict:
            body = await request.json()
            if body.get("model_name") != args.model:
                return {"status": "error", "message": f"this instance serves {args.model}"}
            job = inst.add(body["task_id"], body["task_input"], None)
            return {"status": "success", "task_id": job["task_id"]}

        @app.get("/results")
        async def all_results_by_id() -> dict:
            return {"results": {tid: inst.result(j) for tid, j in inst.jobs.items()}}

    @app.get("/results/{task_id}")
    async def one_result(task_id: str):
        job = inst.jobs.get(task_id)
        if job is None:
            return JSONResponse(status_code=404, content={"detail": "unknown"})
        return inst.result(job)

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dialect", choices=("enqueue", "submit"), required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--service-ms", type=float, default=20.0)
    p.add_argument("--scheduler-url")
    p.add_argument("--drop-notifications", action="store_true")
    p.add_argument("--source-address")
    args = p.parse_args()
    uvicorn.run(build(args), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
