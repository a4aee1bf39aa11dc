"""Failure semantics (docs/operations.md, "What it guarantees about tasks"): the probe findings
of issue 9 about failover, each reproduced and then fixed.

* slow failover: tasks on an instance that went unhealthy waited for ``--task-timeout-s``;
* a stopped (SIGSTOP) instance held each client routed to it for the request timeout, and the
  tasks sent elsewhere meanwhile also ran on it when it resumed;
* ``task_input: {size_ms: 1e308}`` held a reference-instance replica for ever, and once the
  scheduler had failed it (``--task-hard-limit-s``) it saw that instance as idle and kept routing
  there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import numpy as np
from test_api import FakeInstances, make_service, notify, query, register, serve, submit

from scheduler import from_spec
from scheduler.instance import InstanceRuntime, SleepWork
from scheduler.live import start_instance, start_scheduler


def test_an_unhealthy_instance_has_its_tasks_moved_at_once_and_its_late_completion_is_a_duplicate():
    fakes = FakeInstances()
    a, b = fakes.add(8100), fakes.add(8101)
    svc = make_service(fakes, strategy="round_robin", task_timeout_s=30.0, unhealthy_after=2)
    with serve(svc) as tc:
        ti_a, ti_b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        ids = [submit(tc).json()["task_id"] for _ in range(6)]
        on_b = [t for t in ids if query(tc, t)["scheduled_ti"] == ti_b]
        assert on_b
        b.up = False
        tc.portal.call(svc.check_health)
        tc.portal.call(svc.check_health)
        assert not svc.core.instance(ti_b).healthy
        # no clock advance: before the fix they stayed on b for task_timeout_s (30 s here)
        tc.portal.call(svc.check_overdue)
        assert all(query(tc, t)["scheduled_ti"] == ti_a for t in on_b)
        assert sum(e["task_id"] in on_b for e in a.enqueued) == len(on_b)
        tc.portal.call(asyncio.sleep, 0.05)  # the best-effort cancels run in the background
        assert sum(call == (8101, "/queue/cancel") for call in fakes.calls) == len(on_b)
        # b comes back and reports one of them anyway: a duplicate, never a second result
        b.up = True
        ack = notify(tc, on_b[0], b.instance_id, result={"from": "b"})
        assert ack["status"] == "warning" and "duplicate" in ack["message"]
        assert svc.duplicates == 1
        assert notify(tc, on_b[0], a.instance_id, result={"from": "a"})["status"] == "success"
        assert query(tc, on_b[0])["result"] == {"from": "a"}


def test_a_huge_size_ms_does_not_hold_a_replica_forever():
    async def run() -> tuple[str, str | None, str]:
        work = SleepWork(from_spec({"dist": "deterministic", "value_ms": 1}), np.random.default_rng(0))
        rt = InstanceRuntime(work, model="llm", instance_id="x", replicas=1, max_task_ms=200)
        await rt.start()
        try:
            rt.enqueue("huge", {"size_ms": 1e308}, {}, None)
            rt.enqueue("next", {"size_ms": 1}, {}, None)
            for _ in range(200):
                job = rt.get("next")
                if job is not None and job.finished:
                    break
                await asyncio.sleep(0.02)
            huge, nxt = rt.get("huge"), rt.get("next")
            assert huge is not None and nxt is not None
            return huge.status, huge.error, nxt.status
        finally:
            await rt.stop()

    status, error, next_status = asyncio.run(run())
    assert status == "failed" and "--max-task-ms" in (error or "")
    assert next_status == "completed"  # the replica was free again


def test_after_a_hard_limit_failure_the_instance_reported_queue_size_is_trusted():
    # the probe: a task past --task-hard-limit-s is failed here but still holds the instance's
    # replica; the core's estimate then said "idle" and new tasks queued behind it
    fakes = FakeInstances()
    a = fakes.add(8100)
    fakes.add(8101)
    svc = make_service(fakes, strategy="shortest_queue", task_timeout_s=10.0, task_hard_limit_s=30.0)
    with serve(svc) as tc:
        ti_a = register(tc, 8100)["ti_uuid"]
        stuck = submit(tc).json()["task_id"]  # on a, the only instance yet
        ti_b = register(tc, 8101)["ti_uuid"]
        a.results[stuck] = {"status": "running"}
        a.queue_size = 1  # its one replica is still busy with it
        for _ in range(3):
            svc.core.clock.advance(11_000)
            tc.portal.call(svc.check_overdue)
        assert query(tc, stuck)["task_status"] == "failed"
        tc.portal.call(svc.check_health)
        placed = [submit(tc).json()["scheduled_ti"] for _ in range(4)]
        assert placed == [ti_b] * 4, placed  # a's replica is held: nothing queues behind it
        a.queue_size = 0  # the instance let it go (its own --max-task-ms): a takes tasks again
        tc.portal.call(svc.check_health)
        assert svc.core.instance(ti_a).healthy
        assert ti_a in {submit(tc).json()["scheduled_ti"] for _ in range(8)}


def test_a_stopped_instance_neither_holds_clients_nor_runs_the_tasks_sent_elsewhere(tmp_path):
    service = {"dist": "deterministic", "value_ms": 20}
    a = start_instance("llm", replicas=2, service_time=service, log_dir=tmp_path).wait_ready()
    b = start_instance("llm", replicas=2, service_time=service, log_dir=tmp_path).wait_ready()
    sched = start_scheduler(
        log_dir=tmp_path,
        request_timeout_s=10,
        enqueue_timeout_s=1,
        health_interval_s=0.5,
        task_timeout_s=5,
        strategy="round_robin",
        log_level="warning",
    ).wait_ready()
    stopped = False
    try:
        with httpx.Client(base_url=sched.url, timeout=30) as c:
            tis = {}
            for inst in (a, b):
                port = int(inst.url.rsplit(":", 1)[1])
                tis[inst.name] = c.post("/ti/register", json={"host": "127.0.0.1", "port": port}).json()[
                    "ti_uuid"
                ]
            os.kill(b.proc.pid, signal.SIGSTOP)
            stopped = True
            slowest, ids = 0.0, []
            for i in range(12):
                t0 = time.monotonic()
                r = c.post("/queue/submit", json={"model_name": "llm", "task_input": {"i": i}})
                slowest = max(slowest, time.monotonic() - t0)
                assert r.status_code == 200, r.text
                assert r.json()["scheduled_ti"] == tis[a.name]
                ids.append(r.json()["task_id"])
            # before the fix a submit routed to b waited for the request timeout (10 s here)
            assert slowest < 6.0, slowest
            os.kill(b.proc.pid, signal.SIGCONT)
            stopped = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = c.post("/task/details", json={"task_ids": ids}).json()["tasks"]
                if all(t["task_status"] == "completed" for t in found):
                    break
                time.sleep(0.1)
            assert all(t["task_status"] == "completed" for t in found), found
            time.sleep(1.0)  # b reads what was buffered while it was stopped
            runs_b = httpx.get(b.url + "/runs", timeout=10).json()["runs"]
            assert not set(runs_b) & set(ids), "tasks sent elsewhere also ran on the resumed instance"
            assert all(t["scheduled_ti"] == tis[a.name] for t in found)
    finally:
        if stopped:
            os.kill(b.proc.pid, signal.SIGCONT)
        sched.stop()
        a.stop()
        b.stop()
