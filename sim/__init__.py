"""The simulator shell: SimPy plays the task instances and the clock around the
unchanged scheduling core; results come out as pandas frames.

    import sim
    res = sim.run("examples/scenarios/demo.yaml", replications=3)
    res.summary; res.tasks; res.instances; res.save("results/demo")

Live counterparts: ``sim.drive`` replays a scenario's workload against a running
live scheduler and returns the same tables; ``sim.twin`` runs each strategy live
and simulated and compares them (:mod:`sim.drive`, :mod:`sim.twin`).

Command line: ``python -m sim run SCENARIO.yaml --out DIR`` (see :mod:`sim.cli`);
also ``sweep`` (locally or on a Dask cluster), ``drive``, ``twin`` and ``replay``.
``sim.load_results(DIR)`` reads any results folder back (Parquet or CSV).
"""

from . import theory
from .drive import DriveResult, drive
from .engine import Run, Workload, draw_workload, replication_seeds, run, simulate
from .io import load_results
from .plots import (
    plot_latency_cdf,
    plot_latency_cdf_overlay,
    plot_latency_percentiles,
    plot_latency_tail,
    plot_sweep_p99,
    plot_utilization,
)
from .replay_cli import RunLogs, replay_file
from .results import (
    ALL_MODELS,
    INSTANCE_COLUMNS,
    TASK_COLUMNS,
    Results,
    ci_half_width,
    littles_law,
    summarize,
    t_quantile,
)
from .scenario import InstanceSpec, Scenario, StrategySpec, apply_overrides, load_scenario, parse_strategy
from .sweep import offered_load, set_offered_load, sweep
from .sweep_units import SweepResult, run_sweep
from .twin import TwinResult, twin

__all__ = [
    "ALL_MODELS",
    "INSTANCE_COLUMNS",
    "InstanceSpec",
    "Results",
    "Run",
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
]
