"""Twin run: one scenario, each strategy run live and simulated, compared side by side.

    tw = sim.twin("examples/scenarios/twin.yaml", "results/twin")
    tw.comparison    # strategy, percentile, live_ms, sim_ms, relative_difference, target, within_target

Command line: ``python -m sim twin SCENARIO.yaml --out DIR``.

Live: reference task instances are started as the scenario describes (one
``python -m scheduler.instance`` per expanded instance, sleep model, the
model's service-time distribution, its speed and replicas, and the scenario's
instance id as the id it reports), all on 127.0.0.1, by a
:class:`scheduler.live.LocalCluster`.  For each strategy a fresh scheduler is
started (so no state carries over; the instances are checked idle in between),
the instances are registered in the scenario's order with their speed as the
predictor's hint, and :func:`sim.fidelity.driver.drive_async` replays
replication 0 of the workload against it.  Each live scheduler writes
a decision log (``decision_logs/<strategy>.jsonl``, replayable with
``python -m sim replay``).

Simulated: the same workload (the same draw: arrivals, models, sizes) through
:func:`sim.simulate` with the same warm-up.  The scheduler's random stream is
seeded in both worlds with the same integer (the scenario's ``seed``), so the
seeded random strategies draw the same numbers live and simulated; the
numbers therefore differ from ``sim.run``'s (whose stream is spawned from the
seed) by the random strategies' draws only.

The two worlds then differ only by real overheads: HTTP hops, the event loop,
sleep jitter (the scenario's ``network`` delays, if any, model the hops in the
simulated world; ``sim calibrate`` fits them from this run).  Outputs in DIR:
``live_tasks.csv``, ``sim_tasks.csv`` (both docs/scenarios.md per-task
columns), ``live_summary.csv``, ``sim_summary.csv``, ``comparison.csv``,
``live_hops.csv`` (each task's dispatch path from the instances' records,
:mod:`sim.fidelity.hops`), ``scenario.yaml`` (the scenario as run) and
``latency_cdf_overlay.png`` (live solid, simulated dashed, one colour per
strategy), plus ``twin.json`` (wall times, outcomes, targets, the rankings)
and the servers' logs under ``logs/``.

Ranking: the strategies ordered by mean and by p95 latency in each world,
Kendall's tau between the orders and whether the winner is the same
(:mod:`sim.fidelity.ranking`; ``TwinResult.ranking``).

Targets (the twin's acceptance): the simulated p50 within 10% of the live
p50 and the p95 within 15%, for each strategy (``TARGETS``); p99 is reported
without a target.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from scheduler import SpecError, check_integer
from scheduler.live import LocalCluster

from ..engine import simulate
from ..frames import RunRecord, build_results
from ..plots import plot_latency_cdf_overlay
from ..results import Results
from ..scenario import Scenario, StrategySpec, load_scenario, pick_strategies
from ..workload import Workload
from .comparison import COMPARISON_COLUMNS, PERCENTILES, TARGETS, compare, format_comparison, targets_text
from .drive import DriveResult, drive_async, live_predict_mode, run_sync, scenario_workload
from .hops import instance_hops
from .ranking import rankings

__all__ = [
    "COMPARISON_COLUMNS",
    "PERCENTILES",
    "TARGETS",
    "TwinResult",
    "compare",
    "format_comparison",
    "targets_text",
    "twin",
]

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0


@dataclass
class TwinResult:
    """What :func:`sim.twin` returns.

    ``live`` and ``sim``: per-task tables (docs/scenarios.md columns) of every strategy;
    ``live_summary``, ``sim_summary``: their summaries; ``comparison``: one row per
    (strategy, percentile) with ``live_ms``, ``sim_ms``, ``relative_difference``
    ``= (sim - live) / live``, the ``target`` and ``within_target``; ``paths``: the
    files written; ``drives``: each strategy's :class:`sim.DriveResult`.
    """

    live: pd.DataFrame
    sim: pd.DataFrame
    live_summary: pd.DataFrame
    sim_summary: pd.DataFrame
    comparison: pd.DataFrame
    paths: dict = field(default_factory=dict)
    drives: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    ranking: pd.DataFrame = field(default_factory=pd.DataFrame)
    hops: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def targets_met(self) -> bool:
        """Every percentile with a target is within it, for every strategy, and not inconclusive."""
        rows = self.comparison[self.comparison["target"].notna()]
        return bool(len(rows)) and bool((rows["verdict"] == "met").all())

    def table(self) -> str:
        return format_comparison(self.comparison)


def twin(
    scenario_or_path,
    out_dir: str | Path,
    strategies=None,
    tasks: int | None = None,
    progress: bool = True,
    *,
    max_seconds: float | None = None,
    decision_logs: bool = True,
) -> TwinResult:
    """Run every strategy of a scenario live and simulated, compare the latency percentiles,
    and write the tables and the overlay plot into ``out_dir`` (see the module docstring).

    ``strategies`` and ``tasks`` override the scenario's, as in :func:`sim.run`;
    ``max_seconds`` bounds each strategy's live drive (default: the workload's span plus 60 s).
    """
    t_start = time.perf_counter()
    scn = _twin_scenario(load_scenario(scenario_or_path), strategies, tasks)
    mode = live_predict_mode(scn)
    workload = scenario_workload(scn, 0)  # at most drive.MAX_TASKS tasks; the sim runs the same ones
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(scn.seed)

    drives, hops = _live(scn, workload, out, mode, seed, max_seconds, decision_logs, progress)
    t_live = time.perf_counter() - t_start
    sim_res = simulate_workload(scn, workload, seed)

    live_tasks = pd.concat([d.tasks for d in drives.values()], ignore_index=True)
    live_tasks["strategy"] = pd.Categorical(
        live_tasks["strategy"].astype(str), categories=[s.label for s in scn.strategies]
    )
    live_summary = pd.concat([d.summary for d in drives.values()], ignore_index=True)
    labels = [s.label for s in scn.strategies]
    comparison = compare(live_summary, sim_res.summary, labels, live_tasks, sim_res.tasks)
    ranking = rankings(live_summary, sim_res.summary, labels)

    paths: dict[str, Path] = {}
    for name, frame in (
        ("live_tasks", live_tasks),
        ("sim_tasks", sim_res.tasks),
        ("live_summary", live_summary),
        ("sim_summary", sim_res.summary),
        ("comparison", comparison),
        ("live_hops", hops),
    ):
        paths[name] = out / f"{name}.csv"
        frame.to_csv(paths[name], index=False, float_format="%.6f")
    paths["scenario"] = out / "scenario.yaml"  # what sim calibrate starts from
    paths["scenario"].write_text(yaml.safe_dump(scn.to_dict(), sort_keys=False))
    paths["latency_cdf_overlay"] = plot_latency_cdf_overlay(
        live_tasks, sim_res.tasks, out / "latency_cdf_overlay.png"
    )
    result = TwinResult(
        live_tasks,
        sim_res.tasks,
        live_summary,
        sim_res.summary,
        comparison,
        paths,
        drives,
        ranking=ranking,
        hops=hops,
    )
    result.meta = {
        "scenario": scn.name,
        "strategies": [s.label for s in scn.strategies],
        "tasks_per_strategy": len(workload),
        "warmup_tasks": scn.warmup_tasks,
        "scheduler_seed": seed,
        "predict_mode": mode,
        "live_wall_s": t_live,
        "total_wall_s": time.perf_counter() - t_start,
        "drives": {label: d.meta for label, d in drives.items()},
        "targets": {p: t for p, t in TARGETS.items() if t is not None},
        "targets_met": result.targets_met,
        "ranking": ranking.drop(columns=["live", "sim"]).to_dict(orient="records"),
    }
    paths["twin"] = out / "twin.json"
    paths["twin"].write_text(json.dumps(result.meta, indent=2, default=str) + "\n")
    return result


# -- scenario ---------------------------------------------------------------------------------
def _twin_scenario(scn: Scenario, strategies, tasks) -> Scenario:
    """The scenario with the overrides applied, one replication, and what live mode cannot do refused."""
    changes: dict[str, Any] = {"replications": 1}
    if tasks is not None:
        changes["tasks"], changes["duration_s"] = check_integer("tasks", tasks, low=1), None
    if strategies is not None:
        changes["strategies"] = [s.to_dict() for s in pick_strategies(scn, strategies)]
    scn = scn.with_changes(changes)
    for key in ("prior_mean_ms", "prior_std_ms", "min_samples"):
        if key in scn.predictor:
            raise SpecError(
                f"predictor.{key}",
                scn.predictor[key],
                "no value in a twin run: live mode's predictor uses the defaults "
                "(prior_mean_ms 100, prior_std_ms 100, min_samples 3); remove the key",
            )
    return scn


# -- live -----------------------------------------------------------------------------------------
def _label_file(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_") or "strategy"


def _live(
    scn: Scenario,
    workload: Workload,
    out: Path,
    mode: str,
    seed: int,
    max_seconds: float | None,
    decision_logs: bool,
    progress: bool,
) -> tuple[dict[str, DriveResult], pd.DataFrame]:
    """Start the instances (a :class:`LocalCluster`), then per strategy a fresh scheduler and a
    drive, and the instances' records of its tasks (:mod:`sim.fidelity.hops`); everything is
    stopped at the end, whatever happened."""
    table_path = None
    if mode == "lookup_table":
        table_path = out / "lookup_table.yaml"
        table_path.write_text(yaml.safe_dump(scn.lookup_table, sort_keys=False))

    def options(strategy: StrategySpec) -> dict[str, Any]:
        opts: dict[str, Any] = dict(
            strategy=strategy.name,
            strategy_params=dict(strategy.params) or None,
            seed=seed,
            predict_mode=mode,
            lookup_table=str(table_path) if table_path else None,
            log_level="warning",
        )
        if decision_logs:
            opts["decision_log"] = str(out / "decision_logs" / f"{_label_file(strategy.label)}.jsonl")
        return opts

    drives: dict[str, DriveResult] = {}
    hops = []
    first = scn.strategies[0]
    with LocalCluster(_instances(scn, seed), scheduler=options(first), log_dir=out / "logs") as cluster:
        for strategy in scn.strategies:
            if strategy is not first:
                _wait_idle(cluster)
                cluster.restart_scheduler(**options(strategy))  # stops the previous one: its log is flushed
            if progress:
                print(
                    f"twin: live {strategy.label}: {len(workload):,} tasks against {cluster.url}",
                    file=sys.stderr,
                    flush=True,
                )
            drives[strategy.label] = run_sync(
                drive_async(
                    scn,
                    workload,
                    cluster.url,
                    label=strategy.label,
                    max_seconds=max_seconds,
                    progress=progress,
                )
            )
            urls = {spec.instance_id: p.url for spec, p in zip(scn.instances, cluster.instances)}
            hops.append(instance_hops(drives[strategy.label], urls, strategy.label))
    return drives, pd.concat(hops, ignore_index=True)


def _instances(scn: Scenario, seed: int) -> list[dict[str, Any]]:
    """:func:`scheduler.live.start_instance` arguments of the scenario's instances, in its order
    (the scheduler's pool order once registered)."""
    return [
        dict(
            model=spec.model,
            replicas=spec.replicas,
            speed=spec.speed,  # also the predictor's hint when registered
            instance_id=spec.instance_id,
            service_time=scn.spec["models"][spec.model]["service_time"],
            seed=seed + k,
            extra_args=["--log-level", "warning"],
        )
        for k, spec in enumerate(scn.instances)
    ]


def _wait_idle(cluster: LocalCluster, timeout_s: float = IDLE_TIMEOUT_S) -> None:
    """Every instance reports an empty queue (a strategy must not inherit another's backlog)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as http:
        while True:
            sizes = [http.get(f"{p.url}/status").json()["queue_size"] for p in cluster.instances]
            if not any(sizes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"instances still busy after {timeout_s:g} s (queue sizes {sizes})")
            time.sleep(0.1)


# -- simulated ------------------------------------------------------------------------------------
def simulate_workload(scn: Scenario, workload: Workload, seed: int) -> Results:
    """Every strategy on the driven workload, the scheduler stream seeded with ``seed`` as live."""
    records = [RunRecord(s.label, 0, workload, simulate(scn, workload, s, seed)) for s in scn.strategies]
    return build_results(scn, records, [s.label for s in scn.strategies])
