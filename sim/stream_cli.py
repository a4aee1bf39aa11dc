"""``python -m sim run SCENARIO.yaml --out DIR --stream``: a run larger than memory.

Per-task rows go to ``DIR/tasks.parquet`` as the simulation produces them;
the summary (exact counts and means, percentiles from a sketch within 0.5%:
:mod:`sim.streaming`) is printed and written as ``summary.csv`` with
``replications.csv`` and ``instances.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scheduler import SpecError

from .engine import _expected_tasks
from .progress import ProgressBar
from .report import format_summary
from .streaming import run_streaming


def main(args: argparse.Namespace, scenario, strategies: list[str] | None) -> int:
    if args.decision_log:
        raise SpecError(
            "--decision-log", args.decision_log, "no decision log with --stream (it would not fit either)"
        )
    if args.format not in ("auto", "parquet"):
        raise SpecError(
            "--format", args.format, "parquet (or auto) with --stream: per-task rows are streamed to Parquet"
        )
    if strategies is not None:
        scenario = scenario.with_changes({"strategies": strategies})
    if args.replications is not None or args.tasks is not None:
        changes: dict = {}
        if args.replications is not None:
            changes["replications"] = args.replications
        if args.tasks is not None:
            changes["tasks"], changes["duration_s"] = args.tasks, None
        scenario = scenario.with_changes(changes)
    bar = None
    if not args.no_progress:
        per_run = _expected_tasks(scenario)
        bar = ProgressBar(per_run * len(scenario.strategies) * scenario.replications)
    out = Path(args.out)
    try:
        res = run_streaming(scenario, out, progress=bar)
    except OSError as e:
        print(f"error: cannot write results to {out}: {e}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(
        f"scenario {scenario.name}: {scenario.replications} replication(s), {res.simulated_tasks:,} tasks "
        f"simulated in {res.wall_s:.1f} s, streamed (warm-up of {scenario.warmup_tasks} tasks per run excluded); "
        f"percentiles within {res.alpha:.1%} (sketch), counts and means exact"
    )
    print(format_summary(res.summary))
    print(f"results in {out.resolve()}/:")
    for name, p in res.files.items():
        print(f"  {name:22s} {Path(p).name}")
    return 0
