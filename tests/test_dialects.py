"""SwarmPilot task instances, both dialects (docs/api.md, "Dialects"), end to end with real processes
on 127.0.0.1: instances written from each dialect's contract (tests/swarmpilot_instances.py), the
reference instance driven with the seed-era client's calls, and the scheduler between them."""

from __future__ import annotations

import socket
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


def scheduler(tmp_path, **opts) -> ServerProcess:
    opts = {"health_interval_s": 0.3, "poll_interval_s": 0.2, "log_level": "warning", **opts}
    return start_scheduler(log_dir=tmp_path, **opts).wait_ready()


def echoes(found: list[dict]) -> dict[str, object]:
    return {t["task_id"]: t["result"]["echo"] for t in found}


def test_seed_era_instances_assigning_their_own_ids_complete_every_task_under_the_schedulers_id(tmp_path):
    a = start_swarmpilot("enqueue", tmp_path, replicas=2, service_ms=30).wait_ready()
    b = start_swarmpilot("enqueue", tmp_path, replicas=2, service_ms=30).wait_ready()
    sched = scheduler(tmp_path, strategy="round_robin", task_timeout_s=60)
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            for inst in (a, b):
                body = register(c, inst)
                assert body["protocol"] == "enqueue" and "GET /status" in body["message"]
            ids = submit_all(c, 10)
            found = wait_ended(c, ids)
            assert all(t["task_status"] == "completed" for t in found), found
            assert echoes(found) == {tid: {"i": i} for i, tid in enumerate(ids)}
            assert all(tid.startswith("task-") for tid in ids)
            assert all(c.get("/task/query", params={"task_id": t}).json()["result"]["by"] for t in ids)
        own = [r["task_id"] for inst in (a, b) for r in httpx.get(inst.url + "/results", timeout=10).json()]
        assert len(own) == 10 and all(r.startswith("own-") for r in own)  # the instances' own ids
    finally:
        for p in (sched, a, b):
            p.stop()


def test_submit_dialect_instances_are_detected_or_named_and_complete_every_task(tmp_path):
    sched = scheduler(tmp_path, strategy="round_robin", task_timeout_s=60)
    a = start_swarmpilot("submit", tmp_path, service_ms=30, scheduler_url=sched.url).wait_ready()
    b = start_swarmpilot("submit", tmp_path, service_ms=30, scheduler_url=sched.url).wait_ready()
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            assert register(c, a)["protocol"] == "submit"  # detected: /status is not served, /info is
            assert register(c, b, protocol="submit")["protocol"] == "submit"
            wrong = c.post("/ti/register", json={"host": "127.0.0.1", "port": port_of(a), "protocol": "x"})
            assert wrong.status_code == 422
            ids = submit_all(c, 10)
            found = wait_ended(c, ids)
            assert all(t["task_status"] == "completed" for t in found), found
            assert echoes(found) == {tid: {"i": i} for i, tid in enumerate(ids)}
            assert {t["scheduled_ti"] for t in found} == {
                q["ti_uuid"] for q in c.get("/queue/info").json()["queues"]
            }
    finally:
        for p in (sched, a, b):
            p.stop()


def test_a_killed_swarmpilot_instance_is_survived_its_tasks_move_to_the_other(tmp_path):
    sched = scheduler(tmp_path, strategy="round_robin", task_timeout_s=2, unhealthy_after=1)
    a = start_swarmpilot("enqueue", tmp_path, service_ms=400).wait_ready()
    b = start_swarmpilot("submit", tmp_path, service_ms=50, scheduler_url=sched.url, replicas=2).wait_ready()
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            ti_a = register(c, a)["ti_uuid"]
            ti_b = register(c, b)["ti_uuid"]
            ids = submit_all(c, 8)
            on_a = [
                t for t in ids if c.get("/task/query", params={"task_id": t}).json()["scheduled_ti"] == ti_a
            ]
            assert on_a
            a.kill()
            found = wait_ended(c, ids, timeout_s=40)
            assert all(t["task_status"] == "completed" for t in found), found
            moved = {t["task_id"]: t for t in found if t["task_id"] in on_a}
            # the one a was running may have ended before the kill; the rest ran on b
            assert sum(t["scheduled_ti"] == ti_b for t in moved.values()) >= len(on_a) - 1
            assert echoes(found) == {tid: {"i": i} for i, tid in enumerate(ids)}
    finally:
        for p in (sched, a, b):
            p.stop()


def test_a_lost_completion_ends_the_task_by_polling_results(tmp_path):
    # the watchdog would only look after 60 s: polling GET /results is what ends these tasks
    sched = scheduler(tmp_path, task_timeout_s=60)
    a = start_swarmpilot("submit", tmp_path, service_ms=20, drop_notifications=True).wait_ready()
    b = start_swarmpilot("enqueue", tmp_path, service_ms=20, drop_notifications=True).wait_ready()
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            register(c, a)
            register(c, b)
            ids = submit_all(c, 6)
            found = wait_ended(c, ids, timeout_s=20)
            assert all(t["task_status"] == "completed" for t in found), found
            assert echoes(found) == {tid: {"i": i} for i, tid in enumerate(ids)}
    finally:
        for p in (sched, a, b):
            p.stop()


def loopback_alias_usable(host: str = "127.0.0.2") -> bool:
    """Linux routes all of 127.0.0.0/8 to loopback; some systems only 127.0.0.1."""
    try:
        with socket.socket() as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not loopback_alias_usable(), reason="127.0.0.2 is not usable on this machine")
def test_a_completion_from_elsewhere_than_a_secretless_instances_address_is_refused(tmp_path):
    sched = scheduler(tmp_path, task_timeout_s=60, poll_interval_s=30)
    # the instance lives on 127.0.0.2 and reports from there; this test reports from 127.0.0.1
    a = start_swarmpilot(
        "submit",
        tmp_path,
        host="127.0.0.2",
        source_address="127.0.0.2",
        service_ms=1500,
        scheduler_url=sched.url,
    ).wait_ready()
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            register(c, a)
            instance_id = httpx.get(a.url + "/info", timeout=10).json()["instance_id"]
            (tid,) = submit_all(c, 1)
            forged = {"task_id": tid, "instance_id": instance_id, "execution_time": 1.0, "result": "forged"}
            r = c.post("/notify/task_complete", json=forged)
            assert r.status_code == 401 and r.json()["status"] == "warning", r.text
            assert c.get("/task/query", params={"task_id": tid}).json()["task_status"] == "scheduled"
            (done,) = wait_ended(c, [tid])  # the instance's own completion, from its address, counts
            assert done["task_status"] == "completed" and done["result"]["echo"] == {"i": 0}
    finally:
        for p in (sched, a):
            p.stop()


def test_a_restarted_scheduler_keeps_the_instances_ids(tmp_path):
    db = tmp_path / "state.db"
    a = start_swarmpilot("enqueue", tmp_path, service_ms=1500, drop_notifications=True).wait_ready()
    sched = scheduler(tmp_path, task_timeout_s=60, state_db=str(db))
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            register(c, a)
            ids = submit_all(c, 2)
        sched.kill()
        sched = scheduler(tmp_path, task_timeout_s=60, state_db=str(db))
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            found = wait_ended(c, ids, timeout_s=20)
            assert all(t["task_status"] == "completed" for t in found), found
            assert echoes(found) == {ids[0]: {"i": 0}, ids[1]: {"i": 1}}
        # reconciled under the instance's ids: nothing was dispatched again
        assert len(httpx.get(a.url + "/results", timeout=10).json()) == 2
    finally:
        for p in (sched, a):
            p.stop()
