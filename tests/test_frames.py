"""sim.frames: per-task records of a run to the task and instance frames, for runs where
every task completed (the simulator) and runs where some did not (the live driver)."""

import math

import numpy as np
import pytest

import sim
from sim.frames import Run, RunRecord, build_results, instances_frame, tasks_frame

SCENARIO = {
    "name": "frames",
    "tasks": 6,
    "warmup_tasks": 1,
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 10}}},
    "instances": [{"model": "m", "count": 2, "replicas": 2}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}},
}


def _record(scn, completed=None, instance_ids=("m-0", "m-1")):
    workload = sim.Workload(
        np.arange(6, dtype=float) * 10.0, np.zeros(6, dtype=np.int64), np.full(6, 5.0), ("m",)
    )
    arrival = workload.arrival_ms
    run = Run(
        arrival_ms=arrival,
        start_ms=arrival + 1.0,
        finish_ms=arrival + 6.0,
        service_ms=np.full(6, 5.0),
        instance=np.array([0, 1, 0, 1, 0, 1], dtype=np.int32),
        predicted_ms=np.full(6, 4.0),
        predicted_error_ms=np.full(6, 1.0),
        instance_ids=instance_ids,
        completed=completed,
    )
    return RunRecord("shortest_queue", 0, workload, run)


def test_all_completed_measures_every_task_after_the_warm_up():
    scn = sim.load_scenario(SCENARIO)
    tasks = tasks_frame(scn, [_record(scn)], ["shortest_queue"])
    assert list(tasks.columns) == list(sim.TASK_COLUMNS)
    assert tasks["task_id"].tolist() == [1, 2, 3, 4, 5]
    assert tasks["wait_ms"].tolist() == [1.0] * 5 and tasks["latency_ms"].tolist() == [6.0] * 5
    inst = instances_frame(scn, [_record(scn)]).set_index("instance")
    # window: first measured arrival (10) to last measured finish (56); busy clipped to it
    assert inst["span_ms"].tolist() == [46.0, 46.0]
    assert inst["tasks"].tolist() == [2, 3]
    assert inst.loc["m-0", "busy_ms"] == pytest.approx(5.0 * 2)  # task 0 ends at 6, before the window
    assert inst.loc["m-1", "utilization"] == pytest.approx(15.0 / (2 * 46.0))


def test_tasks_that_did_not_complete_are_left_out_but_warm_up_work_counts():
    scn = sim.load_scenario(SCENARIO)
    done = np.array([True, True, False, True, True, False])
    rec = _record(scn, completed=done)
    tasks = tasks_frame(scn, [rec], ["shortest_queue"])
    assert tasks["task_id"].tolist() == [1, 3, 4]
    inst = instances_frame(scn, [rec]).set_index("instance")
    assert inst["tasks"].tolist() == [1, 2]  # m-0: task 4; m-1: tasks 1 and 3
    assert inst["span_ms"].tolist() == [36.0, 36.0]  # 10 .. 46: task 5 did not complete


def test_instances_the_scenario_does_not_name_have_unknown_capacity():
    scn = sim.load_scenario(SCENARIO)
    rec = _record(scn, completed=np.ones(6, dtype=bool), instance_ids=("m-0", "elsewhere"))
    res = build_results(scn, [rec], ["shortest_queue"])
    assert list(res.tasks["instance"].cat.categories) == ["m-0", "elsewhere"]
    inst = res.instances.set_index("instance")
    assert inst.loc["m-0", "replicas"] == 2
    assert math.isnan(inst.loc["elsewhere", "replicas"]) and math.isnan(inst.loc["elsewhere", "utilization"])
    assert res.simulated_tasks == 6 and res.summary["count"].tolist() == [5]
