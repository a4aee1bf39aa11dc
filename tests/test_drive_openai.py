"""``sim drive --task-input openai`` (issue 16): a trace's token counts drive OpenAI-backend instances
in front of a model server (the fake OpenAI-compatible server, token-proportional latency), as real
processes on 127.0.0.1, and the live run comes out in the same tables as the simulated run of the
same trace."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import sim
from scheduler import SpecError
from scheduler.live import LocalCluster, ServerProcess, free_port
from sim.cli import main as sim_main
from sim.fidelity.inputs import check_task_input, task_input

pytestmark = pytest.mark.e2e

TRACE = Path(__file__).parent / "fixtures" / "openai_trace.csv"
MS_PER_TOKEN = 1.0

SCENARIO = {
    "name": "drive-openai",
    "seed": 3,
    "warmup_tasks": 5,
    "strategies": ["shortest_queue"],
    "predictor": {"mode": "regression"},
    "models": {
        # the fake server answers max_tokens tokens at MS_PER_TOKEN each; a few ms of HTTP besides
        "chat": {
            "service_time": {
                "dist": "tokens",
                "base_ms": 3,
                "per_input_token_ms": 0,
                "per_output_token_ms": MS_PER_TOKEN,
                "cv": 0.05,
            }
        }
    },
    "instances": [{"model": "chat", "count": 2, "replicas": 2}],
    "workload": {"arrival": {"process": "trace", "file": str(TRACE), "format": "azure_llm"}},
}


def test_the_openai_input_is_the_traces_prompt_length_and_max_tokens():
    body = task_input("openai", 12.0, {"input_tokens": 3, "output_tokens": 7})
    assert body == {"prompt": "hello hello hello", "max_tokens": 7}
    assert task_input("openai", 1.0, {"input_tokens": 2, "output_tokens": 0})["max_tokens"] == 1
    assert task_input("size_ms", 12.0, {}) == {"size_ms": 12.0}
    with pytest.raises(SpecError, match="input_tokens and output_tokens"):
        task_input("openai", 12.0, {})
    assert task_input("openai", 1.0, {"input_tokens": 1, "output_tokens": 2}, {"ignore_eos": True}) == {
        "prompt": "hello",
        "max_tokens": 2,
        "ignore_eos": True,
    }
    with pytest.raises(SpecError, match="prompt"):
        check_task_input("openai", {"prompt": "mine"})
    with pytest.raises(SpecError, match="size_ms, openai"):
        check_task_input("tokens")


def test_the_cli_refuses_openai_inputs_for_a_workload_without_tokens(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: s\ntasks: 20\nmodels: {m: {service_time: {dist: deterministic, value_ms: 5}}}\n"
        "instances: [{model: m, count: 1}]\nworkload: {arrival: {process: poisson, rate_per_s: 10}}\n"
    )
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the input is refused before any call
    code = sim_main(["drive", str(scenario), "--scheduler", url, "--task-input", "openai", "--no-progress"])
    assert code == 2
    assert "input_tokens and output_tokens" in capsys.readouterr().err


def test_a_trace_drives_openai_backends_and_the_tables_match_the_simulators(tmp_path):
    port = free_port()
    fake = ServerProcess(
        "fake-openai",
        ["-m", "scheduler.instance.fake_openai", "--port", str(port), "--ms-per-token", str(MS_PER_TOKEN)],
        f"http://127.0.0.1:{port}",
        "/v1/models",
        log_dir=tmp_path,
    ).wait_ready()
    scn = sim.load_scenario(SCENARIO)
    backend = ["--backend", "openai", "--upstream", f"{fake.url}/v1", "--concurrency", "2"]
    spec = [dict(model=i.model, instance_id=i.instance_id, extra_args=backend) for i in scn.instances]
    try:
        with LocalCluster(
            spec,
            scheduler=dict(seed=1, log_level="warning", predict_mode="regression"),
            log_dir=tmp_path / "logs",
        ) as c:
            res = sim.drive(scn, c.url, tmp_path / "out", progress=False, task_input="openai")
            details = httpx.post(
                c.url + "/task/details",
                json={"task_ids": res.outcomes["scheduler_task_id"].tolist()},
                timeout=30,
            ).json()["tasks"]
        stats = httpx.get(fake.url + "/fake/stats", timeout=10).json()
    finally:
        fake.stop()
    simulated = sim.run(scn, replications=1)
    assert res.counts == {"completed": 40}
    assert stats["requests"] == 40
    # the same tables: the same columns, the same tasks and token counts
    assert list(res.tasks.columns) == list(simulated.tasks.columns)
    assert list(res.summary.columns) == list(simulated.summary.columns)
    assert res.tasks["input_tokens"].tolist() == simulated.tasks["input_tokens"].tolist()
    assert res.tasks["output_tokens"].tolist() == simulated.tasks["output_tokens"].tolist()
    # the model server read the trace's prompt lengths and wrote its output lengths (its usage)
    by_tid = {d["task_id"]: d["metrics"] for d in details}
    tokens = res.outcomes.merge(res.tasks[["task_id", "input_tokens", "output_tokens"]], on="task_id")
    trace_tokens = {
        row.scheduler_task_id: {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens}
        for row in tokens.itertuples()
    }
    assert len(trace_tokens) == 40 - SCENARIO["warmup_tasks"]  # the tables leave the warm-up out
    assert {tid: by_tid[tid] for tid in trace_tokens} == trace_tokens
    # the live execution times follow the trace's output tokens as the simulated ones do
    live = res.tasks["service_ms"].rank().corr(res.tasks["output_tokens"].rank())  # Spearman's rho
    assert live > 0.8, live
    ratio = res.tasks["service_ms"].median() / simulated.tasks["service_ms"].median()
    assert 0.5 < ratio < 3.0, ratio
