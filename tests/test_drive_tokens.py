"""A token-sized, classed scenario driven live (``sim.drive``) against real processes on 127.0.0.1:
token counts travel as each request's metadata, the live core predicts with ``regression`` from
them, and the tables carry the same token and class columns as the simulator's."""

from __future__ import annotations

import pytest

import sim
from scheduler.live import LocalCluster

pytestmark = pytest.mark.e2e

SCENARIO = {
    "name": "drive-tokens",
    "seed": 2,
    "tasks": 80,
    "warmup_tasks": 10,
    "strategies": ["shortest_queue"],
    "predictor": {"mode": "regression"},
    "models": {
        "chat": {
            "service_time": {
                "dist": "tokens",
                "base_ms": 2,
                "per_input_token_ms": 0.01,
                "per_output_token_ms": 0.02,
                "cv": 0.1,
            }
        }
    },
    "instances": [{"model": "chat", "count": 2}],
    "classes": {"chat": "interactive"},
    "slo": {"interactive": {"latency_ms": 500}},
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 40},
        "tokens": {
            "input": {"dist": "lognormal", "mean": 800, "cv": 1.0},
            "output": {"dist": "gamma", "mean": 60, "cv": 0.5},
        },
    },
}


def test_drive_carries_tokens_and_classes(tmp_path):
    scn = sim.load_scenario(SCENARIO)
    spec = [dict(model=i.model, instance_id=i.instance_id, seed=k) for k, i in enumerate(scn.instances)]
    with LocalCluster(
        spec,
        scheduler=dict(seed=1, log_level="warning", predict_mode="regression"),
        log_dir=tmp_path / "logs",
    ) as c:
        res = sim.drive(SCENARIO, c.url, tmp_path / "out", progress=False)
    assert res.counts == {"completed": 80}
    simulated = sim.run(SCENARIO, replications=1).tasks
    t = res.tasks
    assert list(t.columns) == list(simulated.columns)
    assert {"input_tokens", "output_tokens", "class"} <= set(t.columns)
    assert t["input_tokens"].tolist() == simulated["input_tokens"].tolist()
    assert set(t["class"].astype(str)) == {"interactive"}
    # the live core predicted each task from its own input tokens: predictions vary task by task
    late = t[t["task_id"] >= 40]
    assert late["predicted_ms"].nunique() > 20
    row = res.summary.iloc[0]
    assert row["class"] == "all" and 0.0 <= row["slo_attainment"] <= 1.0
