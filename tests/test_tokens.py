"""Token-sized tasks: the token service model, token distributions, and per-class SLO results."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from scheduler import SpecError
from scheduler.core.tokens import TokenService, token_count
from sim.tokens import parse_token_dist

SPEC = {"dist": "tokens", "base_ms": 25, "per_input_token_ms": 0.02, "per_output_token_ms": 1.5, "cv": 0.4}


def test_token_service_mean_and_cv_come_out_as_configured():
    """Conformance: for fixed tokens the size's mean is the affine part and its cv the configured cv."""
    ts = TokenService.from_spec(SPEC)
    rng = np.random.default_rng(11)
    n = 400_000
    for i, o in ((800, 120), (3000, 10), (0, 0)):
        x = ts.sample(rng, np.full(n, i), np.full(n, o))
        mean = 25 + 0.02 * i + 1.5 * o
        se = mean * 0.4 / math.sqrt(n)
        assert abs(x.mean() - mean) < 5 * se
        assert x.std() / x.mean() == pytest.approx(0.4, rel=0.02)
    # over a token population: the marginal the oracle is given matches the sampled sizes
    inp = np.round(rng.lognormal(6.0, 1.0, n))
    out = np.round(rng.lognormal(4.0, 0.8, n))
    x = ts.sample(rng, inp, out)
    marginal = ts.marginal(inp.mean(), inp.var(), out.mean(), out.var())
    assert marginal.mean_ms == pytest.approx(x.mean(), rel=0.01)
    assert marginal.std_ms == pytest.approx(x.std(), rel=0.03)


def test_token_service_deterministic_and_from_metadata():
    ts = TokenService.from_spec({**SPEC, "cv": 0})
    assert ts.sample_one(np.random.default_rng(0), {"input_tokens": 100, "output_tokens": 10}) == 25 + 2 + 15
    assert ts.sample_one(np.random.default_rng(0), None) == 25
    assert TokenService.from_spec(ts.to_spec()) == ts
    with pytest.raises(SpecError, match="metadata.input_tokens"):
        token_count({"input_tokens": "many"}, "input_tokens")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"cv": -1}, "service_time.cv"),
        ({"per_token_ms": 1}, "service_time.per_token_ms"),
        ({"base_ms": True}, "service_time.base_ms"),
        ({"base_ms": 0, "per_input_token_ms": 0, "per_output_token_ms": 0}, "service_time"),
    ],
)
def test_token_service_errors_name_the_field(change, field):
    with pytest.raises(SpecError) as exc:
        TokenService.from_spec({**SPEC, **change})
    assert exc.value.field == field


def test_token_distributions_use_counts_not_ms():
    spec, dist = parse_token_dist({"dist": "lognormal", "mean": 800, "cv": 1.0}, "workload.tokens.input")
    assert dist.mean_ms == 800 and spec["mean"] == 800
    for bad, field in (
        ({"dist": "lognormal", "mean_ms": 800, "cv": 1}, "workload.tokens.input.mean_ms"),
        ({"dist": "lognormal", "mean": -1, "cv": 1}, "workload.tokens.input.mean"),
        ({"dist": "uniform", "low": 5, "high": 1}, "workload.tokens.input.high"),
        ("800", "workload.tokens.input"),
    ):
        with pytest.raises(SpecError) as exc:
            parse_token_dist(bad, "workload.tokens.input")
        assert exc.value.field == field


def tokens_scenario(**extra) -> dict:
    d = {
        "seed": 3,
        "tasks": 4000,
        "warmup_tasks": 100,
        "strategies": ["round_robin"],
        "models": {"chat": {"service_time": dict(SPEC, cv=0.2)}},
        "instances": [{"model": "chat", "count": 4}],
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": 10},
            "tokens": {
                "input": {"dist": "lognormal", "mean": 800, "cv": 1.0},
                "output": {"dist": "gamma", "mean": 60, "cv": 0.5},
            },
        },
    }
    d.update(extra)
    return d


