"""Live driver: a scenario's workload replayed in real time against a running scheduler.

    res = sim.drive("examples/scenarios/twin.yaml", "http://127.0.0.1:8102", out_dir="results/live")
    res.tasks; res.summary; res.outcomes

Command line: ``python -m sim drive SCENARIO.yaml --scheduler URL --out DIR``.

The workload is the simulator's own: :func:`sim.draw_workload` for replication
``r`` (common random numbers), so the driver submits the same arrivals, models
and task sizes that ``sim.run`` simulates.  Each task's size travels in its
input (``task_input = {"size_ms": ...}``); the reference instance's sleep model
sleeps ``size_ms / speed`` for it.  The scheduler's core never sees the size
(it is not passed to ``submit``), as in the simulator's non-clairvoyant modes.

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

The tables (docs/scenarios.md columns, as :func:`sim.run` writes them) are built
from the scheduler's record of each task:

* ``arrival_ms``: the scheduler's ``submit_time``; ``finish_ms``: its
  ``completion_time`` (when it recorded the end);
* ``service_ms``: the execution time the instance measured;
  ``start_ms = finish_ms - service_ms``; ``wait_ms = latency_ms - service_ms``
  (so wait includes the HTTP hops: delivery and the completion callback);
* ``predicted_ms``, ``predicted_error_ms``: the core's prediction at dispatch;
  ``instance``: the name the instance reports (its ``instance_id``).

Times are ms from the run's origin: the scheduler's ``submit_time`` of the
first submitted task minus that task's scheduled arrival time, so task ``i``
arrives near ``arrival_ms[i]`` of the simulated workload.  ``task_id`` is the
arrival index (as in the simulator); the first ``warmup_tasks`` are left out
of the tables, as in the simulator.  Only completed tasks are in the tables;
``outcomes`` has one row per task of the workload with what became of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from scheduler import SpecError

if TYPE_CHECKING:  # httpx is imported when a drive starts: ``import sim`` stays free of HTTP libraries
    import httpx

from .engine import Workload, draw_workload, replication_seeds
from .results import INSTANCE_COLUMNS, TASK_COLUMNS, Results, extra_task_columns, per_replication, summarize
from .scenario import Scenario, StrategySpec, load_scenario, parse_strategy

log = logging.getLogger(__name__)

#: scenario predictor modes live mode can run, and their live names
LIVE_MODES = {"online": "default", "lookup_table": "lookup_table", "regression": "regression"}
MAX_TASKS = 20_000  # default bound on tasks per drive
DRAIN_S = 60.0  # default time after the last arrival to let tasks end
MAX_SECONDS_DEFAULT_CAP = 3600.0
DETAILS_BATCH = 500  # task ids per POST /task/details

# what became of a task of the workload
COMPLETED, FAILED, REFUSED, UNFINISHED, NOT_SUBMITTED, ERROR = (
    "completed",
    "failed",
    "refused",
    "unfinished",
    "not_submitted",
    "error",
)
OUTCOME_COLUMNS = ("task_id", "model", "size_ms", "outcome", "scheduler_task_id", "instance", "detail")

T = TypeVar("T")


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


@dataclass
class DriveResult(Results):
    """What :func:`sim.drive` returns: a :class:`sim.Results` (``tasks``, ``summary``,
    ``instances``, ``replications``; the plot functions take them as they take the
    simulator's) plus what became of every task (``outcomes``) and the run's facts
    (``meta``: origin, counts, submission lateness, warnings)."""

    outcomes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(OUTCOME_COLUMNS)))
    meta: dict = field(default_factory=dict)

    @property
    def paths(self) -> dict:
        return dict(self.files)

    @property
    def counts(self) -> dict[str, int]:
        """Tasks per outcome."""
        return {k: int(v) for k, v in self.outcomes["outcome"].value_counts().items()}

    @property
    def all_ended(self) -> bool:
        """Every task of the workload was submitted and ended (completed or failed)."""
        return bool(self.outcomes["outcome"].isin([COMPLETED, FAILED, REFUSED]).all())

    def save(self, out_dir: str | Path, format: str = "auto") -> dict[str, Path]:
        """The simulator's files (tasks, summary, instances, replications; ``format`` as in
        :meth:`sim.Results.save`), plus outcomes.csv and drive.json."""
        paths = super().save(out_dir, format)
        out = Path(out_dir)
        p = out / "outcomes.csv"
        self.outcomes.to_csv(p, index=False, float_format="%.6f")
        paths["outcomes"] = p
        p = out / "drive.json"
        p.write_text(json.dumps(self.meta, indent=2, default=str) + "\n")
        paths["drive"] = p
        self.files.update(paths)
        return paths


# -- the public entry point -------------------------------------------------------------
def drive(
    scenario_or_path,
    scheduler_url: str,
    out_dir: str | Path | None = None,
    *,
    strategy=None,
    replication: int = 0,
    tasks: int | None = None,
    max_tasks: int = MAX_TASKS,
    max_seconds: float | None = None,
    concurrency: int = 128,
    poll_interval_s: float = 0.5,
    request_timeout_s: float = 30.0,
    progress: bool = True,
    token: str | None = None,
) -> DriveResult:
    """Replay replication ``replication`` of a scenario's workload against the scheduler at
    ``scheduler_url`` (loopback) and return the tables built from its own timestamps.

    ``strategy`` (a name, ``(name, params)``, ``{name, params}`` or a scenario label) is set
    on the scheduler first (``POST /scheduler/set``); by default the scheduler keeps its
    strategy and the table shows its name.  ``tasks`` overrides the scenario's count;
    ``max_tasks`` caps it; ``max_seconds`` bounds the whole drive (default: the workload's
    span plus 60 s, at most an hour).  With ``out_dir`` the tables are written there.
    ``token`` is the scheduler's bearer token: its admin token (needed to set a strategy), or its
    api token when the strategy is kept.
    """
    scn = load_scenario(scenario_or_path)
    if tasks is not None:
        scn = scn.with_changes({"tasks": _positive_int("tasks", tasks), "duration_s": None})
    spec = _strategy(scn, strategy)
    workload = scenario_workload(scn, replication, max_tasks)
    result = run_sync(
        drive_async(
            scn,
            workload,
            scheduler_url,
            strategy=spec,
            replication=replication,
            max_seconds=max_seconds,
            concurrency=concurrency,
            poll_interval_s=poll_interval_s,
            request_timeout_s=request_timeout_s,
            progress=progress,
            token=token,
        )
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def scenario_workload(scn: Scenario, replication: int = 0, max_tasks: int = MAX_TASKS) -> Workload:
    """Replication ``replication`` of the scenario's workload (the simulator's draw),
    cut to ``max_tasks`` tasks; refuses predictor modes live mode cannot run."""
    live_predict_mode(scn)
    if isinstance(replication, bool) or not isinstance(replication, int) or replication < 0:
        raise SpecError("replication", replication, "an integer >= 0")
    max_tasks = _positive_int("max_tasks", max_tasks)
    seeds = replication_seeds(scn.seed, replication + 1)[replication]
    w = draw_workload(scn, seeds)
    if len(w) > max_tasks:
        log.warning("the workload has %d tasks; driving the first %d (max_tasks)", len(w), max_tasks)
        w = w.head(max_tasks)
    if len(w) <= scn.warmup_tasks:
        raise SpecError(
            "tasks", len(w), f"more tasks than warmup_tasks ({scn.warmup_tasks}) to measure anything"
        )
    return w


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end, also from code already inside an event loop (a notebook):
    then it runs on its own loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="sim-drive")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http URL on this machine's loopback interface."""
    from urllib.parse import urlsplit

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


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecError(name, value, "an integer >= 1")
    return int(value)


