"""Command line of the simulator.

    python -m sim run SCENARIO.yaml [--out DIR] [--replications N] [--tasks N] [--warmup-tasks N]
                                    [--strategies a,b] [--decision-log DIR] [--allow-overload]
                                    [--format parquet|csv|both] [--stream]
    python -m sim validate SCENARIO.yaml [--allow-overload]
    python -m sim strategies
    python -m sim drive SCENARIO.yaml --scheduler URL [--out DIR] [--strategy NAME] [--tasks N]
                                      [--warmup-tasks N] [--max-seconds S]
    python -m sim twin SCENARIO.yaml [--out DIR] [--strategies a,b] [--tasks N] [--warmup-tasks N]
    python -m sim replay LOG [LOG ...]
    python -m sim calibrate RUN_DIR [--out calibrated.yaml] [--p50-target PCT] [--p95-target PCT]
    python -m sim sweep SWEEP.yaml --out DIR [--cluster local|ADDRESS] [--format parquet|csv|both]

``validate`` and ``run`` print each model pool's offered load, warn at 0.95
and refuse 1 or more unless ``--allow-overload``.  ``run`` shows a progress
bar on stderr, prints the summary table, writes the task table, summary,
per-instance utilisation and plots into DIR (default ``results/<scenario
name>``) and says where.  ``drive`` replays the scenario's workload in real time against a
running live scheduler and writes the same tables and plots from the
scheduler's own timestamps (:mod:`sim.fidelity.drive`).  ``twin`` runs every strategy
live and simulated and prints their latency percentiles side by side
(:mod:`sim.fidelity.twin`).  ``replay`` feeds decision logs back through the core
(:mod:`sim.fidelity.replay`); ``calibrate`` fits a scenario to a twin run's live records
(:mod:`sim.fidelity.calibrate`); these four are handled by :mod:`sim.fidelity.commands`,
loaded only when one of them runs.  ``sweep`` runs a scenario over a grid, locally or on a
Dask cluster (:mod:`sim.sweep_cli`).  Exit codes: 0 ok, 1 when something failed after the
run (a plot or a file; for ``drive``, tasks that did not complete; for
``replay``, a decision that came out different), 2 for a bad scenario or bad
arguments (the message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from scheduler import STRATEGIES, SpecError, strategy_names, strategy_params

from . import stream_cli, sweep_cli
from .decision_logs import RunLogs
from .engine import run
from .grid import model_loads
from .io import FORMATS
from .report import format_loads, write_results
from .scenario import load_scenario, resize

log = logging.getLogger("sim")


def _out_flag(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", metavar="DIR", help=f"output folder, created if missing (default {default})")


def output_dir(args, scn, suffix: str = "") -> Path:
    """``--out``, or ``results/<scenario name><suffix>`` (``results/`` is ignored by git)."""
    return Path(args.out) if args.out else Path("results") / f"{scn.name}{suffix}"


def _warmup_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warmup-tasks",
        type=int,
        metavar="N",
        help="override the scenario's warm-up (first arrivals left out of the statistics); "
        "with --tasks alone a warm-up that would leave fewer than half the tasks measured is scaled down",
    )


def _overload_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-overload",
        action="store_true",
        help="run even when a model pool's offered load is >= 1 (its queue then grows without bound)",
    )


def _json_object(text: str) -> dict:
    """A JSON object given on the command line (argparse reports the ValueError as a usage error)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object: {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m sim", description="Simulate scheduling strategies on a scenario."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a scenario and write tables and plots")
    r.add_argument("scenario", help="scenario YAML file")
    _out_flag(r, "results/SCENARIO_NAME")
    r.add_argument("--replications", type=int, help="override the scenario's replications")
    r.add_argument("--tasks", type=int, help="override the arrivals per replication")
    _warmup_flag(r)
    r.add_argument("--strategies", help="comma-separated strategy names (default: the scenario's)")
    _overload_flag(r)
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
    v = sub.add_parser(
        "validate", help="check a scenario without simulating it; print each model pool's offered load"
    )
    v.add_argument("scenario")
    _overload_flag(v)
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
    _out_flag(d, "results/SCENARIO_NAME-drive")
    d.add_argument(
        "--strategy",
        help="set this strategy (a name or one of the scenario's labels) first; "
        "default: keep the scheduler's",
    )
    d.add_argument("--replication", type=int, default=0, help="which replication's workload (default 0)")
    d.add_argument("--tasks", type=int, help="override the scenario's number of tasks")
    _warmup_flag(d)
    d.add_argument("--max-tasks", type=int, default=None, help="at most this many tasks (default 20000)")
    d.add_argument(
        "--max-seconds",
        type=float,
        help="wall-clock limit of the whole drive (default: the workload's span plus 60 s, at most an hour)",
    )
    d.add_argument("--concurrency", type=int, default=128, help="submissions in flight at most (default 128)")
    d.add_argument(
        "--task-input",
        choices=("size_ms", "openai"),
        default="size_ms",
        help="what each task carries: size_ms (reference instances, the default) or openai (a prompt "
        "of the task's input tokens and max_tokens = its output tokens, for --backend openai "
        "instances; see docs/openai_backend.md)",
    )
    d.add_argument(
        "--openai-extra",
        type=_json_object,
        default=None,
        metavar="JSON",
        help="with --task-input openai: fields added to each request, e.g. '{\"ignore_eos\": true}'",
    )
    d.add_argument(
        "--token",
        help="the scheduler's bearer token: its admin token to set --strategy, else its api token "
        "(default: SCHEDULER_ADMIN_TOKEN, else SCHEDULER_API_TOKEN)",
    )
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
    _out_flag(t, "results/SCENARIO_NAME-twin")
    t.add_argument("--strategies", help="comma-separated strategy names (default: the scenario's)")
    t.add_argument("--tasks", type=int, help="override the scenario's number of tasks per strategy")
    _warmup_flag(t)
    t.add_argument("--max-seconds", type=float, help="wall-clock limit of each strategy's drive")
    t.add_argument("--no-progress", action="store_true", help="no progress lines")

    c = sub.add_parser(
        "calibrate",
        help="fit network delays and service times from a live run; write a calibrated scenario",
        description="Read a sim twin output folder, fit the dispatch and notify delays, each model's "
        "service time and each instance's speed, write the calibrated scenario, simulate the run's "
        "tasks with it and print the calibration report (errors per percentile, per-task MAPE, ranking).",
    )
    c.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by python -m sim twin")
    c.add_argument(
        "--out",
        metavar="FILE",
        default="calibrated.yaml",
        help="the calibrated scenario (default calibrated.yaml)",
    )
    c.add_argument(
        "--p50-target", type=float, default=5.0, metavar="PCT", help="p50 target in %% (default 5)"
    )
    c.add_argument(
        "--p95-target", type=float, default=10.0, metavar="PCT", help="p95 target in %% (default 10)"
    )
    c.add_argument(
        "--no-evaluate", action="store_true", help="fit and write only, no simulation and no report"
    )
    c.add_argument(
        "--delays",
        choices=("pooled", "per-strategy", "replayed"),
        default="pooled",
        help="the report's network delays: pooled (the fit written to the scenario; default), per-strategy "
        "(each strategy's drawn from its own run, when the machine's load changed between runs) or "
        "replayed (each task's own, as live: a diagnostic)",
    )

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
        if args.command == "sweep":
            return sweep_cli.main(args)
        if args.command in ("drive", "twin", "replay", "calibrate"):
            from .fidelity import commands  # local: only these commands load live mode and httpx

            return commands.run_command(args)
        return _run(args)
    except SpecError as e:
        print(f"error: bad scenario: {e}", file=sys.stderr)
        return 2