def test_synthetic_tokens_size_the_tasks_and_reach_the_results():
    res = sim.run(tokens_scenario())
    t = res.tasks
    assert {"input_tokens", "output_tokens"} <= set(t.columns) and "class" not in t.columns
    assert t["input_tokens"].mean() == pytest.approx(800, rel=0.08)
    assert t["output_tokens"].mean() == pytest.approx(60, rel=0.05)
    assert (t["input_tokens"] >= 1).all() and (t["input_tokens"] % 1 == 0).all()
    # the size follows the tokens: service / affine part has mean 1 and cv 0.2
    ratio = t["service_ms"] / (25 + 0.02 * t["input_tokens"] + 1.5 * t["output_tokens"])
    assert ratio.mean() == pytest.approx(1.0, abs=0.02) and ratio.std() == pytest.approx(0.2, rel=0.1)
    # common random numbers: the same tokens and sizes for every strategy
    both = sim.run(tokens_scenario(strategies=["round_robin", "shortest_queue"])).tasks
    a, b = (g.sort_values("task_id") for _, g in both.groupby("strategy", observed=True))
    assert a["input_tokens"].tolist() == b["input_tokens"].tolist()
    assert a["service_ms"].tolist() == b["service_ms"].tolist()


def test_token_model_needs_token_counts():
    d = tokens_scenario()
    del d["workload"]["tokens"]
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(d)
    assert exc.value.field == "workload.tokens"
    # the oracle knows the size's mean over the token population
    scn = sim.load_scenario(tokens_scenario(predictor={"mode": "oracle"}))
    assert scn.distributions["chat"].mean_ms == pytest.approx(25 + 0.02 * 800 + 1.5 * 60)


def test_per_class_slo_attainment_and_goodput():
    two = {
        "chat": {"service_time": dict(SPEC, cv=0.2)},
        "big": {"service_time": {"dist": "exponential", "mean_ms": 300}},
        "bulk": {"service_time": {"dist": "exponential", "mean_ms": 50}},
    }
    d = tokens_scenario(
        models=two,
        instances=[{"model": m, "count": 3} for m in two],
        classes={"chat": "interactive", "big": "interactive", "bulk": "batch"},
        slo={"interactive": {"latency_ms": 300}},
        strategies=["round_robin", "shortest_queue"],
        replications=2,
    )
    d["workload"]["mix"] = {"chat": 0.5, "big": 0.2, "bulk": 0.3}
    res = sim.run(d)
    t, s = res.tasks, res.summary
    assert set(t["class"].astype(str)) == {"interactive", "batch"}
    assert (t.loc[t["model"] == "bulk", "class"] == "batch").all()
    reps = res.replications
    for (strategy, rep), g in t.groupby(["strategy", "replication"], observed=True):
        inter = g[g["class"] == "interactive"]
        ok = int((inter["latency_ms"] <= 300).sum())
        span_s = (g["finish_ms"].max() - g["arrival_ms"].min()) / 1000
        row = reps[(reps["strategy"] == strategy) & (reps["replication"] == rep)]
        overall = row[(row["model"] == "all") & (row["class"] == "all")].iloc[0]
        # batch has no target: left out of attainment, never counted as meeting it
        assert overall["slo_attainment"] == pytest.approx(ok / len(inter))
        assert overall["goodput_per_s"] == pytest.approx(ok / span_s)
        per = row[(row["model"] == "all") & (row["class"] == "interactive")].iloc[0]
        assert per["slo_attainment"] == pytest.approx(ok / len(inter))
        batch = row[(row["model"] == "all") & (row["class"] == "batch")].iloc[0]
        assert math.isnan(batch["slo_attainment"]) and math.isnan(batch["goodput_per_s"])
    assert {"all", "interactive", "batch"} <= set(s["class"])
    # slo_ms is the target of every class without its own
    d2 = dict(d, slo_ms=1000)
    reps2 = sim.run(d2).replications
    batch2 = reps2[(reps2["class"] == "batch")]
    assert batch2["slo_attainment"].notna().all()


def test_classes_and_slo_errors():
    d = tokens_scenario(classes={"nope": "x"})
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(d)
    assert exc.value.field == "classes.nope"
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(tokens_scenario(slo={"batch": {"latency_ms": 5}}))
    assert exc.value.field == "slo.batch" and "chat" in exc.value.accepted
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(tokens_scenario(slo={"chat": {"latency_ms": 0}}))
    assert exc.value.field == "slo.chat.latency_ms"
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(tokens_scenario(slo={"chat": 5}))
    assert exc.value.field == "slo.chat"
    scn = sim.load_scenario(tokens_scenario(slo={"chat": {"latency_ms": 900}}))
    assert sim.load_scenario(scn.to_dict()) == scn


def test_stream_mode_refuses_token_sized_scenarios():
    from sim.stream_engine import workload_chunks
    from sim.workload import replication_seeds

    scn = sim.load_scenario(tokens_scenario())
    with pytest.raises(SpecError) as exc:
        next(workload_chunks(scn, replication_seeds(0, 1)[0]))
    assert exc.value.field == "--stream"
