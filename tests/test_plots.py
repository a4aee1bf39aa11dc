"""sim.plots: each function writes a non-empty PNG from a small synthetic table,
and a missing column is a ValueError naming it."""

import sys

import numpy as np
import pandas as pd
import pytest

from sim import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tasks(n=300, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for k, strat in enumerate(["random", "round_robin", "shortest_queue"]):
        for rep in range(2):
            wait = rng.exponential(50.0 / (k + 1), n)
            service = rng.exponential(100.0, n)
            arrival = np.cumsum(rng.exponential(20.0, n))
            rows.append(
                pd.DataFrame(
                    {
                        "scenario": "synthetic",
                        "strategy": strat,
                        "replication": rep,
                        "task_id": [f"t{rep}-{i}" for i in range(n)],
                        "model": "llm",
                        "instance": [f"llm-{i % 4}" for i in range(n)],
                        "arrival_ms": arrival,
                        "start_ms": arrival + wait,
                        "finish_ms": arrival + wait + service,
                        "wait_ms": wait,
                        "service_ms": service,
                        "latency_ms": wait + service,
                        "predicted_ms": 100.0,
                        "predicted_error_ms": 100.0,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def _summary():
    return pd.DataFrame(
        {
            "strategy": ["random", "round_robin", "shortest_queue"],
            "latency_p50_ms": [150.0, 120.0, 100.0],
            "latency_p50_ms_ci": [5.0, 4.0, 3.0],
            "latency_p95_ms": [500.0, 400.0, 300.0],
            "latency_p95_ms_ci": [20.0, 15.0, 10.0],
            "latency_p99_ms": [900.0, 700.0, 500.0],
            "latency_p99_ms_ci": [50.0, 40.0, 30.0],
        }
    )


def _instances():
    rows = []
    for strat in ["random", "shortest_queue"]:
        for rep in range(3):
            for i in range(4):
                rows.append(
                    {
                        "strategy": strat,
                        "replication": rep,
                        "instance": f"llm-{i}",
                        "model": "llm",
                        "utilization": 0.6 + 0.05 * i + 0.01 * rep,
                        "tasks": 100,
                    }
                )
    return pd.DataFrame(rows)


def _sweep():
    rows = []
    for strat, base in [("random", 200.0), ("power_of_two", 150.0)]:
        for point, load in enumerate([0.5, 0.7, 0.9]):
            p99 = base / (1 - load)
            rows.append(
                {
                    "point": point,
                    "load": load,
                    "strategy": strat,
                    "latency_p99_ms": p99,
                    "latency_p99_ms_ci": 0.05 * p99,
                }
            )
    return pd.DataFrame(rows)


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_latency_cdf(tmp_path):
    out = plots.plot_latency_cdf(_tasks(), tmp_path / "cdf.png")
    assert out == tmp_path / "cdf.png" and _is_png(out)
    out_log = plots.plot_latency_cdf(_tasks(), tmp_path / "sub" / "cdf_log.png", log_x=True)
    assert _is_png(out_log)


def test_latency_percentiles_from_summary_and_tasks(tmp_path):
    assert _is_png(plots.plot_latency_percentiles(_summary(), tmp_path / "pct.png"))
    assert _is_png(plots.plot_latency_percentiles(_tasks(), tmp_path / "pct_tasks.png"))


def test_utilization(tmp_path):
    assert _is_png(plots.plot_utilization(_instances(), tmp_path / "util.png"))


def test_sweep_p99(tmp_path):
    assert _is_png(plots.plot_sweep_p99(_sweep(), tmp_path / "sweep.png", x="load"))


@pytest.mark.parametrize(
    "call, column",
    [
        (lambda p: plots.plot_latency_cdf(_tasks().drop(columns="latency_ms"), p), "latency_ms"),
        (lambda p: plots.plot_latency_cdf(_tasks(), p, by="hardware"), "hardware"),
        (
            lambda p: plots.plot_latency_percentiles(_summary().drop(columns="latency_p95_ms"), p),
            "latency_p95_ms",
        ),
        (lambda p: plots.plot_latency_percentiles(_summary().drop(columns="strategy"), p), "strategy"),
        (lambda p: plots.plot_utilization(_instances().drop(columns="utilization"), p), "utilization"),
        (lambda p: plots.plot_utilization(_instances().drop(columns="instance"), p), "instance"),
        (
            lambda p: plots.plot_sweep_p99(_sweep(), p, x="workload.arrival.rate_per_s"),
            "workload.arrival.rate_per_s",
        ),
        (
            lambda p: plots.plot_sweep_p99(_sweep().drop(columns="latency_p99_ms"), p, x="load"),
            "latency_p99_ms",
        ),
    ],
)
def test_missing_column_is_a_clear_error(tmp_path, call, column):
    with pytest.raises(ValueError, match=column.replace(".", r"\.")):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_empty_table_and_ambiguous_sweep_are_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plots.plot_latency_cdf(_tasks().iloc[:0], tmp_path / "e.png")
    doubled = pd.concat([_sweep(), _sweep()], ignore_index=True)
    with pytest.raises(ValueError, match="several rows"):
        plots.plot_sweep_p99(doubled, tmp_path / "d.png", x="load")


def test_matplotlib_is_lazy_and_pyplot_untouched(tmp_path):
    # importing sim.plots loads no matplotlib; drawing uses Figure + the Agg canvas, never pyplot
    import subprocess

    code = (
        "import sys\n"
        "import sim, sim.plots\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "import pandas as pd\n"
        "df = pd.DataFrame({'strategy': ['a', 'a', 'b'], 'latency_ms': [1.0, 2.0, 3.0]})\n"
        f"sim.plots.plot_latency_cdf(df, {str(tmp_path / 'lazy.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _is_png(tmp_path / "lazy.png")


def test_plots_from_a_real_simulation(tmp_path):
    """The frames sim.run and sim.sweep produce (summary with per-model rows and
    CI columns, categorical task columns) plot without any reshaping."""
    import sim
    from sim.sweep import sweep

    spec = {
        "name": "plots",
        "seed": 2,
        "replications": 2,
        "tasks": 1500,
        "warmup_tasks": 100,
        "strategies": ["random", "shortest_queue"],
        "models": {
            "a": {"service_time": {"dist": "exponential", "mean_ms": 50}},
            "b": {"service_time": {"dist": "lognormal", "mean_ms": 20, "cv": 1.0}},
        },
        "instances": [{"model": "a", "count": 3}, {"model": "b", "count": 2}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 60}, "mix": {"a": 0.6, "b": 0.4}},
    }
    res = sim.run(spec)
    assert plots.ALL_MODELS == sim.ALL_MODELS
    assert _is_png(plots.plot_latency_cdf(res.tasks, tmp_path / "cdf.png", log_x=True))
    assert _is_png(plots.plot_latency_percentiles(res.summary, tmp_path / "pct.png"))
    assert _is_png(plots.plot_latency_percentiles(res.summary, tmp_path / "pct_b.png", model="b"))
    assert _is_png(plots.plot_utilization(res.instances, tmp_path / "util.png"))
    with pytest.raises(ValueError, match="model == 'c'"):
        plots.plot_latency_percentiles(res.summary, tmp_path / "none.png", model="c")
    sw = sweep(spec, {"load": [0.3, 0.6]}, processes=1, replications=2, tasks=800)
    assert _is_png(plots.plot_sweep_p99(sw, tmp_path / "sweep.png", x="load"))


def test_latency_tail_and_cdf_draw_one_panel_per_model(tmp_path):
    two = _tasks()
    two["model"] = np.where(np.arange(len(two)) % 3 == 0, "small", "llm")
    assert _is_png(plots.plot_latency_tail(two, tmp_path / "tail.png"))  # panels: small, llm
    assert _is_png(plots.plot_latency_tail(_tasks(), tmp_path / "tail1.png"))  # one model: one panel
    assert _is_png(plots.plot_latency_cdf(two, tmp_path / "cdf.png", log_x=True, panel_by="model"))
    panels = plots._base._panels(two, "model")
    assert [name for name, _ in panels] == ["small", "llm"]  # order of appearance (no categories)
    assert [name for name, _ in plots._base._panels(_tasks(), "model")] == [None]
    with pytest.raises(ValueError, match="latency_ms"):
        plots.plot_latency_tail(two.drop(columns="latency_ms"), tmp_path / "x.png")


def test_utilization_labels_carry_speed_and_replicas():
    from sim.plots.summary import _instance_label

    df = pd.DataFrame(
        {"instance": ["a-0", "a-1"], "speed": [1.0, 0.5], "replicas": [1, 2], "utilization": [0.5, 0.6]}
    )
    assert _instance_label(df, "a-1") == "a-1\nspeed 0.5\n2 replicas"
    assert _instance_label(df, "a-0") == "a-0\nspeed 1\n1 replica"
    assert _instance_label(df[["instance", "utilization"]], "a-0") == "a-0"
