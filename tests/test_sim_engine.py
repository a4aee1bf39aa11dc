"""The SimPy shell: common random numbers, warm-up, FIFO service, speeds, predictors, exact cases."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

import sim
from scheduler import Strategy, register_strategy, strategies_scope, strategy_names
from sim import Scenario, draw_workload, replication_seeds


def scenario(**changes) -> dict:
    d = {
        "name": "eng",
        "seed": 11,
        "replications": 2,
        "tasks": 600,
        "warmup_tasks": 50,
        "strategies": ["shortest_queue", "round_robin", "random"],
        "predictor": {"mode": "oracle"},
        "models": {
            "a": {"service_time": {"dist": "lognormal", "mean_ms": 20, "cv": 1.0}},
            "b": {"service_time": {"dist": "exponential", "mean_ms": 5}},
        },
        "instances": [
            {"model": "a", "count": 2, "replicas": 1, "speed": 1.0},
            {"model": "a", "count": 1, "replicas": 2, "speed": 0.5},
            {"model": "b", "count": 2, "replicas": 1, "speed": 2.0},
        ],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 80}, "mix": {"a": 0.5, "b": 0.5}},
    }
    return sim.apply_overrides(d, changes)


SPEED = {"a-0": 1.0, "a-1": 1.0, "a-2": 0.5, "b-0": 2.0, "b-1": 2.0}


@pytest.fixture(scope="module")
def res():
    return sim.run(scenario())


def sizes_of(frame):
    """Task sizes recovered from the frame: service time times the instance's speed."""
    return frame["service_ms"].to_numpy() * frame["instance"].astype(str).map(SPEED).to_numpy()


def test_common_random_numbers_across_strategies(res):
    t = res.tasks
    for rep in (0, 1):
        frames = [
            t[(t.strategy == s) & (t.replication == rep)].sort_values("task_id")
            for s in ("shortest_queue", "round_robin", "random")
        ]
        ref = frames[0]
        for f in frames[1:]:
            assert f["task_id"].tolist() == ref["task_id"].tolist()
            np.testing.assert_array_equal(f["arrival_ms"].to_numpy(), ref["arrival_ms"].to_numpy())
            assert f["model"].tolist() == ref["model"].tolist()
            np.testing.assert_allclose(sizes_of(f), sizes_of(ref), rtol=1e-12)
        # the strategies do differ in where the tasks went
        assert (frames[1]["instance"].to_numpy() != ref["instance"].to_numpy()).any()


def test_replications_differ_and_do_not_depend_on_their_number(res):
    t = res.tasks[res.tasks.strategy == "shortest_queue"]
    a0 = t[t.replication == 0]["arrival_ms"].to_numpy()
    a1 = t[t.replication == 1]["arrival_ms"].to_numpy()
    assert not np.allclose(a0, a1)
    single = sim.run(scenario(replications=1, strategies=["shortest_queue"])).tasks
    np.testing.assert_array_equal(single["arrival_ms"].to_numpy(), a0)
    np.testing.assert_array_equal(
        single["finish_ms"].to_numpy(), t[t.replication == 0]["finish_ms"].to_numpy()
    )


def test_runs_are_reproducible():
    a = sim.run(scenario(replications=1, strategies=["random", "power_of_two"])).tasks
    b = sim.run(scenario(replications=1, strategies=["random", "power_of_two"])).tasks
    assert a.equals(b)


def test_scheduler_stream_is_shared_by_strategies():
    """Replication r hands every strategy the same scheduler stream: the same random
    strategy listed twice (two labels) makes identical choices; another replication does not."""
    r = sim.run(scenario(strategies=["power_of_two", ("power_of_two", {"d": 2})]))
    t = r.tasks
    for rep in (0, 1):
        a = t[(t.strategy == "power_of_two") & (t.replication == rep)]["instance"].tolist()
        b = t[(t.strategy == "power_of_two(d=2)") & (t.replication == rep)]["instance"].tolist()
        assert a == b
    seeds = replication_seeds(11, 3)
    assert seeds[1]["scheduler"].entropy == seeds[2]["scheduler"].entropy
    assert seeds[1]["scheduler"].spawn_key != seeds[2]["scheduler"].spawn_key


