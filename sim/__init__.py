"""The simulator shell: SimPy plays the task instances and the clock around the
unchanged scheduling core; results come out as pandas frames.

    import sim
    res = sim.run("examples/scenarios/demo.yaml", replications=3)
    res.summary; res.tasks; res.instances; res.save("results/demo")

Live counterparts: ``sim.drive`` replays a scenario's workload against a running
live scheduler and returns the same tables; ``sim.twin`` runs each strategy live
and simulated and compares them; ``sim.replay_file`` replays a decision log
(:mod:`sim.fidelity`, loaded on first use: ``import sim`` does not load live mode).

Command line: ``python -m sim run SCENARIO.yaml --out DIR`` (see :mod:`sim.cli`);
also ``sweep`` (locally or on a Dask cluster), ``drive``, ``twin`` and ``replay``.
``sim.load_results(DIR)`` reads any results folder back (Parquet or CSV).
"""

from typing import Any

from . import theory
from .decision_logs import RunLogs
from .engine import run, simulate
from .frames import INSTANCE_COLUMNS, TASK_COLUMNS, Run, RunRecord, build_results
from .io import load_results
from .plots import (
    plot_latency_cdf,
    plot_latency_cdf_overlay,
    plot_latency_percentiles,
    plot_latency_tail,
    plot_sweep_p99,
    plot_utilization,
)
from .results import (
    ALL_MODELS,
    Results,
    ci_half_width,
    littles_law,
    summarize,
    t_quantile,
)
from .scenario import InstanceSpec, Scenario, StrategySpec, apply_overrides, load_scenario, parse_strategy
from .sweep import offered_load, set_offered_load, sweep
from .sweep_units import SweepResult, run_sweep
from .workload import Workload, draw_workload, replication_seeds

# names of sim.fidelity, imported on first use: the web stack loads only for live tools
_FIDELITY = ("Calibration", "DriveResult", "TwinResult", "calibrate", "drive", "replay_file", "twin")


def __getattr__(name: str) -> Any:
    if name in _FIDELITY:
        from . import fidelity  # local: keeps ``import sim`` free of scheduler.live and httpx

        return getattr(fidelity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_MODELS",
    "INSTANCE_COLUMNS",
    "InstanceSpec",
    "Results",
    "Run",
    "RunRecord",
    "build_results",
    "Scenario",
    "StrategySpec",
    "TASK_COLUMNS",
    "Workload",
    "apply_overrides",
    "ci_half_width",
    "draw_workload",
    "littles_law",
    "load_scenario",
    "parse_strategy",
    "replication_seeds",
    "run",
    "simulate",
    "summarize",
    "t_quantile",
    "plot_latency_cdf",
    "plot_latency_percentiles",
    "plot_latency_tail",
    "plot_sweep_p99",
    "plot_utilization",
    "offered_load",
    "set_offered_load",
    "sweep",
    "run_sweep",
    "SweepResult",
    "load_results",
    "theory",
    "DriveResult",
    "drive",
    "TwinResult",
    "twin",
    "plot_latency_cdf_overlay",
    "RunLogs",
    "replay_file",
    "Calibration",
    "calibrate",
]
