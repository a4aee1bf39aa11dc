"""Calibrate a scenario from a live run: ``python -m sim calibrate RUN_DIR --out calibrated.yaml``.

RUN_DIR is what ``sim twin`` writes: ``scenario.yaml`` (the scenario as run),
``live_tasks.csv`` (the scheduler's record of every measured task, with the
execution time its instance measured) and ``live_hops.csv`` (each task's
dispatch path from its instance's own record, :mod:`sim.fidelity.hops`).
:func:`write_simulated_run` writes the same files from a simulation, so the
calibration can be checked against known truth.

What is fitted (:mod:`sim.fitting`: the best of lognormal, gamma, exponential
and deterministic by Kolmogorov-Smirnov statistic, else the empirical
distribution):

- ``network.dispatch_ms`` from ``enqueue_ms - submit_ms`` and
  ``network.notify_ms`` from ``notified_ms - end_ms``, over every task;
- each model's service time from the measured execution times at speed 1
  (``execution_ms * measured speed``); a token-sized model (``dist: tokens``) keeps its
  form, its coefficients fitted to the tasks' token counts;
- each instance's speed: the sizes the drive sent it (the scenario's own draw
  of each task) over the execution times it measured, so sleep overshoot and
  slow hardware show as speed; written only when some instance is off its
  nominal speed by more than ``SPEED_TOLERANCE`` (the instances are then listed
  one by one, in the same order, so they keep their ids).

The calibrated scenario is the run's scenario with those replaced: the same
arrivals, mix, strategies and seed.  :mod:`sim.fidelity.calibrate_report`
simulates it on the run's workload and compares it with live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from scheduler import SpecError

from ..fitting import Fit, fit_distribution, fit_tokens
from ..scenario import Scenario, load_scenario
from .drive import scenario_workload
from .hops import HOPS_COLUMNS
from .twin import simulate_workload

if TYPE_CHECKING:
    from .calibrate_report import Evaluation

RUN_FILES = ("scenario.yaml", "live_tasks.csv", "live_hops.csv")
SPEED_TOLERANCE = 0.02
INSTANCE_FIT_COLUMNS = ("model", "instance", "tasks", "mean_ms", "cv", "nominal_speed", "speed", "ks")


@dataclass
class LiveRun:
    """A live run's records: the scenario as run, the per-task table and the hops."""

    scenario: Scenario
    tasks: pd.DataFrame
    hops: pd.DataFrame
    path: Path


