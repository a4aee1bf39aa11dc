"""sim calibrate: fit network delays, service times and speeds from a run's records.

The truth is known when the run is simulated (``write_simulated_run``: the
simulator's records written as a live run's, the hops from the drawn delays),
so calibration must recover it.  Tolerances, for about 5,600 measured tasks
(about 3,300 of model ``a`` and 2,300 of ``b``): means within 5%, coefficients
of variation within 10% (15% for the gamma-distributed notify delay and the
token model's noise), token coefficients within 15%, speeds within 1%.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import sim
from scheduler import SpecError, from_spec
from sim import cli
from sim.fidelity.calibrate import calibrate, load_run, write_simulated_run
from sim.fidelity.calibrate_report import evaluate, report_text
from sim.fitting import fit_distribution, fit_tokens, ks_statistic

TRUTH = {
    "name": "truth",
    "seed": 3,
    "tasks": 3000,
    "warmup_tasks": 200,
    "strategies": ["least_requests", "random"],
    "models": {
        "a": {"service_time": {"dist": "lognormal", "mean_ms": 50, "cv": 0.6}},
        "b": {
            "service_time": {
                "dist": "tokens",
                "base_ms": 20,
                "per_input_token_ms": 0.02,
                "per_output_token_ms": 0.5,
                "cv": 0.3,
            }
        },
    },
    "instances": [
        {"model": "a", "count": 2, "speed": 1.0},
        {"model": "a", "count": 2, "speed": 0.5},
        {"model": "b", "count": 2, "speed": 1.0},
        {"model": "b", "count": 1, "speed": 0.5},
    ],
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 50},
        "mix": {"a": 0.6, "b": 0.4},
        "tokens": {
            "input": {"dist": "lognormal", "mean": 800, "cv": 1.0},
            "output": {"dist": "lognormal", "mean": 60, "cv": 1.0},
        },
    },
    "network": {
        "dispatch_ms": {"dist": "lognormal", "mean_ms": 2.0, "cv": 0.5},
        "notify_ms": {"dist": "gamma", "mean_ms": 1.0, "cv": 0.3},
    },
}


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory):
    return write_simulated_run(TRUTH, tmp_path_factory.mktemp("run"))


def _close(got, want, rel):
    assert got == pytest.approx(want, rel=rel), (got, want)


def test_calibration_recovers_known_delays_and_distributions(simulated_run):
    cal = calibrate(simulated_run)
    d, n = cal.network["dispatch_ms"], cal.network["notify_ms"]
    assert d.family == "lognormal" and d.ks < 0.03
    _close(d.spec["mean_ms"], 2.0, 0.05)
    _close(d.spec["cv"], 0.5, 0.10)
    assert n.family in ("gamma", "lognormal") and n.ks < 0.03  # at cv 0.3 the two are close
    _close(n.spec["mean_ms"], 1.0, 0.05)
    _close(n.spec["cv"], 0.3, 0.15)

    a = cal.models["a"]
    assert a.family == "lognormal" and a.ks < 0.03
    _close(a.spec["mean_ms"], 50.0, 0.05)
    _close(a.spec["cv"], 0.6, 0.10)
    b = cal.models["b"].spec
    assert b["dist"] == "tokens"
    for key, want in (
        ("base_ms", 20),
        ("per_input_token_ms", 0.02),
        ("per_output_token_ms", 0.5),
        ("cv", 0.3),
    ):
        _close(b[key], want, 0.15)

    speeds = cal.instances.set_index("instance")
    _close(speeds["speed"].to_numpy(), speeds["nominal_speed"].to_numpy(), 0.01)
    assert not cal.speeds_written  # every instance at its nominal speed: the groups are kept
    scn = cal.scenario
    assert scn.spec["instances"] == TRUTH["instances"] or len(scn.instances) == 7
    assert scn.spec["network"]["dispatch_ms"] == d.spec and scn.model_names == ["a", "b"]


def test_the_calibrated_simulation_reproduces_the_run(simulated_run):
    cal = calibrate(simulated_run)
    ev = evaluate(cal)
    # the run's own tasks replayed with the fitted delays: only the delay draws differ
    assert (ev.errors.set_index("percentile")["error"] < 0.03).all(), ev.errors
    assert ev.mape < 0.10
    assert ev.ranking["same_winner"].all() and (ev.ranking["kendall_tau"] == 1.0).all()
    # without the delays the simulation is faster than the run: calibration removes that bias
    before = ev.errors.set_index("percentile")
    assert (
        before.loc["p50", "bias_before"] < 0
        and before.loc["p50", "error_before"] > before.loc["p50", "error"]
    )
    assert not ev.near_saturation
    text = report_text(cal, ev)
    for part in ("network (fitted over every task)", "per-task latency MAPE", "Kendall's tau", "p90", "bias"):
        assert part in text


def test_a_run_near_saturation_is_flagged(tmp_path):
    busy = dict(
        TRUTH,
        tasks=1500,
        warmup_tasks=100,
        workload=dict(TRUTH["workload"], arrival={"process": "poisson", "rate_per_s": 88}),
    )
    cal = calibrate(write_simulated_run(busy, tmp_path))
    ev = evaluate(cal)
    assert ev.near_saturation and max(ev.loads.values()) >= 0.85
    assert "near saturation" in report_text(cal, ev)


def test_calibrate_cli_writes_a_scenario_and_prints_the_report(simulated_run, tmp_path, capsys):
    out = tmp_path / "calibrated.yaml"
    assert cli.main(["calibrate", str(simulated_run), "--out", str(out), "--p50-target", "8"]) == 0
    printed = capsys.readouterr().out
    assert "targets (p50 within 8%, p95 within 10%)" in printed and "per-task latency MAPE" in printed
    assert "ranking by mean latency" in printed and f"written to {out}" in printed
    text = out.read_text()
    assert text.startswith("# Calibrated by python -m sim calibrate")
    scn = sim.load_scenario(out)
    assert set(yaml.safe_load(text)["network"]) == {"dispatch_ms", "notify_ms"} and scn.name == "truth"
    assert cli.main(["calibrate", str(tmp_path / "nothing")]) == 2
    assert "sim twin" in capsys.readouterr().err


def test_load_run_names_what_is_missing(tmp_path):
    (tmp_path / "scenario.yaml").write_text("{}")
    with pytest.raises(SpecError) as e:
        load_run(tmp_path)
    assert e.value.field == "RUN_DIR" and "live_hops.csv" in e.value.accepted


def test_fits_and_their_goodness():
    rng = np.random.default_rng(1)
    x = rng.gamma(4.0, 5.0, 4000)  # mean 20, cv 0.5
    fit = fit_distribution(x)
    assert fit.family == "gamma" and fit.ks < 0.03 and fit.candidates["exponential"] > 0.1
    _close(fit.spec["mean_ms"], 20.0, 0.03)
    assert ks_statistic(x, from_spec({"dist": "deterministic", "value_ms": 20})) > 0.4
    # two modes: no family fits, so the empirical distribution is written, and it fits
    both = np.concatenate([rng.normal(5, 0.2, 2000), rng.normal(50, 1, 2000)])
    emp = fit_distribution(both)
    assert emp.family == "empirical" and emp.ks < 0.01 and len(emp.spec["values_ms"]) == 200
    assert "best parametric" in emp.describe()
    # token model: the affine part and the noise recovered
    i, o = rng.lognormal(6, 1, 3000), rng.lognormal(3, 1, 3000)
    y = (10 + 0.01 * i + 2.0 * o) * rng.lognormal(-0.5 * 0.2**2, 0.2, 3000)
    tf, mean = fit_tokens(y, i, o)
    _close(tf.spec["per_output_token_ms"], 2.0, 0.05)
    _close(tf.spec["cv"], 0.2, 0.1)
    assert mean.shape == y.shape


def test_per_strategy_delays_replay_each_runs_own(simulated_run, tmp_path):
    # make the second strategy's run see ten times the delays, as on a machine that got busy
    import pandas as pd

    run = load_run(simulated_run)
    slow = run.hops["strategy"] == "random"
    for k in ("dispatch_ms", "notify_ms"):
        run.hops.loc[slow, k] *= 10.0
    run.tasks = run.tasks.merge(
        run.hops[["strategy", "task_id", "dispatch_ms", "notify_ms"]], on=["strategy", "task_id"]
    )
    extra = (run.tasks["strategy"] == "random") * (run.tasks["dispatch_ms"] + run.tasks["notify_ms"]) * 0.9
    run.tasks["latency_ms"] += extra
    run.tasks["finish_ms"] += extra
    cal = calibrate(run)
    pooled, matched = evaluate(cal), evaluate(cal, delays="per_strategy")
    text = report_text(cal, matched)
    assert "the delays changed between the strategies' runs" in text and "drawn from its own run" in text
    assert set(matched.delays.index) == {"least_requests", "random"}
    by = {
        name: ev.comparison.set_index(["strategy", "percentile"])["relative_difference"]
        for name, ev in (("pooled", pooled), ("matched", matched))
    }
    # pooled delays are too long for the quiet run and too short for the busy one; matched fit both
    assert by["pooled"][("least_requests", "p50")] > 0.03 and by["pooled"][("random", "p50")] < -0.03
    assert (
        abs(by["matched"][("least_requests", "p50")]) < 0.03 and abs(by["matched"][("random", "p50")]) < 0.03
    )
    assert isinstance(matched.delays, pd.DataFrame)


def test_replayed_delays_put_each_tasks_own_back(simulated_run):
    cal = calibrate(simulated_run)
    ev = evaluate(cal, delays="replayed")
    assert (ev.errors.set_index("percentile")["error"] < 0.03).all(), ev.errors
    # each measured task gets its own delays back; the warm-up's are drawn, which a state-blind
    # strategy (random: the same draws in both runs) forgets once the warm-up's queues have drained
    live = load_run(simulated_run).tasks.set_index(["strategy", "task_id"])["latency_ms"]
    sim_ = ev.sim_tasks.assign(strategy=ev.sim_tasks["strategy"].astype(str)).set_index(
        ["strategy", "task_id"]
    )
    later = live.loc["random"].index[live.loc["random"].index >= 400]
    a, b = sim_.loc["random"].loc[later, "latency_ms"].to_numpy(), live.loc["random"].loc[later].to_numpy()
    assert np.mean(np.abs(a - b) <= 1e-3 * b) > 0.99  # the rest: near-ties at an instance, broken otherwise
    assert "each task's own live delays replayed" in report_text(cal, ev)
    with pytest.raises(SpecError) as e:
        evaluate(cal, delays="sometimes")
    assert e.value.field == "delays"
