"""Command line of the simulator.

    python -m sim run SCENARIO.yaml --out DIR [--replications N] [--tasks N] [--strategies a,b]
                                    [--decision-log DIR] [--format parquet|csv|both] [--stream]
    python -m sim validate SCENARIO.yaml
    python -m sim strategies
    python -m sim drive SCENARIO.yaml --scheduler URL --out DIR [--strategy NAME] [--tasks N]
                                      [--max-seconds S]
    python -m sim twin SCENARIO.yaml --out DIR [--strategies a,b] [--tasks N]
    python -m sim replay LOG [LOG ...]
    python -m sim sweep SWEEP.yaml --out DIR [--cluster local|ADDRESS] [--format parquet|csv|both]

``run`` shows a progress bar on stderr, prints the summary table, writes the
task table, summary, per-instance utilisation and plots into DIR and says
where.  ``drive`` replays the scenario's workload in real time against a
running live scheduler and writes the same tables and plots from the
scheduler's own timestamps (:mod:`sim.drive`).  ``twin`` runs every strategy
live and simulated and prints their latency percentiles side by side
(:mod:`sim.twin`).  ``replay`` feeds decision logs back through the core
(:mod:`sim.replay_cli`).  ``sweep`` runs a scenario over a grid, locally or on a
Dask cluster (:mod:`sim.sweep_cli`).  Exit codes: 0 ok, 1 when something failed after the
run (a plot or a file; for ``drive``, tasks that did not complete; for
``replay``, a decision that came out different), 2 for a bad scenario or bad
arguments (the message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scheduler import STRATEGIES, SpecError, strategy_names

from . import sweep_cli
from .io import FORMATS
from .results import ALL_MODELS

log = logging.getLogger("sim")

# (file name, sim.plots function, the frame it draws)
PLOTS = (
    ("latency_cdf.png", "plot_latency_cdf", lambda res: res.tasks),
    (
        "latency_percentiles.png",
        "plot_latency_percentiles",
        lambda res: res.summary[res.summary["model"] == ALL_MODELS],
    ),
    ("utilization.png", "plot_utilization", lambda res: res.instances),
)
SHOWN = (
    ("throughput_per_s", "thru/s", 1),
    ("latency_mean_ms", "lat mean", 1),
    ("latency_p50_ms", "p50", 1),
    ("latency_p95_ms", "p95", 1),
    ("latency_p99_ms", "p99", 1),
    ("wait_mean_ms", "wait mean", 1),
    ("utilization", "util", 3),
    ("slo_attainment", "slo", 3),
)


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a text table: ``mean ±half-width`` per metric (ms unless named)."""
    if summary.empty:
        return "(no measured tasks)"
    table = {
        "strategy": summary["strategy"].astype(str),
        "model": summary["model"].astype(str),
        "tasks": summary["count"].map("{:,}".format),
    }
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
    ap = argparse.ArgumentParser(
        prog="python -m sim", description="Simulate scheduling strategies on a scenario."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a scenario and write tables and plots")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", required=True, help="output folder (created if missing)")
    r.add_argument("--replications", type=int, help="override the scenario's replications")
    r.add_argument("--tasks", type=int, help="override the arrivals per replication")
    r.add_argument("--strategies", help="comma-separated strategy names (default: the scenario's)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--no-plots", action="store_true", help="skip the plots")
    r.add_argument(
        "--stream",
        action="store_true",
        help="stream per-task rows to tasks.parquet while simulating, summary from streaming statistics "
        "(for runs larger than memory; percentiles within 0.5%%, no plots)",
    )
    r.add_argument(
        "--decision-log",
        metavar="DIR",
        help="write each run's core events to DIR/<strategy>_r<replication>.jsonl (for `sim replay`)",
    )
    r.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="tables as parquet, csv or both (default auto: parquet above a million rows, else csv)",
    )
    r.add_argument("-v", "--verbose", action="store_true", help="log each run")
    v = sub.add_parser("validate", help="check a scenario without simulating it")
    v.add_argument("scenario")
    sub.add_parser("strategies", help="list the registered strategies")

    d = sub.add_parser(
        "drive",
        help="replay a scenario's workload live against a running scheduler",
        description="Submit the scenario's workload (replication R, the simulator's own draw) in "
        "real time to a live scheduler, follow every task to its end, and write the "
        "simulator's tables and plots from the scheduler's timestamps.",
    )
    d.add_argument("scenario", help="scenario YAML file")
    d.add_argument(
        "--scheduler",
        required=True,
        metavar="URL",
        help="the scheduler's base URL, e.g. http://127.0.0.1:8102",
    )
    d.add_argument("--out", required=True, help="output folder (created if missing)")
    d.add_argument(
        "--strategy",
        help="set this strategy (a name or one of the scenario's labels) first; "
        "default: keep the scheduler's",
    )
    d.add_argument("--replication", type=int, default=0, help="which replication's workload (default 0)")
    d.add_argument("--tasks", type=int, help="override the scenario's number of tasks")
    d.add_argument("--max-tasks", type=int, default=None, help="at most this many tasks (default 20000)")
    d.add_argument(
        "--max-seconds",
        type=float,
        help="wall-clock limit of the whole drive (default: the workload's span plus 60 s, at most an hour)",
    )
    d.add_argument("--concurrency", type=int, default=128, help="submissions in flight at most (default 128)")
    d.add_argument("--no-progress", action="store_true", help="no progress lines")
    d.add_argument("--no-plots", action="store_true", help="skip the plots")

    t = sub.add_parser(
        "twin",
        help="run each strategy live and simulated, compare latency percentiles",
        description="Start reference instances as the scenario describes, then per strategy a "
        "fresh scheduler; drive the workload live, simulate the same workload, and "
        "print live and simulated p50/p95/p99 side by side.",
    )
    t.add_argument("scenario", help="scenario YAML file (e.g. examples/scenarios/twin.yaml)")
    t.add_argument("--out", required=True, help="output folder (created if missing)")
    t.add_argument("--strategies", help="comma-separated strategy names (default: the scenario's)")
    t.add_argument("--tasks", type=int, help="override the scenario's number of tasks per strategy")
    t.add_argument("--max-seconds", type=float, help="wall-clock limit of each strategy's drive")
    t.add_argument("--no-progress", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "replay",
        help="feed decision logs back through the core; count identical decisions",
        description="Replay decision logs (live: scheduler serve --decision-log; simulated: "
        "sim run --decision-log) with the recorded clock; exit 0 when every decision "
        "comes out identical, 1 otherwise.",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="a JSON-lines decision log, or a folder of them")
    p.add_argument("--show", type=int, default=5, help="mismatches shown per scheduler (default 5)")
    sweep_cli.add_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "strategies":
            return _strategies()
        if args.command == "validate":
            return _validate(args)
        if args.command == "drive":
            return _drive(args)
        if args.command == "twin":
            return _twin(args)
        if args.command == "sweep":
            return sweep_cli.main(args)
        if args.command == "replay":
            from . import replay_cli

            return replay_cli.main(args.logs, show=args.show)
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
    print(
        f"ok: {scn.name}: {len(scn.model_names)} models, {len(scn.instances)} instances, strategies {', '.join(s.label for s in scn.strategies)}, "
        f"{scn.replications} replications"
    )
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
            raise SpecError(
                "--strategies", args.strategies, "comma-separated names: " + ", ".join(strategy_names())
            )
    if args.stream:
        from . import stream_cli

        return stream_cli.main(args, scn, strategies)
    logs = None
    if args.decision_log:
        from .replay_cli import RunLogs

        logs = RunLogs(args.decision_log)
    try:
        res = run(
            scn,
            strategies=strategies,
            replications=args.replications,
            tasks=args.tasks,
            progress=not args.no_progress,
            recorder=logs,
        )
    finally:
        if logs is not None:
            logs.close()
    print(
        f"scenario {res.scenario.name}: {res.scenario.replications} replication(s), "
        f"{res.simulated_tasks:,} tasks simulated in {res.wall_s:.1f} s "
        f"(warm-up of {res.scenario.warmup_tasks} tasks per run excluded)"
    )
    failed = _write_results(res, Path(args.out), plots=not args.no_plots, fmt=args.format)
    if failed is None:
        return 1
    if logs is not None:
        print(
            f"decision logs ({len(logs.paths)}) in {Path(args.decision_log).resolve()}/; "
            f"check them with: python -m sim replay {args.decision_log}"
        )
    return 1 if failed else 0