def test_warmup_tasks_are_excluded(res):
    for (_, _), g in res.tasks.groupby(["strategy", "replication"], observed=True):
        assert len(g) == 600 - 50
        assert g["task_id"].min() == 50 and g["task_id"].max() == 599
    assert (res.summary[res.summary.model == "all"]["count"] == 2 * 550).all()


def test_frame_timing_identities(res):
    t = res.tasks
    np.testing.assert_allclose(t.wait_ms, t.start_ms - t.arrival_ms)
    np.testing.assert_allclose(t.latency_ms, t.finish_ms - t.arrival_ms)
    np.testing.assert_allclose(t.finish_ms - t.start_ms, t.service_ms, rtol=1e-9, atol=1e-9)
    assert (t.wait_ms >= 0).all() and (t.service_ms > 0).all()
    # tasks only go to instances of their model
    assert (t["instance"].astype(str).str.split("-").str[0] == t["model"].astype(str)).all()


def test_fifo_and_replica_limit_per_instance(res):
    for (_, _, inst), g in res.tasks.groupby(["strategy", "replication", "instance"], observed=True):
        g = g.sort_values("task_id")
        starts = g["start_ms"].to_numpy()
        assert np.all(np.diff(starts) >= 0), "an instance started tasks out of arrival order"
        replicas = 2 if inst == "a-2" else 1
        events = sorted([(s, 1) for s in starts] + [(f, -1) for f in g["finish_ms"]])
        assert max(np.cumsum([d for _, d in events])) <= replicas
        if replicas == 1:
            assert np.all(starts[1:] >= g["finish_ms"].to_numpy()[:-1] - 1e-9)


def test_speed_scales_service_time():
    d = scenario(strategies=["round_robin"], replications=1, warmup_tasks=0)
    d["models"] = {
        "a": {"service_time": {"dist": "deterministic", "value_ms": 10}},
        "b": {"service_time": {"dist": "deterministic", "value_ms": 4}},
    }
    t = sim.run(d).tasks
    expected = {"a-0": 10.0, "a-1": 10.0, "a-2": 20.0, "b-0": 2.0, "b-1": 2.0}
    got = t.groupby("instance", observed=True)["service_ms"].agg(["min", "max"])
    for inst, ms in expected.items():
        assert got.loc[inst, "min"] == pytest.approx(ms) and got.loc[inst, "max"] == pytest.approx(ms)


def test_clairvoyant_predictor_gets_each_size():
    t = sim.run(scenario(replications=1, **{"predictor.mode": "clairvoyant"})).tasks
    np.testing.assert_allclose(t["predicted_ms"], t["service_ms"], rtol=1e-12)
    assert (t["predicted_error_ms"] == 0).all()


def test_oracle_predicts_mean_over_speed():
    t = sim.run(scenario(replications=1, strategies=["round_robin"])).tasks
    mean = t["model"].map({"a": 20.0, "b": 5.0}).astype(float) / t["instance"].astype(str).map(SPEED)
    np.testing.assert_allclose(t["predicted_ms"], mean)


def test_lookup_table_predictor_uses_the_table():
    table = {
        "a": {"mean_ms": 30, "std_ms": 3, "instances": {"a-2": {"mean_ms": 77, "std_ms": 1}}},
        "b": {"mean_ms": 8, "std_ms": 2},
    }
    t = sim.run(
        scenario(
            replications=1, strategies=["round_robin"], predictor={"mode": "lookup_table", "table": table}
        )
    ).tasks
    by_inst = t.groupby("instance", observed=True)["predicted_ms"].agg(["min", "max"])
    assert by_inst.loc["a-0", "max"] == pytest.approx(30.0)
    assert by_inst.loc["a-2", "min"] == by_inst.loc["a-2", "max"] == pytest.approx(77.0)
    assert by_inst.loc["b-1", "max"] == pytest.approx(4.0)  # model mean over speed 2


