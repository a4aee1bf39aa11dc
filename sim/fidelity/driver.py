"""The drive itself: submit a workload open loop and follow every task to its end.

Open loop: task ``i`` is submitted at ``start + arrival_ms[i]`` whatever
happened to earlier tasks (at most ``concurrency`` submissions in flight;
how late submissions went out is reported).  Bounded: at most ``max_tasks``
tasks, and nothing is submitted or followed after ``max_seconds`` of wall
clock.

Following: every submitted task is followed to its end through the
scheduler's ``POST /task/details`` (many tasks per request): a task is asked
about ``poll_interval_s`` after its submission and again every
``poll_interval_s`` until it has ended.  The polling rate changes only when
the driver learns of an end, not the times measured, which all come from the
scheduler's and the instances' own clocks; one batched request per interval
keeps the driver's load on the scheduler small.  Tasks not ended by the
deadline are reported (``outcomes``), never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from scheduler import COMPLETED, FAILED, SpecError, check_integer
from scheduler.live import pooled_transport

from ..scenario import Scenario, StrategySpec
from ..workload import Workload
from .drive_results import (
    ERROR,
    REFUSED,
    UNFINISHED,
    DrivenTask,
    DriveResult,
    drive_result,
)
from .inputs import check_task_input
from .inputs import task_input as make_input

log = logging.getLogger(__name__)

#: scenario predictor modes live mode can run, and their names in the live API
LIVE_MODES = {"online": "default", "lookup_table": "lookup_table", "regression": "regression"}
DRAIN_S = 60.0  # default time after the last arrival to let tasks end
MAX_SECONDS_DEFAULT_CAP = 3600.0
DETAILS_BATCH = 500  # task ids per POST /task/details
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def live_predict_mode(scenario: Scenario) -> str:
    """The live name of the scenario's predictor mode; oracle and clairvoyant are refused."""
    mode = scenario.predictor["mode"]
    if mode not in LIVE_MODES:
        raise SpecError(
            "predictor.mode",
            mode,
            "online, lookup_table or regression for a live run (oracle knows the true distributions and "
            "clairvoyant each task's size, which only the simulator can); simulate it with "
            "python -m sim run",
        )
    return LIVE_MODES[mode]


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http URL on this machine's loopback interface."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except (ValueError, TypeError, AttributeError):
        host = None
    if host is None or parts.scheme != "http" or host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise SpecError(
            "scheduler",
            url,
            "an http URL on the loopback interface, such as "
            "http://127.0.0.1:8102 (the driver only loads this machine)",
        )
    return url.rstrip("/")


class DriveError(RuntimeError):
    """The scheduler cannot be driven (unreachable, or it does not serve the workload's models)."""


async def drive_async(
    scn: Scenario,
    workload: Workload,
    scheduler_url: str,
    *,
    strategy: StrategySpec | None = None,
    label: str | None = None,
    replication: int = 0,
    max_seconds: float | None = None,
    concurrency: int = 128,
    poll_interval_s: float = 0.5,
    request_timeout_s: float = 30.0,
    progress: bool = True,
    token: str | None = None,
    task_input: str = "size_ms",
    openai_extra: Mapping[str, Any] | None = None,
) -> DriveResult:
    """The driver as a coroutine (see the module docstring); :func:`sim.drive` runs it.

    ``strategy`` is set on the scheduler first; ``label`` names the run in the tables
    (default: the strategy's label, else the scheduler's strategy name).  ``task_input`` is
    what each task carries (:mod:`sim.fidelity.inputs`: ``size_ms`` or ``openai``)."""
    scheduler_url = loopback_url(scheduler_url)
    concurrency = check_integer("concurrency", concurrency, low=1)
    check_task_input(task_input, openai_extra)
    if not (poll_interval_s > 0 and math.isfinite(poll_interval_s)):
        raise SpecError("poll_interval_s", poll_interval_s, "a number of seconds > 0")
    arrival_s = workload.arrival_ms / 1000.0
    span_s = float(arrival_s[-1]) if len(workload) else 0.0
    if max_seconds is None:
        max_seconds = min(span_s + DRAIN_S, MAX_SECONDS_DEFAULT_CAP)
    elif not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise SpecError("max_seconds", max_seconds, "a number of seconds > 0")
    run_tag = uuid.uuid4().hex[:8]
    names = [workload.models[k] for k in workload.model.tolist()]
    metas = workload.metadata()
    sizes = workload.size_ms.tolist()
    jobs = [
        DrivenTask(
            i,
            names[i],
            sizes[i],
            f"drive-{run_tag}-{i:06d}",
            metas[i],
            make_input(task_input, sizes[i], metas[i], openai_extra),
        )
        for i in range(len(workload))
    ]
    warnings: list[str] = []
    t_wall = time.time()

    transport = pooled_transport(concurrency + 8)
    timeout = httpx.Timeout(request_timeout_s, connect=min(request_timeout_s, 5.0))
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx.AsyncClient(
        base_url=scheduler_url, transport=transport, timeout=timeout, headers=headers
    ) as http:
        shown, live_mode = await _prepare(http, scn, strategy, set(names), warnings)
        label = label or shown
        driver = _Driver(http, jobs, concurrency, poll_interval_s, request_timeout_s, max_seconds)
        await driver.run(arrival_s.tolist(), _Progress(label, len(jobs), progress))
    return drive_result(
        scn, workload, jobs, label, replication, live_mode, warnings, t_wall, max_seconds, scheduler_url
    )