def _write_results(res, out: Path, *, plots: bool, fmt: str = "auto") -> bool | None:
    """Print the summary, write the tables (and plots) into ``out`` and list them.

    Returns whether a plot failed, or ``None`` when the tables could not be written."""
    print(format_summary(res.summary))
    try:
        paths = dict(res.save(out, fmt))
    except OSError as e:
        print(f"error: cannot write results to {out}: {e}", file=sys.stderr)
        return None
    failed = False
    if plots:
        plot_paths, failed = _plots(res, out)
        paths.update(plot_paths)
    print(f"results in {out.resolve()}/:")
    for name, p in paths.items():
        print(f"  {name:22s} {Path(p).name}")
    return failed


def _drive(args) -> int:
    from .drive import MAX_TASKS, DriveError, drive, loopback_url

    try:
        loopback_url(args.scheduler)
    except SpecError as e:
        print(f"error: --scheduler: {e}", file=sys.stderr)
        return 2
    for flag in ("tasks", "max_tasks", "concurrency"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SpecError(f"--{flag.replace('_', '-')}", value, "an integer >= 1")
    try:
        res = drive(
            args.scenario,
            args.scheduler,
            strategy=args.strategy,
            replication=args.replication,
            tasks=args.tasks,
            max_tasks=args.max_tasks or MAX_TASKS,
            max_seconds=args.max_seconds,
            concurrency=args.concurrency,
            progress=not args.no_progress,
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
    failed = _write_results(res, Path(args.out), plots=not args.no_plots and len(res.tasks) > 0)
    if failed is None:
        return 1
    if m["outcomes"].get("completed", 0) < m["tasks"]:
        print("error: not every task completed; outcomes.csv says what became of each", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _twin(args) -> int:
    from .twin import format_comparison, targets_text, twin

    if args.tasks is not None and args.tasks < 1:
        raise SpecError("--tasks", args.tasks, "an integer >= 1")
    strategies = None
    if args.strategies:
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        if not strategies:
            raise SpecError(
                "--strategies", args.strategies, "comma-separated names: " + ", ".join(strategy_names())
            )
    try:
        tw = twin(
            args.scenario,
            args.out,
            strategies=strategies,
            tasks=args.tasks,
            progress=not args.no_progress,
            max_seconds=args.max_seconds,
        )
    except (RuntimeError, OSError) as e:  # a server that did not start, an instance that stayed busy,
        # an HTTP call that failed (httpx's errors, imported lazily, derive from Exception: named below)
        print(f"error: twin run failed: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        import httpx

        if not isinstance(e, httpx.HTTPError):
            raise
        print(f"error: twin run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    m = tw.meta
    print(
        f"scenario {m['scenario']}: {m['tasks_per_strategy']:,} tasks per strategy (warm-up of "
        f"{m['warmup_tasks']} excluded), live {m['live_wall_s']:.0f} s, total {m['total_wall_s']:.0f} s"
    )
    for label, d in m["drives"].items():
        bad = {k: v for k, v in d["outcomes"].items() if k != "completed"}
        if bad:
            print(f"warning: live {label}: not every task completed: {bad}", file=sys.stderr)
    print("latency (ms), live vs simulated; diff = (sim - live) / live")
    print(format_comparison(tw.comparison))
    print(targets_text(tw.comparison))
    print(f"results in {Path(args.out).resolve()}/:")
    for name, p in tw.paths.items():
        print(f"  {name:22s} {Path(p).name}")
    return 0


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
