"""``python -m sim sweep``: sweep files, outputs, per-task rows, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scheduler import SpecError
from sim.cli import main
from sim.io import load_results
from sim.sweep_file import load_sweep
from sim.sweep_units import run_sweep

REPO = Path(__file__).resolve().parents[1]

SCENARIO = {
    "name": "cli-sweep",
    "seed": 4,
    "replications": 2,
    "tasks": 1500,
    "warmup_tasks": 100,
    "strategies": ["random", "shortest_queue"],
    "predictor": {"mode": "oracle"},
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 100}}},
    "instances": [{"model": "m", "count": 3}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 10}},
}


def _write(tmp_path: Path, **sweep) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump({"scenario": SCENARIO, "grid": {"load": [0.5, 0.8]}, **sweep}))
    return p


def test_sweep_command_writes_tables_plot_and_task_rows(tmp_path, capsys):
    f = _write(tmp_path, keep="tasks", grid={"load": [0.5, 0.8], "strategies": [["random"], ["round_robin"]]})
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--out", str(out), "--processes", "1", "--format", "both"]) == 0
    printed = capsys.readouterr()
    assert "8 of 8 runs" in printed.out
    assert "8/8 runs" in printed.err  # the progress line
    res = load_results(out)
    assert set(res) == {"sweep", "summary", "tasks"}
    assert (out / "summary.csv").is_file() and (out / "tasks.csv").is_file()
    assert (out / "sweep_latency.png").stat().st_size > 0
    sweep = res["sweep"]
    assert list(sweep.columns[:4]) == ["point", "load", "strategies", "offered_load"]
    assert len(sweep) == 8 and sorted(sweep["point"].unique()) == [0, 1, 2, 3]
    tasks = res["tasks"]
    assert len(tasks) == 8 * (1500 - 100)
    assert set(tasks["point"]) == {0, 1, 2, 3}
    # the per-task rows give back the summary's counts
    counts = tasks.groupby(["point", "strategy"]).size()
    summary = res["summary"].set_index(["point", "strategy"])["count"]
    assert counts.sort_index().tolist() == summary.sort_index().tolist()
    csv_tasks = pd.read_csv(out / "tasks.csv")
    assert len(csv_tasks) == len(tasks)


def test_sweep_frames_equal_sim_sweep_and_run(tmp_path):
    import sim

    f = _write(tmp_path)
    spec = load_sweep(f)
    res = run_sweep(spec.scenario, spec.grid, processes=1, keep="tasks")
    frame = sim.sweep(spec.scenario, spec.grid, processes=2)
    pd.testing.assert_frame_equal(res.summary, frame, check_exact=True)
    on_dask = run_sweep(spec.scenario, spec.grid, cluster="local", processes=2)
    assert on_dask.engine == "local" and on_dask.units_done == 4
    pd.testing.assert_frame_equal(res.summary, on_dask.summary, check_exact=True)
    pd.testing.assert_frame_equal(res.replications, on_dask.replications, check_exact=True)
    one = sim.run(sim.set_offered_load(spec.scenario, 0.8))
    point = frame[frame["point"] == 1].drop(columns=["point", "load", "offered_load"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(point, one.summary, check_exact=True)
    t = res.tasks[res.tasks["point"] == 1].drop(columns="point").reset_index(drop=True)
    pd.testing.assert_frame_equal(t.astype({"strategy": str}), one.tasks.astype({"strategy": str}))


@pytest.mark.parametrize(
    "content, field",
    [
        ({"grid": {"load": [0.5]}}, "sweep.scenario"),
        ({"scenario": "missing.yaml", "grid": {"load": [0.5]}}, "sweep.scenario"),
        ({"scenario": SCENARIO, "grid": {"load": []}}, "sweep.grid"),
        ({"scenario": SCENARIO, "grid": {"load": [0.5]}, "keep": "all"}, "sweep.keep"),
        ({"scenario": SCENARIO, "grid": {"load": [0.5]}, "replications": 0}, "sweep.replications"),
        ({"scenario": SCENARIO, "grid": {"load": [0.5]}, "points": 3}, "sweep.points"),
        (["not", "a", "mapping"], "sweep"),
    ],
)
def test_bad_sweep_file_names_the_field(tmp_path, content, field):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(content))
    with pytest.raises(SpecError) as e:
        load_sweep(p)
    assert e.value.field == field


def test_bad_sweep_on_the_command_line_exits_2(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"scenario": SCENARIO, "grid": {"instances.0.count": [0]}}))
    assert main(["sweep", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "sweep point 0" in capsys.readouterr().err
    assert main(["sweep", str(_write(tmp_path)), "--out", str(tmp_path / "o"), "--cluster", "nohost"]) == 2
    assert "cluster" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from scheduler.live import free_port
    from sim import executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2)

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there: this test picked the port
    f = _write(tmp_path)
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--cluster", address, "--no-progress"]) == 1
    assert f"error: cluster {address}" in capsys.readouterr().err


def test_scenario_file_next_to_the_sweep_file(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    p = tmp_path / "sw.yaml"
    p.write_text(yaml.safe_dump({"scenario": "s.yaml", "grid": {"predictor.mode": ["oracle", "online"]}}))
    spec = load_sweep(p)
    assert spec.scenario.name == "cli-sweep" and spec.keep == "summary"


def test_ctrl_c_keeps_what_finished(tmp_path):
    scenario = dict(SCENARIO, tasks=20000)
    f = tmp_path / "long.yaml"
    f.write_text(yaml.safe_dump({"scenario": scenario, "grid": {"load": [0.5, 0.6, 0.7, 0.8, 0.9]}}))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "sweep", str(f), "--out", str(out), "--processes", "1", "-v"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        finished = 0
        for line in proc.stderr:  # type: ignore[union-attr]
            finished += " done: " in line
            if finished == 2:
                proc.send_signal(signal.SIGINT)
                break
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    sweep = load_results(out)["sweep"]
    runs = sweep.groupby(["point", "replication"]).ngroups
    assert 2 <= runs < 10
    assert f"{runs} of 10 runs" in stdout
