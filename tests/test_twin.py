"""The twin run (``python -m sim twin``): every strategy live and simulated, side by side.

A tiny scenario (130 tasks of 50 ms mean, two strategies) runs end to end on
127.0.0.1; the test checks the files and the comparison's shape, never the
fidelity figures themselves (those depend on the machine's timing; the CLI
prints whether the targets were met).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

import sim
from scheduler import SpecError
from sim import TASK_COLUMNS, cli
from sim.fidelity.drive import scenario_workload
from sim.fidelity.twin import COMPARISON_COLUMNS, compare, format_comparison, simulate_workload, targets_text
from sim.scenario import load_scenario

SCENARIO = {
    "name": "twin-test",
    "seed": 8,
    "tasks": 130,
    "warmup_tasks": 15,
    "strategies": ["random", "shortest_queue"],
    "models": {"llm": {"service_time": {"dist": "lognormal", "mean_ms": 50, "cv": 0.7}}},
    "instances": [
        {"model": "llm", "count": 2, "replicas": 1, "speed": 1.0},
        {"model": "llm", "count": 1, "replicas": 2, "speed": 0.5},
    ],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 42}},
}


@pytest.mark.e2e
def test_twin_cli_writes_both_worlds_and_the_comparison(tmp_path, capsys):
    path = tmp_path / "twin.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "out"
    assert cli.main(["twin", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "targets (p50 within 10%, p95 within 15%)" in printed
    assert "random" in printed and "shortest_queue" in printed
    # the ranking of the strategies in both worlds, with Kendall's tau and the winner's verdict
    assert "ranking by mean latency (best first): Kendall's tau" in printed
    assert "ranking by p95 latency" in printed and "winner" in printed

    for name in (
        "live_tasks.csv",
        "sim_tasks.csv",
        "live_summary.csv",
        "sim_summary.csv",
        "comparison.csv",
        "latency_cdf_overlay.png",
        "twin.json",
        "live_hops.csv",
        "scenario.yaml",
    ):
        assert (out / name).stat().st_size > 0, name
    live, simulated = pd.read_csv(out / "live_tasks.csv"), pd.read_csv(out / "sim_tasks.csv")
    assert list(live.columns) == list(simulated.columns) == list(TASK_COLUMNS)
    for frame in (live, simulated):  # every strategy, every measured task, in both worlds
        assert frame.groupby("strategy")["task_id"].apply(list).to_dict() == {
            s: list(range(15, 130)) for s in ("random", "shortest_queue")
        }
    # the same tasks in both worlds: same models, arrivals close, service = size / speed
    a = live.set_index(["strategy", "task_id"]).sort_index()
    b = simulated.set_index(["strategy", "task_id"]).sort_index()
    assert (a["model"] == b["model"]).all()
    assert (a["arrival_ms"] - b["arrival_ms"]).abs().max() < 1000.0
    # the seeded random strategy draws the same numbers in both worlds, one per task in the order the
    # scheduler received the tasks (two submitted less than a millisecond apart can reach it in either
    # order over two connections): in that order (its submit time), the live tasks' instances are the
    # simulator's draws for every task, warm-up included, with only the warm-up tasks' left out
    every = load_scenario({**SCENARIO, "warmup_tasks": 0, "strategies": ["random"]})
    seed = SCENARIO["seed"]  # the scheduler's stream seeded as the twin seeds it, in both worlds
    draws = simulate_workload(every, scenario_workload(every, 0), seed).tasks
    received = a.loc["random"].sort_values("arrival_ms", kind="stable")["instance"].astype(str)
    left = iter(draws["instance"].astype(str))
    assert all(instance in left for instance in received)  # a subsequence: 115 of the 130 draws, in order
    assert (a.loc["random", "service_ms"] - b.loc["random", "service_ms"]).median() < 50.0

    comp = pd.read_csv(out / "comparison.csv")
    assert list(comp.columns) == list(COMPARISON_COLUMNS)
    assert sorted(zip(comp["strategy"], comp["percentile"])) == sorted(
        (s, p) for s in ("random", "shortest_queue") for p in ("p50", "p95", "p99")
    )
    assert (comp["live_ms"] > 0).all() and (comp["sim_ms"] > 0).all()
    assert comp["relative_difference"].tolist() == pytest.approx(
        ((comp["sim_ms"] - comp["live_ms"]) / comp["live_ms"]).tolist(), abs=1e-5
    )
    # each measured task's dispatch path from its instance's records: two hops of a few ms on loopback
    hops = pd.read_csv(out / "live_hops.csv")
    assert len(hops) == 2 * 115 and (hops["dispatch_ms"] > 0).all() and (hops["notify_ms"] > 0).all()
    assert hops["dispatch_ms"].median() < 200 and hops["notify_ms"].median() < 200
    assert (hops["submit_ms"] <= hops["enqueue_ms"]).all() and (hops["end_ms"] <= hops["notified_ms"]).all()
    assert sim.load_scenario(out / "scenario.yaml").name == "twin-test"
    meta = json.loads((out / "twin.json").read_text())
    assert [r["metric"] for r in meta["ranking"]] == ["mean", "p95"]
    assert meta["tasks_per_strategy"] == 130
    assert all(d["outcomes"] == {"completed": 130} for d in meta["drives"].values())
    logs = sorted(p.name for p in (out / "decision_logs").glob("*.jsonl"))
    assert logs == ["random.jsonl", "shortest_queue.jsonl"]
    capsys.readouterr()
    assert cli.main(["replay", str(out / "decision_logs")]) == 0, (
        capsys.readouterr()
    )  # live runs replay identically


def test_twin_refuses_what_live_mode_cannot_run(tmp_path):
    with pytest.raises(SpecError) as e:
        sim.twin(dict(SCENARIO, predictor={"mode": "clairvoyant"}), tmp_path)
    assert e.value.field == "predictor.mode"
    with pytest.raises(SpecError) as e:
        sim.twin(dict(SCENARIO, predictor={"mode": "online", "prior_mean_ms": 40}), tmp_path)
    assert e.value.field == "predictor.prior_mean_ms"


def test_comparison_and_targets():
    def summary(p50, p95, p99):
        return pd.DataFrame(
            {
                "strategy": ["a", "b"],
                "model": ["all", "all"],
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
                "latency_p99_ms": p99,
            }
        )

    live = summary([100.0, 100.0], [200.0, 200.0], [300.0, 300.0])
    simulated = summary([95.0, 80.0], [220.0, 260.0], [400.0, 300.0])
    comp = compare(live, simulated, ["a", "b"])
    assert list(comp.columns) == list(COMPARISON_COLUMNS) and len(comp) == 6
    row = comp.set_index(["strategy", "percentile"])
    assert row.loc[("a", "p50"), "relative_difference"] == pytest.approx(-0.05)
    assert row.loc[("a", "p50"), "within_target"] and row.loc[("a", "p95"), "within_target"]
    assert not row.loc[("b", "p50"), "within_target"] and not row.loc[("b", "p95"), "within_target"]
    assert math.isnan(row.loc[("a", "p99"), "target"])  # reported, no target
    assert "+33.3%" in format_comparison(comp)
    text = targets_text(comp)
    assert "NOT met" in text and "b p50 -20.0%" in text and "a p" not in text
    assert "met for every strategy" in targets_text(compare(live, live, ["a", "b"]))


def test_a_comparison_noisier_than_its_target_is_inconclusive_not_a_miss():
    import numpy as np

    rng = np.random.default_rng(3)

    def tasks(n, scale):
        return pd.DataFrame({"strategy": "a", "latency_ms": rng.exponential(scale, n)})

    def summary(t):
        lat = t["latency_ms"].to_numpy()
        return pd.DataFrame(
            {"strategy": ["a"], "model": ["all"]}
            | {f"latency_{p}_ms": [float(np.percentile(lat, int(p[1:])))] for p in ("p50", "p95", "p99")}
        )

    # 40 tasks a side, the simulated distribution 30% slower: far outside the targets, but so are the
    # intervals: the comparison cannot tell
    live, simulated = tasks(40, 100.0), tasks(40, 130.0)
    comp = compare(summary(live), summary(simulated), ["a"], live, simulated).set_index("percentile")
    assert comp.loc["p95", "verdict"] == "inconclusive" and comp.loc["p95", "uncertainty"] > 0.15
    text = targets_text(comp.reset_index())
    assert "inconclusive for " in text and "a p95 " in text and "--tasks" in text and "NOT met" not in text
    assert "??" in format_comparison(comp.reset_index())

    # 20,000 tasks a side: the intervals are narrow, the 30% gap is a real miss
    live, simulated = tasks(20_000, 100.0), tasks(20_000, 130.0)
    comp = compare(summary(live), summary(simulated), ["a"], live, simulated).set_index("percentile")
    assert comp.loc["p50", "verdict"] == "NOT met" and comp.loc["p50", "uncertainty"] < 0.05
    assert comp.loc["p99", "verdict"] == "no target"


def test_kendall_tau_and_rankings():
    from sim.fidelity.ranking import format_rankings, kendall_tau, rankings

    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / math.sqrt(3 * 2))  # tau-b with a tie
    assert math.isnan(kendall_tau([1, 1], [1, 2]))

    def summary(means, p95s):
        return pd.DataFrame(
            {
                "strategy": list("abc"),
                "model": "all",
                "latency_mean_ms": means,
                "latency_p95_ms": p95s,
            }
        )

    r = rankings(summary([30, 10, 20], [90, 50, 60]), summary([31, 12, 11], [95, 40, 70]), list("abc"))
    row = r.set_index("metric")
    assert row.loc["mean", "live_order"] == ["b", "c", "a"] and row.loc["mean", "sim_order"] == [
        "c",
        "b",
        "a",
    ]
    assert not row.loc["mean", "same_winner"] and row.loc["mean", "kendall_tau"] == pytest.approx(1 / 3)
    assert row.loc["p95", "same_winner"] and row.loc["p95", "kendall_tau"] == 1.0
    text = format_rankings(r)
    assert "DIFFERENT winner" in text and "same winner" in text and "Kendall's tau +0.33" in text
