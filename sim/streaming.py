"""Runs larger than memory: per-task rows streamed to Parquet, the summary from streaming statistics.

``run_streaming(scenario, out_dir)`` simulates like :func:`sim.run` (same
workloads, same core, identical per-task results: :mod:`sim.stream_engine`)
but never holds a run's tasks: each finished chunk of tasks is appended to
``tasks.parquet`` as one row group and folded into running statistics, then
dropped.  Memory stays flat in the number of tasks.

What the summary holds, per (strategy, replication, model) and then over
replications with :func:`sim.results.summarize` (same columns as ``sim.run``):

- **exact**: counts, throughput, goodput and SLO attainment, means (latency,
  wait, service, prediction bias and absolute error: sums in float64),
  utilisation (busy time per instance over the observation window);
- **sketched**: latency and wait p50/p95/p99, from a :class:`sim.sketch.LogSketch`
  with relative error at most ``alpha`` (0.5% by default): each reported
  percentile ``v`` satisfies ``|v - x_(r)| <= 0.005 * x_(r)`` where ``x_(r)``
  is the sample's value at rank ``r = floor(q (n - 1))``.

The exact percentiles can always be computed afterwards from ``tasks.parquet``
(``sim.load_results(DIR).tasks``, if it fits in memory).
"""

from __future__ import annotations

import logging
import math
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .engine import Run
from .frames import INSTANCE_COLUMNS, RunRecord, tasks_frame
from .io import ParquetStream, write_tables
from .results import ALL_MODELS, summarize
from .scenario import Scenario, load_scenario
from .sketch import ALPHA, LogSketch
from .stream_engine import CHUNK, simulate_chunks, workload_chunks
from .workload import Workload, replication_seeds

log = logging.getLogger(__name__)

__all__ = ["run_streaming", "StreamingResult"]

_PCTS = (50, 95, 99)


@dataclass
class StreamingResult:
    """What :func:`run_streaming` returns: the small tables, and where the big one went."""

    scenario: Scenario
    summary: pd.DataFrame
    replications: pd.DataFrame
    instances: pd.DataFrame
    tasks_path: Path
    tasks_written: int
    simulated_tasks: int
    wall_s: float
    alpha: float = ALPHA
    files: dict = field(default_factory=dict)


class _Group:
    """Running statistics of one model (or all models) in one (strategy, replication)."""

    def __init__(self, alpha: float):
        self.n = 0
        self.sums = dict.fromkeys(("latency", "wait", "service", "err", "abs_err"), 0.0)
        self.slo_ok = 0
        self.latency, self.wait = LogSketch(alpha), LogSketch(alpha)

    def add(self, lat: np.ndarray, wait: np.ndarray, service: np.ndarray, err: np.ndarray, slo: float | None):
        self.n += lat.size
        for key, v in (("latency", lat), ("wait", wait), ("service", service), ("err", err)):
            self.sums[key] += float(v.sum())
        self.sums["abs_err"] += float(np.abs(err).sum())
        if slo is not None:
            self.slo_ok += int(np.count_nonzero(lat <= slo))
        self.latency.add(lat)
        self.wait.add(wait)

    def metrics(self, span_ms: float, slo: float | None, busy: float, capacity: float) -> dict:
        n = self.n
        span_s = span_ms / 1000.0 if span_ms > 0 else math.nan
        mean = (lambda k: self.sums[k] / n) if n else (lambda k: math.nan)
        out: dict[str, Any] = {"count": n, "throughput_per_s": n / span_s}
        for name, sk in (("latency", self.latency), ("wait", self.wait)):
            out[f"{name}_mean_ms"] = mean(name)
            for p in _PCTS:
                out[f"{name}_p{p}_ms"] = sk.quantile(p / 100.0)
        out["service_mean_ms"] = mean("service")
        out["utilization"] = busy / capacity if capacity > 0 else math.nan
        out["prediction_mae_ms"] = mean("abs_err")
        out["prediction_bias_ms"] = mean("err")
        if slo is not None:
            out["slo_attainment"] = self.slo_ok / n if n else math.nan
            out["goodput_per_s"] = self.slo_ok / span_s
        return out


