"""Predictor modes and the online fallback chain: instance -> model -> prior."""

import numpy as np
import pytest

from scheduler import ManualClock, Predictor, Scheduler, SpecError


def sched(pred):
    s = Scheduler("round_robin", clock=ManualClock(), rng=0, predictor=pred)
    return s


def test_online_falls_back_instance_model_prior():
    s = sched(Predictor("online", prior_mean_ms=100, prior_std_ms=30, min_samples=2))
    a = s.add_instance("m", instance_id="a")
    b = s.add_instance("m", instance_id="b", speed=2.0)
    assert s.prediction(a).expected_ms == 100 and s.prediction(a).error_ms == 30
    assert s.prediction(b).expected_ms == 50  # the prior, on hardware twice as fast
    for x in (10.0, 30.0):  # learned on a (speed 1)
        d = s.submit("m")
        while d.instance_id != a:
            s.complete(d.task_id, 1.0) if False else s.fail(d.task_id, "skip")
            d = s.submit("m")
        s.complete(d.task_id, x)
    pa = s.prediction(a)
    assert pa.expected_ms == pytest.approx(20.0) and pa.error_ms == pytest.approx(np.std([10, 30], ddof=1))
    # b has no samples of its own: the model-level mean (normalised to speed 1) over b's speed
    assert s.prediction(b).expected_ms == pytest.approx(20.0 / 2)


def test_online_learns_only_from_completions():
    s = sched(Predictor("online", prior_mean_ms=100, prior_std_ms=0, min_samples=1))
    a = s.add_instance("m")
    d = s.submit("m")
    s.fail(d.task_id, "boom", execution_ms=5.0)
    assert s.prediction(a).expected_ms == 100
    d = s.submit("m")
    s.complete(d.task_id, 40.0)
    assert s.prediction(a).expected_ms == 40.0


def test_oracle_knows_distribution_and_speed():
    p = Predictor("oracle", oracle={"m": {"dist": "exponential", "mean_ms": 80}})
    s = sched(p)
    a = s.add_instance("m", speed=0.5)
    pr = s.prediction(a)
    assert (pr.expected_ms, pr.error_ms) == (160.0, 160.0)
    assert pr.quantile(0.5) == pytest.approx(160 * np.log(2))
    s.add_instance("other")
    with pytest.raises(SpecError, match="oracle.other"):
        s.submit("other")


def test_lookup_table_per_model_and_instance():
    table = {"m": {"mean_ms": 10, "std_ms": 2, "instances": {"fast": {"mean_ms": 4, "std_ms": 1}}}}
    s = sched(Predictor("lookup_table", lookup_table=table))
    f = s.add_instance("m", name="fast")
    g = s.add_instance("m", name="plain")
    assert s.prediction(f).expected_ms == 4 and s.prediction(g).expected_ms == 10
    assert s.prediction(f).quantile(0.5) < 4  # lognormal median below the mean


def test_lookup_table_mode_needs_a_table_and_validates_it():
    with pytest.raises(SpecError, match="lookup_table"):
        Predictor("lookup_table")
    with pytest.raises(SpecError, match=r"lookup_table\.m\.mean_ms"):
        Predictor(lookup_table={"m": {"mean_ms": -1}})
    with pytest.raises(SpecError, match=r"lookup_table\.m\.bogus"):
        Predictor(lookup_table={"m": {"mean_ms": 1, "bogus": 2}})


def test_clairvoyant_uses_true_size_over_speed():
    s = sched(Predictor("clairvoyant"))
    s.add_instance("m", speed=4.0)
    d = s.submit("m", size_ms=100.0)
    assert (d.predicted_ms, d.predicted_error_ms) == (25.0, 0.0)
    with pytest.raises(SpecError, match="size_ms"):
        s.submit("m")


def test_set_lookup_table_later_applies_to_existing_instances():
    p = Predictor("online")
    s = sched(p)
    a = s.add_instance("m", name="x")
    p.set_lookup_table({"m": {"mean_ms": 9, "std_ms": 1}})
    s.set_predict_mode("lookup_table")
    assert s.prediction(a).expected_ms == 9


def test_welford_matches_numpy():
    from scheduler import Welford

    xs = np.random.default_rng(3).lognormal(3.0, 1.0, 500) + 1e6  # a large offset: stable all the same
    w = Welford()
    assert (w.n, w.mean, w.std) == (0, 0.0, 0.0)
    for x in xs:
        w.add(float(x))
    assert w.n == 500
    assert w.mean == pytest.approx(xs.mean(), rel=1e-12)
    assert w.std == pytest.approx(xs.std(ddof=1), rel=1e-9)
    batched = Welford()
    batched.add(float(xs[0]))
    batched.extend(xs[1:].tolist())  # the same operations in one call: bit-identical
    assert (batched.n, batched.mean, batched.m2) == (w.n, w.mean, w.m2)


def test_a_fixed_mode_is_kept_and_oracle_then_learns_nothing():
    def run(mode, fixed):
        pred = Predictor(mode, oracle={"m": {"dist": "exponential", "mean_ms": 10}}, fixed_mode=fixed)
        s = Scheduler("shortest_queue", predictor=pred, clock=ManualClock(), rng=0)
        s.add_instance("m")
        for k in range(5):
            s.place("m", str(k), 10.0)
            s.finish(str(k), 10.0)
        return pred

    assert run("oracle", True).observations("m") == 0  # nothing reads it: not learned
    assert run("oracle", False).observations("m") == 5  # a later switch to online would read it
    assert run("online", True).observations("m") == 5
    with pytest.raises(SpecError, match="fixed"):
        run("oracle", True).set_mode("online")
    run("oracle", True).set_mode("oracle")  # the same mode is no change


def test_online_predictions_follow_instances_added_and_grown_arrays():
    """The kept read-only views of the online predictions follow the pool: more instances
    (past the arrays' first capacity), and values learned after the views were handed out."""
    pred = Predictor("online", min_samples=1)
    s = sched(pred)
    s.add_instance("m", instance_id="i0")
    pool = s.instance("i0").pool
    s.complete(s.submit("m").task_id, 7.0)
    mean, _ = pred.predict(pool, None)
    assert mean.tolist() == [7.0] and not mean.flags.writeable
    for k in range(1, 20):  # past the first capacity: the arrays grow
        s.add_instance("m", instance_id=f"i{k}")
        for _ in range(k + 1):  # round robin: each instance its turn, the new one learns k
            d = s.submit("m")
            s.complete(
                d.task_id, float(k) if d.instance_id == f"i{k}" else s.prediction(d.instance_id).expected_ms
            )
        mean, std = pred.predict(pool, None)
        assert mean.size == std.size == k + 1
        assert mean[k] == k and mean[0] == 7.0
    old = pred.predict(pool, None)[0].copy()
    d = s.submit("m")
    s.complete(d.task_id, 1000.0)  # learned after the views were handed out
    after, _ = pred.predict(pool, None)
    pos = s.instance(d.instance_id).pos
    assert after[pos] > old[pos] and np.delete(after, pos).tolist() == np.delete(old, pos).tolist()
