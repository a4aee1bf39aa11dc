"""What a drive measured: the tables from the scheduler's record of each task, and what
became of every task of the workload (:class:`DriveResult`).

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

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scheduler import COMPLETED, FAILED

from ..frames import Run, RunRecord, build_results
from ..results import Results
from ..scenario import Scenario
from ..workload import Workload

log = logging.getLogger(__name__)

# what became of a task of the workload: the core's COMPLETED and FAILED (the scheduler said so),
# or one of these
REFUSED, UNFINISHED, NOT_SUBMITTED, ERROR = "refused", "unfinished", "not_submitted", "error"
OUTCOME_COLUMNS = ("task_id", "model", "size_ms", "outcome", "scheduler_task_id", "instance", "detail")


@dataclass
class DrivenTask:
    """One task of the workload as the driver submits and follows it."""

    index: int
    model: str
    size_ms: float
    tid: str
    metadata: dict = field(default_factory=dict)  # token counts, as the simulator's core got them
    task_input: Any = None  # what is submitted (sim.fidelity.inputs); None: {"size_ms": size_ms}
    outcome: str = NOT_SUBMITTED
    due: float = 0.0  # loop time the submission was scheduled for
    sent: float = math.nan  # loop time it went out
    next_check: float = math.inf
    uncertain: bool = False  # the submission's answer was lost: the scheduler may or may not have it
    detail: str = ""
    record: dict | None = None  # the scheduler's /task/details entry


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


def drive_result(
    scn: Scenario,
    workload: Workload,
    jobs: list[DrivenTask],
    label: str,
    replication: int,
    live_mode: str,
    warnings: list[str],
    t_wall: float,
    max_seconds: float,
    url: str,
) -> DriveResult:
    n = len(jobs)
    run, origin_ms, inst_name = _task_run(scn, workload, jobs)
    assert run.completed is not None
    measured = run.completed & (np.arange(n) >= scn.warmup_tasks)
    if measured.any():
        _warn_unknown_instances(scn, list(run.instance_ids), warnings)
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
        "measured_tasks": int(measured.sum()),
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
    records = [RunRecord(label, replication, workload, run)]
    return build_results(
        scn, records, [label], result_type=DriveResult, wall_s=meta["wall_s"], outcomes=outcomes, meta=meta
    )


def _task_run(
    scn: Scenario, workload: Workload, jobs: list[DrivenTask]
) -> tuple[Run, float, list[str | None]]:
    """The tasks' times from the scheduler's records as a :class:`sim.frames.Run`, the origin
    (ms, the scheduler's clock) they are measured from, and the name of each task's instance.
    Only completed tasks with an execution time count as completed."""
    n = len(jobs)
    submit_ms, end_ms, service, predicted, predicted_err = (np.full(n, np.nan) for _ in range(5))
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
    done = np.array(
        [j.outcome == COMPLETED and math.isfinite(service[j.index]) and inst_name[j.index] for j in jobs],
        dtype=bool,
    )
    names_seen = sorted({name for i in np.flatnonzero(done) if (name := inst_name[i]) is not None})
    scenario_ids = [i.instance_id for i in scn.instances]
    categories = scenario_ids if set(names_seen) <= set(scenario_ids) else names_seen
    code = {name: k for k, name in enumerate(categories)}
    finish = end_ms - origin_ms
    run = Run(
        arrival_ms=submit_ms - origin_ms,
        start_ms=finish - service,
        finish_ms=finish,
        service_ms=service,
        instance=np.array([code.get(name, -1) if name else -1 for name in inst_name], dtype=np.int32),
        predicted_ms=predicted,
        predicted_error_ms=predicted_err,
        instance_ids=tuple(categories),
        completed=done,
    )
    return run, origin_ms, inst_name


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else math.nan


def _warn_unknown_instances(scn: Scenario, names: list[str], warnings: list[str]) -> None:
    """Warn when the instances report ids the scenario does not name (their replicas, speed and
    utilisation are then unknown in the tables)."""
    specs = [i.instance_id for i in scn.instances]
    unknown = [n for n in names if n not in specs]
    if unknown:
        msg = (
            f"instance(s) {', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''} are not among the "
            f"scenario's instance ids ({', '.join(specs[:3])}{' ...' if len(specs) > 3 else ''}): "
            f"their replicas and speed are unknown, so is their utilization"
        )
        log.warning(msg)
        warnings.append(msg)
