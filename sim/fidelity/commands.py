"""``python -m sim drive``, ``twin``, ``replay`` and ``calibrate``: the fidelity tools' command handlers.

:mod:`sim.cli` parses the command line and hands these four commands here
(importing this module only then); exit codes as :mod:`sim.cli` describes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from scheduler import COMPLETED, SpecError

from ..cli import output_dir, resized, strategy_list
from ..report import write_results
from ..scenario import load_scenario
from . import replay
from .calibrate import calibrate
from .calibrate_report import TARGETS, evaluate, report_text
from .drive import MAX_TASKS, DriveError, drive, loopback_url
from .ranking import format_rankings
from .twin import format_comparison, targets_text, twin


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed ``drive``, ``twin`` or ``replay`` command; its exit code."""
    if args.command == "drive":
        return _drive(args)
    if args.command == "twin":
        return _twin(args)
    if args.command == "calibrate":
        return _calibrate(args)
    return replay.main(args.logs, show=args.show)


def _drive(args: argparse.Namespace) -> int:
    try:
        loopback_url(args.scheduler)
    except SpecError as e:
        print(f"error: --scheduler: {e}", file=sys.stderr)
        return 2
    for flag in ("max_tasks", "concurrency"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SpecError(f"--{flag.replace('_', '-')}", value, "an integer >= 1")
    scn = resized(load_scenario(args.scenario), args)
    try:
        res = drive(
            scn,
            args.scheduler,
            strategy=args.strategy,
            replication=args.replication,
            max_tasks=args.max_tasks or MAX_TASKS,
            max_seconds=args.max_seconds,
            concurrency=args.concurrency,
            task_input=args.task_input,
            openai_extra=args.openai_extra,
            progress=not args.no_progress,
            token=args.token
            or os.environ.get("SCHEDULER_ADMIN_TOKEN")
            or os.environ.get("SCHEDULER_API_TOKEN"),
        )
    except DriveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = res.meta
    print(
        f"scenario {m['scenario']}, live against {m['scheduler']} (strategy {m['strategy']}, predict mode "
        f"{m['predict_mode']}): {m['tasks']:,} tasks in {m['wall_s']:.1f} s; outcomes: "
        + ", ".join(f"{k} {v:,}" for k, v in m["outcomes"].items())
        + f" (warm-up of {m['warmup_tasks']} tasks excluded)"
    )
    lat = m["submit_lateness_ms"]
    print(f"submissions went out {lat['p50']:.1f} ms late at the median, {lat['max']:.1f} ms at most")
    for w in m["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    failed = write_results(
        res, output_dir(args, scn, "-drive"), plots=not args.no_plots and len(res.tasks) > 0
    )
    if failed is None:
        return 1
    if m["outcomes"].get(COMPLETED, 0) < m["tasks"]:
        print("error: not every task completed; outcomes.csv says what became of each", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _twin(args: argparse.Namespace) -> int:
    scn = resized(load_scenario(args.scenario), args)
    out = output_dir(args, scn, "-twin")
    strategies = strategy_list(args.strategies)
    try:
        tw = twin(
            scn,
            out,
            strategies=strategies,
            progress=not args.no_progress,
            max_seconds=args.max_seconds,
        )
    except (RuntimeError, OSError) as e:  # a server that did not start, an instance that stayed busy
        print(f"error: twin run failed: {e}", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:  # an HTTP call that failed
        print(f"error: twin run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    m = tw.meta
    print(
        f"scenario {m['scenario']}: {m['tasks_per_strategy']:,} tasks per strategy (warm-up of "
        f"{m['warmup_tasks']} excluded), live {m['live_wall_s']:.0f} s, total {m['total_wall_s']:.0f} s"
    )
    for label, d in m["drives"].items():
        bad = {k: v for k, v in d["outcomes"].items() if k != COMPLETED}
        if bad:
            print(f"warning: live {label}: not every task completed: {bad}", file=sys.stderr)
    print("latency (ms), live vs simulated; diff = (sim - live) / live")
    print(format_comparison(tw.comparison))
    print(targets_text(tw.comparison))
    print(format_rankings(tw.ranking))
    print(f"results in {out.resolve()}/:")
    for name, p in tw.paths.items():
        print(f"  {name:22s} {Path(p).name}")
    print(f"to fit a scenario to this run: python -m sim calibrate {out} --out calibrated.yaml")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    for flag in ("p50_target", "p95_target"):
        value = getattr(args, flag)
        if not 0 < value < 100:
            raise SpecError(f"--{flag.replace('_', '-')}", value, "a percentage between 0 and 100")
    cal = calibrate(args.run_dir)
    path = cal.write(args.out)
    if not args.no_evaluate:
        targets = dict(TARGETS, p50=args.p50_target / 100.0, p95=args.p95_target / 100.0)
        print(report_text(cal, evaluate(cal, targets, delays=args.delays.replace("-", "_"))))
    print(f"calibrated scenario written to {path}")
    return 0