@dataclass
class Calibration:
    """What :func:`calibrate` fitted, and the calibrated scenario (``scenario``, ``spec``)."""

    run: LiveRun
    spec: dict
    network: dict[str, Fit]
    models: dict[str, Fit]
    instances: pd.DataFrame  # INSTANCE_FIT_COLUMNS
    speeds_written: bool
    notes: list[str] = field(default_factory=list)

    def evaluate(
        self, targets: Mapping[str, float | None] | None = None, delays: str = "pooled"
    ) -> Evaluation:
        """Simulate the run's tasks with the calibrated scenario and compare with live
        (:func:`sim.fidelity.calibrate_report.evaluate`; ``targets`` default: p50 5%, p95 10%)."""
        from .calibrate_report import TARGETS, evaluate  # local: calibrate_report imports this module

        return evaluate(self, TARGETS if targets is None else targets, delays)

    @property
    def scenario(self) -> Scenario:
        return load_scenario(self.spec, self.run.scenario.base_dir)

    def write(self, path: str | Path) -> Path:
        """The calibrated scenario as YAML, with a header saying where it came from."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        head = (
            f"# Calibrated by python -m sim calibrate from the live run in {self.run.path}\n"
            f"# ({len(self.run.tasks):,} measured tasks): network delays, service times"
            f"{' and instance speeds' if self.speeds_written else ''} fitted; the rest as run.\n"
        )
        p.write_text(head + yaml.safe_dump(self.spec, sort_keys=False, width=100))
        return p


def load_run(run_dir: str | Path) -> LiveRun:
    """Read a ``sim twin`` output folder (see the module docstring)."""
    d = Path(run_dir)
    missing = [f for f in RUN_FILES if not (d / f).is_file()]
    if missing:
        raise SpecError(
            "RUN_DIR",
            str(run_dir),
            f"a folder written by python -m sim twin, with {', '.join(RUN_FILES)} (missing: {', '.join(missing)})",
        )
    scn = load_scenario(d / "scenario.yaml")
    tasks = pd.read_csv(d / "live_tasks.csv")
    hops = pd.read_csv(d / "live_hops.csv")
    lacking = [c for c in HOPS_COLUMNS if c not in hops.columns]
    if lacking:
        raise SpecError("live_hops.csv", str(d / "live_hops.csv"), f"the columns {', '.join(HOPS_COLUMNS)}")
    if tasks.empty or hops.empty:
        raise SpecError("RUN_DIR", str(run_dir), "a run with measured tasks (live_tasks.csv is empty)")
    return LiveRun(scn, tasks, hops, d.resolve())


def calibrate(run_dir: str | Path | LiveRun) -> Calibration:
    """Fit the network delays, service times and instance speeds of a live run (module docstring)."""
    run = run_dir if isinstance(run_dir, LiveRun) else load_run(run_dir)
    scn = run.scenario
    network = {
        "dispatch_ms": fit_distribution(run.hops["dispatch_ms"].to_numpy()),
        "notify_ms": fit_distribution(run.hops["notify_ms"].to_numpy()),
    }
    t = measured_tasks(run)
    tokens = _token_columns(scn, t)
    models: dict[str, Fit] = {}
    for model in scn.model_names:
        g = t[t["model"] == model]
        if g.empty:
            continue
        if model in scn.token_models:
            models[model], _ = fit_tokens(g["x_ms"].to_numpy(), *(tokens[k][g.index] for k in ("in", "out")))
        else:
            models[model] = fit_distribution(g["x_ms"].to_numpy())
    instances = _instance_fits(scn, t)
    spec, written = _calibrated_spec(scn, network, models, instances)
    notes = [f"model {m}: no measured task, service time kept" for m in scn.model_names if m not in models]
    return Calibration(run, spec, network, models, instances, written, notes)


def measured_tasks(run: LiveRun) -> pd.DataFrame:
    """The run's measured tasks on known instances, with the size each was sent (``size_ms``, at
    speed 1: the scenario's own draw, as the drive sent it), the instance's measured speed
    (``speed``: all its tasks' sizes over all their execution times) and the execution time at
    speed 1 (``x_ms = service_ms * speed``)."""
    scn = run.scenario
    nominal = {i.instance_id: i.speed for i in scn.instances}
    t = run.tasks.assign(instance=run.tasks["instance"].astype(str))
    t = t[t["instance"].isin(nominal) & np.isfinite(t["service_ms"])].copy()
    t["size_ms"] = scenario_workload(scn, 0).size_ms[t["task_id"].to_numpy()]
    sums = t.groupby("instance")[["size_ms", "service_ms"]].sum()
    speed = (sums["size_ms"] / sums["service_ms"]).to_dict()
    t["speed"] = t["instance"].map(speed)
    t["x_ms"] = t["service_ms"] * t["speed"]
    return t


def _instance_fits(scn: Scenario, t: pd.DataFrame) -> pd.DataFrame:
    """Per (model, instance): tasks, mean and cv of the execution time, nominal and measured speed,
    and the KS statistic of a lognormal fit to its execution times."""
    rows = []
    for i in scn.instances:
        g = t[t["instance"] == i.instance_id]
        if g.empty:
            continue
        x = g["service_ms"].to_numpy()
        ks = fit_distribution(x, families=("lognormal",), ks_max=math.inf).ks if len(x) > 1 else math.nan
        mean = float(x.mean())
        rows.append(
            (
                i.model,
                i.instance_id,
                len(g),
                mean,
                float(x.std() / mean),
                i.speed,
                float(g["speed"].iloc[0]),
                ks,
            )
        )
    return pd.DataFrame(rows, columns=list(INSTANCE_FIT_COLUMNS))


def _token_columns(scn: Scenario, t: pd.DataFrame) -> dict[str, np.ndarray]:
    """Input and output token counts by task id (the workload's own draw, as the drive sent it)."""
    if not scn.token_models:
        return {}
    w = scenario_workload(scn, 0)
    zero = np.zeros(len(w))
    ids = t["task_id"].to_numpy()
    return {
        "in": pd.Series(w.tokens.get("input_tokens", zero)[ids], index=t.index),
        "out": pd.Series(w.tokens.get("output_tokens", zero)[ids], index=t.index),
    }


def _calibrated_spec(
    scn: Scenario, network: dict[str, Fit], models: dict[str, Fit], instances: pd.DataFrame
) -> tuple[dict, bool]:
    spec = scn.to_dict()
    spec["network"] = {k: f.spec for k, f in network.items()}
    for model, fit in models.items():
        spec["models"][model]["service_time"] = fit.spec
    off = (instances["speed"] / instances["nominal_speed"] - 1.0).abs()
    write_speeds = bool(len(instances)) and bool((off > SPEED_TOLERANCE).any())
    if write_speeds:
        speed = dict(zip(instances["instance"], instances["speed"]))
        spec["instances"] = [
            {
                "model": i.model,
                "count": 1,
                "replicas": i.replicas,
                "speed": float(f"{speed.get(i.instance_id, i.speed):.4g}"),
            }
            for i in scn.instances
        ]
    return spec, write_speeds


def write_simulated_run(scenario, out_dir: str | Path) -> Path:
    """Simulate a scenario as ``sim twin`` would (replication 0, the scheduler seeded with the
    scenario's seed) and write its records as a live run's (:data:`RUN_FILES`): the hops from the
    drawn network delays, and ``scenario.yaml`` without its ``network`` key (a twin run's scenario
    has none: the delays are the run's, to be found).  For checking :func:`calibrate` against
    known truth."""
    scn = load_scenario(scenario)
    w = scenario_workload(scn, 0)
    tasks = simulate_workload(scn, w, int(scn.seed)).tasks
    ids = tasks["task_id"].to_numpy()
    zero = np.zeros(len(w))
    dispatch = w.network.get("dispatch_ms", zero)[ids]
    notify = w.network.get("notify_ms", zero)[ids]
    end = tasks["finish_ms"].to_numpy() - notify
    hops = pd.DataFrame(
        {
            "strategy": tasks["strategy"].astype(str),
            "task_id": ids,
            "model": tasks["model"].astype(str),
            "instance": tasks["instance"].astype(str),
            "submit_ms": tasks["arrival_ms"],
            "enqueue_ms": tasks["arrival_ms"].to_numpy() + dispatch,
            "start_ms": end - tasks["service_ms"].to_numpy(),
            "end_ms": end,
            "notified_ms": tasks["finish_ms"],
            "execution_ms": tasks["service_ms"],
            "dispatch_ms": dispatch,
            "notify_ms": notify,
        }
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    as_run = {k: v for k, v in scn.to_dict().items() if k != "network"}  # as a twin run records it
    (out / "scenario.yaml").write_text(yaml.safe_dump(as_run, sort_keys=False))
    tasks.to_csv(out / "live_tasks.csv", index=False, float_format="%.6f")
    hops[list(HOPS_COLUMNS)].to_csv(out / "live_hops.csv", index=False, float_format="%.6f")
    return out
