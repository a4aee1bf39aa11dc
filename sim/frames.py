"""Per-task records to frames and summaries: one place for the simulator and the live driver.

A run (one strategy, one replication) is recorded as per-task arrays in arrival
order (:class:`Run`): the simulator fills one for each run it plays, the live
driver builds one from the scheduler's record of each task, and the twin run
does both.  From a list of them (:class:`RunRecord`):

    tasks = tasks_frame(scenario, records, labels)         # TASK_COLUMNS, warm-up excluded
    inst = instances_frame(scenario, records)              # INSTANCE_COLUMNS
    res = build_results(scenario, records, labels)         # sim.Results: + replications, summary

A task is *measured* when it completed and is not among the first
``warmup_tasks`` arrivals.  Each run is observed over one window, from the
first measured arrival to the last measured finish; an instance's busy time is
the service of every completed task (warm-up included) clipped to that window,
and its utilisation that busy time over ``replicas * window``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from .results import Results, per_replication, summarize
from .scenario import Scenario

if TYPE_CHECKING:  # the engine imports this module; only the type is needed here
    from .workload import Workload

TASK_COLUMNS = (
    "scenario",
    "strategy",
    "replication",
    "task_id",
    "model",
    "instance",
    "arrival_ms",
    "start_ms",
    "finish_ms",
    "wait_ms",
    "service_ms",
    "latency_ms",
    "predicted_ms",
    "predicted_error_ms",
)
INSTANCE_COLUMNS = (
    "strategy",
    "replication",
    "instance",
    "model",
    "replicas",
    "speed",
    "tasks",
    "busy_ms",
    "span_ms",
    "utilization",
)
# appended to the task frame where known: token counts (task metadata) and the task's class
EXTRA_TASK_COLUMNS = ("input_tokens", "output_tokens", "images", "class")
# the Run arrays copied into the task frame as they are
_TIMES = ("arrival_ms", "start_ms", "finish_ms", "service_ms", "predicted_ms", "predicted_error_ms")

R = TypeVar("R", bound=Results)


@dataclass
class Run:
    """Per-task arrays of one (strategy, replication) run, indexed by arrival order (ms).

    ``instance`` indexes ``instance_ids`` (int32); ``completed`` marks the tasks
    that completed (``None``: all of them, as in the simulator); the arrays of
    the other tasks are not read."""

    arrival_ms: np.ndarray
    start_ms: np.ndarray
    finish_ms: np.ndarray
    service_ms: np.ndarray
    instance: np.ndarray
    predicted_ms: np.ndarray
    predicted_error_ms: np.ndarray
    instance_ids: tuple[str, ...]
    completed: np.ndarray | None = None


@dataclass
class RunRecord:
    """One finished run and what it was run with."""

    strategy: str  # label
    replication: int
    workload: Workload
    run: Run


def _measured(run: Run, warmup: int) -> slice | np.ndarray:
    """The measured tasks of a run: a slice when every task completed, else their indices."""
    if run.completed is None:
        return slice(warmup, None)
    keep = run.completed.copy()
    keep[:warmup] = False
    return np.flatnonzero(keep)


def _instance_ids(scenario: Scenario, records: Sequence[RunRecord]) -> tuple[str, ...]:
    ids = {rec.run.instance_ids for rec in records}
    if len(ids) > 1:
        raise ValueError(f"runs name their instances differently: {sorted(ids)}")
    return ids.pop() if ids else tuple(i.instance_id for i in scenario.instances)


def tasks_frame(scenario: Scenario, records: Sequence[RunRecord], strategies: Sequence[str]) -> pd.DataFrame:
    """The per-task frame (columns :data:`TASK_COLUMNS`) of the measured tasks, built once."""
    w = scenario.warmup_tasks
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("strategy", "replication", "task_id", "model", "instance", *_TIMES)
    }
    code = {s: k for k, s in enumerate(strategies)}
    for rec in records:
        run, sel = rec.run, _measured(rec.run, w)
        task_id = np.arange(len(rec.workload), dtype=np.int64)[sel]
        parts["strategy"].append(np.full(task_id.size, code[rec.strategy], dtype=np.int32))
        parts["replication"].append(np.full(task_id.size, rec.replication, dtype=np.int64))
        parts["task_id"].append(task_id)
        parts["model"].append(rec.workload.model[sel].astype(np.int32))
        parts["instance"].append(run.instance[sel])
        for col in _TIMES:
            parts[col].append(getattr(run, col)[sel])
    cat = {k: (np.concatenate(v) if v else np.empty(0)) for k, v in parts.items()}
    total = cat["arrival_ms"].size
    instance_ids = list(_instance_ids(scenario, records))
    frame = {
        "scenario": pd.Categorical.from_codes(np.zeros(total, dtype=np.int8), categories=[scenario.name]),
        "strategy": pd.Categorical.from_codes(cat["strategy"].astype(np.int32), categories=list(strategies)),
        "replication": cat["replication"].astype(np.int64),
        "task_id": cat["task_id"].astype(np.int64),
        "model": pd.Categorical.from_codes(cat["model"].astype(np.int32), categories=scenario.model_names),
        "instance": pd.Categorical.from_codes(cat["instance"].astype(np.int32), categories=instance_ids),
        "arrival_ms": cat["arrival_ms"],
        "start_ms": cat["start_ms"],
        "finish_ms": cat["finish_ms"],
        "wait_ms": cat["start_ms"] - cat["arrival_ms"],
        "service_ms": cat["service_ms"],
        "latency_ms": cat["finish_ms"] - cat["arrival_ms"],
        "predicted_ms": cat["predicted_ms"],
        "predicted_error_ms": cat["predicted_error_ms"],
    }
    frame.update(_extra_columns(records, w))
    return pd.DataFrame(frame, columns=list(TASK_COLUMNS) + [c for c in EXTRA_TASK_COLUMNS if c in frame])


def _extra_columns(records: Sequence[RunRecord], w: int) -> dict:
    """Token counts and class of every measured task, where the workloads carry them."""
    if not records:
        return {}
    first = records[0].workload
    sels = [_measured(rec.run, w) for rec in records]
    out: dict = {}
    for key in EXTRA_TASK_COLUMNS[:-1]:
        if key in first.tokens:
            out[key] = np.concatenate([rec.workload.tokens[key][sel] for rec, sel in zip(records, sels)])
    klasses = [rec.workload.klass for rec in records]
    if all(k is not None for k in klasses):
        codes = np.concatenate([k[sel] for k, sel in zip(klasses, sels) if k is not None]).astype(np.int32)
        out["class"] = pd.Categorical.from_codes(codes, categories=list(first.classes))
    return out


def instances_frame(scenario: Scenario, records: Sequence[RunRecord]) -> pd.DataFrame:
    """Per (strategy, replication, instance): measured tasks served, busy time and utilisation.

    Replicas, speed and model come from the scenario; an instance the scenario
    does not name (a live instance reporting another id) has NaN replicas and
    speed, so NaN utilisation."""
    w = scenario.warmup_tasks
    specs = {s.instance_id: s for s in scenario.instances}
    rows = []
    for rec in records:
        run = rec.run
        ids = run.instance_ids
        k = len(ids)
        known = [specs.get(name) for name in ids]
        replicas = np.array([s.replicas if s else math.nan for s in known], dtype=float)
        sel = _measured(run, w)
        arrival, finish = run.arrival_ms[sel], run.finish_ms[sel]
        t0, t1 = (float(arrival.min()), float(finish.max())) if arrival.size else (math.nan, math.nan)
        span = t1 - t0
        done = slice(None) if run.completed is None else run.completed
        if math.isfinite(span):
            busy_each = np.clip(run.finish_ms[done], t0, t1) - np.clip(run.start_ms[done], t0, t1)
            busy = np.bincount(run.instance[done], weights=busy_each, minlength=k)
        else:
            busy = np.full(k, math.nan)
        tasks = np.bincount(run.instance[sel], minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = busy / (replicas * span)
        for j, (name, s) in enumerate(zip(ids, known)):
            model, reps, speed = (s.model, s.replicas, s.speed) if s else ("", math.nan, math.nan)
            row = (rec.strategy, rec.replication, name, model, reps, speed, int(tasks[j]), float(busy[j]))
            rows.append((*row, span, float(util[j])))
    return pd.DataFrame(rows, columns=list(INSTANCE_COLUMNS))


def build_results(
    scenario: Scenario,
    records: Sequence[RunRecord],
    strategies: Sequence[str],
    *,
    result_type: type[R] = Results,  # type: ignore[assignment]
    wall_s: float = math.nan,
    **fields: Any,
) -> R:
    """The task and instance frames, per-replication metrics and summary of ``records``,
    as a :class:`sim.Results` (or the subclass ``result_type`` with its extra ``fields``)."""
    tasks = tasks_frame(scenario, records, strategies)
    instances = instances_frame(scenario, records)
    reps = per_replication(tasks, instances, scenario.slo_ms, scenario.slo)
    summary = summarize(reps, strategies)
    simulated = sum(len(rec.workload) for rec in records)
    return result_type(scenario, tasks, summary, instances, reps, wall_s, simulated, **fields)
