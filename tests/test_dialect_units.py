"""The dialect adapters and the id mapping (scheduler.live.dialects), and the service's use of them,
with mock transports and the injected clock: no process, no timing luck."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from test_api import T0_MS, FakeInstances, make_service, serve, submit

from scheduler.live import TaskInstanceClient
from scheduler.live.dialects import Dialects, RemoteIds, parse_results


def test_results_are_read_in_every_shape_an_instance_may_answer():
    item = {"task_id": "a", "status": "completed", "result": 1, "execution_time": 2.0}
    assert parse_results([item])[0].result == 1
    assert parse_results({"results": [item]})[0].task_id == "a"
    assert parse_results({"results": {"a": {"status": "success", "result": 3}}})[0].status == "completed"
    failed = parse_results([{"task_id": "b", "status": "error"}])[0]
    assert failed.status == "failed" and "error" in (failed.error or "")
    # unreadable items and unknown statuses are skipped, never fatal
    assert parse_results([{"status": "completed"}, {"task_id": "c", "status": "weird"}, 7]) == []
    assert parse_results("nonsense") == []


def test_remote_ids_map_both_ways_and_remember_ended_tasks():
    ids = RemoteIds(retired=2)
    ids.bind("t1", "A", "own-1")
    assert ids.remote("t1", "A") == "own-1" and ids.remote("t1", "B") == "t1"
    assert ids.local("A", "own-1") == "t1" and ids.local("B", "own-1") == "own-1"
    assert ids.stored("t1") == "own-1"
    ids.bind("t1", "B", "t1")  # moved to an instance that keeps the scheduler's id
    assert ids.stored("t1") is None and ids.remote("t1", "A") == "t1"
    assert ids.local("A", "own-1") == "t1"  # a late completion from A is still known
    for k in range(3):
        ids.bind(f"x{k}", "A", f"own-x{k}")
        ids.drop(f"x{k}")
    assert ids.local("A", "own-1") == "own-1"  # only the last 2 ended bindings are kept
    assert len(ids) == 0


def info_transport(body: dict) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/info":
            return httpx.Response(200, json=body)
        return httpx.Response(404, json={"detail": "not here"})

    return httpx.MockTransport(handle)


async def detect(body: dict, protocol: str | None = None):
    client = TaskInstanceClient(transport=info_transport(body))
    try:
        return await Dialects(client).detect("http://127.0.0.1:9000", protocol)
    finally:
        await client.aclose()


def test_the_submit_dialect_is_detected_from_info_and_its_status_read():
    body = {
        "deployed_model": {"model_name": "llm", "replicas": 3},
        "queue_info": {"length_of_queue": 4},
        "instance_status": "busy",
    }
    dialect, st = asyncio.run(detect(body))
    assert dialect.name == "submit" and not dialect.callback_secret
    assert (st.model_type, st.replicas_running, st.queue_size, st.status) == ("llm", 3, 4, "running")
    assert st.instance_id == "127.0.0.1:9000"  # no instance_id in /info: named by its address
    _, down = asyncio.run(detect({**body, "instance_status": "error", "instance_id": "i-1"}))
    assert down.status == "error" and down.instance_id == "i-1"
    with pytest.raises(Exception, match="speaks no known dialect"):
        asyncio.run(detect({"nothing": True}))
    with pytest.raises(Exception, match="answered HTTP 404"):
        asyncio.run(detect(body, "enqueue"))  # told the wrong dialect: its /status is not there


class OwnIds(FakeInstances):
    """Fake instances that answer every enqueue with an id of their own, and serve GET /results."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        fake = self.by_port.get(request.url.port)
        if fake is None or not fake.up or request.url.path not in ("/queue/enqueue", "/results"):
            return super().handle(request)
        self.calls.append((request.url.port, request.url.path))
        if request.url.path == "/queue/enqueue":
            body = json.loads(request.content)
            fake.enqueued.append(body)
            return httpx.Response(
                200, json={"task_id": f"own-{len(fake.enqueued)}", "queue_size": 1, "enqueue_time": 1.0}
            )
        return httpx.Response(200, json=[{"task_id": k, **v} for k, v in fake.results.items()])


def test_an_instance_assigning_its_own_ids_is_mapped_address_checked_and_polled():
    fakes = OwnIds()
    a = fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        r = tc.post("/ti/register", json={"host": "127.0.0.1", "port": 8100}).json()
        assert r["protocol"] == "enqueue"
        t1, t2, t3 = (submit(tc).json()["task_id"] for _ in range(3))
        entry = svc._entries[r["ti_uuid"]]
        assert entry.own_ids and entry.address_checked
        # a completion under the instance's own id, from its address, ends the scheduler's task
        ack = svc.notify("own-1", a.instance_id, 5.0, {"ok": 1}, peer="127.0.0.1")
        assert ack.status == "success"
        assert svc.task(t1).status == "completed" and svc.task(t1).result == {"ok": 1}
        # from another address: refused, nothing changed
        ack = svc.notify("own-2", a.instance_id, 5.0, {"forged": 1}, peer="10.0.0.9")
        assert ack.unauthorized and svc.task(t2).status == "scheduled"
        # the same completion again: already recorded, not unknown
        assert "already recorded" in svc.notify("own-1", a.instance_id, 5.0, None, peer="127.0.0.1").message
        # a lost completion: one GET /results round ends the tasks it shows ended
        a.results["own-2"] = {"status": "completed", "result": {"polled": 2}, "execution_time": 4.0}
        a.results["own-3"] = {"status": "failed", "error": "out of memory"}
        tc.portal.call(svc.poll_results)
        assert svc.task(t2).result == {"polled": 2}
        assert svc.task(t3).status == "failed" and "out of memory" in (svc.task(t3).error or "")
        assert fakes.calls.count((8100, "/results")) == 1
        tc.portal.call(svc.poll_results)  # nothing in flight there any more: no call
        assert fakes.calls.count((8100, "/results")) == 1


def test_the_reference_dialect_keeps_secrets_and_is_never_polled():
    fakes = FakeInstances()
    fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        ti = tc.post("/ti/register", json={"host": "127.0.0.1", "port": 8100}).json()["ti_uuid"]
        submit(tc)
        assert not svc._entries[ti].address_checked
        tc.portal.call(svc.poll_results)
        assert (8100, "/results") not in fakes.calls
        assert svc.core.clock.now_ms() == T0_MS  # nothing here reads or moves the clock
