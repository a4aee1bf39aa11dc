"""Runs larger than memory: chunked workloads and simulation, streamed Parquet, the sketch's bound."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sim
from sim.engine import draw_workload, replication_seeds, simulate
from sim.scenario import load_scenario
from sim.sketch import LogSketch
from sim.stream_engine import simulate_chunks, workload_chunks
from sim.streaming import run_streaming

TWO_MODELS = {
    "seed": 3,
    "tasks": 4000,
    "replications": 2,
    "warmup_tasks": 700,
    "slo_ms": 300,
    "strategies": ["power_of_two", "shortest_queue"],
    "predictor": {"mode": "online"},
    "models": {
        "a": {"service_time": {"dist": "lognormal", "mean_ms": 100, "cv": 1.5}},
        "b": {"service_time": {"dist": "gamma", "mean_ms": 30, "cv": 0.5}},
    },
    "instances": [{"model": "a", "count": 5}, {"model": "b", "count": 2, "replicas": 2}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 60}, "mix": {"a": 0.6, "b": 0.4}},
}


def _one(arrival: dict, **extra) -> dict:
    spec = {
        "seed": 4,
        "tasks": 2000,
        "strategies": ["round_robin"],
        "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 50}}},
        "instances": [{"model": "m", "count": 3}],
        "workload": {"arrival": arrival},
    }
    spec.update(extra)
    return spec


@pytest.mark.parametrize(
    "spec",
    [
        TWO_MODELS,
        _one({"process": "poisson", "rate_per_s": 50}, tasks=None, duration_s=30),
        _one({"process": "deterministic", "rate_per_s": 50}),
        _one(
            {"process": "bursty", "rates_per_s": [20, 80], "mean_dwell_s": 5},
            predictor={"mode": "clairvoyant"},
        ),
    ],
    ids=["two-models", "duration", "deterministic", "bursty"],
)
def test_chunked_workload_and_simulation_are_identical_to_the_whole(spec):
    scn = load_scenario(spec)
    seeds = replication_seeds(scn.seed, 2)[1]
    whole = draw_workload(scn, seeds)
    parts = list(workload_chunks(scn, seeds, 256))
    for col in ("arrival_ms", "model", "size_ms"):
        assert np.array_equal(np.concatenate([getattr(p, col) for p in parts]), getattr(whole, col))
    strategy = scn.strategies[0]
    ref = simulate(scn, whole, strategy, seeds["scheduler"])
    got: list = []
    n = simulate_chunks(
        scn,
        workload_chunks(scn, seeds, 256),
        strategy,
        seeds["scheduler"],
        lambda b, r: got.append((b, r)),
        256,
    )
    assert n == len(whole) and [b for b, _ in got] == list(range(0, n, 256))
    for col in ("arrival_ms", "start_ms", "finish_ms", "service_ms", "instance", "predicted_ms"):
        assert np.array_equal(np.concatenate([getattr(r, col) for _, r in got]), getattr(ref, col)), col


def test_chunk_size_must_be_a_power_of_two():
    scn = load_scenario(TWO_MODELS)
    seeds = replication_seeds(scn.seed, 1)[0]
    with pytest.raises(ValueError, match="chunk"):
        simulate_chunks(scn, iter(()), scn.strategies[0], seeds["scheduler"], lambda b, r: None, 1000)


def test_streaming_run_writes_the_same_tasks_and_summary(tmp_path):
    ref = sim.run(TWO_MODELS)
    res = run_streaming(TWO_MODELS, tmp_path, chunk=512)
    assert res.tasks_written == len(ref.tasks) and res.simulated_tasks == ref.simulated_tasks
    assert pq.ParquetFile(tmp_path / "tasks.parquet").num_row_groups >= 2 * 2 * (4000 // 512)
    keys = ["replication", "strategy", "task_id"]
    tasks = sim.load_results(tmp_path).tasks.sort_values(keys, kind="stable").reset_index(drop=True)
    want = ref.tasks.astype({c: str for c in ("scenario", "strategy", "model", "instance")})
    pd.testing.assert_frame_equal(tasks, want.sort_values(keys, kind="stable").reset_index(drop=True))

    got, exp = res.replications, ref.replications
    assert list(got.columns) == list(exp.columns) and list(res.summary.columns) == list(ref.summary.columns)
    ids = ["strategy", "model", "replication", "count"]
    assert got[ids].astype(str).values.tolist() == exp[ids].astype(str).values.tolist()
    exact = [
        c
        for c in exp.columns
        if c.endswith("_mean_ms") or c.startswith(("throughput", "util", "slo", "goodput", "prediction"))
    ]
    np.testing.assert_allclose(got[exact].to_numpy(float), exp[exact].to_numpy(float), rtol=1e-9)
    pd.testing.assert_frame_equal(
        res.instances[["strategy", "instance", "tasks"]], ref.instances[["strategy", "instance", "tasks"]]
    )
    # percentiles: within alpha of the sample's value at rank floor(q (n - 1)), per replication
    for _, row in got.iterrows():
        g = ref.tasks[
            (ref.tasks["strategy"] == row["strategy"]) & (ref.tasks["replication"] == row["replication"])
        ]
        if row["model"] != "all":
            g = g[g["model"] == row["model"]]
        for metric in ("latency", "wait"):
            values = np.sort(g[f"{metric}_ms"].to_numpy())
            for p in (50, 95, 99):
                exact_value = values[math.floor(p / 100 * (values.size - 1))]
                assert abs(row[f"{metric}_p{p}_ms"] - exact_value) <= res.alpha * exact_value + 1e-9


def test_sketch_error_bound_and_merge():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(3, 2, 50_000), np.zeros(5000), rng.uniform(0, 1e-7, 100)])
    rng.shuffle(values)
    whole = LogSketch()
    whole.add(values)
    parts = [LogSketch() for _ in range(4)]
    for k, part in enumerate(np.array_split(values, 4)):
        parts[k].add(part)
    merged = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    assert np.array_equal(merged.counts, whole.counts) and merged.count == values.size
    ordered = np.sort(values)
    for q in (0.0, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        x = ordered[math.floor(q * (values.size - 1))]
        est = whole.quantile(q)
        assert (est == 0.0 and x <= whole.min_value) or abs(est - x) <= whole.alpha * x
    assert math.isnan(LogSketch().quantile(0.5))
    with pytest.raises(ValueError, match="alpha"):
        LogSketch(alpha=0)
    with pytest.raises(ValueError, match="same alpha"):
        whole.merge(LogSketch(alpha=0.01))


def test_run_stream_on_the_command_line(tmp_path, capsys):
    import yaml

    from sim.cli import main

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(TWO_MODELS))
    out = tmp_path / "out"
    argv = ["run", str(f), "--out", str(out), "--stream", "--tasks", "1500", "--strategies", "power_of_two"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "percentiles within 0.5% (sketch), counts and means exact" in printed
    saved = sim.load_results(out)
    assert set(saved) == {"tasks", "summary", "replications", "instances"}
    assert len(saved.tasks) == 2 * (1500 - 700) and set(saved.tasks["strategy"]) == {"power_of_two"}
    assert main([*argv, "--decision-log", str(tmp_path / "logs")]) == 2
    assert main([*argv, "--format", "csv"]) == 2
    assert "--format" in capsys.readouterr().err
