"""The live driver (``sim.drive``, ``python -m sim drive``) against real processes on 127.0.0.1.

One cluster (a scheduler and three reference instances named as the scenario's
instances) serves every test of the module; each drive replays a small scenario
and the tables are checked against docs/scenarios.md and against the simulator's own
run of the same workload.  Bounds on times are generous: they catch a wrong
origin or a wrong column, not a slow machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from scheduler import SpecError
from scheduler.live import LocalCluster
from sim import TASK_COLUMNS, cli
from sim.fidelity.drive import DriveError

pytestmark = pytest.mark.e2e

SCENARIO = {
    "name": "drive-test",
    "seed": 4,
    "tasks": 100,
    "warmup_tasks": 10,
    "strategies": ["shortest_queue", "round_robin"],
    "models": {"llm": {"service_time": {"dist": "exponential", "mean_ms": 25}}},
    "instances": [
        {"model": "llm", "count": 2, "replicas": 1, "speed": 1.0},
        {"model": "llm", "count": 1, "replicas": 2, "speed": 0.5},
    ],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 50}},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    scn = sim.load_scenario(SCENARIO)
    spec = [
        dict(model=i.model, replicas=i.replicas, speed=i.speed, instance_id=i.instance_id, seed=k)
        for k, i in enumerate(scn.instances)
    ]
    with LocalCluster(
        spec, scheduler=dict(seed=1, log_level="warning"), log_dir=tmp_path_factory.mktemp("drive-logs")
    ) as c:
        yield c


def test_drive_tables_follow_scenario_md_and_the_scheduler_clock(cluster, tmp_path):
    res = sim.drive(SCENARIO, cluster.url, tmp_path, strategy="round_robin", progress=False)
    assert res.counts == {"completed": 100} and res.all_ended
    t = res.tasks
    assert list(t.columns) == list(TASK_COLUMNS)
    assert t["task_id"].tolist() == list(range(10, 100))  # warm-up left out, as in the simulator
    assert set(t["strategy"].astype(str)) == {"round_robin"}
    assert set(t["instance"].astype(str)) == {"llm-0", "llm-1", "llm-2"}  # the names the instances report
    assert (t["finish_ms"] >= t["arrival_ms"]).all()
    assert (t["start_ms"] >= t["arrival_ms"] - 1.0).all()  # two clocks of one machine: 1 ms slack
    assert np.allclose(t["latency_ms"], t["finish_ms"] - t["arrival_ms"])
    assert np.allclose(t["wait_ms"], t["latency_ms"] - t["service_ms"])

    # the instance slept each task's size / speed: the measured service time is close to it
    speed = {"llm-0": 1.0, "llm-1": 1.0, "llm-2": 0.5}
    sizes = res.outcomes.set_index("task_id")["size_ms"]
    expected = sizes.loc[t["task_id"]].to_numpy() / t["instance"].astype(str).map(speed).to_numpy()
    late = t["service_ms"].to_numpy() - expected
    assert late.min() > -1.0 and np.median(late) < 50.0, late  # generous: sleep overshoot on a busy machine

    # the same workload as the simulator's: same tasks, same models, arrivals near the simulated ones
    simulated = sim.run(SCENARIO, strategies=["round_robin"], replications=1).tasks
    assert t["task_id"].tolist() == simulated["task_id"].tolist()
    assert (t.dtypes == simulated.dtypes).all()
    assert np.abs(t["arrival_ms"].to_numpy() - simulated["arrival_ms"].to_numpy()).max() < 1000.0
    # round robin in both worlds: each task goes to the instance after the previous task's, in the
    # order the scheduler received them (its submit time: two tasks submitted less than a millisecond
    # apart can reach it in either order over two connections), and in task order in the simulator
    cycle = ["llm-0", "llm-1", "llm-2"]

    def follows_cycle(instances: list[str]) -> bool:
        pos = [cycle.index(i) for i in instances]
        return all(b == (a + 1) % len(cycle) for a, b in zip(pos, pos[1:]))

    assert follows_cycle(t.sort_values("arrival_ms", kind="stable")["instance"].astype(str).tolist())
    assert follows_cycle(simulated["instance"].astype(str).tolist())

    s = res.summary
    assert s["count"].tolist() == [90] and s["latency_p50_ms"].iloc[0] > 0
    u = res.instances["utilization"]
    assert ((u > 0) & (u <= 1.0)).all()
    assert res.meta["origin_epoch_s"] > 1e9 and res.meta["measured_tasks"] == 90
    assert {"tasks", "summary", "instances", "outcomes", "drive"} <= set(res.paths)
    back = pd.read_csv(res.paths["tasks"])
    assert list(back.columns) == list(TASK_COLUMNS) and len(back) == 90


def test_drive_cli_writes_tables_and_the_simulators_plots(cluster, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(__import__("yaml").safe_dump(SCENARIO))
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "drive",
                str(path),
                "--scheduler",
                cluster.url,
                "--out",
                str(out),
                "--strategy",
                "shortest_queue",
                "--tasks",
                "60",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "shortest_queue" in printed and "completed 60" in printed
    for name in (
        "tasks.csv",
        "summary.csv",
        "instances.csv",
        "outcomes.csv",
        "drive.json",
        "latency_cdf.png",
        "latency_percentiles.png",
        "utilization.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert len(pd.read_csv(out / "tasks.csv")) == 50


def test_live_refuses_what_only_the_simulator_knows():
    for mode in ("oracle", "clairvoyant"):
        with pytest.raises(SpecError) as e:
            sim.drive(dict(SCENARIO, predictor={"mode": mode}), "http://127.0.0.1:9", progress=False)
        assert e.value.field == "predictor.mode" and "lookup_table or regression" in str(e.value)


def test_only_loopback_schedulers_are_driven():
    for url in ("http://10.1.2.3:8102", "https://127.0.0.1:8102", "scheduler:8102"):
        with pytest.raises(SpecError) as e:
            sim.drive(SCENARIO, url, progress=False)
        assert e.value.field == "scheduler" and "loopback" in str(e.value)


def test_unserved_model_and_missing_scheduler_are_clear_errors(cluster):
    other = dict(
        SCENARIO,
        models={"vision": {"service_time": {"dist": "exponential", "mean_ms": 5}}},
        instances=[{"model": "vision"}],
    )
    with pytest.raises(DriveError, match="no instance for model.*vision"):
        sim.drive(other, cluster.url, progress=False)
    from scheduler.live import free_port

    with pytest.raises(DriveError, match="no scheduler answers"):
        sim.drive(SCENARIO, f"http://127.0.0.1:{free_port()}", progress=False)


def test_tasks_not_ended_by_the_deadline_are_reported(cluster):
    # sizes of 3 s against a 1 s limit: nothing can end in time (last test: these keep instances busy)
    slow = dict(
        SCENARIO,
        tasks=4,
        warmup_tasks=0,
        models={"llm": {"service_time": {"dist": "deterministic", "value_ms": 3000}}},
        workload={"arrival": {"process": "deterministic", "rate_per_s": 20}},
    )
    res = sim.drive(slow, cluster.url, max_seconds=1.0, progress=False)
    assert res.counts == {"unfinished": 4} and not res.all_ended
    assert all("not ended after 1 s (max_seconds)" in d for d in res.outcomes["detail"])
    assert len(res.tasks) == 0 and res.meta["outcomes"] == {"unfinished": 4}


def test_sleep_model_serves_the_size_the_driver_sends():
    import asyncio

    from scheduler import from_spec
    from scheduler.instance import SleepWork, TaskInputError

    work = SleepWork(
        from_spec({"dist": "deterministic", "value_ms": 500}), np.random.default_rng(0), speed=2.0
    )
    assert asyncio.run(work.run({"size_ms": 10.0})) == {"service_ms": 5.0}  # size / speed
    assert asyncio.run(work.run({"other": 1})) == {
        "service_ms": 250.0
    }  # no size: drawn from the distribution
    for bad in (-1, "10", float("nan"), True):
        with pytest.raises(TaskInputError, match="size_ms"):
            asyncio.run(work.run({"size_ms": bad}))