def _strategy(scn: Scenario, strategy) -> StrategySpec | None:
    if strategy is None:
        return None
    if isinstance(strategy, str):
        for s in scn.strategies:  # a scenario label or name keeps the scenario's parameters
            if strategy in (s.label, s.name):
                return s
    return parse_strategy(strategy, "strategy")


# -- the drive itself ---------------------------------------------------------------------
@dataclass
class _Task:
    index: int
    model: str
    size_ms: float
    tid: str
    metadata: dict = field(default_factory=dict)  # token counts, as the simulator's core got them
    outcome: str = NOT_SUBMITTED
    due: float = 0.0  # loop time the submission was scheduled for
    sent: float = math.nan  # loop time it went out
    next_check: float = math.inf
    uncertain: bool = False  # the submission's answer was lost: the scheduler may or may not have it
    detail: str = ""
    record: dict | None = None  # the scheduler's /task/details entry


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
) -> DriveResult:
    """The driver as a coroutine (see the module docstring); :func:`drive` runs it.

    ``strategy`` is set on the scheduler first; ``label`` names the run in the tables
    (default: the strategy's label, else the scheduler's strategy name)."""
    import httpx

    from scheduler.live import pooled_transport  # the live shell's lean HTTP transport

    scheduler_url = loopback_url(scheduler_url)
    concurrency = _positive_int("concurrency", concurrency)
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
    jobs = [
        _Task(i, names[i], float(workload.size_ms[i]), f"drive-{run_tag}-{i:06d}", metas[i])
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
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        deadline = start + max_seconds
        limit = asyncio.Semaphore(concurrency)
        followed: dict[int, _Task] = {}
        state = {"submitting": True, "ended": 0}
        bar = _Progress(label, len(jobs), progress)

        async def submit(job: _Task) -> None:
            async with limit:
                job.sent = loop.time()
                body = {
                    "model_name": job.model,
                    "task_input": {"size_ms": job.size_ms},
                    "metadata": job.metadata,
                    "task_id": job.tid,
                }
                try:
                    r = await http.post("/queue/submit", json=body)
                except asyncio.CancelledError:
                    job.outcome, job.detail = UNFINISHED, "its submission had no answer by the deadline"
                    raise
                except httpx.HTTPError as e:  # the answer is lost; the scheduler may have the task
                    job.outcome, job.uncertain = UNFINISHED, True
                    job.detail = f"submit: {type(e).__name__}: {e}"
                    job.next_check = loop.time() + poll_interval_s
                    followed[job.index] = job
                    return
            if r.status_code == 200:
                job.outcome = UNFINISHED
                job.next_check = loop.time() + poll_interval_s
                followed[job.index] = job
            elif r.status_code == 503:
                job.outcome, job.detail = REFUSED, _detail(r)
                state["ended"] += 1
            else:
                job.outcome, job.detail = ERROR, f"submit answered HTTP {r.status_code}: {_detail(r)}"
                state["ended"] += 1

        async def submitter() -> None:
            pending = set()
            try:
                for job, at in zip(jobs, arrival_s.tolist()):
                    job.due = start + at
                    if job.due > deadline:
                        break  # the rest stays not_submitted
                    delay = job.due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    t = asyncio.create_task(submit(job))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    bar(submitted=job.index + 1, ended=state["ended"])
                if pending:
                    await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0.0) + request_timeout_s)
                for t in list(pending):  # only if the scheduler stopped answering: its tasks stay unfinished
                    t.cancel()
            finally:
                state["submitting"] = False

        async def follower() -> None:
            while state["submitting"] or followed:
                now = loop.time()
                if now >= deadline:
                    return
                due = [j for j in list(followed.values()) if j.next_check <= now]
                for k in range(0, len(due), DETAILS_BATCH):
                    await _check(http, due[k : k + DETAILS_BATCH], followed, state, loop, poll_interval_s)
                bar(ended=state["ended"])
                nxt = min((j.next_check for j in followed.values()), default=now + poll_interval_s)
                await asyncio.sleep(
                    min(max(nxt - loop.time(), 0.01), poll_interval_s, max(deadline - now, 0.01))
                )

        await asyncio.gather(submitter(), follower())
        bar.close(state["ended"])
        for job in followed.values():
            if job.outcome == UNFINISHED:
                status = job.record["task_status"] if job.record else "unknown"
                job.detail = (
                    job.detail + "; " if job.detail else ""
                ) + f"not ended after {max_seconds:g} s (max_seconds); last status: {status}"
    return _results(
        scn, workload, jobs, label, replication, live_mode, warnings, t_wall, max_seconds, scheduler_url
    )


