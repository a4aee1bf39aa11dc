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

How the drive submits and follows tasks: :mod:`sim.fidelity.driver`; how the
tables are built from the scheduler's records: :mod:`sim.fidelity.drive_results`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from scheduler import SpecError, check_integer

from ..scenario import Scenario, load_scenario, pick_strategy
from ..workload import Workload, draw_workload, replication_seeds
from .drive_results import OUTCOME_COLUMNS, DriveResult
from .driver import DriveError, drive_async, live_predict_mode, loopback_url

__all__ = [
    "MAX_TASKS",
    "OUTCOME_COLUMNS",
    "DriveError",
    "DriveResult",
    "drive",
    "drive_async",
    "live_predict_mode",
    "loopback_url",
    "run_sync",
    "scenario_workload",
]

log = logging.getLogger(__name__)

MAX_TASKS = 20_000  # default bound on tasks per drive

T = TypeVar("T")


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
    task_input: str = "size_ms",
    openai_extra: dict | None = None,
) -> DriveResult:
    """Replay replication ``replication`` of a scenario's workload against the scheduler at
    ``scheduler_url`` (loopback) and return the tables built from its own timestamps.

    ``strategy`` (a name, ``(name, params)``, ``{name, params}`` or a scenario label) is set
    on the scheduler first (``POST /scheduler/set``); by default the scheduler keeps its
    strategy and the table shows its name.  ``tasks`` overrides the scenario's count;
    ``max_tasks`` caps it; ``max_seconds`` bounds the whole drive (default: the workload's
    span plus 60 s, at most an hour).  With ``out_dir`` the tables are written there.
    ``token`` is the scheduler's bearer token: its admin token (needed to set a strategy), or its
    api token when the strategy is kept.  ``task_input`` is what each task carries:
    ``size_ms`` (for reference instances) or ``openai`` (a prompt of the task's input tokens and
    ``max_tokens`` = its output tokens, for OpenAI-backend instances; ``openai_extra`` adds fields
    to that body); see :mod:`sim.fidelity.inputs`.
    """
    scn = load_scenario(scenario_or_path)
    if tasks is not None:
        scn = scn.with_changes({"tasks": check_integer("tasks", tasks, low=1), "duration_s": None})
    spec = None if strategy is None else pick_strategy(scn, strategy)
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
            task_input=task_input,
            openai_extra=openai_extra,
        )
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def scenario_workload(scn: Scenario, replication: int = 0, max_tasks: int = MAX_TASKS) -> Workload:
    """Replication ``replication`` of the scenario's workload (the simulator's draw),
    cut to ``max_tasks`` tasks; refuses predictor modes live mode cannot run."""
    live_predict_mode(scn)
    replication = check_integer("replication", replication, low=0)
    max_tasks = check_integer("max_tasks", max_tasks, low=1)
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
