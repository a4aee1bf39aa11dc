"""The feature-aware ``regression`` predictor: recursive least squares per instance, with fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler import ManualClock, Predictor, Scheduler, SpecError, replay
from scheduler.core.regression import RegressionModel, check_features, check_forgetting


def _scheduler(**opts) -> tuple[Scheduler, ManualClock]:
    clock = ManualClock()
    s = Scheduler("round_robin", predictor=Predictor("regression", **opts), clock=clock, rng=0)
    return s, clock


def _feed(s: Scheduler, clock: ManualClock, n: int, rng, a=20.0, b=0.05, cv=0.0, key="input_tokens"):
    for _ in range(n):
        tok = int(rng.integers(10, 4000))
        d = s.submit("m", metadata={key: tok})
        clock.set(clock.now_ms() + 1.0)
        speed = s.instance(d.instance_id).speed
        s.complete(d.task_id, (a + b * tok) / speed * (1 + cv * rng.standard_normal()))


def test_fits_an_affine_law_per_instance_and_scales_by_speed():
    s, clock = _scheduler()
    s.add_instance("m", instance_id="fast", speed=2.0)
    s.add_instance("m", instance_id="slow", speed=1.0)
    _feed(s, clock, 200, np.random.default_rng(1))
    for inst, speed in (("fast", 2.0), ("slow", 1.0)):
        p = s.predictor.predict_one(s.instance(inst).pool, s.instance(inst).pos, None, {"input_tokens": 1000})
        assert p[0] == pytest.approx(70.0 / speed, rel=1e-6) and p[1] == pytest.approx(0.0, abs=1e-3)
    # a task's own prediction reaches the decision
    d = s.submit("m", metadata={"input_tokens": 3000})
    assert d.predicted_ms == pytest.approx(170.0 / s.instance(d.instance_id).speed, rel=1e-6)


def test_falls_back_to_the_model_fit_then_to_online():
    s, clock = _scheduler()
    s.add_instance("m", instance_id="a")
    rng = np.random.default_rng(2)
    # cold: online's prior (no observations at all)
    d = s.submit("m", metadata={"input_tokens": 100})
    assert d.predicted_ms == pytest.approx(100.0)  # Predictor's default prior_mean_ms
    s.complete(d.task_id, 25.0)
    _feed(s, clock, 30, rng)
    # a new instance has no fit of its own: the model-level fit (speed 1 sizes) over its speed
    s.add_instance("m", instance_id="b", speed=0.5)
    pool, pos = s.instance("b").pool, s.instance("b").pos
    mean, _ = s.predictor.predict_one(pool, pos, None, {"input_tokens": 1000})
    assert mean == pytest.approx(70.0 / 0.5, rel=0.02)
    # a task without the feature: online (the mean of what was observed on the instance)
    m_online, _ = s.predictor.predict_one(pool, pos, None, {"other": 1})
    assert m_online == pytest.approx(s.predictor.predict_one(pool, pos, None, None)[0])
    assert m_online != pytest.approx(mean)


def test_error_estimate_comes_from_the_residuals():
    s, clock = _scheduler()
    s.add_instance("m", instance_id="a")
    _feed(s, clock, 3000, np.random.default_rng(3), cv=0.0, a=50, b=0.0)
    s2, clock2 = _scheduler()
    s2.add_instance("m", instance_id="a")
    rng = np.random.default_rng(3)
    for _ in range(3000):  # noise of standard deviation 10 ms around an affine law
        tok = int(rng.integers(10, 4000))
        d = s2.submit("m", metadata={"input_tokens": tok})
        clock2.set(clock2.now_ms() + 1)
        s2.complete(d.task_id, 20 + 0.05 * tok + 10 * rng.standard_normal())
    inst = s2.instance("a")
    mean, err = s2.predictor.predict_one(inst.pool, inst.pos, None, {"input_tokens": 2000})
    assert mean == pytest.approx(120, abs=2) and err == pytest.approx(10, rel=0.15)
    assert s.predictor.predict_one(s.instance("a").pool, 0, None, {"input_tokens": 5})[1] < 1e-3


def test_forgetting_follows_drift():
    s, clock = _scheduler(forgetting=0.95)
    s.add_instance("m", instance_id="a")
    rng = np.random.default_rng(4)
    _feed(s, clock, 300, rng, a=20, b=0.05)
    _feed(s, clock, 300, rng, a=40, b=0.10)  # the instance got twice as slow
    mean, _ = s.predictor.predict_one(s.instance("a").pool, 0, None, {"input_tokens": 1000})
    assert mean == pytest.approx(140, rel=0.01)


def test_other_features_and_config_round_trip():
    s, clock = _scheduler(features=["prompt"], forgetting=1.0)
    s.add_instance("m", instance_id="a")
    _feed(s, clock, 100, np.random.default_rng(5), key="prompt")
    mean, _ = s.predictor.predict_one(s.instance("a").pool, 0, None, {"prompt": 1000})
    assert mean == pytest.approx(70, rel=1e-6)
    cfg = s.predictor.config()
    assert cfg["features"] == ["prompt"] and cfg["forgetting"] == 1.0
    assert Predictor(**cfg).regression.features == ("prompt",)


def test_decisions_with_metadata_replay_identically():
    events: list[dict] = []
    clock = ManualClock()
    s = Scheduler(
        "shortest_queue", predictor=Predictor("regression"), clock=clock, rng=0, recorder=events.append
    )
    for k in range(3):
        s.add_instance("m", instance_id=f"i{k}", speed=1.0 + k)
    rng = np.random.default_rng(6)
    live = []
    for _ in range(400):
        tok = int(rng.integers(10, 4000))
        live.append(s.submit("m", metadata={"input_tokens": tok}))
        clock.set(clock.now_ms() + 5)
        if len(live) > 4:
            d = live.pop(0)
            s.complete(d.task_id, (20 + 0.05 * tok) / s.instance(d.instance_id).speed)
    report = replay(events)
    assert report.decisions == 400 and report.all_identical


def test_bad_configuration_names_the_field():
    with pytest.raises(SpecError) as exc:
        check_features([], "predictor.features")
    assert exc.value.field == "predictor.features"
    with pytest.raises(SpecError):
        check_features(["a", "a"])
    assert check_features("input_tokens") == ("input_tokens",)
    with pytest.raises(SpecError) as exc:
        check_forgetting(0.5, "predictor.forgetting")
    assert exc.value.field == "predictor.forgetting"
    with pytest.raises(SpecError):
        RegressionModel(min_samples=0)
    model = RegressionModel()
    assert (
        model.vector({"input_tokens": True}) is None and model.vector({"input_tokens": float("nan")}) is None
    )
    assert model.vector({"input_tokens": 3}).tolist() == [1.0, 3.0] and model.samples("x") == 0


def test_regression_beats_online_on_the_token_workload():
    """examples/scenarios/tokens.yaml, shortened: lower prediction MAE (intervals apart) and a lower
    p95 latency with shortest_queue (paired over replications: same arrivals, tokens and sizes)."""
    from pathlib import Path

    import sim

    scn = sim.load_scenario(Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "tokens.yaml")
    out = {}
    for mode in ("online", "regression"):
        res = sim.run(scn.with_changes({"predictor.mode": mode}), replications=4, tasks=6000)
        reps = res.replications
        out[mode] = reps[(reps["model"] == "all") & (reps["class"] == "all")].set_index("replication")
    mae = {
        m: (r["prediction_mae_ms"].mean(), sim.ci_half_width(r["prediction_mae_ms"])) for m, r in out.items()
    }
    assert mae["regression"][0] + mae["regression"][1] < mae["online"][0] - mae["online"][1], mae
    diff = out["regression"]["latency_p95_ms"] - out["online"]["latency_p95_ms"]
    assert diff.mean() + sim.ci_half_width(diff) < 0, diff.tolist()