async def _prepare(
    http: httpx.AsyncClient,
    scn: Scenario,
    strategy: StrategySpec | None,
    models: set[str],
    warnings: list[str],
) -> tuple[str, str]:
    """Check the scheduler, set the strategy if asked; returns (strategy label, live predict mode)."""
    import httpx

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


async def _check(
    http, batch: Sequence[_Task], followed: dict, state: dict, loop, poll_interval_s: float
) -> None:
    """Ask the scheduler about a batch of followed tasks; record those that ended."""
    import httpx

    try:
        r = await http.post("/task/details", json={"task_ids": [j.tid for j in batch]})
        r.raise_for_status()
        body = r.json()
    except (httpx.HTTPError, ValueError) as e:
        log.warning("asking about %d tasks failed (%s); asking again", len(batch), e)
        for j in batch:
            j.next_check = loop.time() + poll_interval_s
        return
    by_id = {j.tid: j for j in batch}
    for rec in body["tasks"]:
        j = by_id.get(rec["task_id"])
        if j is None:
            continue
        j.record = rec
        if rec["task_status"] in (COMPLETED, FAILED):
            j.outcome = rec["task_status"]
            if j.outcome == FAILED:
                j.detail = str((rec.get("result") or {}).get("error", ""))
            followed.pop(j.index, None)
            state["ended"] += 1
        else:
            j.next_check = loop.time() + poll_interval_s
    for tid in body["unknown"]:
        j = by_id[tid]
        followed.pop(j.index, None)
        state["ended"] += 1
        j.outcome = ERROR
        j.detail = (
            f"{j.detail}; the scheduler never got it"
            if j.uncertain
            else "accepted, then unknown to the scheduler (its history dropped it? see max_history)"
        )


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


