"""The reference task instance's engine: a FIFO queue served by replica workers.

``replicas`` asyncio workers take tasks in arrival order and run them with the
instance's work (:mod:`scheduler.instance.work`).  When a task ends, its
measured execution time (ms) and result or error are POSTed to its
``callback_url`` with this instance's ``instance_id``, retried with backoff
for up to ``notify_deadline_s`` (so a completion that happens while the
scheduler restarts is not lost; the scheduler can also read
``GET /results/{task_id}``).  The last ``history`` finished tasks are kept for
``/results``; unfinished ones are always kept.

A task runs at most ``max_task_ms`` (then it fails with that reason, and the
replica is free again).  ``cancel`` drops a task that has not started (the
scheduler sends it elsewhere).  ``runs`` counts how often each task id was
started here, for tests that check that no task runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from ..core.stats import Welford
from ..protocol import JobStatus
from ..protocol.jsonhttp import HttpFailure, JsonHttp, json_client
from .work import TaskInputError

log = logging.getLogger("scheduler.instance")


@dataclass
class Job:
    task_id: str
    input_data: Any
    metadata: dict
    callback_url: str | None
    enqueue_time: float  # epoch s
    status: JobStatus = "queued"  # queued -> running -> completed | failed
    start_time: float | None = None
    completion_time: float | None = None
    execution_ms: float | None = None
    result: Any = None
    error: str | None = None
    callback_token: str | None = None  # sent back as a bearer token with the completion

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


class InstanceRuntime:
    def __init__(
        self,
        work,
        *,
        model: str,
        instance_id: str,
        replicas: int = 1,
        history: int = 10_000,
        notify_timeout_s: float = 5.0,
        notify_deadline_s: float = 60.0,
        max_task_ms: float = 300_000.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.work, self.model, self.instance_id = work, model, instance_id
        self.replicas, self.history = replicas, history
        if not max_task_ms > 0:
            raise ValueError(f"max_task_ms must be > 0, got {max_task_ms}")
        self.notify_deadline_s = notify_deadline_s
        self.max_task_ms = max_task_ms
        self.runs: dict[str, int] = {}  # task_id -> times started here (bounded like the history)
        self._notify_timeout_s = notify_timeout_s
        self._transport = transport
        self._jobs: dict[str, Job] = {}
        self._done: deque[Job] = deque()
        self._queue: asyncio.Queue[Job] = asyncio.Queue()  # a fresh one for each start()
        self._tasks: list[asyncio.Task] = []
        self._notifiers: set[asyncio.Task] = set()
        self._http: JsonHttp | None = None
        self.running = 0
        self._exec_stats = Welford()  # measured execution times

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._http = json_client(self._notify_timeout_s, 100, self._transport)
        self._tasks = [asyncio.create_task(self._worker(), name=f"replica-{i}") for i in range(self.replicas)]
        log.info(
            "instance %s serving model %s (%s) on %d replica(s)",
            self.instance_id,
            self.model,
            self.work.kind,
            self.replicas,
        )

    async def stop(self) -> None:
        tasks = self._tasks + list(self._notifiers)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks, self._notifiers = [], set()
        if self._http is not None:
            await self._http.aclose()
        aclose = getattr(self.work, "aclose", None)  # a work holding connections (the OpenAI backend)
        if aclose is not None:
            await aclose()

    # -- requests --------------------------------------------------------------
    def enqueue(
        self,
        task_id: str | None,
        input_data: Any,
        metadata: dict,
        callback_url: str | None,
        *,
        callback_token: str | None = None,
    ) -> Job:
        """Queue a task.  The same task_id again while it is unfinished is accepted once (idempotent);
        ``None`` (a seed-era client) has the instance assign a fresh id, which the job carries."""
        if task_id is None:
            task_id = f"{self.instance_id}-{uuid.uuid4().hex}"
        job = self._jobs.get(task_id)
        if job is not None and not job.finished:
            return job
        job = Job(task_id, input_data, metadata, callback_url, time.time(), callback_token=callback_token)
        self._jobs[task_id] = job
        self._queue.put_nowait(job)
        return job

    @property
    def queue_size(self) -> int:
        """Tasks not finished: waiting or running."""
        return self._queue.qsize() + self.running

    def status(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "model_type": self.model,
            "replicas_running": self.replicas,
            "queue_size": self.queue_size,
            "status": "running" if self.queue_size else "idle",
        }

    def predict(self) -> tuple[float, float, int]:
        """Expected wait of a new task and its standard deviation (ms), and the queue size.

        Tasks ahead that must end before a replica frees: ``max(0, size - c + 1)``;
        each takes the mean execution time (measured, else the work's prior), over ``c`` replicas.
        """
        st = self._exec_stats
        if st.n >= 2:
            mean, std = st.mean, st.std
        else:
            mean, std = self.work.prior_ms or (st.mean, 0.0)
        size = self.queue_size
        ahead = max(0, size - self.replicas + 1)
        return mean * ahead / self.replicas, std * math.sqrt(ahead) / self.replicas, size

    def check(self, input_data: Any) -> None:
        """Raise :class:`TaskInputError` for an input the work refuses up front (if it checks inputs)."""
        check = getattr(self.work, "check", None)
        if check is not None:
            check(input_data)

    def get(self, task_id: str) -> Job | None:
        return self._jobs.get(task_id)

    def jobs(self) -> list[Job]:
        """Every task known here (at most ``history`` finished ones plus the unfinished), oldest first."""
        return sorted(self._jobs.values(), key=lambda j: j.enqueue_time)

    def cancel(self, task_id: str) -> tuple[bool, str | None]:
        """Drop a task that has not started.  Returns (dropped, its status or None if unknown)."""
        job = self._jobs.get(task_id)
        if job is None:
            return False, None
        if job.status != "queued":
            return False, job.status
        del self._jobs[task_id]  # the worker skips it (superseded)
        return True, "cancelled"

    # -- workers ---------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            if self._jobs.get(job.task_id) is not job:  # superseded by a re-enqueue
                continue
            self.running += 1
            job.status, job.start_time = "running", time.time()
            self._count_run(job.task_id)
            t0 = time.perf_counter()
            try:
                job.result = await asyncio.wait_for(
                    self.work.run(job.input_data, job.metadata), self.max_task_ms / 1000.0
                )
                job.status = "completed"
            except TimeoutError:
                job.error = f"ran longer than the instance's limit of {self.max_task_ms:g} ms (--max-task-ms)"
                job.status = "failed"
            except TaskInputError as e:
                job.error, job.status = str(e), "failed"
            except Exception as e:  # the task fails; the instance carries on
                log.exception("task %s failed", job.task_id)
                job.error, job.status = f"{type(e).__name__}: {e}", "failed"
            finally:
                self.running -= 1
            job.execution_ms = (time.perf_counter() - t0) * 1000.0
            job.completion_time = time.time()
            self._learn(job.execution_ms)
            self._retain(job)
            if job.callback_url:
                t = asyncio.create_task(self._notify(job))
                self._notifiers.add(t)
                t.add_done_callback(self._notifiers.discard)

    def _count_run(self, task_id: str) -> None:
        self.runs[task_id] = self.runs.get(task_id, 0) + 1
        if len(self.runs) > 10 * self.history:  # forget the oldest (dicts keep insertion order)
            for old in list(self.runs)[: len(self.runs) - 10 * self.history]:
                del self.runs[old]

    def _learn(self, x: float) -> None:
        self._exec_stats.add(x)

    def _retain(self, job: Job) -> None:
        self._done.append(job)
        while len(self._done) > self.history:
            old = self._done.popleft()
            if self._jobs.get(old.task_id) is old:
                del self._jobs[old.task_id]

    async def _notify(self, job: Job) -> None:
        assert self._http is not None and job.callback_url is not None, "started, with a callback"
        body: dict[str, Any] = {
            "task_id": job.task_id,
            "instance_id": self.instance_id,
            "execution_time": job.execution_ms,
            "result": job.result,
            "error": job.error,
        }
        metrics = getattr(self.work, "metrics", None)  # token counts, when the work knows them
        if metrics is not None and (m := metrics(job.result)) is not None:
            body["metrics"] = m
        why, attempts = "", 0
        deadline = time.monotonic() + self.notify_deadline_s
        while True:
            attempts += 1
            try:
                headers = {"Authorization": f"Bearer {job.callback_token}"} if job.callback_token else None
                resp = await self._http.request("POST", job.callback_url, body, headers=headers)
                if resp.status_code < 500:
                    if resp.status_code >= 400:
                        log.warning(
                            "callback for %s refused (HTTP %d): %s",
                            job.task_id,
                            resp.status_code,
                            resp.text[:200],
                        )
                    return
                why = f"HTTP {resp.status_code}"
            except (HttpFailure, ValueError) as e:
                why = f"{type(e).__name__}: {e}"
            pause = min(5.0, 0.2 * 2 ** min(attempts - 1, 10))
            if time.monotonic() + pause > deadline:
                break
            await asyncio.sleep(pause)
        log.warning(
            "could not notify %s of task %s after %d attempts in %g s (%s); it stays readable at /results",
            job.callback_url,
            job.task_id,
            attempts,
            self.notify_deadline_s,
            why,
        )
