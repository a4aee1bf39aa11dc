"""A sweep cut into units: one (grid point, replication) each, run anywhere, put back in order.

A unit gets only what it needs to run: the point's validated scenario as a
plain dict (plus the folder its relative file paths resolve against) and the
replication number.  Its random streams are child ``r`` of
``SeedSequence(scenario seed)`` (:func:`sim.engine.replication_seeds`), fixed
by the scenario's seed and the replication alone, never by the worker that
runs it or the order units run in; so a sweep's frames are identical run
inline, on local processes or on a Dask cluster.  It sends back a compact
:class:`UnitResult`: the per-replication metrics of every strategy (and, only
when asked, the per-task rows).

:func:`run_sweep` validates every point, runs the units through
:func:`sim.executors.run_units` and assembles, per point in point order, the
replication rows and the summary over replications (:func:`sim.results.summarize`,
the same numbers :func:`sim.run` gives for that point).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .engine import simulate
from .executors import resolve_cluster, run_units
from .frames import RunRecord, instances_frame, tasks_frame
from .grid import grid_label, grid_points, offered_load, point_scenario
from .results import per_replication, summarize
from .scenario import Scenario, load_scenario
from .workload import draw_workload, replication_seeds

log = logging.getLogger(__name__)

__all__ = ["UnitResult", "SweepResult", "run_unit", "run_sweep", "KEEP"]

KEEP = ("summary", "tasks")


@dataclass
class UnitResult:
    """What one (point, replication) sends back."""

    point: int
    replication: int
    replications: pd.DataFrame  # sim.results.per_replication rows of every strategy
    tasks: pd.DataFrame | None  # per-task rows, only when asked for
    simulated_tasks: int
    wall_s: float


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    ``summary``: per point, strategy and model, the mean over replications and
    95% CI half-widths (the frame :func:`sim.sweep` returns);
    ``replications``: the per-replication rows behind it; ``tasks``: per-task
    rows of every point (column ``point``) when ``keep="tasks"`` and no sink
    took them; ``interrupted``: the sweep was stopped (Ctrl-C) and holds
    only the units that had finished; ``units_done`` / ``units_total``.
    """

    summary: pd.DataFrame
    replications: pd.DataFrame
    tasks: pd.DataFrame | None
    points: list[dict[str, Any]]
    units_done: int
    units_total: int
    interrupted: bool = False
    wall_s: float = math.nan
    simulated_tasks: int = 0
    engine: str = ""
    files: dict = field(default_factory=dict)


def run_unit(spec: dict, base_dir: str, point: int, replication: int, keep_tasks: bool) -> UnitResult:
    """Run replication ``replication`` of one point (every strategy) and return its compact result."""
    t0 = time.perf_counter()
    scn = Scenario.from_dict(spec, base_dir)
    seeds = replication_seeds(scn.seed, replication + 1)[replication]
    workload = draw_workload(scn, seeds)
    labels = [s.label for s in scn.strategies]
    records = [
        RunRecord(s.label, replication, workload, simulate(scn, workload, s, seeds["scheduler"]))
        for s in scn.strategies
    ]
    frame = tasks_frame(scn, records, labels)
    reps = per_replication(frame, instances_frame(scn, records), scn.slo_ms)
    tasks = None
    if keep_tasks:
        tasks = frame
        tasks.insert(0, "point", point)
    return UnitResult(point, replication, reps, tasks, len(workload) * len(labels), time.perf_counter() - t0)


