"""Results: summary columns and values, confidence intervals, Little's law, files and the CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from scheduler import strategy_names
from sim import ALL_MODELS, TASK_COLUMNS, ci_half_width, littles_law, t_quantile
from sim.cli import main
from sim.report import format_summary

ROOT = Path(__file__).resolve().parent.parent


def scenario(**changes) -> dict:
    d = {
        "name": "res",
        "seed": 4,
        "replications": 3,
        "tasks": 400,
        "warmup_tasks": 40,
        "slo_ms": 40,
        "strategies": ["shortest_queue", "round_robin"],
        "predictor": {"mode": "oracle"},
        "models": {
            "a": {"service_time": {"dist": "exponential", "mean_ms": 20}},
            "b": {"service_time": {"dist": "deterministic", "value_ms": 4}},
        },
        "instances": [{"model": "a", "count": 2}, {"model": "b", "count": 1, "replicas": 2}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}, "mix": {"a": 0.5, "b": 0.5}},
    }
    return sim.apply_overrides(d, changes)


@pytest.fixture(scope="module")
def res():
    return sim.run(scenario())


# -- Student t and confidence intervals --------------------------------------------------------
@pytest.mark.parametrize(
    "df, q",
    [
        (1, 12.7062047),
        (2, 4.3026527),
        (3, 3.1824463),
        (4, 2.7764451),
        (5, 2.5705818),
        (9, 2.2621572),
        (10, 2.2281389),
        (30, 2.0422725),
        (100, 1.9839715),
    ],
)
def test_t_quantile_975(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=2e-6)


def test_t_quantile_other_levels_and_errors():
    assert t_quantile(0.95, 4) == pytest.approx(2.1318468, abs=2e-6)
    assert t_quantile(0.995, 7) == pytest.approx(3.4994833, abs=2e-6)
    with pytest.raises(ValueError):
        t_quantile(0.4, 3)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_ci_half_width_by_hand():
    # values 1..5: mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764451
    assert ci_half_width([1, 2, 3, 4, 5]) == pytest.approx(
        2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6
    )
    assert ci_half_width([10.0, 14.0]) == pytest.approx(12.7062047 * math.sqrt(8.0) / math.sqrt(2), rel=1e-6)
    assert math.isnan(ci_half_width([3.0]))
    assert ci_half_width([7.0, 7.0, 7.0]) == 0.0


# -- the task frame and the summary -----------------------------------------------------------
def test_task_columns_are_the_contract(res):
    assert tuple(res.tasks.columns) == TASK_COLUMNS
    assert set(res.tasks["scenario"]) == {"res"}


def test_summary_rows_and_columns(res):
    s = res.summary
    assert list(zip(s.strategy, s.model)) == [
        ("shortest_queue", ALL_MODELS),
        ("shortest_queue", "a"),
        ("shortest_queue", "b"),
        ("round_robin", ALL_MODELS),
        ("round_robin", "a"),
        ("round_robin", "b"),
    ]
    metrics = [
        "throughput_per_s",
        "utilization",
        "slo_attainment",
        "goodput_per_s",
        "prediction_mae_ms",
        "prediction_bias_ms",
        "service_mean_ms",
    ]
    metrics += [f"{k}_{s}_ms" for k in ("latency", "wait") for s in ("mean", "p50", "p95", "p99")]
    for col in metrics:
        assert col in s.columns and f"{col}_ci" in s.columns
    assert (s["replications"] == 3).all()
    assert (s[s.model == ALL_MODELS]["count"] == 3 * 360).all()
    assert s["latency_mean_ms_ci"].gt(0).all()


def test_summary_values_match_a_direct_computation(res):
    t, s = res.tasks, res.summary
    for strategy in ("shortest_queue", "round_robin"):
        g = t[t.strategy == strategy]
        per_rep = g.groupby("replication")["latency_ms"].quantile(0.95)
        row = s[(s.strategy == strategy) & (s.model == ALL_MODELS)].iloc[0]
        assert row["latency_p95_ms"] == pytest.approx(per_rep.mean())
        assert row["latency_p95_ms_ci"] == pytest.approx(ci_half_width(per_rep.to_numpy()))
        slo = g.assign(ok=g.latency_ms <= 40).groupby("replication")["ok"].mean()
        assert row["slo_attainment"] == pytest.approx(slo.mean())
        ga = g[g.model == "a"]
        row_a = s[(s.strategy == strategy) & (s.model == "a")].iloc[0]
        assert row_a["wait_mean_ms"] == pytest.approx(ga.groupby("replication")["wait_ms"].mean().mean())
        span = g.groupby("replication").apply(
            lambda x: (x.finish_ms.max() - x.arrival_ms.min()) / 1000.0, include_groups=False
        )
        thr = g.groupby("replication").size() / span
        assert row["throughput_per_s"] == pytest.approx(thr.mean())
        assert row["goodput_per_s"] == pytest.approx((thr * slo).mean())


def test_prediction_errors(res):
    s = res.summary.set_index(["strategy", "model"])
    # deterministic model b with the oracle: predictions are exact
    assert s.loc[("round_robin", "b"), "prediction_mae_ms"] == pytest.approx(0.0, abs=1e-9)
    assert s.loc[("round_robin", "b"), "prediction_bias_ms"] == pytest.approx(0.0, abs=1e-9)
    t = res.tasks[(res.tasks.strategy == "round_robin") & (res.tasks.model == "a")]
    err = t.predicted_ms - t.service_ms
    assert s.loc[("round_robin", "a"), "prediction_mae_ms"] == pytest.approx(
        err.abs().groupby(t.replication).mean().mean()
    )
    assert s.loc[("round_robin", "a"), "prediction_bias_ms"] == pytest.approx(
        err.groupby(t.replication).mean().mean()
    )


def test_one_replication_has_nan_half_widths():
    s = sim.run(scenario(replications=1, strategies=["round_robin"])).summary
    assert s["latency_mean_ms_ci"].isna().all() and s["latency_mean_ms"].notna().all()


def test_no_slo_no_slo_columns():
    s = sim.run(scenario(replications=1, slo_ms=None, strategies=["round_robin"])).summary
    assert "slo_attainment" not in s.columns and "goodput_per_s" not in s.columns


def test_utilization_of_a_deterministic_server():
    # arrivals every 10 ms from t=10, service 4 ms, one replica: window [10, 10 n + 4], busy 4 n
    n = 50
    d = {
        "tasks": n,
        "strategies": ["round_robin"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "deterministic", "value_ms": 4}}},
        "instances": [{"model": "m", "count": 2, "replicas": 1}],
        "workload": {"arrival": {"process": "deterministic", "rate_per_s": 100}},
    }
    r = sim.run(d)
    span = 10.0 * n + 4 - 10
    inst = r.instances.set_index("instance")
    # round robin: instance m-0 gets tasks 0, 2, 4, ...
    assert inst.loc["m-0", "tasks"] == inst.loc["m-1", "tasks"] == n // 2
    assert inst.loc["m-0", "utilization"] == pytest.approx(4.0 * n / 2 / span)
    row = r.summary.iloc[0]
    assert row["utilization"] == pytest.approx(4.0 * n / (2 * span))
    assert row["throughput_per_s"] == pytest.approx(n / span * 1000.0)
    assert list(r.instances.columns)[:5] == ["strategy", "replication", "instance", "model", "replicas"]


def test_utilization_counts_warmup_work_inside_the_window():
    d = {
        "tasks": 20,
        "warmup_tasks": 1,
        "strategies": ["round_robin"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "deterministic", "value_ms": 25}}},
        "instances": [{"model": "m", "replicas": 1}],
        "workload": {"arrival": {"process": "deterministic", "rate_per_s": 100}},
    }
    r = sim.run(d)
    # the server is never idle from t=10 on; the window starts at the first measured arrival (t=20)
    assert r.instances["utilization"].iloc[0] == pytest.approx(1.0)


# -- Little's law ---------------------------------------------------------------------------------
def test_littles_law_on_a_constructed_frame():
    frame = pd.DataFrame(
        {
            "strategy": ["s"] * 3 + ["t"] * 2,
            "replication": [0] * 5,
            "arrival_ms": [0.0, 2.0, 4.0, 0.0, 10.0],
            "finish_ms": [6.0, 5.0, 10.0, 5.0, 20.0],
        }
    )
    frame["latency_ms"] = frame["finish_ms"] - frame["arrival_ms"]
    out = littles_law(frame).set_index("strategy")
    # s: window [0, 4] (first to last arrival); sojourns clipped to it: 4 + 2 + 0 = 6 over 4 ms
    assert out.loc["s", "L_time_average"] == pytest.approx(1.5)
    assert out.loc["s", "arrival_rate_per_ms"] == pytest.approx(0.75)
    assert out.loc["s", "mean_latency_ms"] == pytest.approx(5.0)
    assert out.loc["s", "lambda_W"] == pytest.approx(3.75)  # a tiny window: edge effects dominate
    # t: window [0, 10]: 5 + 0 over 10 ms; lambda 0.2, W 7.5
    assert out.loc["t", "L_time_average"] == pytest.approx(0.5)
    assert out.loc["t", "lambda_W"] == pytest.approx(1.5)


def test_littles_law_holds_on_a_simulation(res):
    ll = res.littles_law()
    assert len(ll) == 6
    # only edge effects of order W / window separate the sides over a long run
    assert (ll["relative_difference"] < 0.05).all(), ll
    assert (ll["L_time_average"] > 0).all()


def test_littles_law_catches_latencies_that_do_not_match_the_events(res):
    broken = res.tasks.copy()
    broken["latency_ms"] = broken["latency_ms"] * 1.2
    assert (littles_law(broken)["relative_difference"] > 0.1).all()


# -- files and the command line -----------------------------------------------------------------
def test_save_writes_tables(res, tmp_path):
    paths = res.save(tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "tasks.csv",
        "summary.csv",
        "instances.csv",
        "replications.csv",
    }
    back = pd.read_csv(paths["tasks"])
    assert tuple(back.columns) == TASK_COLUMNS and len(back) == len(res.tasks)
    np.testing.assert_allclose(back["latency_ms"], res.tasks["latency_ms"], atol=1e-5)


def test_format_summary(res):
    text = format_summary(res.summary)
    assert "shortest_queue" in text and "±" in text and "p99" in text


def _scenario_file(tmp_path: Path, **changes) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(yaml.safe_dump(scenario(**changes)))
    return p


def test_cli_run_in_process(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "run",
            str(_scenario_file(tmp_path)),
            "--out",
            str(out),
            "--tasks",
            "200",
            "--replications",
            "2",
            "--strategies",
            "round_robin,random",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for name in (
        "tasks.csv",
        "summary.csv",
        "instances.csv",
        "latency_cdf.png",
        "latency_percentiles.png",
        "utilization.png",
    ):
        assert (out / name).is_file(), name
    assert "round_robin" in captured.out and "random" in captured.out and str(out.resolve()) in captured.out
    assert "tasks/s" in captured.err  # the progress bar
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["strategy"]) == {"round_robin", "random"}
    assert (summary[summary.model == ALL_MODELS]["count"] == 2 * 160).all()


def test_cli_bad_scenario_exits_2_without_traceback(tmp_path):
    bad = _scenario_file(tmp_path, **{"models.a.service_time.mean_ms": -1})
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "models.a.service_time.mean_ms" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_bad_strategy_option_exits_2(tmp_path, capsys):
    rc = main(["run", str(_scenario_file(tmp_path)), "--out", str(tmp_path / "o"), "--strategies", "fastest"])
    err = capsys.readouterr().err
    assert rc == 2 and "fastest" in err and "round_robin" in err


def test_cli_strategies_and_validate(tmp_path, capsys):
    assert main(["strategies"]) == 0
    lines = [ln for ln in capsys.readouterr().out.strip().splitlines() if not ln.startswith(" ")]
    assert [ln.split()[0] for ln in lines] == strategy_names()
    assert all(len(ln.split()) > 1 for ln in lines)  # each has a description
    assert main(["validate", str(_scenario_file(tmp_path))]) == 0
    assert "ok: res" in capsys.readouterr().out
