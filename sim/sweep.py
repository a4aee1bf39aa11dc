"""Parameter sweeps: one scenario run at every point of a grid, in parallel.

``sweep(scenario, grid)`` takes the cartesian product of the grid's values,
applies each combination to the scenario as dotted-path overrides (the same
paths as :func:`sim.scenario.apply_overrides`, e.g.
``workload.arrival.rate_per_s``, ``instances.0.count``, ``strategies``), runs
every point with :func:`sim.run` on local processes, and returns one tidy
DataFrame: the summary rows of every point, with one column per grid key
(named by its dotted path) and a ``point`` column numbering the points.

The special key ``load`` sets the offered load instead of an arrival rate; see
:func:`offered_load` for its definition.  It is applied after the other keys
of the same point, so ``{"instances.0.count": [4, 8], "load": [0.9]}`` runs
both sizes at the same load.

Every point runs with the scenario's own seed, so points differ only by what
the grid changes (common random numbers across points as well as across
strategies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .grid import LOAD_KEY, grid_points, model_loads, offered_load, set_offered_load
from .sweep_units import run_sweep

__all__ = ["sweep", "offered_load", "model_loads", "set_offered_load", "grid_points", "LOAD_KEY"]


def sweep(
    scenario: Any,
    grid: Mapping[str, Sequence[Any]],
    processes: int | None = None,
    replications: int | None = None,
    tasks: int | None = None,
    cluster: str | None = None,
):
    """Run ``scenario`` at every point of ``grid`` and return the summaries as one DataFrame.

    ``scenario``: a path to a YAML file, a scenario dict (docs/scenarios.md) or what
    :func:`sim.run` accepts.  ``grid``: {dotted path: [values]}; the special
    key ``load`` scales the arrival rate to an offered load (:func:`offered_load`).
    ``replications`` and ``tasks`` override the scenario's for every point.

    Each (point, replication) is one unit of work, seeded by the scenario's
    seed and the replication only, so the frame is identical wherever the
    units run (:mod:`sim.sweep_units`).  ``cluster``: ``None`` for local
    processes (or ``$DASK_SCHEDULER_ADDRESS`` when set), ``"local"`` for a
    Dask ``LocalCluster``, or a Dask scheduler address such as
    ``"tcp://10.0.0.5:8786"`` (:mod:`sim.executors`).  ``processes``: local
    worker processes (default ``min(os.cpu_count(), units)``; 1 runs every
    unit inline, in this process).

    Columns: ``point``, one per grid key (lists and dicts shown as JSON text),
    ``offered_load`` (NaN where undefined, e.g. trace arrivals), then the
    summary columns of :func:`sim.run`.  Points are validated (overrides
    applied, loads computed) before anything runs, so a bad grid fails fast.
    :func:`sim.sweep_units.run_sweep` returns the per-replication rows too,
    and per-task rows on request.
    """
    res = run_sweep(
        scenario, grid, replications=replications, tasks=tasks, processes=processes, cluster=cluster
    )
    if res.interrupted:
        raise KeyboardInterrupt
    return res.summary