def test_online_predictor_learns():
    t = sim.run(
        scenario(replications=1, strategies=["round_robin"], tasks=2000, **{"predictor.mode": "online"})
    ).tasks
    late = t[t.task_id > 1500]
    mean = late["model"].map({"a": 20.0, "b": 5.0}).astype(float) / late["instance"].astype(str).map(SPEED)
    assert np.median(np.abs(late["predicted_ms"] / mean - 1.0)) < 0.35


def test_deterministic_single_server_waits_are_exact():
    # arrivals every 10 ms, service 15 ms, FIFO on one server: task k waits 5k ms
    d = {
        "tasks": 40,
        "strategies": ["shortest_queue"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "deterministic", "value_ms": 15}}},
        "instances": [{"model": "m"}],
        "workload": {"arrival": {"process": "deterministic", "rate_per_s": 100}},
    }
    t = sim.run(d).tasks
    k = np.arange(40)
    np.testing.assert_allclose(t["arrival_ms"], 10.0 * (k + 1))
    np.testing.assert_allclose(t["wait_ms"], 5.0 * k, atol=1e-9)
    np.testing.assert_allclose(t["latency_ms"], 5.0 * k + 15.0, atol=1e-9)


def _fifo_reference(arrival, service, replicas):
    """Start times of a FIFO queue with ``replicas`` servers (exact recursion)."""
    free = [0.0] * replicas
    starts = []
    for a, s in zip(arrival, service):
        t = max(a, heapq.heappop(free))
        starts.append(t)
        heapq.heappush(free, t + s)
    return np.array(starts)


def test_multi_replica_fifo_matches_reference():
    d = {
        "tasks": 300,
        "seed": 5,
        "strategies": ["round_robin"],
        "predictor": {"mode": "online"},
        "models": {"m": {"service_time": {"dist": "gamma", "mean_ms": 30, "cv": 1.5}}},
        "instances": [{"model": "m", "replicas": 3, "speed": 1.25}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 90}},
    }
    t = sim.run(d).tasks
    ref = _fifo_reference(t["arrival_ms"].to_numpy(), t["service_ms"].to_numpy(), 3)
    np.testing.assert_allclose(t["start_ms"], ref, rtol=1e-12, atol=1e-9)


def test_recorder_sees_every_task_tagged():
    events = []
    r = sim.run(
        scenario(replications=2, tasks=100, warmup_tasks=0, strategies=["round_robin", "random"]),
        recorder=events.append,
    )
    kinds = {}
    for e in events:
        kinds.setdefault((e["label"], e["replication"], e["event"]), 0)
        kinds[(e["label"], e["replication"], e["event"])] += 1
    for s in ("round_robin", "random"):
        for rep in (0, 1):
            assert kinds[(s, rep, "submit")] == kinds[(s, rep, "complete")] == 100
            assert kinds[(s, rep, "add_instance")] == 5
    assert len(r.tasks) == 400


@pytest.mark.parametrize("mode", ["oracle", "online", "clairvoyant"])
def test_the_lean_path_and_the_recorded_one_simulate_alike(mode):
    """Without a recorder the engine calls the core's lean place/finish, with one submit/complete:
    the same frames, bit for bit."""
    spec = scenario(
        replications=1, tasks=800, predictor={"mode": mode}, strategies=["shortest_queue", "probabilistic"]
    )
    lean = sim.run(spec)
    recorded = sim.run(spec, recorder=lambda event: None)
    cols = [c for c in lean.tasks.columns if c != "scenario"]
    assert lean.tasks[cols].equals(recorded.tasks[cols])