class _Driver:
    """One drive's submissions and follow-up: the tasks, those being followed, the deadline."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        jobs: list[DrivenTask],
        concurrency: int,
        poll_interval_s: float,
        request_timeout_s: float,
        max_seconds: float,
    ):
        self.http, self.jobs = http, jobs
        self.poll_interval_s, self.request_timeout_s, self.max_seconds = (
            poll_interval_s,
            request_timeout_s,
            max_seconds,
        )
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time() + 0.05
        self.deadline = self.start + max_seconds
        self.limit = asyncio.Semaphore(concurrency)
        self.followed: dict[int, DrivenTask] = {}
        self.submitting = True
        self.ended = 0

    async def run(self, arrival_s: list[float], bar: _Progress) -> None:
        """Submit every task at its time and follow each to its end, or until the deadline."""
        await asyncio.gather(self._submitter(arrival_s, bar), self._follower(bar))
        bar.close(self.ended)
        for job in self.followed.values():
            if job.outcome == UNFINISHED:
                status = job.record["task_status"] if job.record else "unknown"
                job.detail = (
                    job.detail + "; " if job.detail else ""
                ) + f"not ended after {self.max_seconds:g} s (max_seconds); last status: {status}"

    def _follow(self, job: DrivenTask) -> None:
        job.next_check = self.loop.time() + self.poll_interval_s
        self.followed[job.index] = job

    async def _submit(self, job: DrivenTask) -> None:
        async with self.limit:
            job.sent = self.loop.time()
            body = {
                "model_name": job.model,
                "task_input": job.task_input if job.task_input is not None else {"size_ms": job.size_ms},
                "metadata": job.metadata,
                "task_id": job.tid,
            }
            try:
                r = await self.http.post("/queue/submit", json=body)
            except asyncio.CancelledError:
                job.outcome, job.detail = UNFINISHED, "its submission had no answer by the deadline"
                raise
            except httpx.HTTPError as e:  # the answer is lost; the scheduler may have the task
                job.outcome, job.uncertain = UNFINISHED, True
                job.detail = f"submit: {type(e).__name__}: {e}"
                self._follow(job)
                return
        if r.status_code == 200:
            job.outcome = UNFINISHED
            self._follow(job)
        elif r.status_code == 503:
            job.outcome, job.detail = REFUSED, _detail(r)
            self.ended += 1
        else:
            job.outcome, job.detail = ERROR, f"submit answered HTTP {r.status_code}: {_detail(r)}"
            self.ended += 1

    async def _submitter(self, arrival_s: list[float], bar: _Progress) -> None:
        pending: set[asyncio.Task] = set()
        try:
            for job, at in zip(self.jobs, arrival_s):
                job.due = self.start + at
                if job.due > self.deadline:
                    break  # the rest stays not_submitted
                delay = job.due - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = asyncio.create_task(self._submit(job))
                pending.add(t)
                t.add_done_callback(pending.discard)
                bar(submitted=job.index + 1, ended=self.ended)
            if pending:
                left = max(self.deadline - self.loop.time(), 0.0)
                await asyncio.wait(pending, timeout=left + self.request_timeout_s)
            for t in list(pending):  # only if the scheduler stopped answering: its tasks stay unfinished
                t.cancel()
        finally:
            self.submitting = False

    async def _follower(self, bar: _Progress) -> None:
        while self.submitting or self.followed:
            now = self.loop.time()
            if now >= self.deadline:
                return
            due = [j for j in list(self.followed.values()) if j.next_check <= now]
            for k in range(0, len(due), DETAILS_BATCH):
                await self._check(due[k : k + DETAILS_BATCH])
            bar(ended=self.ended)
            nxt = min((j.next_check for j in self.followed.values()), default=now + self.poll_interval_s)
            await asyncio.sleep(
                min(max(nxt - self.loop.time(), 0.01), self.poll_interval_s, max(self.deadline - now, 0.01))
            )

    async def _check(self, batch: Sequence[DrivenTask]) -> None:
        """Ask the scheduler about a batch of followed tasks; record those that ended."""
        try:
            r = await self.http.post("/task/details", json={"task_ids": [j.tid for j in batch]})
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            log.warning("asking about %d tasks failed (%s); asking again", len(batch), e)
            for j in batch:
                j.next_check = self.loop.time() + self.poll_interval_s
            return
        by_id = {j.tid: j for j in batch}
        for rec in body["tasks"]:
            found = by_id.get(rec["task_id"])
            if found is None:
                continue
            found.record = rec
            if rec["task_status"] in (COMPLETED, FAILED):
                found.outcome = rec["task_status"]
                if found.outcome == FAILED:
                    found.detail = str((rec.get("result") or {}).get("error", ""))
                self.followed.pop(found.index, None)
                self.ended += 1
            else:
                found.next_check = self.loop.time() + self.poll_interval_s
        for tid in body["unknown"]:
            j = by_id[tid]
            self.followed.pop(j.index, None)
            self.ended += 1
            j.outcome = ERROR
            j.detail = (
                f"{j.detail}; the scheduler never got it"
                if j.uncertain
                else "accepted, then unknown to the scheduler (its history dropped it? see max_history)"
            )


async def _prepare(
    http: httpx.AsyncClient,
    scn: Scenario,
    strategy: StrategySpec | None,
    models: set[str],
    warnings: list[str],
) -> tuple[str, str]:
    """Check the scheduler, set the strategy if asked; returns (strategy label, live predict mode)."""
    try:
        health = await http.get("/health")
        health.raise_for_status()
    except httpx.HTTPError as e:
        raise DriveError(f"no scheduler answers at {http.base_url}: {type(e).__name__}: {e}") from None
    if strategy is not None:
        body = (
            await http.post("/scheduler/set", json={"name": strategy.name, "params": dict(strategy.params)})
        ).json()
        if body.get("status") != "success":
            raise DriveError(f"the scheduler refused strategy {strategy.label!r}: {body.get('message')}")
    stats = (await http.get("/scheduler/stats")).json()
    label = strategy.label if strategy is not None else stats.get("strategy", "unknown")
    mode = stats.get("predict_mode", "unknown")
    wanted = LIVE_MODES[scn.predictor["mode"]]
    if mode != wanted:
        msg = (
            f"the scenario's predictor mode is {scn.predictor['mode']} but the scheduler predicts in mode "
            f"{mode}; the tables show what the scheduler did"
        )
        log.warning(msg)
        warnings.append(msg)
    served = {q["model_name"] for q in (await http.get("/queue/info")).json().get("queues", [])}
    missing = sorted(models - served)
    if missing:
        raise DriveError(
            f"the scheduler at {http.base_url} has no instance for model(s) {', '.join(missing)} "
            f"of the workload; it serves: {', '.join(sorted(served)) or 'nothing'}"
        )
    return label, mode


def _detail(r) -> str:
    try:
        return str(r.json().get("detail", r.text[:200]))
    except ValueError:
        return r.text[:200]


class _Progress:
    """A line on stderr every few seconds while driving."""

    def __init__(self, label: str, total: int, enabled: bool, every_s: float = 5.0):
        self.label, self.total, self.enabled, self.every_s = label, total, enabled, every_s
        self.t0 = self.last = time.monotonic()
        self.submitted = 0

    def __call__(self, submitted: int | None = None, ended: int = 0) -> None:
        if submitted is not None:
            self.submitted = submitted
        now = time.monotonic()
        if self.enabled and now - self.last >= self.every_s:
            self.last = now
            print(
                f"drive {self.label}: {self.submitted:,}/{self.total:,} submitted, {ended:,} ended, "
                f"{now - self.t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def close(self, ended: int) -> None:
        if self.enabled:
            print(
                f"drive {self.label}: {self.submitted:,}/{self.total:,} submitted, {ended:,} ended in "
                f"{time.monotonic() - self.t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
