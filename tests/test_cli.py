"""The simulator's command line says what it means: offered load, warm-up, a table within 100 columns."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sim
from sim.cli import main
from sim.report import WIDTH, format_loads, format_summary
from sim.scenario import load_scenario, resize

ONE_MODEL = {
    "name": "small",
    "seed": 3,
    "replications": 2,
    "tasks": 600,
    "warmup_tasks": 150,
    "strategies": ["shortest_queue", "round_robin"],
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 10}}},
    "instances": [{"model": "m", "count": 2}],
    # load = 100/s * 10 ms / 2 servers = 0.5
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}},
}


def _write(tmp_path: Path, **changes) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sim.apply_overrides(ONE_MODEL, changes)))
    return p


# -- offered load ------------------------------------------------------------------------------
def test_validate_prints_the_offered_load_per_model_pool(tmp_path, capsys):
    two = _write(
        tmp_path,
        models={
            "a": {"service_time": {"dist": "exponential", "mean_ms": 10}},
            "b": {"service_time": {"dist": "deterministic", "value_ms": 40}},
        },
        instances=[{"model": "a", "count": 2}, {"model": "b", "count": 1, "replicas": 4, "speed": 2.0}],
        workload={"arrival": {"process": "poisson", "rate_per_s": 100}, "mix": {"a": 0.6, "b": 0.4}},
    )
    assert main(["validate", str(two)]) == 0
    out = capsys.readouterr()
    # a: 100/s * 0.6 * 10 ms / 2 = 0.3; b: 100/s * 0.4 * 40 ms / (4 * 2.0) = 0.2
    assert "offered load of model a: 0.300" in out.out
    assert "offered load of model b: 0.200" in out.out
    assert out.err == ""


def test_load_at_095_warns_and_still_runs(tmp_path, capsys):
    near = _write(tmp_path, **{"workload.arrival.rate_per_s": 192})  # 0.96
    assert main(["validate", str(near)]) == 0
    err = capsys.readouterr().err
    assert "warning: offered load of model m: 0.960" in err and "near saturation" in err
    rc = main(
        ["run", str(near), "--out", str(tmp_path / "o"), "--no-plots", "--no-progress", "--tasks", "300"]
    )
    assert rc == 0 and "warning: offered load" in capsys.readouterr().err


def test_overload_is_refused_unless_allowed(tmp_path, capsys):
    over = _write(tmp_path, **{"workload.arrival.rate_per_s": 1000})  # load 5
    assert main(["validate", str(over)]) == 2
    err = capsys.readouterr().err
    assert "offered load of model m: 5.000" in err and "--allow-overload" in err
    out = tmp_path / "o"
    assert main(["run", str(over), "--out", str(out), "--no-plots", "--no-progress"]) == 2
    assert "cannot keep up" in capsys.readouterr().err and not out.exists()

    assert main(["validate", str(over), "--allow-overload"]) == 0
    args = ["run", str(over), "--out", str(out), "--no-plots", "--no-progress", "--tasks", "300"]
    assert main([*args, "--allow-overload"]) == 0
    assert "offered load of model m: 5.000" in capsys.readouterr().err
    assert (out / "summary.csv").is_file()


def test_format_loads_levels():
    assert [lvl for lvl, _ in format_loads({"a": 0.5, "b": 0.95, "c": 1.0})] == ["ok", "warning", "overload"]


# -- warm-up -----------------------------------------------------------------------------------
def test_tasks_alone_scales_the_warmup_down_instead_of_failing(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(
        ["run", str(_write(tmp_path)), "--out", str(out), "--no-plots", "--no-progress", "--tasks", "100"]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # the scenario's warm-up fraction, 150 of 600, of the new 100 tasks: 25
    assert "warm-up cut to 25 of 100 tasks" in captured.err and "--warmup-tasks" in captured.err
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["count"] == 2 * 75).all()


def test_tasks_keeps_a_warmup_that_leaves_most_tasks_measured():
    scn = load_scenario(sim.apply_overrides(ONE_MODEL, {}))
    resized, note = resize(scn, tasks=400)
    assert resized.warmup_tasks == 150 and resized.tasks == 400 and note is None


def test_warmup_tasks_flag(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["run", str(_write(tmp_path)), "--out", str(out), "--no-plots", "--no-progress"]
    assert main([*args, "--warmup-tasks", "0"]) == 0
    assert "first 0 of each run" in capsys.readouterr().out
    assert (pd.read_csv(out / "summary.csv")["count"] == 2 * 600).all()
    assert main([*args, "--tasks", "100", "--warmup-tasks", "60"]) == 0
    assert "warm-up cut" not in capsys.readouterr().err  # given explicitly: taken as given
    assert (pd.read_csv(out / "summary.csv")["count"] == 2 * 40).all()


@pytest.mark.parametrize("value", ["600", "-1"])
def test_warmup_tasks_out_of_range_names_the_flag(tmp_path, capsys, value):
    rc = main(["run", str(_write(tmp_path)), "--out", str(tmp_path / "o"), "--warmup-tasks", value])
    assert rc == 2
    assert "--warmup-tasks" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["twin", "drive"])
def test_twin_and_drive_take_warmup_tasks(tmp_path, capsys, monkeypatch, command):
    """The flag reaches the scenario that twin and drive run (their live part is replaced here:
    tests/test_twin.py and tests/test_drive.py run it for real)."""
    seen = {}

    def fake(scn, *args, **kwargs):
        seen["scenario"] = scn
        raise SystemExit(5)  # neither command catches it: nothing live starts

    # the command handlers' module (it imports sim.fidelity's drive and twin by name)
    module = importlib.import_module("sim.fidelity.commands")
    monkeypatch.setattr(module, command, fake)
    argv = [command, str(_write(tmp_path)), "--out", str(tmp_path / "o"), "--tasks", "100"]
    if command == "drive":
        argv += ["--scheduler", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit):
        main([*argv, "--warmup-tasks", "7"])
    assert seen["scenario"].warmup_tasks == 7 and seen["scenario"].tasks == 100
    assert main([*argv, "--warmup-tasks", "100"]) == 2  # not below the 100 tasks: refused first
    assert "--warmup-tasks" in capsys.readouterr().err


# -- the summary table -------------------------------------------------------------------------
def test_summary_fits_100_columns_and_names_its_units():
    res = sim.run(Path(__file__).resolve().parent.parent / "examples/scenarios/demo.yaml", tasks=3000)
    text = format_summary(res.summary)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, text
    assert "in ms" in lines[0] and "95% confidence" in lines[0]
    assert {"p50", "p95", "p99", "SLO %"} <= set(lines[1].split("  ")) | set(lines[1].split())
    assert any("weighted(w=1.0)" in line and "±" in line for line in lines)
