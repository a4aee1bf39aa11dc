"""The OpenAI-compatible backend (``--backend openai``) in front of a fake OpenAI server.

Everything runs as real processes on 127.0.0.1: the fake upstream
(``python -m scheduler.instance.fake_openai``, OpenAI API reference bodies,
it counts requests in flight), backend instances, and a scheduler they are
registered with.  Clients talk to the scheduler only.
"""

from __future__ import annotations

import os

import httpx
import pytest

from scheduler.instance.openai_work import endpoint_of, metrics_of
from scheduler.instance.work import TaskInputError
from scheduler.live import free_port
from scheduler.live.launcher import LocalCluster, ServerProcess, wait_for_tasks

KEY_VAR, KEY = "INFERSCHED_TEST_UPSTREAM_KEY", "sk-test-0123456789-secret"


# -- unit: shapes and token counts ---------------------------------------------------------------


def test_endpoint_of_tells_chat_from_completion_and_refuses_the_rest():
    assert endpoint_of({"messages": [{"role": "user", "content": "hi"}]}) == "chat/completions"
    assert endpoint_of({"prompt": "hi", "max_tokens": 3}) == "completions"
    for bad in ({"text": "hi"}, "hi", None, {"messages": "hi"}, {"messages": [], "prompt": "x"}):
        with pytest.raises(TaskInputError) as e:
            endpoint_of(bad)
        assert '"messages"' in str(e.value) and '"prompt"' in str(e.value), str(e.value)
    with pytest.raises(TaskInputError, match="input_data.model"):
        endpoint_of({"model": "x", "prompt": "hi"})


def test_metrics_of_reads_usage():
    assert metrics_of({"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}) == {
        "input_tokens": 5,
        "output_tokens": 7,
    }
    assert metrics_of({"choices": []}) is None
    assert metrics_of({"usage": {"prompt_tokens": True}}) is None
    assert metrics_of(None) is None


# -- end to end -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    logs = tmp_path_factory.mktemp("openai-logs")
    port = free_port()
    env = {**os.environ, KEY_VAR: KEY}
    fake = ServerProcess(
        "fake-openai",
        ["-m", "scheduler.instance.fake_openai", "--port", str(port), "--ms-per-token", "20"]
        + ["--api-key-env", KEY_VAR],
        f"http://127.0.0.1:{port}",
        "/fake/stats",
        env=env,
        log_dir=logs,
    )
    upstream = f"http://127.0.0.1:{port}/v1"
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    common = ["--backend", "openai", "--upstream-timeout-s", "2", "--api-key-env", KEY_VAR]
    instances = [
        {"model": "chat", "extra_args": [*common, "--upstream", upstream, "--concurrency", "2"]},
        {"model": "dead", "extra_args": [*common, "--upstream", dead, "--concurrency", "1"]},
    ]
    old = os.environ.get(KEY_VAR)
    os.environ[KEY_VAR] = KEY  # the backend instances inherit it
    try:
        fake.wait_ready(60)
        with LocalCluster(instances, log_dir=logs, scheduler={"task_timeout_s": 60}) as cluster:
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                yield cluster, client, fake
    finally:
        fake.stop()
        if old is None:
            os.environ.pop(KEY_VAR, None)
        else:
            os.environ[KEY_VAR] = old


def submit(client: httpx.Client, model: str, task_input: dict) -> str:
    body = client.post("/queue/submit", json={"model_name": model, "task_input": task_input}).json()
    assert body["status"] == "success", body
    return body["task_id"]


def fake_stats(fake: ServerProcess) -> dict:
    return httpx.get(fake.url + "/fake/stats", timeout=10).json()


@pytest.mark.e2e
def test_chat_and_completion_tasks_complete_with_the_upstreams_answer_within_concurrency(setup):
    cluster, client, fake = setup
    before = fake_stats(fake)["requests"]
    chats = [
        submit(
            client, "chat", {"messages": [{"role": "user", "content": f"hello number {i}"}], "max_tokens": 5}
        )
        for i in range(6)
    ]
    prompts = [submit(client, "chat", {"prompt": f"once upon a time {i}", "max_tokens": 3}) for i in range(3)]
    done = wait_for_tasks(client, chats + prompts, timeout_s=90)
    for tid in chats:
        task = done[tid]
        assert task["task_status"] == "completed", task["result"]
        res = task["result"]
        assert res["object"] == "chat.completion" and res["model"] == "chat"
        assert res["choices"][0]["message"]["role"] == "assistant"
        assert len(res["choices"][0]["message"]["content"].split()) == 5
        assert res["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
        assert task["metrics"] == {"input_tokens": 3, "output_tokens": 5}  # from usage, via the completion
    for tid in prompts:
        res = done[tid]["result"]
        assert done[tid]["task_status"] == "completed" and res["object"] == "text_completion", done[tid]
        assert res["usage"]["prompt_tokens"] == 5 and res["usage"]["completion_tokens"] == 3
    stats = fake_stats(fake)
    assert stats["requests"] - before == 9
    assert 1 <= stats["max_in_flight"] <= 2, stats  # --concurrency 2: never more upstream at once


@pytest.mark.e2e
def test_upstream_failures_end_the_task_failed_with_a_clear_reason(setup):
    cluster, client, fake = setup
    cases = {
        submit(client, "chat", {"prompt": "hi", "max_tokens": 0}): "HTTP 400): max_tokens: 0 is not valid",
        submit(
            client, "chat", {"prompt": "boom [fake:500]"}
        ): "upstream failed (HTTP 500): The server had an error",
        submit(client, "chat", {"prompt": "wait [fake:hang]"}): "did not answer within 2 s",
        submit(client, "dead", {"prompt": "anyone there?"}): "unreachable (connection refused",
    }
    done = wait_for_tasks(client, list(cases), timeout_s=90)
    for tid, why in cases.items():
        task = done[tid]
        assert task["task_status"] == "failed", task
        assert why in task["result"]["error"], task
        assert KEY not in str(task)
    for inst in cluster.instances:  # the key is never logged
        assert KEY not in inst.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.e2e
def test_an_input_that_is_neither_chat_nor_completion_is_refused_at_enqueue(setup):
    cluster, client, fake = setup
    inst = cluster.instances[0]
    resp = httpx.post(
        inst.url + "/queue/enqueue", json={"task_id": "bad-1", "input_data": {"text": "hi"}}, timeout=10
    )
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert '"messages"' in detail and '"prompt"' in detail and "input_data" in detail, detail
    assert httpx.get(inst.url + "/results/bad-1", timeout=10).status_code == 404  # nothing was queued


def test_cli_refuses_bad_backend_options(monkeypatch, capsys):
    from scheduler.instance.__main__ import main

    assert main(["--backend", "openai", "--model", "m"]) == 2
    assert "--upstream" in capsys.readouterr().err
    monkeypatch.delenv("INFERSCHED_NOT_SET", raising=False)
    argv = ["--backend", "openai", "--model", "m", "--upstream", "http://127.0.0.1:1/v1"]
    assert main([*argv, "--api-key-env", "INFERSCHED_NOT_SET"]) == 2
    assert "INFERSCHED_NOT_SET" in capsys.readouterr().err
    assert main(["--model", "m", "--concurrency", "2"]) == 2
    assert "--concurrency" in capsys.readouterr().err
