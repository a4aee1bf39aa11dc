"""Command line of the simulator.

    python -m sim run SCENARIO.yaml --out DIR [--replications N] [--tasks N] [--strategies a,b]
    python -m sim validate SCENARIO.yaml
    python -m sim strategies

``run`` shows a progress bar on stderr, prints the summary table, writes the
task table, summary, per-instance utilisation and plots into DIR and says
where.  Exit codes: 0 ok, 1 when something failed after the simulation (a plot
or a file), 2 for a bad scenario or bad arguments (the message on stderr, no
traceback).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from scheduler import STRATEGIES, SpecError, strategy_names

from .results import ALL_MODELS

log = logging.getLogger("sim")

# (file name, sim.plots function, the frame it draws)
PLOTS = (
    ("latency_cdf.png", "plot_latency_cdf", lambda res: res.tasks),
    ("latency_percentiles.png", "plot_latency_percentiles",
     lambda res: res.summary[res.summary["model"] == ALL_MODELS]),
    ("utilization.png", "plot_utilization", lambda res: res.instances),
)
SHOWN = (("throughput_per_s", "thru/s", 1), ("latency_mean_ms", "lat mean", 1), ("latency_p50_ms", "p50", 1),
         ("latency_p95_ms", "p95", 1), ("latency_p99_ms", "p99", 1), ("wait_mean_ms", "wait mean", 1),
         ("utilization", "util", 3), ("slo_attainment", "slo", 3))


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a text table: ``mean ±half-width`` per metric (ms unless named)."""
    if summary.empty:
        return "(no measured tasks)"
    table = {"strategy": summary["strategy"].astype(str), "model": summary["model"].astype(str),
             "tasks": summary["count"].map("{:,}".format)}
    for col, head, digits in SHOWN:
        if col not in summary:
            continue
        ci = summary.get(f"{col}_ci")
        cells = []
        for k, v in enumerate(summary[col]):
            h = ci.iloc[k] if ci is not None else math.nan
            cells.append(f"{v:.{digits}f}" + (f" ±{h:.{digits}f}" if math.isfinite(h) else ""))
        table[head] = cells
    return pd.DataFrame(table).to_string(index=False)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sim", description="Simulate scheduling strategies on a scenario.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a scenario and write tables and plots")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", required=True, help="output folder (created if missing)")
    r.add_argument("--replications", type=int, help="override the scenario's replications")
    r.add_argument("--tasks", type=int, help="override the arrivals per replication")
    r.add_argument("--strategies", help="comma-separated strategy names (default: the scenario's)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--no-plots", action="store_true", help="skip the plots")
    r.add_argument("-v", "--verbose", action="store_true", help="log each run")
    v = sub.add_parser("validate", help="check a scenario without simulating it")
    v.add_argument("scenario")
    sub.add_parser("strategies", help="list the registered strategies")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "strategies":
            return _strategies()
        if args.command == "validate":
            return _validate(args)
        return _run(args)
    except SpecError as e:
        print(f"error: bad scenario: {e}", file=sys.stderr)
        return 2


def _strategies() -> int:
    names = strategy_names()
    width = max(len(n) for n in names)
    for name in names:
        cls = STRATEGIES[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        desc = cls.description or (doc[0] if doc else "")
        print(f"{name:{width}s}  {desc}")
    return 0


def _validate(args) -> int:
    from .scenario import load_scenario

    scn = load_scenario(args.scenario)
    print(f"ok: {scn.name}: {len(scn.model_names)} models, {len(scn.instances)} instances, strategies {', '.join(s.label for s in scn.strategies)}, "
          f"{scn.replications} replications")
    return 0


def _run(args) -> int:
    from .engine import run
    from .scenario import load_scenario

    for flag in ("replications", "tasks"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SpecError(f"--{flag}", value, "an integer >= 1")
    scn = load_scenario(args.scenario)  # validate before anything else
    strategies = None
    if args.strategies:
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        if not strategies:
            raise SpecError("--strategies", args.strategies, "comma-separated names: " + ", ".join(strategy_names()))
    res = run(scn, strategies=strategies, replications=args.replications, tasks=args.tasks,
              progress=not args.no_progress)
    print(f"scenario {res.scenario.name}: {res.scenario.replications} replication(s), "
          f"{res.simulated_tasks:,} tasks simulated in {res.wall_s:.1f} s "
          f"(warm-up of {res.scenario.warmup_tasks} tasks per run excluded)")
    print(format_summary(res.summary))
    out = Path(args.out)
    try:
        paths = dict(res.save(out))
    except OSError as e:
        print(f"error: cannot write results to {out}: {e}", file=sys.stderr)
        return 1
    failed = False
    if not args.no_plots:
        plot_paths, failed = _plots(res, out)
        paths.update(plot_paths)
    print(f"results in {out.resolve()}/:")
    for name, p in paths.items():
        print(f"  {name:22s} {Path(p).name}")
    return 1 if failed else 0


def _plots(res, out: Path) -> tuple[dict, bool]:
    """Draw the plots of :mod:`sim.plots` (imported only here); returns (paths, any failed)."""
    try:
        from . import plots
    except ModuleNotFoundError as e:
        if e.name not in ("sim.plots", f"{__package__}.plots"):
            raise
        print("warning: sim.plots is not available; plots skipped", file=sys.stderr)
        return {}, False
    paths, failed = {}, False
    for fname, func, frame in PLOTS:
        try:
            paths[fname.removesuffix(".png")] = getattr(plots, func)(frame(res), out / fname)
        except Exception as e:  # a plot must not hide the tables already written
            log.debug("plot %s failed", fname, exc_info=True)
            print(f"error: plot {fname} failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
    return paths, failed
