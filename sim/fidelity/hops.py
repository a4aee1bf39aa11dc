"""The dispatch path of a live run, task by task: what ``sim calibrate`` fits its delays from.

The scheduler's records give when a task was submitted and when the scheduler
learned of its end; the instance's ``GET /results/{task_id}`` gives when it had
the task (``enqueue_time``), how long it waited there (``wait_time``), when it
ended (``completion_time``) and its execution time.  Both clocks are this
machine's wall clock, so their differences are the two hops:

* ``dispatch_ms = enqueue_ms - submit_ms``: the decision and the ``/queue/enqueue`` hop;
* ``notify_ms = notified_ms - end_ms``: the completion callback.

Times are ms from the drive's origin, as in the task tables
(:mod:`sim.fidelity.drive_results`).  Columns: :data:`HOPS_COLUMNS`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping

import httpx
import numpy as np
import pandas as pd

from .drive import DriveResult, run_sync

log = logging.getLogger(__name__)

HOPS_COLUMNS = (
    "strategy",
    "task_id",
    "model",
    "instance",
    "submit_ms",
    "enqueue_ms",
    "start_ms",
    "end_ms",
    "notified_ms",
    "execution_ms",
    "dispatch_ms",
    "notify_ms",
)
CONCURRENCY = 16


def instance_hops(drive: DriveResult, instance_urls: Mapping[str, str], label: str) -> pd.DataFrame:
    """The hops of every measured task of a drive, asking each task's instance (``instance_urls``:
    instance name -> base URL) for its record.  A task its instance no longer knows is left out
    (and counted in the log)."""
    tasks = drive.tasks
    outcomes = drive.outcomes.set_index("task_id")
    tids = outcomes.loc[tasks["task_id"].to_numpy(), "scheduler_task_id"].tolist()
    names = tasks["instance"].astype(str).tolist()
    records = run_sync(_fetch_all([(instance_urls.get(n), t) for n, t in zip(names, tids)]))
    origin_ms = float(drive.meta["origin_epoch_s"]) * 1000.0

    def column(key: str, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
        return np.array(
            [math.nan if r is None or r.get(key) is None else r[key] * scale - shift for r in records]
        )

    enqueue = column("enqueue_time", 1000.0, origin_ms)
    end = column("completion_time", 1000.0, origin_ms)
    frame = pd.DataFrame(
        {
            "strategy": label,
            "task_id": tasks["task_id"].to_numpy(),
            "model": tasks["model"].astype(str).to_numpy(),
            "instance": names,
            "submit_ms": tasks["arrival_ms"].to_numpy(),
            "enqueue_ms": enqueue,
            "start_ms": enqueue + column("wait_time"),
            "end_ms": end,
            "notified_ms": tasks["finish_ms"].to_numpy(),
            "execution_ms": column("execution_time"),
        }
    )
    frame["dispatch_ms"] = frame["enqueue_ms"] - frame["submit_ms"]
    frame["notify_ms"] = frame["notified_ms"] - frame["end_ms"]
    missing = int(frame["enqueue_ms"].isna().sum())
    if missing:
        log.warning("%s: %d tasks unknown to their instance, left out of the hops", label, missing)
    return frame.dropna(subset=["enqueue_ms", "end_ms"]).reset_index(drop=True)[list(HOPS_COLUMNS)]


async def _fetch_all(items: list[tuple[str | None, str]]) -> list[dict | None]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=10.0) as http:

        async def one(url: str | None, tid: str) -> dict | None:
            if url is None:
                return None
            async with limit:
                try:
                    r = await http.get(f"{url}/results/{tid}")
                except httpx.HTTPError:
                    return None
            return r.json() if r.status_code == 200 else None

        return list(await asyncio.gather(*(one(u, t) for u, t in items)))
