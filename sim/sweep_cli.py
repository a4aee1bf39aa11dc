"""``python -m sim sweep SWEEP.yaml --out DIR [--cluster local|ADDRESS]``.

Runs every (grid point, replication) of a sweep file (:mod:`sim.sweep_file`)
on local processes, a Dask ``LocalCluster`` or a running Dask cluster
(:mod:`sim.executors`), showing progress (runs done / total, elapsed, time
left) on stderr: a redrawn line on a terminal, a line every few seconds in a
log.  Writes into DIR:

- ``sweep.parquet``: one row per point, replication, strategy and model (the
  grid columns, ``offered_load``, then the metrics of :func:`sim.run`);
- ``summary.csv``: per point, strategy and model, the mean over replications
  and the 95% CI half-width (``<metric>_ci``); also ``summary.parquet`` with
  ``--format parquet|both``;
- ``tasks.parquet`` (and/or ``tasks.csv``) with ``keep: tasks``: every run's
  per-task rows, column ``point``, written as runs finish (rows in finishing
  order, one Parquet row group per run);
- ``sweep_latency.png``: p50/p95/p99 against the first grid key, per strategy.

Ctrl-C stops the cluster's work on the sweep, writes what finished and exits
130.  Read the folder back with :func:`sim.load_results`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler import SpecError

from .engine import _expected_tasks
from .grid import grid_points
from .io import FORMATS, TableStream, write_table
from .progress import ProgressBar
from .sweep_file import load_sweep
from .sweep_plots import plot_sweep_percentiles
from .sweep_units import run_sweep

log = logging.getLogger("sim.sweep")

EXIT_INTERRUPTED = 130
MAX_PLOTS = 12


def add_parser(sub: Any) -> None:
    s = sub.add_parser(
        "sweep",
        help="run a scenario over a grid (locally or on a Dask cluster) and write sweep.parquet",
        description="Run every (grid point, replication) of a sweep file and write sweep.parquet, "
        "summary.csv and a latency plot. --cluster local starts a Dask LocalCluster; an address "
        "(or $DASK_SCHEDULER_ADDRESS) uses a running `dask scheduler`; default: local processes.",
    )
    s.add_argument("sweep", help="sweep YAML file (scenario, grid, replications, keep)")
    s.add_argument("--out", required=True, help="output folder (created if missing)")
    s.add_argument(
        "--cluster",
        metavar="local|ADDRESS",
        help="'local' (a Dask LocalCluster) or a scheduler address like tcp://10.0.0.5:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS if set, else local processes)",
    )
    s.add_argument("--processes", type=int, help="local worker processes (default: cpu count; 1: inline)")
    s.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="per-task and summary tables: parquet, csv or both (auto: parquet above 1M rows)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress line")
    s.add_argument("--no-plots", action="store_true", help="skip the plot")
    s.add_argument("-v", "--verbose", action="store_true", help="log each finished run")


def main(args: argparse.Namespace) -> int:
    if args.processes is not None and args.processes < 1:
        raise SpecError("--processes", args.processes, "an integer >= 1")
    spec = load_sweep(args.sweep)
    out = Path(args.out)
    reps = spec.replications or spec.scenario.replications
    units = len(grid_points(spec.grid)) * reps
    bar = None if args.no_progress else ProgressBar(units, unit="runs")
    stream = None
    if spec.keep == "tasks":
        per_run = (spec.tasks or _expected_tasks(spec.scenario)) * len(spec.scenario.strategies)
        stream = TableStream(out, "tasks", args.format, expected_rows=per_run * units)
    try:
        res = run_sweep(
            spec.scenario,
            spec.grid,
            replications=spec.replications,
            tasks=spec.tasks,
            processes=args.processes,
            cluster=args.cluster,
            keep=spec.keep,
            progress=bar,
            tasks_sink=stream.write if stream is not None else None,
        )
    except ValueError as e:
        if isinstance(e, SpecError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a scheduler that cannot be reached (TimeoutError is an OSError)
        print(f"error: cluster {args.cluster or '(from DASK_SCHEDULER_ADDRESS)'}: {e}", file=sys.stderr)
        return 1
    finally:
        if stream is not None:
            stream.close()
        if bar is not None:
            bar.close()
    return _report(res, spec, out, args, stream)


def _report(res, spec, out: Path, args: argparse.Namespace, stream: TableStream | None) -> int:
    print(
        f"sweep {spec.path.name}: {res.units_done} of {res.units_total} runs "
        f"({len(res.points)} points x replications) on {res.engine}, "
        f"{res.simulated_tasks:,} tasks simulated in {res.wall_s:.1f} s"
    )
    if res.replications.empty:
        print("nothing finished: no results written", file=sys.stderr)
        return EXIT_INTERRUPTED if res.interrupted else 1
    try:
        files = write_table(res.replications, out, "sweep", "parquet")
        summary_fmt = "csv" if args.format == "auto" else args.format
        files += write_table(res.summary, out, "summary", summary_fmt)
    except OSError as e:
        print(f"error: cannot write results to {out}: {e}", file=sys.stderr)
        return 1
    if stream is not None:
        files += [p for p in stream.paths if p.exists()]
    failed = False
    if not args.no_plots:
        try:
            files += _plots(res, spec, out)
        except Exception as e:  # a plot must not hide the tables already written
            log.debug("sweep plot failed", exc_info=True)
            print(f"error: sweep plot failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
    print(f"results in {out.resolve()}/:")
    for p in files:
        print(f"  {p.name}")
    if res.interrupted:
        print(
            f"interrupted: {res.units_done} of {res.units_total} runs finished; their results are above",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if failed else 0


def _plots(res, spec, out: Path) -> list[Path]:
    """One plot per value combination of the grid keys other than the x key and ``strategies``."""
    keys = list(spec.grid)
    x = keys[0]
    if x == "strategies" and len(keys) > 1:
        x = keys[1]
    others = [k for k in keys if k not in (x, "strategies") and res.summary[k].nunique() > 1]
    groups = list(res.summary.groupby(others, sort=False)) if others else [((), res.summary)]
    if len(groups) > MAX_PLOTS:
        log.warning("sweep: %d plots would be drawn; drawing the first %d", len(groups), MAX_PLOTS)
    paths = []
    for k, (values, frame) in enumerate(groups[:MAX_PLOTS]):
        name = "sweep_latency.png" if len(groups) == 1 else f"sweep_latency_{k}.png"
        if not isinstance(values, tuple):
            values = (values,)
        where = ", ".join(f"{o}={v}" for o, v in zip(others, values))
        title = f"Latency percentiles against {x}" + (f" ({where})" if where else "") + " - bands: 95% CI"
        paths.append(plot_sweep_percentiles(pd.DataFrame(frame), out / name, x, title=title))
    return paths