class _RunStats:
    """Streaming statistics of one (strategy, replication), fed one chunk of tasks at a time."""

    def __init__(self, scn: Scenario, label: str, replication: int, alpha: float):
        self.scn, self.label, self.replication = scn, label, replication
        self.models = scn.model_names
        self.groups = {m: _Group(alpha) for m in [ALL_MODELS, *self.models]}
        k = len(scn.instances)
        self.busy = np.zeros(k)  # measured tasks: finish - start (all inside the window)
        self.tasks = np.zeros(k, dtype=np.int64)
        self.first_arrival, self.last_finish = math.inf, -math.inf
        self.warm: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # warm-up start, finish, instance

    def add(self, base: int, run: Run, frame: pd.DataFrame) -> None:
        w = self.scn.warmup_tasks
        cut = min(max(w - base, 0), run.arrival_ms.size)
        if cut:
            self.warm.append(
                (run.start_ms[:cut].copy(), run.finish_ms[:cut].copy(), run.instance[:cut].copy())
            )
        if frame.empty:
            return
        lat, wait = frame["latency_ms"].to_numpy(), frame["wait_ms"].to_numpy()
        service = frame["service_ms"].to_numpy()
        err = frame["predicted_ms"].to_numpy() - service
        slo = self.scn.slo_ms
        self.groups[ALL_MODELS].add(lat, wait, service, err, slo)
        codes = frame["model"].cat.codes.to_numpy()
        for k, m in enumerate(self.models):
            sel = codes == k
            if sel.any():
                self.groups[m].add(lat[sel], wait[sel], service[sel], err[sel], slo)
        inst = run.instance[cut:]
        self.busy += np.bincount(
            inst, weights=run.finish_ms[cut:] - run.start_ms[cut:], minlength=self.busy.size
        )
        self.tasks += np.bincount(inst, minlength=self.tasks.size)
        self.first_arrival = min(self.first_arrival, float(run.arrival_ms[cut:].min()))
        self.last_finish = max(self.last_finish, float(run.finish_ms[cut:].max()))

    def rows(self) -> tuple[list[dict], list[tuple]]:
        """Per-replication metric rows (all models, then each model with tasks) and instance rows."""
        t0, t1 = self.first_arrival, self.last_finish
        span = t1 - t0 if self.groups[ALL_MODELS].n else math.nan
        busy = self.busy.copy()
        for start, finish, inst in self.warm:  # warm-up tasks count inside the window only
            if math.isfinite(span):
                busy += np.bincount(
                    inst, weights=np.clip(finish, t0, t1) - np.clip(start, t0, t1), minlength=busy.size
                )
        specs = self.scn.instances
        replicas = np.array([s.replicas for s in specs], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = busy / (replicas * span)
        inst_rows = [
            (self.label, self.replication, s.instance_id, s.model, s.replicas, s.speed)
            + (int(self.tasks[j]), float(busy[j]), span, float(util[j]))
            for j, s in enumerate(specs)
        ]
        model_of = np.array([s.model for s in specs])
        present = [m for m in self.models if self.groups[m].n]
        names = [ALL_MODELS] + (present if len(present) > 1 else [])
        rows = []
        for m in names:
            sel = np.ones(len(specs), dtype=bool) if m == ALL_MODELS else model_of == m
            capacity = float((replicas[sel] * span).sum())
            row = {"strategy": self.label, "model": m, "replication": self.replication}
            row.update(self.groups[m].metrics(span, self.scn.slo_ms, float(busy[sel].sum()), capacity))
            rows.append(row)
        return rows, inst_rows


def _remember(chunks: Iterator[Workload], models: dict[int, np.ndarray], size: int) -> Iterator[Workload]:
    """Pass the chunks on, keeping each one's model codes until its tasks are emitted."""
    for k, w in enumerate(chunks):
        models[k * size] = w.model
        yield w


def _stream_run(
    scn, strategy, seeds, stats: _RunStats, sink: ParquetStream, labels, chunk: int, progress
) -> int:
    """Simulate one (strategy, replication), each finished chunk into ``sink`` and ``stats``."""
    models: dict[int, np.ndarray] = {}
    names = tuple(scn.model_names)

    def emit(base: int, run: Run) -> None:
        w = Workload(run.arrival_ms, models.pop(base), run.service_ms, names)
        # tasks_frame on this chunk alone: its own warm-up cut, task ids shifted by the chunk's start
        view = types.SimpleNamespace(
            warmup_tasks=max(scn.warmup_tasks - base, 0),
            instances=scn.instances,
            model_names=scn.model_names,
            name=scn.name,
        )
        frame = tasks_frame(cast(Scenario, view), [RunRecord(stats.label, stats.replication, w, run)], labels)
        frame["task_id"] += base
        stats.add(base, run, frame)
        if len(frame):
            sink.write(frame)
        if progress is not None:
            progress(run.arrival_ms.size)

    chunks = _remember(workload_chunks(scn, seeds, chunk), models, chunk)
    return simulate_chunks(scn, chunks, strategy, seeds["scheduler"], emit, chunk)


def run_streaming(
    scenario: Any,
    out_dir: str | Path,
    *,
    replications: int | None = None,
    tasks: int | None = None,
    progress: Any = None,
    chunk: int = CHUNK,
    alpha: float = ALPHA,
) -> StreamingResult:
    """Simulate ``scenario`` streaming per-task rows to ``out_dir/tasks.parquet`` (see the module doc).

    Writes ``tasks.parquet`` (one row group per chunk of ``chunk`` tasks),
    then ``summary``, ``replications`` and ``instances`` (CSV).  ``progress``:
    a callable taking a number of tasks (e.g. :class:`sim.progress.ProgressBar`).
    """
    t_start = time.perf_counter()
    scn = load_scenario(scenario)
    changes: dict[str, Any] = {}
    if replications is not None:
        changes["replications"] = replications
    if tasks is not None:
        changes["tasks"], changes["duration_s"] = tasks, None
    if changes:
        scn = scn.with_changes(changes)
    out = Path(out_dir)
    labels = [s.label for s in scn.strategies]
    seeds = replication_seeds(scn.seed, scn.replications)
    rep_rows: list[dict] = []
    inst_rows: list[tuple] = []
    simulated = 0
    with ParquetStream(out / "tasks.parquet") as sink:
        for r in range(scn.replications):
            for strategy in scn.strategies:
                stats = _RunStats(scn, strategy.label, r, alpha)
                log.info("streaming %s, replication %d", strategy.label, r)
                simulated += _stream_run(scn, strategy, seeds[r], stats, sink, labels, chunk, progress)
                rows, irows = stats.rows()
                rep_rows += rows
                inst_rows += irows
    # rows in sim.run's order: by strategy, then replication (models in order within)
    order = {label: k for k, label in enumerate(labels)}
    rep_rows.sort(key=lambda row: (order[row["strategy"]], row["replication"]))
    reps = pd.DataFrame(rep_rows)
    summary = summarize(reps, labels)
    instances = pd.DataFrame(inst_rows, columns=list(INSTANCE_COLUMNS))
    files = {"tasks": out / "tasks.parquet"}
    files.update(write_tables({"summary": summary, "replications": reps, "instances": instances}, out, "csv"))
    return StreamingResult(
        scn,
        summary,
        reps,
        instances,
        out / "tasks.parquet",
        sink.rows,
        simulated,
        time.perf_counter() - t_start,
        alpha,
        files,
    )