def test_custom_strategy_and_strategy_override():
    class FirstCandidate(Strategy):
        name = "test_first_candidate"
        description = "always the first candidate"

        def choose(self, view, rng):
            return 0

    with strategies_scope():
        register_strategy(FirstCandidate)
        r = sim.run(scenario(replications=1), strategies=["test_first_candidate", ("weighted", {"w": 0.5})])
    assert "test_first_candidate" not in strategy_names()
    t = r.tasks
    assert list(t["strategy"].cat.categories) == ["test_first_candidate", "weighted(w=0.5)"]
    first = t[t.strategy == "test_first_candidate"]
    assert set(first["instance"].astype(str)) == {"a-0", "b-0"}


def test_run_overrides_tasks_and_replications():
    r = sim.run(scenario(), strategies="round_robin", replications=3, tasks=120)
    assert r.scenario.replications == 3 and r.scenario.tasks == 120
    assert len(r.tasks) == 3 * (120 - 50) and r.simulated_tasks == 3 * 120


# -- workloads (drawn without simulating) -------------------------------------------------
def _draw(**changes):
    scn = Scenario.from_dict(scenario(**changes))
    return draw_workload(scn, replication_seeds(scn.seed, 1)[0])


def test_drawing_twice_from_the_same_seeds_gives_the_same_workload():
    scn = Scenario.from_dict(scenario())
    seeds = replication_seeds(scn.seed, 2)[1]
    a, b = draw_workload(scn, seeds), draw_workload(scn, seeds)
    for col in ("arrival_ms", "model", "size_ms"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


def test_mix_proportions():
    wl = _draw(tasks=20000, warmup_tasks=0, **{"workload.mix": {"a": 0.3, "b": 0.7}})
    assert abs(np.mean(wl.model == 0) - 0.3) < 0.02


def test_poisson_by_duration():
    wl = _draw(tasks=None, duration_s=50, warmup_tasks=0)
    assert wl.arrival_ms.max() <= 50_000 and abs(len(wl) - 4000) < 4 * np.sqrt(4000)
    assert np.all(np.diff(wl.arrival_ms) >= 0)


def test_deterministic_by_tasks_and_duration():
    wl = _draw(
        tasks=1000,
        duration_s=2,
        warmup_tasks=0,
        **{"workload.arrival": {"process": "deterministic", "rate_per_s": 100}},
    )
    np.testing.assert_allclose(wl.arrival_ms, 10.0 * np.arange(1, 201))


def test_bursty_arrivals_rate_and_burstiness():
    wl = _draw(
        tasks=40000,
        warmup_tasks=0,
        **{"workload.arrival": {"process": "bursty", "rates_per_s": [20, 180], "mean_dwell_s": 2}},
    )
    rate = len(wl) / (wl.arrival_ms[-1] / 1000.0)
    assert 80 < rate < 120  # long-run mean of the two states: 100/s
    counts = np.histogram(wl.arrival_ms, bins=np.arange(0, wl.arrival_ms[-1], 1000.0))[0]
    assert counts.var() > 5 * counts.mean()  # far burstier than Poisson (variance == mean)
    assert np.all(np.diff(wl.arrival_ms) >= 0)


def test_trace_replayed_as_recorded(tmp_path):
    (tmp_path / "trace.csv").write_text("arrival_ms,model,service_ms\n5,a,3\n7,b,1\n7.5,a,9\n30,a,2\n")
    d = scenario(replications=1, warmup_tasks=0, strategies=["round_robin"])
    d.pop("tasks")
    d["workload"] = {"arrival": {"process": "trace", "file": str(tmp_path / "trace.csv")}}
    t = sim.run(d).tasks
    assert t["arrival_ms"].tolist() == [5, 7, 7.5, 30]
    assert t["model"].tolist() == ["a", "b", "a", "a"]
    np.testing.assert_allclose(sizes_of(t), [3, 1, 9, 2])