# -- tables ---------------------------------------------------------------------------------
def _results(
    scn: Scenario,
    workload: Workload,
    jobs: list[_Task],
    label: str,
    replication: int,
    live_mode: str,
    warnings: list[str],
    t_wall: float,
    max_seconds: float,
    url: str,
) -> DriveResult:
    n = len(jobs)
    submit_ms = np.full(n, np.nan)
    end_ms = np.full(n, np.nan)
    service = np.full(n, np.nan)
    predicted = np.full(n, np.nan)
    predicted_err = np.full(n, np.nan)
    inst_name: list[str | None] = [None] * n
    for j in jobs:
        rec = j.record
        if rec is None:
            continue
        submit_ms[j.index] = rec["submit_time"] * 1000.0
        inst_name[j.index] = rec.get("instance_name") or rec.get("scheduled_ti") or None
        if j.outcome == COMPLETED:
            end_ms[j.index] = rec["completion_time"] * 1000.0
            service[j.index] = _num(rec.get("execution_time_ms"))
            predicted[j.index] = _num(rec.get("predicted_ms"))
            predicted_err[j.index] = _num(rec.get("predicted_error_ms"))
    for j in jobs:
        if j.outcome == COMPLETED and not math.isfinite(service[j.index]):
            j.detail = "completed without an execution time: left out of the tables"
    known = np.flatnonzero(np.isfinite(submit_ms))
    origin_ms = float(submit_ms[known[0]] - workload.arrival_ms[known[0]]) if known.size else math.nan
    done = np.array([j.outcome == COMPLETED and math.isfinite(service[j.index]) for j in jobs], dtype=bool)
    measured = done & (np.arange(n) >= scn.warmup_tasks)
    idx = np.flatnonzero(measured)

    arrival = submit_ms - origin_ms
    finish = end_ms - origin_ms
    start = finish - service
    names_seen = sorted({inst_name[i] for i in np.flatnonzero(done)})
    scenario_ids = [i.instance_id for i in scn.instances]
    categories = scenario_ids if set(names_seen) <= set(scenario_ids) else names_seen
    frame = pd.DataFrame(
        {
            "scenario": pd.Categorical([scn.name] * idx.size, categories=[scn.name]),
            "strategy": pd.Categorical([label] * idx.size, categories=[label]),
            "replication": np.full(idx.size, replication, dtype=np.int64),
            "task_id": idx.astype(np.int64),
            "model": pd.Categorical([jobs[i].model for i in idx], categories=scn.model_names),
            "instance": pd.Categorical([inst_name[i] for i in idx], categories=categories),
            "arrival_ms": arrival[idx],
            "start_ms": start[idx],
            "finish_ms": finish[idx],
            "wait_ms": start[idx] - arrival[idx],
            "service_ms": service[idx],
            "latency_ms": finish[idx] - arrival[idx],
            "predicted_ms": predicted[idx],
            "predicted_error_ms": predicted_err[idx],
        },
        columns=list(TASK_COLUMNS),
    )
    for col, values in extra_task_columns(workload, idx).items():  # tokens and class, as sim.run has them
        frame[col] = values
    instances = _instances_frame(
        scn, label, replication, categories, inst_name, arrival, start, finish, done, measured, warnings
    )
    reps = per_replication(frame, instances, scn.slo_ms, scn.slo)
    summary = summarize(reps, [label])
    outcomes = pd.DataFrame(
        {
            "task_id": np.arange(n, dtype=np.int64),
            "model": [j.model for j in jobs],
            "size_ms": [j.size_ms for j in jobs],
            "outcome": [j.outcome for j in jobs],
            "scheduler_task_id": [j.tid for j in jobs],
            "instance": inst_name,
            "detail": [j.detail for j in jobs],
        },
        columns=list(OUTCOME_COLUMNS),
    )
    sent = np.array([j.sent - j.due for j in jobs if math.isfinite(j.sent)]) * 1000.0
    counts = {k: int(v) for k, v in outcomes["outcome"].value_counts().items()}
    meta = {
        "scheduler": url,
        "scenario": scn.name,
        "strategy": label,
        "replication": replication,
        "predict_mode": live_mode,
        "tasks": n,
        "warmup_tasks": scn.warmup_tasks,
        "measured_tasks": int(idx.size),
        "outcomes": counts,
        "origin_epoch_s": origin_ms / 1000.0,
        "origin": "scheduler submit_time of the first submitted task minus its scheduled arrival_ms",
        "started_epoch_s": t_wall,
        "wall_s": time.time() - t_wall,
        "max_seconds": max_seconds,
        "submit_lateness_ms": {"p50": _pct(sent, 50), "p99": _pct(sent, 99), "max": _pct(sent, 100)},
        "warnings": warnings,
    }
    bad = {k: v for k, v in counts.items() if k != COMPLETED}
    if bad:
        log.warning("drive %s: not every task completed: %s (see outcomes)", label, bad)
    return DriveResult(scn, frame, summary, instances, reps, meta["wall_s"], n, outcomes=outcomes, meta=meta)


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else math.nan


