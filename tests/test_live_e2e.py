"""Live mode end to end: a scheduler and reference instances as real processes on 127.0.0.1.

Each test starts ``python -m scheduler serve`` and ``python -m scheduler.instance``
subprocesses on free ports (``LocalCluster`` stops them whatever happens),
drives them over HTTP, and polls with deadlines; no assertion depends on a
fixed sleep.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from scheduler.live import LocalCluster, wait_for_tasks

pytestmark = pytest.mark.e2e


def submit_many(url: str, n: int, *, concurrency: int = 8, on_answer=None) -> list[tuple[int, dict]]:
    """Submit ``n`` tasks concurrently; returns (HTTP status, body) per task, in order."""
    out: list = [None] * n

    async def go():
        queue = iter(range(n))
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:

            async def worker():
                for i in queue:
                    r = await c.post("/queue/submit", json={"model_name": "llm", "task_input": {"i": i}})
                    out[i] = (r.status_code, r.json())
                    if on_answer is not None:
                        on_answer(out[i])

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(go())
    return out


def wait_all_ended(url: str, task_ids: list[str], timeout_s: float = 60.0) -> dict[str, dict]:
    """Every task's answer once all have ended (the one polling helper, generous deadline)."""
    with httpx.Client(base_url=url, timeout=10) as c:
        return wait_for_tasks(c, task_ids, timeout_s=timeout_s)


def test_200_tasks_complete_with_results():
    spec = [
        dict(model="llm", replicas=2, seed=i, service_time={"dist": "exponential", "mean_ms": 5})
        for i in range(3)
    ]
    with LocalCluster(spec) as cluster:
        answers = submit_many(cluster.url, 200, concurrency=16)
        assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
        ids = [body["task_id"] for _, body in answers]
        assert len(set(ids)) == 200
        states = wait_all_ended(cluster.url, ids)
        assert all(s["task_status"] == "completed" for s in states.values())
        assert all(set(s["result"]) == {"service_ms"} for s in states.values())
        assert {s["scheduled_ti"] for s in states.values()} == set(cluster.ti_uuids)
        stats = httpx.get(f"{cluster.url}/scheduler/stats").json()
        assert stats["counts"] == {"queued": 0, "scheduled": 0, "completed": 200, "failed": 0}
        # the instance that ran a task still has its result
        where = dict(zip(cluster.ti_uuids, cluster.instances))
        for tid in ids[:5]:
            r = httpx.get(f"{where[states[tid]['scheduled_ti']].url}/results/{tid}").json()
            assert r["status"] == "completed" and r["result"] == states[tid]["result"]


def test_killed_instance_loses_no_task():
    spec = [
        dict(model="llm", replicas=1, seed=i, service_time={"dist": "deterministic", "value_ms": 40})
        for i in range(3)
    ]
    scheduler = dict(task_timeout_s=1.0, health_interval_s=0.25, unhealthy_after=1, request_timeout_s=2.0)
    with LocalCluster(spec, scheduler=scheduler) as cluster:
        victim, victim_ti = cluster.instances[0], cluster.ti_uuids[0]
        accepted = []

        def kill_mid_run(answer):
            accepted.append(answer)
            if len(accepted) == 50:
                victim.kill()

        answers = submit_many(cluster.url, 150, concurrency=8, on_answer=kill_mid_run)
        assert not victim.alive
        assert all(status in (200, 503) for status, _ in answers)  # never a 500
        ids = [body["task_id"] for status, body in answers if "task_id" in body]
        states = wait_all_ended(cluster.url, ids)
        for s in states.values():
            assert s["task_status"] == "completed" or s["result"]["error"], s
        first = {body["task_id"]: body.get("scheduled_ti") for _, body in answers if "task_id" in body}
        moved = [
            t
            for t, s in states.items()
            if first[t] == victim_ti and s["task_status"] == "completed" and s["scheduled_ti"] != victim_ti
        ]
        assert moved, "no task was taken off the killed instance"
        counts = httpx.get(f"{cluster.url}/scheduler/stats").json()["counts"]
        assert counts["scheduled"] == 0 and counts["queued"] == 0


def test_removed_instance_finishes_its_tasks():
    # 16 tasks of 300 ms on two single-replica instances take ~2.4 s to drain: the removal
    # below lands while the removed instance still has work, however slow the machine
    spec = [
        dict(model="llm", replicas=1, seed=i, service_time={"dist": "deterministic", "value_ms": 300})
        for i in range(2)
    ]
    with LocalCluster(spec) as cluster:
        gone, kept = cluster.ti_uuids
        first = submit_many(cluster.url, 16, concurrency=16)
        body = httpx.post(f"{cluster.url}/ti/remove", json={"ti_uuid": gone}).json()
        assert body["status"] == "success", body
        in_flight = int(re.search(r"its (\d+) task", body["message"]).group(1))
        assert in_flight >= 1
        later = submit_many(cluster.url, 6, concurrency=6)
        assert all(b["scheduled_ti"] == kept for _, b in later)
        queues = httpx.get(f"{cluster.url}/queue/info").json()["queues"]
        assert [q["ti_uuid"] for q in queues] == [kept]

        ids = [b["task_id"] for _, b in first + later]
        states = wait_all_ended(cluster.url, ids)
        assert all(s["task_status"] == "completed" for s in states.values())
        on_gone = [t for t in ids if states[t]["scheduled_ti"] == gone]
        assert len(on_gone) >= in_flight  # recorded, with the removed instance as theirs
