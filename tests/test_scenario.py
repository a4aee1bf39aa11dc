"""Scenario loading and validation: every bad value names its field and what is accepted."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from scheduler import SpecError, Strategy, register_strategy, strategies_scope, strategy_names
from sim import Scenario, apply_overrides, load_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def base() -> dict:
    return {
        "name": "t",
        "seed": 3,
        "replications": 2,
        "tasks": 100,
        "warmup_tasks": 10,
        "strategies": ["shortest_queue", {"name": "weighted", "params": {"w": 2}}],
        "predictor": {"mode": "oracle"},
        "slo_ms": 50,
        "models": {
            "llm": {"service_time": {"dist": "lognormal", "mean_ms": 20, "cv": 0.5}},
            "cnn": {"service_time": {"dist": "exponential", "mean_ms": 5}},
        },
        "instances": [
            {"model": "llm", "count": 2, "replicas": 1, "speed": 1.0},
            {"model": "llm", "count": 1, "replicas": 2, "speed": 0.5},
            {"model": "cnn", "count": 2},
        ],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}, "mix": {"llm": 0.4, "cnn": 0.6}},
    }


def test_examples_validate():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        scn = Scenario.load(path)
        assert scn.name and scn.instances and scn.strategies


def test_demo_is_heterogeneous_with_four_strategies():
    scn = Scenario.load(EXAMPLES / "demo.yaml")
    assert len(scn.model_names) == 2 and len(scn.strategies) >= 4
    assert len({(i.speed, i.replicas) for i in scn.instances}) >= 3


def test_defaults_and_expansion():
    d = base()
    for key in ("seed", "replications", "warmup_tasks", "strategies", "predictor", "slo_ms"):
        d.pop(key)
    scn = Scenario.from_dict(d)
    assert (scn.seed, scn.replications, scn.warmup_tasks, scn.slo_ms) == (0, 1, 0, None)
    assert [s.label for s in scn.strategies] == ["shortest_queue"]
    assert scn.predictor == {"mode": "online"}
    ids = [i.instance_id for i in scn.instances]
    assert ids == ["llm-0", "llm-1", "llm-2", "cnn-0", "cnn-1"]
    assert [(i.replicas, i.speed) for i in scn.instances] == [
        (1, 1.0),
        (1, 1.0),
        (2, 0.5),
        (1, 1.0),
        (1, 1.0),
    ]


def test_single_model_needs_no_mix():
    d = base()
    del d["models"]["cnn"]
    d["instances"] = d["instances"][:2]
    del d["workload"]["mix"]
    assert Scenario.from_dict(d).mix == {"llm": 1.0}


def test_strategy_forms_and_labels():
    scn = Scenario.from_dict(base())
    assert [s.label for s in scn.strategies] == ["shortest_queue", "weighted(w=2)"]
    assert sim.parse_strategy(("power_of_two", {"d": 3})).params == {"d": 3}


def test_custom_registered_strategy_is_accepted():
    class Last(Strategy):
        name = "test_last_candidate"
        description = "always the last candidate"

        def choose(self, view, rng):
            return view.n - 1

    with strategies_scope():
        register_strategy(Last)
        d = base()
        d["strategies"] = ["test_last_candidate"]
        assert Scenario.from_dict(d).strategies[0].name == "test_last_candidate"
    assert "test_last_candidate" not in strategy_names()


BAD = [
    # (dotted path to set, value, field named in the error, text expected among accepted values)
    ("colour", "red", "colour", "accepted keys: name, seed"),
    ("seed", -1, "seed", ">= 0"),
    ("replications", 0, "replications", ">= 1"),
    ("tasks", 0, "tasks", ">= 1"),
    ("tasks", 2.5, "tasks", "integer"),
    ("warmup_tasks", 100, "warmup_tasks", "below the number of tasks"),
    ("duration_s", -5, "duration_s", "> 0"),
    ("slo_ms", 0, "slo_ms", "> 0"),
    ("name", "", "name", "non-empty"),
    ("models", {}, "models", "mapping of model name"),
    ("models.llm.service_time.cv", -0.5, "models.llm.service_time.cv", ">= 0"),
    ("models.llm.service_time.dist", "weibull", "models.llm.service_time.dist", "lognormal"),
    ("models.llm.gpu", "a100", "models.llm.gpu", "service_time"),
    ("models.llm.service_time", None, "models.llm.service_time", "distribution"),
    ("instances", [], "instances", "non-empty list"),
    ("instances.0.model", "gpt", "instances.0.model", "llm, cnn"),
    ("instances.0.count", 0, "instances.0.count", ">= 1"),
    ("instances.1.replicas", 1.5, "instances.1.replicas", "integer"),
    ("instances.2.speed", 0, "instances.2.speed", "> 0"),
    ("instances.2.gpu", 1, "instances.2.gpu", "model, count, replicas, speed"),
    (
        "workload.arrival.process",
        "weibull",
        "workload.arrival.process",
        "poisson, deterministic, bursty, trace",
    ),
    ("workload.arrival.rate_per_s", -3, "workload.arrival.rate_per_s", "> 0"),
    ("workload.arrival.rates_per_s", [1, 2], "workload.arrival.rates_per_s", "rate_per_s"),
    ("workload.load", 0.5, "workload.load", "arrival, mix"),
    ("workload.mix.llm", 0.5, "workload.mix", "summing to 1"),
    ("workload.mix.gpt", 0.0, "workload.mix.gpt", "llm, cnn"),
    ("workload.mix", None, "workload.mix", "required with several models"),
    ("strategies", ["fastest"], "strategies.0", ", ".join(strategy_names())),
    ("strategies", [{"name": "nope"}], "strategies.0.name", "round_robin"),
    ("strategies", [{"name": "weighted", "params": {"w": -1}}], "strategies.0.params.w", ">= 0"),
    ("strategies", [{"name": "weighted", "params": {"z": 1}}], "strategies.0.params.z", "w (default 1.0)"),
    ("strategies", [{"nam": "weighted"}], "strategies.0.nam", "name, params"),
    ("strategies", ["random", "random"], "strategies.1", "listed once"),
    ("strategies", [], "strategies", "shortest_queue"),
    ("predictor.mode", "psychic", "predictor.mode", "online, oracle, lookup_table, clairvoyant"),
    ("predictor.mode", "lookup_table", "predictor.table", "lookup table"),
    ("predictor.min_samples", 0, "predictor.min_samples", ">= 1"),
    ("predictor.prior_mean_ms", -1, "predictor.prior_mean_ms", ">= 0"),
    ("predictor.table", {"gpt": {"mean_ms": 3}}, "predictor.table.gpt", "llm, cnn"),
    ("predictor.table", {"llm": {"mean_ms": -3}}, "predictor.table.llm.mean_ms", ">= 0"),
    ("predictor.learn", True, "predictor.learn", "mode, table, file"),
]


@pytest.mark.parametrize("path, value, field, accepted", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_value_names_field_value_and_accepted(path, value, field, accepted):
    d = apply_overrides(base(), {path: value})
    with pytest.raises(SpecError) as exc:
        Scenario.from_dict(d)
    assert exc.value.field == field
    assert accepted in exc.value.accepted
    assert str(exc.value).startswith(f"{field}: got ")


def test_missing_tasks_and_duration():
    d = base()
    del d["tasks"]
    with pytest.raises(SpecError, match="duration_s") as exc:
        Scenario.from_dict(d)
    assert exc.value.field == "tasks"
    d["duration_s"] = 2
    assert Scenario.from_dict(d).duration_s == 2.0


def test_bursty_needs_two_rates_and_a_dwell():
    d = apply_overrides(base(), {"workload.arrival": {"process": "bursty", "rates_per_s": [10, 50]}})
    with pytest.raises(SpecError) as exc:
        Scenario.from_dict(d)
    assert exc.value.field == "workload.arrival.mean_dwell_s"
    d["workload"]["arrival"].update(rates_per_s=[10], mean_dwell_s=1)
    with pytest.raises(SpecError) as exc:
        Scenario.from_dict(d)
    assert exc.value.field == "workload.arrival.rates_per_s"


def test_mix_model_without_instances():
    d = base()
    d["instances"] = d["instances"][:2]
    with pytest.raises(SpecError) as exc:
        Scenario.from_dict(d)
    assert exc.value.field == "workload.mix.cnn" and "llm" in exc.value.accepted


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="existing YAML file"):
        Scenario.load(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("models: [unclosed\n")
    with pytest.raises(SpecError, match="valid YAML"):
        Scenario.load(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="scenario mapping"):
        Scenario.load(p)


def test_name_defaults_to_file_stem(tmp_path):
    d = base()
    del d["name"]
    p = tmp_path / "my-experiment.yaml"
    p.write_text(yaml.safe_dump(d))
    assert load_scenario(p).name == "my-experiment"
    assert load_scenario(str(p)).name == "my-experiment"


# -- overrides and round trip ------------------------------------------------------------
def test_apply_overrides_paths():
    d = base()
    before = copy.deepcopy(d)
    out = apply_overrides(
        d,
        {
            "workload.arrival.rate_per_s": 80,
            "instances.0.count": 4,
            "predictor.min_samples": 5,
            "strategies": ["random"],
            "instances.-1.speed": 3.0,
        },
    )
    assert d == before  # the input is not changed
    assert out["workload"]["arrival"]["rate_per_s"] == 80
    assert out["instances"][0]["count"] == 4 and out["instances"][2]["speed"] == 3.0
    assert out["predictor"] == {"mode": "oracle", "min_samples": 5}
    assert out["strategies"] == ["random"]


def test_apply_overrides_keys_with_dots_and_bad_index():
    d = base()
    d["models"]["v1.5"] = d["models"].pop("llm")
    out = apply_overrides(d, {"models.v1.5.service_time.mean_ms": 99})
    assert out["models"]["v1.5"]["service_time"]["mean_ms"] == 99
    with pytest.raises(SpecError) as exc:
        apply_overrides(d, {"instances.7.count": 1})
    assert exc.value.field == "instances.7.count" and "0..2" in exc.value.accepted
    with pytest.raises(SpecError, match="list index"):
        apply_overrides(d, {"instances.first.count": 1})


def test_with_changes_revalidates():
    scn = Scenario.from_dict(base())
    faster = scn.with_changes({"workload.arrival.rate_per_s": 80, "instances.0.count": 4})
    assert faster.arrival["rate_per_s"] == 80 and len(faster.instances) == len(scn.instances) + 2
    assert scn.arrival["rate_per_s"] == 100  # unchanged
    assert scn.replace(**{"seed": 9}).seed == 9
    with pytest.raises(SpecError) as exc:
        scn.with_changes({"instances.0.count": 0})
    assert exc.value.field == "instances.0.count"


def test_round_trip_through_dict_and_yaml():
    scn = Scenario.from_dict(base())
    again = Scenario.from_dict(scn.to_dict())
    assert again == scn and again.to_dict() == scn.to_dict()
    via_yaml = Scenario.from_dict(yaml.safe_load(yaml.safe_dump(scn.to_dict())))
    assert via_yaml == scn
    d = scn.to_dict()
    d["seed"] = 123
    assert scn.seed == 3  # to_dict is a copy


# -- files resolve against the scenario's folder -------------------------------------------
def _write_scenario(folder: Path, d: dict) -> Path:
    p = folder / "scn.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_empirical_file_relative_to_scenario(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sizes.csv").write_text("service_ms\n10\n20\n30\n# a comment\n60\n")
    (data / "plain.txt").write_text("1, 2 3\n4\n")
    d = base()
    d["models"]["llm"]["service_time"] = {"dist": "empirical", "file": "data/sizes.csv"}
    d["models"]["cnn"]["service_time"] = {"dist": "empirical", "file": "data/plain.txt"}
    path = _write_scenario(tmp_path, d)
    monkeypatch.chdir(data)  # relative to the scenario file, not the working directory
    scn = load_scenario(path)
    assert scn.distributions["llm"].mean_ms == pytest.approx(30.0)
    assert scn.distributions["cnn"].mean_ms == pytest.approx(2.5)
    assert scn.to_dict()["models"]["llm"]["service_time"]["file"] == str((data / "sizes.csv").resolve())
    assert Scenario.from_dict(scn.to_dict()) == scn


def test_empirical_file_errors(tmp_path):
    d = base()
    d["models"]["llm"]["service_time"] = {"dist": "empirical", "file": "missing.csv"}
    with pytest.raises(SpecError) as exc:
        load_scenario(_write_scenario(tmp_path, d))
    assert exc.value.field == "models.llm.service_time.file" and "existing file" in exc.value.accepted
    (tmp_path / "bad.csv").write_text("10\nten\n")
    d["models"]["llm"]["service_time"]["file"] = "bad.csv"
    with pytest.raises(SpecError) as exc:
        load_scenario(_write_scenario(tmp_path, d))
    assert exc.value.field == "models.llm.service_time.file" and "line 2" in str(exc.value)


def test_trace_file_relative_and_sorted(tmp_path):
    (tmp_path / "trace.csv").write_text("arrival_ms,model,service_ms\n0,llm,5\n20,cnn,1\n10,llm,7\n")
    d = base()
    d["workload"] = {"arrival": {"process": "trace", "file": "trace.csv"}}
    d.pop("tasks")
    d["warmup_tasks"] = 0
    scn = load_scenario(_write_scenario(tmp_path, d))
    assert scn.trace.arrival_ms.tolist() == [0, 10, 20]
    assert scn.trace.model.tolist() == ["llm", "llm", "cnn"]
    assert scn.trace.service_ms.tolist() == [5, 7, 1]


@pytest.mark.parametrize(
    "text, accepted",
    [
        ("arrival_ms,service_ms\n1,2\n", "columns arrival_ms, model"),
        ("arrival_ms,model,colour\n1,llm,red\n", "columns arrival_ms, model"),
        ("arrival_ms,model\n-1,llm\n", "arrival_ms a number >= 0"),
        ("arrival_ms,model\n1,gpt\n", "models declared"),
    ],
)
def test_trace_file_errors(tmp_path, text, accepted):
    (tmp_path / "trace.csv").write_text(text)
    d = base()
    d["workload"] = {"arrival": {"process": "trace", "file": "trace.csv"}}
    d["warmup_tasks"] = 0
    with pytest.raises(SpecError) as exc:
        load_scenario(_write_scenario(tmp_path, d))
    assert exc.value.field == "workload.arrival.file" and accepted in exc.value.accepted


def test_trace_with_mix_is_refused(tmp_path):
    (tmp_path / "trace.csv").write_text("arrival_ms,model\n0,llm\n")
    d = base()
    d["workload"]["arrival"] = {"process": "trace", "file": "trace.csv"}
    d["warmup_tasks"] = 0
    with pytest.raises(SpecError) as exc:
        load_scenario(_write_scenario(tmp_path, d))
    assert exc.value.field == "workload.mix"


def test_lookup_table_inline_yaml_and_csv_files(tmp_path):
    d = base()
    d["predictor"] = {"mode": "lookup_table", "table": {"llm": {"mean_ms": 20, "std_ms": 10}}}
    assert Scenario.from_dict(d).lookup_table == {"llm": {"mean_ms": 20, "std_ms": 10}}
    (tmp_path / "table.yaml").write_text("llm: {mean_ms: 21, std_ms: 4}\n")
    (tmp_path / "table.csv").write_text(
        "model,instance,mean_ms,std_ms\nllm,,22,5\nllm,llm-2,40,9\ncnn,,5,5\n"
    )
    d["predictor"] = {"mode": "lookup_table", "file": "table.yaml"}
    assert load_scenario(_write_scenario(tmp_path, d)).lookup_table["llm"]["mean_ms"] == 21
    d["predictor"]["file"] = "table.csv"
    table = load_scenario(_write_scenario(tmp_path, d)).lookup_table
    assert table["llm"]["mean_ms"] == 22 and table["llm"]["instances"]["llm-2"] == {
        "mean_ms": 40,
        "std_ms": 9,
    }
    d["predictor"]["table"] = {"llm": {"mean_ms": 1}}
    with pytest.raises(SpecError) as exc:
        load_scenario(_write_scenario(tmp_path, d))
    assert exc.value.field == "predictor.file" and "not both" in exc.value.accepted


def test_numpy_numbers_are_accepted():
    d = apply_overrides(base(), {"tasks": np.int64(50), "workload.arrival.rate_per_s": np.float64(9.5)})
    scn = Scenario.from_dict(d)
    assert scn.tasks == 50 and type(scn.tasks) is int and scn.arrival["rate_per_s"] == 9.5