def _instances_frame(
    scn: Scenario,
    label: str,
    replication: int,
    names: list[str],
    inst_name,
    arrival,
    start,
    finish,
    done,
    measured,
    warnings: list[str],
) -> pd.DataFrame:
    """Per instance (INSTANCE_COLUMNS), as the simulator computes it: busy time of every completed
    task (warm-up included) inside the window of the measured tasks (first arrival to last
    finish), over replicas x window.  Replicas and speed come from the scenario when the
    instances report its instance ids; otherwise they are unknown (NaN) and so is utilization."""
    if not measured.any():
        return pd.DataFrame([], columns=list(INSTANCE_COLUMNS))
    specs = {i.instance_id: i for i in scn.instances}
    t0, t1 = float(np.min(arrival[measured])), float(np.max(finish[measured]))
    span = t1 - t0
    unknown = [n for n in names if n not in specs]
    if unknown:
        msg = (
            f"instance(s) {', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''} are not among the "
            f"scenario's instance ids ({', '.join(list(specs)[:3])}{' ...' if len(specs) > 3 else ''}): "
            f"their replicas and speed are unknown, so is their utilization"
        )
        log.warning(msg)
        warnings.append(msg)
    names_arr = np.array(inst_name, dtype=object)
    rows = []
    for name in names:
        here = names_arr == name
        on = done & here
        busy = float((np.clip(finish[on], t0, t1) - np.clip(start[on], t0, t1)).sum())
        spec = specs.get(name)
        replicas, speed, model = (spec.replicas, spec.speed, spec.model) if spec else (math.nan, math.nan, "")
        util = busy / (replicas * span) if spec is not None and span > 0 else math.nan
        rows.append(
            (label, replication, name, model, replicas, speed, int((measured & here).sum()), busy, span, util)
        )
    return pd.DataFrame(rows, columns=list(INSTANCE_COLUMNS))
