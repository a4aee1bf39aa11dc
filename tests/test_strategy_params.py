"""A wrong strategy parameter is answered with the parameters the strategy accepts and what they mean."""

from __future__ import annotations

import inspect

import pytest

import scheduler
import sim
from scheduler import SpecError, Strategy, make_strategy, strategies_scope, strategy_params
from sim.cli import main

SCENARIO = {
    "tasks": 50,
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 10}}},
    "instances": [{"model": "m", "count": 2}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 10}},
}


def test_an_unknown_parameter_lists_the_accepted_ones_with_their_meaning():
    with pytest.raises(SpecError) as e:
        make_strategy("weighted", k=3)
    assert e.value.field == "k"
    assert "w (default 1.0)" in e.value.accepted and "standard deviation" in e.value.accepted
    assert "unexpected keyword" not in str(e.value)
    with pytest.raises(SpecError, match=r"no parameters"):
        make_strategy("round_robin", d=2)


def test_every_parameter_of_a_builtin_strategy_is_explained():
    for name in scheduler.strategy_names():
        for param, default, meaning in strategy_params(scheduler.STRATEGIES[name]):
            assert meaning, f"{name}.{param} has no param_help"
            assert default is not inspect.Parameter.empty


def test_a_custom_strategy_without_help_is_listed_from_its_signature():
    class Sample(Strategy):
        name = "sample_k"

        def __init__(self, k: int, spread: float = 0.5):
            self.k, self.spread = k, spread

        def choose(self, view, rng):
            return 0

    with strategies_scope():
        scheduler.register_strategy(Sample)
        with pytest.raises(SpecError) as e:
            make_strategy("sample_k", kk=1)
        assert "k (required); spread (default 0.5)" in e.value.accepted
        with pytest.raises(SpecError) as e:  # a required parameter left out
            make_strategy("sample_k")
        assert "k (required)" in e.value.accepted


def test_a_scenario_names_the_dotted_field_and_the_accepted_parameters():
    spec = sim.apply_overrides(SCENARIO, {"strategies": [{"name": "power_of_two", "params": {"k": 3}}]})
    with pytest.raises(SpecError) as e:
        sim.load_scenario(spec)
    assert e.value.field == "strategies.0.params.k"
    assert "d (default 2): how many distinct candidates are sampled" in e.value.accepted


def test_sim_strategies_lists_each_parameter(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    assert "w = 1.0: weight of the completion time's standard deviation" in out
    assert "p = 0.95: the quantile of completion time minimised" in out


def test_the_live_api_answers_with_the_accepted_parameters():
    from fastapi.testclient import TestClient

    from scheduler.live import LiveConfig, LiveScheduler, create_app

    with TestClient(create_app(LiveScheduler(LiveConfig()))) as c:
        body = c.post("/scheduler/set", json={"name": "weighted", "params": {"k": 3}}).json()
    assert body["status"] == "error"
    assert "w (default 1.0): weight of the completion time's standard deviation" in body["message"]