def strategy_list(text: str | None) -> list[str] | None:
    """The names of ``--strategies a,b`` (``None`` when not given)."""
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise SpecError("--strategies", text, "comma-separated names: " + ", ".join(strategy_names()))
    return names


def _strategies() -> int:
    names = strategy_names()
    width = max(len(n) for n in names)
    for name in names:
        cls = STRATEGIES[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        desc = cls.description or (doc[0] if doc else "")
        print(f"{name:{width}s}  {desc}")
        for param, default, meaning in strategy_params(cls):  # e.g. "  w = 1.0: weight of ..."
            print(f"{'':{width}s}    {param} = {default!r}" + (f": {meaning}" if meaning else ""))
    return 0


def resized(scn, args):
    """The scenario with ``--tasks`` / ``--warmup-tasks`` applied; says so when the warm-up was scaled."""
    scn, note = resize(scn, args.tasks, args.warmup_tasks)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return scn


def _check_load(scn, allow_overload: bool) -> bool:
    """Print each model pool's offered load; False (after an error line) for an overloaded scenario
    that was not allowed.  Warnings and errors go to stderr, the loads themselves to stdout."""
    if scn.trace is not None:
        print("offered load: not computed for a trace (replayed as recorded)")
        return True
    lines = format_loads(model_loads(scn))
    for level, line in lines:
        if level == "ok":
            print(line)
        else:
            print(
                f"{'warning' if level == 'warning' or allow_overload else 'error'}: {line}", file=sys.stderr
            )
    if any(level == "overload" for level, _ in lines) and not allow_overload:
        print(
            "error: overloaded: lower the arrival rate or add instances, or pass --allow-overload",
            file=sys.stderr,
        )
        return False
    return True


def _validate(args) -> int:
    scn = load_scenario(args.scenario)
    print(
        f"ok: {scn.name}: {len(scn.model_names)} models, {len(scn.instances)} instances, "
        f"strategies {', '.join(s.label for s in scn.strategies)}, {scn.replications} replications"
    )
    return 0 if _check_load(scn, args.allow_overload) else 2


def _run(args) -> int:
    if args.replications is not None and args.replications < 1:
        raise SpecError("--replications", args.replications, "an integer >= 1")
    scn = resized(load_scenario(args.scenario), args)  # validate before anything else
    if not _check_load(scn, args.allow_overload):
        return 2
    strategies = strategy_list(args.strategies)
    if args.stream:
        args.out = str(output_dir(args, scn))
        return stream_cli.main(args, scn, strategies)
    logs = None
    if args.decision_log:
        logs = RunLogs(args.decision_log)
    try:
        res = run(
            scn,
            strategies=strategies,
            replications=args.replications,
            progress=not args.no_progress,
            recorder=logs,
        )
    finally:
        if logs is not None:
            logs.close()
    print(
        f"scenario {res.scenario.name}: {res.scenario.replications} replication(s), "
        f"{res.simulated_tasks:,} tasks in {res.wall_s:.1f} s; "
        f"first {res.scenario.warmup_tasks} of each run not measured"
    )
    failed = write_results(res, output_dir(args, scn), plots=not args.no_plots, fmt=args.format)
    if failed is None:
        return 1
    if logs is not None:
        print(
            f"decision logs ({len(logs.paths)}) in {Path(args.decision_log).resolve()}/; "
            f"check them with: python -m sim replay {args.decision_log}"
        )
    return 1 if failed else 0
