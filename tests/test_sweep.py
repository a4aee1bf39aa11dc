"""sim.sweep: grid expansion, offered load, and a small parallel sweep."""

import math

import pytest

from sim.sweep import grid_points, model_loads, offered_load, set_offered_load, sweep


def _base(**extra):
    spec = {
        "name": "sweep-test",
        "seed": 5,
        "replications": 2,
        "tasks": 3000,
        "warmup_tasks": 300,
        "strategies": ["random", "shortest_queue"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 100}}},
        "instances": [{"model": "m", "count": 4}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 20}},
    }
    spec.update(extra)
    return spec


def _two_models():
    return {
        "seed": 1,
        "tasks": 100,
        "models": {
            "a": {"service_time": {"dist": "exponential", "mean_ms": 100}},
            "b": {"service_time": {"dist": "lognormal", "mean_ms": 20, "cv": 1.0}},
        },
        "instances": [{"model": "a", "count": 2}, {"model": "b", "count": 1, "replicas": 2, "speed": 0.5}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 10}, "mix": {"a": 0.5, "b": 0.5}},
    }


def test_grid_points_is_the_cartesian_product():
    pts = grid_points({"x": [1, 2], "strategies": [["random"], ["round_robin", "random"]], "y": [0]})
    assert len(pts) == 4
    assert pts[0] == {"x": 1, "strategies": ["random"], "y": 0}
    assert pts[-1] == {"x": 2, "strategies": ["round_robin", "random"], "y": 0}


@pytest.mark.parametrize(
    "grid, fragment",
    [
        ({}, "non-empty mapping"),
        ({"x": []}, "grid.x"),
        ({"x": "abc"}, "grid.x"),
        ([("x", [1])], "non-empty mapping"),
    ],
)
def test_bad_grid_is_a_clear_error(grid, fragment):
    with pytest.raises(ValueError, match=fragment):
        grid_points(grid)


def test_offered_load_one_model():
    # 20/s * 100 ms over 4 servers = 0.5
    assert offered_load(_base()) == pytest.approx(0.5)
    spec = set_offered_load(_base(), 0.9)
    assert spec["workload"]["arrival"]["rate_per_s"] == pytest.approx(36.0)
    assert offered_load(spec) == pytest.approx(0.9)


def test_offered_load_several_models_is_the_busiest_pool():
    # a: 10/s * 0.5 * 100 ms / (2 * 1 * 1.0) = 0.25;  b: 10/s * 0.5 * 20 ms / (1 * 2 * 0.5) = 0.10
    loads = model_loads(_two_models())
    assert loads == pytest.approx({"a": 0.25, "b": 0.10})
    assert offered_load(_two_models()) == pytest.approx(0.25)
    scaled = set_offered_load(_two_models(), 0.5)
    assert scaled["workload"]["arrival"]["rate_per_s"] == pytest.approx(20.0)
    assert model_loads(scaled) == pytest.approx({"a": 0.5, "b": 0.2})


def test_offered_load_bursty_scales_every_rate():
    spec = _base()
    spec["workload"]["arrival"] = {"process": "bursty", "rates_per_s": [10, 30], "mean_dwell_s": 2}
    assert offered_load(spec) == pytest.approx(0.5)  # mean rate 20/s
    scaled = set_offered_load(spec, 0.75)
    assert scaled["workload"]["arrival"]["rates_per_s"] == pytest.approx([15, 45])


def test_offered_load_refuses_a_trace(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_ms,model\n0,m\n10,m\n")
    spec = _base()
    spec.pop("tasks")
    spec["warmup_tasks"] = 0
    spec["workload"] = {"arrival": {"process": "trace", "file": str(trace)}}
    with pytest.raises(ValueError, match="trace"):
        offered_load(spec)


@pytest.mark.parametrize("load", [0, -0.5, math.inf, "high", True])
def test_bad_load_value(load):
    with pytest.raises(ValueError, match="load"):
        set_offered_load(_base(), load)


def test_sweep_two_points_in_parallel_has_columns_and_load_trend():
    df = sweep(_base(), {"load": [0.5, 0.85]}, processes=2)
    assert list(df.columns[:3]) == ["point", "load", "offered_load"]
    for col in (
        "strategy",
        "model",
        "count",
        "latency_mean_ms",
        "latency_mean_ms_ci",
        "latency_p99_ms",
        "utilization",
        "throughput_per_s",
    ):
        assert col in df.columns
    df = df[df["model"] == "all"]
    assert len(df) == 4  # 2 points x 2 strategies
    assert sorted(df["point"].unique()) == [0, 1]
    assert df["offered_load"].tolist() == pytest.approx([0.5, 0.5, 0.85, 0.85])
    for strategy, g in df.groupby("strategy", observed=True):
        g = g.sort_values("load")
        assert g["latency_mean_ms"].is_monotonic_increasing, strategy
        assert g["latency_p99_ms"].is_monotonic_increasing, strategy
        assert g["utilization"].is_monotonic_increasing, strategy
        assert g["utilization"].iloc[0] == pytest.approx(0.5, rel=0.1)
    # more load hurts random more than shortest_queue
    hi = df[df["load"] == 0.85].set_index("strategy")["latency_mean_ms"]
    assert hi["random"] > hi["shortest_queue"]


def test_sweep_inline_matches_parallel_and_sweeps_any_field():
    grid = {"instances.0.count": [2, 4], "strategies": [["round_robin"]]}
    kw = dict(replications=1, tasks=800)
    one = sweep(_base(warmup_tasks=100), grid, processes=1, **kw)
    two = sweep(_base(warmup_tasks=100), grid, processes=2, **kw)
    assert one.equals(two)  # same seeds: the process it ran in changes nothing
    assert one["instances.0.count"].tolist() == [2, 4]
    assert one["strategies"].tolist() == ['["round_robin"]'] * 2
    assert one["strategy"].tolist() == ["round_robin"] * 2
    assert one["offered_load"].tolist() == pytest.approx([1.0, 0.5])
    assert one["replications"].tolist() == [1, 1]


def test_sweep_bad_point_fails_before_running():
    with pytest.raises(ValueError, match="sweep point 1"):
        sweep(_base(), {"instances.0.count": [2, 0]}, processes=1)
    with pytest.raises(ValueError, match="processes"):
        sweep(_base(), {"load": [0.5]}, processes=0)


def test_cluster_choice_and_the_environment_variable(monkeypatch):
    from sim.executors import ADDRESS_ENV, resolve_cluster

    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    assert resolve_cluster(None) is None
    assert resolve_cluster("local") == "local"
    assert resolve_cluster(" tcp://10.0.0.5:8786 ") == "tcp://10.0.0.5:8786"
    monkeypatch.setenv(ADDRESS_ENV, "tcp://127.0.0.1:1")
    assert resolve_cluster(None) == "tcp://127.0.0.1:1"
    for bad in ("", "10.0.0.5:8786", 5):
        with pytest.raises(ValueError, match="cluster"):
            resolve_cluster(bad)