def _front(frame: pd.DataFrame, front: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with the ``front`` columns (constant values) first."""
    df = frame.reset_index(drop=True).copy()
    for j, (col, val) in enumerate(front.items()):
        if col in df.columns:
            df = df.drop(columns=col)
        df.insert(j, col, [val] * len(df))
    return df


def _point_scenarios(scenario: Any, grid: Mapping[str, Sequence[Any]], replications, tasks):
    """The grid's points and the validated scenario of each (a bad point fails before anything runs)."""
    points = grid_points(grid)
    base = load_scenario(scenario)
    common: dict[str, Any] = {}
    if replications is not None:
        common["replications"] = replications
    if tasks is not None:
        common["tasks"], common["duration_s"] = tasks, None
    if common:
        base = base.with_changes(common)
    scenarios = []
    for i, point in enumerate(points):
        try:
            scenarios.append(point_scenario(base, point))
        except ValueError as e:  # SpecError is a ValueError too
            raise ValueError(f"sweep point {i} {point}: {e}") from e
    return points, scenarios


def _assemble(points, scenarios, done: Mapping[tuple[int, int], UnitResult]):
    """Summary and replication frames in point order, from the finished units; and their task frames."""
    reps_frames, summary_frames, task_frames = [], [], []
    for i, (point, scn) in enumerate(zip(points, scenarios)):
        finished = [done[(i, r)] for r in range(scn.replications) if (i, r) in done]
        if not finished:
            continue
        try:
            load = offered_load(scn)
        except (ValueError, KeyError, TypeError):
            load = math.nan
        front = {"point": i, **{k: grid_label(v) for k, v in point.items()}, "offered_load": load}
        reps = pd.concat([u.replications for u in finished], ignore_index=True)
        summary = summarize(reps, [s.label for s in scn.strategies])
        reps_frames.append(_front(reps, front))
        summary_frames.append(_front(summary, front))
        task_frames += [u.tasks for u in finished if u.tasks is not None]
    return (
        pd.concat(summary_frames, ignore_index=True) if summary_frames else pd.DataFrame(),
        pd.concat(reps_frames, ignore_index=True) if reps_frames else pd.DataFrame(),
        task_frames,
    )


def run_sweep(
    scenario: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    replications: int | None = None,
    tasks: int | None = None,
    processes: int | None = None,
    cluster: str | None = None,
    keep: str = "summary",
    progress: Callable[[int], None] | None = None,
    tasks_sink: Callable[[pd.DataFrame], None] | None = None,
) -> SweepResult:
    """Run every (point, replication) of a sweep and assemble the frames (see :func:`sim.sweep`).

    ``keep``: ``"summary"`` or ``"tasks"`` (per-task rows too: into
    ``tasks_sink`` as each unit finishes when given, else kept in memory).
    ``progress(1)`` is called as each unit finishes.  Ctrl-C stops the run and
    returns what finished, with ``interrupted=True``.
    """
    if keep not in KEEP:
        raise ValueError(f"keep: expected one of {', '.join(KEEP)}, got {keep!r}")
    t0 = time.perf_counter()
    points, scenarios = _point_scenarios(scenario, grid, replications, tasks)
    units = [
        (s.to_dict(), str(s.base_dir), i, r, keep == "tasks")
        for i, s in enumerate(scenarios)
        for r in range(s.replications)
    ]
    target = resolve_cluster(cluster)
    engine = target or ("inline" if processes == 1 else "local processes")
    log.info("sweep: %d points, %d units, on %s", len(points), len(units), engine)

    done: dict[tuple[int, int], UnitResult] = {}
    interrupted = False
    try:
        for _, res in run_units(run_unit, units, cluster=target, processes=processes):
            if res.tasks is not None and tasks_sink is not None:
                tasks_sink(res.tasks)
                res.tasks = None
            done[(res.point, res.replication)] = res
            log.info(
                "point %d replication %d done: %d tasks in %.2f s (%d of %d runs)",
                res.point,
                res.replication,
                res.simulated_tasks,
                res.wall_s,
                len(done),
                len(units),
            )
            if progress is not None:
                progress(1)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("sweep interrupted: %d of %d units finished", len(done), len(units))

    summary, reps, task_frames = _assemble(points, scenarios, done)
    return SweepResult(
        summary=summary,
        replications=reps,
        tasks=pd.concat(task_frames, ignore_index=True) if task_frames else None,
        points=points,
        units_done=len(done),
        units_total=len(units),
        interrupted=interrupted,
        wall_s=time.perf_counter() - t0,
        simulated_tasks=sum(u.simulated_tasks for u in done.values()),
        engine=engine,
    )
