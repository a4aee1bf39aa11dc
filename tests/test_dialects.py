"""SwarmPilot task instances, both dialects (docs/api.md, "Dialects"), end to end with real processes
on 127.0.0.1: instances written from each dialect's contract (tests/swarmpilot_instances.py), the
reference instance driven with the seed-era client's calls, and the scheduler between them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from scheduler.live import ServerProcess, free_port, start_instance, start_scheduler

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent


def start_swarmpilot(
    dialect: str, tmp_path, *, model: str = "llm", host: str = "127.0.0.1", **opts
) -> ServerProcess:
    """One instance of tests/swarmpilot_instances.py (``opts``: its options, ``service_ms=30``...)."""
    port = free_port(host)
    args = [str(HERE / "swarmpilot_instances.py"), "--dialect", dialect, "--host", host, "--port", str(port)]
    args += ["--model", model]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        args += [flag] if v is True else [flag, str(v)]
    ready = "/status" if dialect == "enqueue" else "/info"
    return ServerProcess(f"{dialect}-{port}", args, f"http://{host}:{port}", ready, log_dir=tmp_path)


def port_of(proc: ServerProcess) -> int:
    return int(proc.url.rsplit(":", 1)[1])


def host_of(proc: ServerProcess) -> str:
    return proc.url.split("//", 1)[1].rsplit(":", 1)[0]


def register(c: httpx.Client, proc: ServerProcess, **extra) -> dict:
    body = c.post("/ti/register", json={"host": host_of(proc), "port": port_of(proc), **extra}).json()
    assert body["status"] == "success", body
    return body


def submit_all(c: httpx.Client, n: int, model: str = "llm") -> list[str]:
    ids = []
    for i in range(n):
        r = c.post("/queue/submit", json={"model_name": model, "task_input": {"i": i}})
        assert r.status_code == 200, r.text
        ids.append(r.json()["task_id"])
    return ids


def wait_ended(c: httpx.Client, ids: list[str], timeout_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = c.post("/task/details", json={"task_ids": ids}).json()["tasks"]
        if len(found) == len(ids) and all(t["task_status"] in ("completed", "failed") for t in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks not ended after {timeout_s} s: {found}")
        time.sleep(0.05)


def test_the_reference_instance_answers_the_seed_era_clients_calls(tmp_path):
    with (
        start_instance(
            "llm", replicas=2, service_time={"dist": "deterministic", "value_ms": 20}, log_dir=tmp_path
        ).wait_ready() as inst,
        httpx.Client(base_url=inst.url, timeout=10) as c,
    ):
        # enqueue_task: no task_id; the instance assigns one and answers with it
        r = c.post("/queue/enqueue", json={"input_data": {"size_ms": 10}, "metadata": {"user": "seed"}})
        assert r.status_code == 200, r.text
        tid = r.json()["task_id"]
        assert tid and r.json()["queue_size"] >= 0 and r.json()["enqueue_time"] > 0
        second = c.post("/queue/enqueue", json={"input_data": {"size_ms": 10}, "metadata": {}}).json()
        assert second["task_id"] != tid
        q = c.get("/queue/status")
        assert q.status_code == 200
        assert set(q.json()) == {"queue_size", "model_type", "expected_ms", "error_ms"}
        assert q.json()["model_type"] == "llm"
        deadline = time.monotonic() + 10
        while c.get(f"/results/{tid}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        everything = c.get("/results")
        assert everything.status_code == 200
        by_id = {x["task_id"]: x for x in everything.json()["results"]}
        assert {tid, second["task_id"]} <= set(by_id)
        assert by_id[tid]["status"] == "completed" and by_id[tid]["execution_time"] > 0
        # and the scheduler's own call, with its id, is unchanged
        r = c.post("/queue/enqueue", json={"task_id": "mine", "input_data": {}, "metadata": {}})
        assert r.json()["task_id"] == "mine"
