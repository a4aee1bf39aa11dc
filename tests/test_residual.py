"""Residual life: closed forms against Monte Carlo, the tables, the fitted shapes, and
the time-aware queue estimates that use them (injected clock, no timing luck)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scheduler import (
    Deterministic,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    ManualClock,
    Predictor,
    Scheduler,
    SpecError,
    Uniform,
)
from scheduler.core.residual import ResidualTable, fit_shape, residual_moments
from scheduler.core.shapes import SHAPE_MIN_SAMPLES

DISTS = [
    Exponential(100.0),
    LogNormal(100.0, 2.0),
    LogNormal(100.0, 0.5),
    Gamma(100.0, 0.5),
    Gamma(100.0, 2.0),
    Uniform(50.0, 150.0),
    Deterministic(100.0),
    Empirical(np.random.default_rng(9).exponential(100.0, 500)),
]


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: f"{d.name}-{d.std_ms / d.mean_ms:.2g}")
def test_residual_moments_match_monte_carlo(dist):
    x = dist.sample(np.random.default_rng(1), 400_000)
    for age in (0.0, 30.0, 100.0, 250.0):
        left = x[x > age] - age
        if left.size < 5000:
            continue
        m, v = residual_moments(dist, age)
        se = left.std() / math.sqrt(left.size)
        assert abs(m - left.mean()) < 5 * se + 1e-9, (dist, age, m, left.mean())
        assert math.sqrt(v) == pytest.approx(left.std(), rel=0.05, abs=1e-9), (dist, age)


def test_residual_life_by_family():
    # memoryless: the full mean at every age
    assert residual_moments(Exponential(100.0), 1e4) == (100.0, 1e4)
    # heavy tail: the longer it ran, the longer it will run; light tail: shorter, never zero
    heavy = [residual_moments(LogNormal(100.0, 2.0), a)[0] for a in (0, 100, 1000, 1e5)]
    assert heavy == sorted(heavy) and heavy[-1] > 1e4
    light = [residual_moments(Gamma(100.0, 0.5), a)[0] for a in (0, 100, 300, 1e4)]
    assert light == sorted(light, reverse=True) and light[-1] == pytest.approx(25.0, rel=0.01)
    # bounded support: overdue means done
    assert residual_moments(Deterministic(100.0), 150.0) == (0.0, 0.0)
    assert residual_moments(Uniform(50.0, 150.0), 160.0) == (0.0, 0.0)
    # a scaled distribution scales its residual
    m, v = residual_moments(LogNormal(100.0, 2.0).scaled(2.0), 200.0)
    m1, v1 = residual_moments(LogNormal(100.0, 2.0), 100.0)
    assert (m, v) == pytest.approx((2 * m1, 4 * v1))


def test_table_reads_close_to_the_closed_form():
    dist = LogNormal(100.0, 2.0)
    table = ResidualTable(dist)
    for age in (0.0, 10.0, 100.0, 1000.0, 10_000.0):
        g, h = table.at(age / 100.0)
        m, v = residual_moments(dist, age)
        assert 100.0 * g == pytest.approx(m, rel=0.01)
        assert 1e4 * h == pytest.approx(v, rel=0.02)
    assert not table.g.flags.writeable


@pytest.mark.parametrize(
    "dist, family",
    [
        (LogNormal(100.0, 2.0), "lognormal"),
        (LogNormal(100.0, 0.5), "lognormal"),
        (Exponential(100.0), "gamma"),
        (Gamma(100.0, 0.5), "gamma"),
    ],
)
def test_fit_shape_picks_the_family_and_its_cv(dist, family):
    x = dist.sample(np.random.default_rng(4), 5000)
    shape = fit_shape(float(x.mean()), float(np.log(x).mean()), float(np.log(x).var(ddof=1)))
    true_cv = dist.std_ms / dist.mean_ms
    assert shape.name == family and shape.mean_ms == 1.0
    assert shape.std_ms == pytest.approx(true_cv, abs=0.1 * true_cv + 0.05)
    assert fit_shape(100.0, math.log(100.0), 1e-6) is None  # no spread: the countdown


def make(mode="oracle", dist=None, **kw):
    clock = ManualClock()
    pred = Predictor(mode, oracle={"m": dist or Exponential(100.0)}, **kw)
    s = Scheduler("shortest_queue", clock=clock, rng=0, predictor=pred)
    return s, clock


def test_an_exponential_running_task_keeps_its_full_mean():
    s, clock = make("oracle", Exponential(100.0))
    s.add_instance("m", instance_id="a")
    s.submit("m")
    for t in (0, 50, 99, 100, 500):
        clock.set(t)
        (q,) = s.queue_info()
        assert q.wait_mean_ms == pytest.approx(100.0, rel=0.001)
        assert q.wait_std_ms == pytest.approx(100.0, rel=0.002)


@pytest.mark.parametrize("dist", [Exponential(100.0), LogNormal(100.0, 1.5)])
def test_a_decision_reports_the_wait_its_strategy_saw_before_the_task_joined(dist):
    """The wait estimates are kept arrays, some updated in place by the events (a flat table's):
    a decision reports the wait at its choice as the strategy saw it, not after assigning."""
    s, clock = make("oracle", dist)
    s.add_instance("m", instance_id="a")
    s.add_instance("m", instance_id="b")
    assert [s.submit("m").wait_ms for _ in range(2)] == [0.0, 0.0]  # idle instances
    for t in (10.0, 20.0):
        clock.set(t)
        before = {q.instance_id: q.wait_mean_ms for q in s.queue_info()}
        d = s.submit("m")
        assert d.wait_ms == before[d.instance_id] > 0.0


def test_an_overdue_heavy_tailed_task_gets_longer_and_never_zero():
    s, clock = make("oracle", LogNormal(100.0, 2.0))
    s.add_instance("m", instance_id="a")
    s.add_instance("m", instance_id="b")
    s.submit("m", task_id="old")  # on one of them
    clock.set(400.0)
    s.submit("m", task_id="young")  # the other one is free: it goes there
    clock.set(450.0)
    waits = {q.instance_id: q.wait_mean_ms for q in s.queue_info()}
    old = s.task("old").instance_id
    young = s.task("young").instance_id
    assert waits[old] > waits[young] > 0  # the old task is expected to run longer
    assert waits[old] == pytest.approx(residual_moments(LogNormal(100.0, 2.0), 450.0)[0], rel=0.01)
    # a third task goes to the young one, although the old one started earlier
    assert s.submit("m").instance_id == young
    clock.set(1e6)
    assert all(q.wait_mean_ms > 0 for q in s.queue_info())


def test_wait_variance_uses_the_residual_variance_and_queued_predictions():
    s, clock = make("oracle", LogNormal(100.0, 0.5))
    s.add_instance("m", instance_id="a", replicas=2)
    for _ in range(3):
        s.submit("m")
    clock.set(80.0)
    (q,) = s.queue_info()
    m, v = residual_moments(LogNormal(100.0, 0.5), 80.0)
    assert q.wait_mean_ms == pytest.approx((2 * m + 100.0) / 2, rel=0.01)
    assert q.wait_std_ms**2 == pytest.approx((2 * v + 50.0**2) / 4, rel=0.02)


def test_countdown_remains_where_nothing_is_known():
    s, clock = make("clairvoyant")
    s.add_instance("m", instance_id="a")
    s.submit("m", size_ms=100.0)
    clock.set(60.0)
    assert s.queue_info()[0].wait_mean_ms == pytest.approx(40.0)
    clock.set(160.0)
    assert s.queue_info()[0].wait_mean_ms == 0.0  # overdue: the countdown clamps (sizes are exact)


def test_online_learns_a_shape_then_uses_it():
    s, clock = make("online", min_samples=3)
    s.add_instance("m", instance_id="a")
    rng = np.random.default_rng(3)
    assert s.predictor.shape("m") is None
    for size in rng.lognormal(4.0, 1.27, SHAPE_MIN_SAMPLES):
        d = s.submit("m")
        clock.advance(float(size))
        s.complete(d.task_id, float(size))
    shape = s.predictor.shape("m")
    assert shape is not None and shape.name == "lognormal"
    d = s.submit("m")
    p = s.prediction("a")
    assert p.dist is not None and p.dist.mean_ms == pytest.approx(p.expected_ms)
    clock.advance(10 * p.expected_ms)  # long overdue: heavy tail, so more than the mean is left
    assert s.queue_info()[0].wait_mean_ms > p.expected_ms
    s.set_predict_mode("clairvoyant")
    assert s.queue_info()[0].wait_mean_ms == 0.0  # back to the countdown, which clamps
    s.complete(d.task_id, 1.0)


def test_lookup_table_dist_and_cv():
    table = {
        "m": {"mean_ms": 100, "std_ms": 200, "dist": "lognormal"},
        "g": {"mean_ms": 50, "dist": "gamma", "cv": 0.5},
        "e": {"mean_ms": 10, "dist": "exponential"},
        "d": {"mean_ms": 10, "dist": "deterministic"},
        "x": {"mean_ms": 10, "std_ms": 1},
    }
    p = Predictor("lookup_table", lookup_table=table)
    assert p.shape("m") == LogNormal(1.0, 2.0)
    assert p.shape("g") == Gamma(1.0, 0.5)
    assert p.shape("e") == Exponential(1.0)
    assert p.shape("d") is None and p.shape("x") is None
    for entry, field in [
        ({"mean_ms": 1, "dist": "weibull"}, "lookup_table.m.dist"),
        ({"mean_ms": 1, "dist": "gamma", "cv": -1}, "lookup_table.m.cv"),
        ({"mean_ms": 1, "cv": 1}, "lookup_table.m.cv"),
    ]:
        with pytest.raises(SpecError) as e:
            Predictor("lookup_table", lookup_table={"m": entry})
        assert e.value.field == field


def test_scenario_files_can_switch_residual_life_off():
    from sim.engine import build_predictor
    from sim.scenario import Scenario

    spec = {
        "models": {"m": {"service_time": {"dist": "lognormal", "mean_ms": 100, "cv": 2}}},
        "instances": [{"model": "m", "count": 2}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 10}},
        "tasks": 100,
        "predictor": {"mode": "oracle"},
    }
    assert build_predictor(Scenario.from_dict(spec)).shape("m") == LogNormal(100.0, 2.0)
    spec["predictor"]["residual"] = False
    pred = build_predictor(Scenario.from_dict(spec))
    assert pred.shape("m") is None and pred.config()["residual"] is False
    spec["predictor"]["residual"] = "no"
    with pytest.raises(SpecError, match="predictor.residual"):
        Scenario.from_dict(spec)


def test_prediction_residual_uses_the_distribution_or_counts_down():
    s, clock = make("oracle", LogNormal(100.0, 2.0))
    s.add_instance("m", instance_id="a", speed=2.0)
    p = s.prediction("a")
    assert p.residual(100.0) == pytest.approx(residual_moments(LogNormal(50.0, 2.0), 100.0))
    s.set_predict_mode("clairvoyant")
    q = s.prediction("a", size_ms=80.0)
    assert q.dist is None and q.residual(30.0) == (10.0, 0.0)


def test_queue_estimates_match_a_direct_computation_on_mixed_replicas():
    """Random submits and completions on instances of 1, 3 and 2 replicas (the pool widens),
    checked at every step against the estimate computed task by task from the closed forms."""
    dist = LogNormal(100.0, 1.5)
    s, clock = make("oracle", dist)
    for iid, c in (("a", 1), ("b", 3), ("c", 2)):
        s.add_instance("m", instance_id=iid, replicas=c)
    rng = np.random.default_rng(11)
    started: dict[str, float] = {}
    live: list[str] = []
    for step in range(300):
        clock.advance(float(rng.exponential(30.0)))
        if live and rng.random() < 0.45:
            s.complete(live.pop(int(rng.integers(len(live)))), 1.0)
        else:
            live.append(s.submit("m", task_id=f"t{step}").task_id)
        for inst in (s.instance(i) for i in "abc"):
            c, now = inst.replicas, clock.now_ms()
            for tid in inst.running:  # tasks started from the queue begin when they leave it
                started.setdefault(tid, now)
            res = [residual_moments(dist, now - started[t]) for t in inst.running]
            pend = [m for m, _ in inst.pending.values()]
            busy = len(inst.running) >= c
            if not busy:
                mean = var = 0.0
            elif not pend:
                mean, var = min(m for m, _ in res), sum(v for _, v in res) / c**2
            else:
                mean = (sum(m for m, _ in res) + sum(pend)) / c
                var = (sum(v for _, v in res) + sum(v for _, v in inst.pending.values())) / c**2
            w = s.wait_estimate(inst.instance_id)
            assert w.mean_ms == pytest.approx(mean, rel=0.02, abs=1e-9), (step, inst.instance_id)
            assert w.std_ms**2 == pytest.approx(var, rel=0.05, abs=1e-9), (step, inst.instance_id)


def test_a_task_queued_at_the_same_instant_counts_in_the_next_decision():
    """One replica each, a selection of candidates (one instance unhealthy), two submits at one
    instant: the second sees the task the first queued (the per-instant estimate is not reused)."""
    dist = LogNormal(100.0, 1.5)
    s, clock = make("oracle", dist)
    for iid in "ac":
        s.add_instance("m", instance_id=iid)
    s.set_healthy("c", False)
    assert s.submit("m").instance_id == "a"  # a runs from 0 ...
    clock.advance(40.0)
    s.add_instance("m", instance_id="b")
    assert s.submit("m").instance_id == "b"  # ... b from 40
    clock.advance(10.0)
    resid_a, resid_b = residual_moments(dist, 50.0)[0], residual_moments(dist, 10.0)[0]
    assert resid_b < resid_a < resid_b + 100.0
    first, second = s.submit("m"), s.submit("m")  # the same instant
    assert (first.instance_id, first.wait_ms) == ("b", pytest.approx(resid_b, rel=0.02))
    # b now has 100 ms queued: a is the shorter queue
    assert (second.instance_id, second.wait_ms) == ("a", pytest.approx(resid_a, rel=0.02))


@pytest.mark.parametrize(
    "dist", [LogNormal(100.0, 1.5), Exponential(100.0)], ids=["lognormal", "exponential"]
)
def test_two_replicas_kept_estimate_equals_the_general_one_bit_for_bit(dist):
    """Two replicas each: every position's wait, kept per instant (one pass for the mean, the
    variance when first read), is bit for bit the general computation over a selection of all of them,
    through random submits and completions, several at one instant."""
    s, clock = make("oracle", dist)
    for iid in "abcde":
        s.add_instance("m", instance_id=iid, replicas=2)
    pool = s.instance("a").pool
    every = np.arange(pool.n)
    rng = np.random.default_rng(3)
    live: list[str] = []
    for step in range(400):
        if rng.random() < 0.7:
            clock.advance(float(rng.exponential(20.0)))
        if live and rng.random() < 0.45:
            s.complete(live.pop(int(rng.integers(len(live)))), 1.0)
        else:
            live.append(s.submit("m", task_id=f"t{step}").task_id)
        now = clock.now_ms()
        if step % 2:  # either read first (the variance is computed when first read)
            kept_mean, kept_var = pool.wait_mean(now), pool.wait_var(now)
        else:
            kept_var, kept_mean = pool.wait_var(now), pool.wait_mean(now)
        assert pool._kept is not None and kept_mean is pool._kept[0]  # the kept path was taken
        assert np.array_equal(kept_mean, pool.wait_mean(now, every)), step
        assert np.array_equal(kept_var, pool.wait_var(now, every)), step
