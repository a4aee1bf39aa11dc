"""The scheduler's HTTP API (docs/api.md) through FastAPI's TestClient.

Task instances are played by an httpx MockTransport (:class:`FakeInstances`):
the scheduler's client really sends its requests, and each fake instance can
be up, down, unhealthy, refusing, or forgetful.  The core runs on a
ManualClock so that queue estimates are exact; the health loop and the
watchdog are driven explicitly through the TestClient's portal.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.testclient import TestClient

import scheduler
from scheduler import ManualClock, SpecError
from scheduler.live import (
    LiveConfig,
    LiveScheduler,
    TaskInstanceClient,
    WallClock,
    create_app,
    load_config,
    load_instances,
)
from scheduler.live.service import build_core

T0_MS = 1.7e12  # an epoch time in ms


@dataclass
class Fake:
    port: int
    model: str = "llm"
    replicas: int = 1
    instance_id: str = ""
    up: bool = True
    status: str = "running"
    queue_size: int = 0  # what /status reports
    enqueue_status: int = 200  # anything else: the instance refuses tasks
    enqueued: list = field(default_factory=list)
    results: dict = field(default_factory=dict)  # task_id -> /results body; absent: 404


class FakeInstances:
    """Task instances behind an httpx MockTransport, keyed by port."""

    def __init__(self):
        self.by_port: dict[int, Fake] = {}
        self.calls: list[tuple[int, str]] = []

    def add(self, port: int, **kw) -> Fake:
        fake = Fake(port, **kw)
        fake.instance_id = fake.instance_id or f"{fake.model}@{port}"
        self.by_port[port] = fake
        return fake

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.url.port, request.url.path))
        fake = self.by_port.get(request.url.port)
        if fake is None or not fake.up:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/status":
            return httpx.Response(
                200,
                json={
                    "instance_id": fake.instance_id,
                    "model_type": fake.model,
                    "replicas_running": fake.replicas,
                    "queue_size": fake.queue_size,
                    "status": fake.status,
                },
            )
        if path == "/queue/enqueue":
            body = json.loads(request.content)
            if fake.enqueue_status != 200:
                return httpx.Response(fake.enqueue_status, text="refused")
            fake.enqueued.append(body)
            return httpx.Response(
                200,
                json={
                    "task_id": body["task_id"],
                    "queue_size": len(fake.enqueued),
                    "enqueue_time": time.time(),
                },
            )
        if path.startswith("/results/"):
            tid = path.rsplit("/", 1)[1]
            if tid not in fake.results:
                return httpx.Response(404, json={"detail": "unknown"})
            return httpx.Response(
                200, json={"task_id": tid, "enqueue_time": time.time(), **fake.results[tid]}
            )
        return httpx.Response(404)


@pytest.fixture
def fakes() -> FakeInstances:
    return FakeInstances()


def make_service(fakes: FakeInstances, clock=None, **settings) -> LiveScheduler:
    settings.setdefault("health_interval_s", 3600.0)
    settings.setdefault("task_timeout_s", 60.0)
    config = LiveConfig(**settings)
    client = TaskInstanceClient(timeout_s=2.0, transport=httpx.MockTransport(fakes.handle))
    return LiveScheduler(config, core=build_core(config, clock=clock or ManualClock(T0_MS)), client=client)


@contextmanager
def serve(service: LiveScheduler, **kw):
    with TestClient(create_app(service), **kw) as tc:
        yield tc


def register(tc: TestClient, port: int, **extra) -> dict:
    r = tc.post("/ti/register", json={"host": "127.0.0.1", "port": port, **extra})
    assert r.status_code == 200
    return r.json()


def submit(tc: TestClient, model: str = "llm", **extra) -> httpx.Response:
    return tc.post("/queue/submit", json={"model_name": model, "task_input": {"prompt": "hi"}, **extra})


def query(tc: TestClient, task_id: str) -> dict:
    r = tc.get("/task/query", params={"task_id": task_id})
    assert r.status_code == 200, r.text
    return r.json()


def notify(tc: TestClient, task_id: str, instance_id: str, execution_time: float = 12.5, **extra) -> dict:
    r = tc.post(
        "/notify/task_complete",
        json={"task_id": task_id, "instance_id": instance_id, "execution_time": execution_time, **extra},
    )
    assert r.status_code == 200, r.text
    return r.json()


def assert_422(resp: httpx.Response, field_name: str) -> None:
    assert resp.status_code == 422, resp.text
    assert any(field_name in err["loc"] for err in resp.json()["detail"]), resp.json()


# -- /health, /scheduler/* -----------------------------------------------------


def test_health(fakes):
    with serve(make_service(fakes)) as tc:
        assert tc.get("/health").json() == {
            "status": "healthy",
            "service": "scheduler",
            "version": scheduler.__version__,
        }


def test_set_strategy(fakes):
    svc = make_service(fakes)
    with serve(svc) as tc:
        assert tc.post("/scheduler/set", json={"name": "round_robin"}).json() == {
            "status": "success",
            "message": "OK",
        }
        assert svc.core.strategy_name == "round_robin"
        body = tc.post("/scheduler/set", json={"name": "fastest"}).json()
        assert body["status"] == "error"
        for name in ("shortest_queue", "round_robin", "weighted", "probabilistic"):
            assert name in body["message"]
        body = tc.post("/scheduler/set", json={"name": "power_of_two", "params": {"d": 0}}).json()
        assert body["status"] == "error" and "d" in body["message"]
        assert svc.core.strategy_name == "round_robin"  # a refused change changes nothing
        assert (
            tc.post("/scheduler/set", json={"name": "power_of_two", "params": {"d": 3}}).json()["status"]
            == "success"
        )
        assert_422(tc.post("/scheduler/set", json={}), "name")


def test_predict_mode_errors(fakes):
    svc = make_service(fakes)
    with serve(svc) as tc:
        assert tc.post("/scheduler/predict_mode", json={"mode": "default"}).json()["status"] == "success"
        body = tc.post("/scheduler/predict_mode", json={"mode": "lookup_table"}).json()
        assert body["status"] == "error" and "lookup table" in body["message"]
        assert "--lookup-table" in body["message"]
        body = tc.post("/scheduler/predict_mode", json={"mode": "oracle"}).json()
        assert body["status"] == "error" and "default, lookup_table" in body["message"]
        assert svc.predict_mode == "default"
        assert_422(tc.post("/scheduler/predict_mode", json={"mode": 3}), "mode")


def test_predict_mode_switch_changes_estimates(fakes):
    """Estimates come from the core: default mode uses the online prior (100 +- 100 ms),
    lookup_table mode the table (500 +- 50 ms).  The clock stands still, so the numbers are exact."""
    fakes.add(8100)
    svc = make_service(fakes, table={"llm": {"mean_ms": 500, "std_ms": 50}})
    with serve(svc) as tc:
        ti = register(tc, 8100)["ti_uuid"]
        submit(tc)
        submit(tc)  # one running, one waiting: a new task would wait 100 + 100
        q = tc.get("/queue/info").json()["queues"]
        assert q == [
            {
                "model_name": "llm",
                "ti_uuid": ti,
                "waiting_time_expect": 200.0,
                "waiting_time_error": pytest.approx((2 * 100**2) ** 0.5),
            }
        ]
        assert tc.post("/scheduler/predict_mode", json={"mode": "lookup_table"}).json() == {
            "status": "success",
            "message": "OK",
        }
        submit(tc)
        q = tc.get("/queue/info").json()["queues"][0]
        assert q["waiting_time_expect"] == pytest.approx(700.0)
        assert q["waiting_time_error"] == pytest.approx((2 * 100**2 + 50**2) ** 0.5)
        assert tc.post("/scheduler/predict_mode", json={"mode": "default"}).json()["status"] == "success"
        submit(tc)
        assert tc.get("/queue/info").json()["queues"][0]["waiting_time_expect"] == pytest.approx(800.0)


# -- /ti/register, /ti/remove --------------------------------------------------


def test_register(fakes):
    fakes.add(8100, replicas=3)
    fakes.add(8101, status="error")
    fakes.add(8102, model="resnet")
    fakes.add(8103, replicas=0)
    svc = make_service(fakes)
    with serve(svc) as tc:
        body = register(tc, 8100)
        assert body["status"] == "success"
        ti = body["ti_uuid"]
        assert str(uuid.UUID(ti)) == ti
        assert svc.core.instance(ti).replicas == 3 and svc.core.instance(ti).name == "llm@8100"

        for port, extra, words in [
            (8199, {}, ["cannot register", "unreachable"]),  # nobody listens there
            (8101, {}, ["status 'error'"]),
            (8102, {"model_name": "llm"}, ["'resnet'", "'llm'"]),
            (8100, {}, ["already registered", ti]),
            (8103, {}, ["replicas_running=0"]),
        ]:
            body = register(tc, port, **extra)
            assert body["status"] == "error" and body["ti_uuid"] == "", body
            for w in words:
                assert w in body["message"], body["message"]
        assert register(tc, 8102, model_name="resnet")["status"] == "success"
        assert len(tc.get("/queue/info").json()["queues"]) == 2
        assert_422(tc.post("/ti/register", json={"host": "127.0.0.1", "port": 70000}), "port")
        assert_422(tc.post("/ti/register", json={"port": 8100}), "host")


def test_register_rejects_an_invalid_status_answer(fakes):
    fakes.add(8100, replicas=-1)  # not a valid InstanceStatus
    with serve(make_service(fakes)) as tc:
        body = register(tc, 8100)
        assert body["status"] == "error" and "replicas_running" in body["message"]


def test_remove(fakes):
    fakes.add(8100)
    fakes.add(8101)
    svc = make_service(fakes)
    with serve(svc) as tc:
        a, b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        tc.post("/scheduler/set", json={"name": "round_robin"})
        on_a = [r["task_id"] for r in (submit(tc).json() for _ in range(4)) if r["scheduled_ti"] == a]
        assert on_a
        body = tc.post("/ti/remove", json={"ti_uuid": a}).json()
        assert body["status"] == "success" and body["ti_uuid"] == a
        assert f"{len(on_a)} task(s)" in body["message"]
        assert [q["ti_uuid"] for q in tc.get("/queue/info").json()["queues"]] == [b]
        assert all(submit(tc).json()["scheduled_ti"] == b for _ in range(3))
        # the removed instance's tasks still finish and are recorded
        for tid in on_a:
            assert notify(tc, tid, "llm@8100")["status"] == "success"
            assert query(tc, tid)["task_status"] == "completed" and query(tc, tid)["scheduled_ti"] == a

        for ti_uuid, words in [
            ("not-a-uuid", "invalid ti_uuid"),
            (str(uuid.uuid4()), "unknown ti_uuid"),
            (a, "already removed"),
        ]:
            body = tc.post("/ti/remove", json={"ti_uuid": ti_uuid}).json()
            assert body == {"status": "error", "message": body["message"], "ti_uuid": ti_uuid}
            assert words in body["message"]
        assert_422(tc.post("/ti/remove", json={}), "ti_uuid")
        # a removed instance may register again, under a new ti_uuid
        again = register(tc, 8100)
        assert again["status"] == "success" and again["ti_uuid"] not in (a, b)


# -- /queue/submit ---------------------------------------------------------------


def test_submit(fakes):
    fake = fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        ti = register(tc, 8100)["ti_uuid"]
        r = submit(tc, metadata={"input_tokens": 12})
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "success" and body["scheduled_ti"] == ti
        assert re.fullmatch(r"task-[0-9a-f]{32}", body["task_id"])
        sent = fake.enqueued[-1]
        # the delivery expires when the scheduler gives up on it (request timeout: one instance only)
        assert 0 < sent.pop("expires_at") - time.time() <= svc.config.request_timeout_s
        assert sent == {
            "task_id": body["task_id"],
            "input_data": {"prompt": "hi"},
            "metadata": {"input_tokens": 12},
            "callback_url": svc.callback_url,
        }
        assert svc.callback_url == "http://127.0.0.1:8102/notify/task_complete"

        first = submit(tc, task_id="mine-1").json()
        assert first["task_id"] == "mine-1"
        assert submit(tc, task_id="mine-1").json() == first  # a retry: the original answer
        r = submit(tc, task_id="mine-1", metadata={"other": 1})
        assert r.status_code == 409 and "already in use with a different body" in r.json()["detail"]

        r = submit(tc, model="nope")
        assert r.status_code == 503 and "'nope'" in r.json()["detail"]

        assert_422(tc.post("/queue/submit", json={"task_input": {}}), "model_name")
        assert_422(
            tc.post("/queue/submit", json={"model_name": "llm", "task_input": {}, "metadata": [1]}),
            "metadata",
        )
        assert_422(
            tc.post("/queue/submit", content=b"{not json", headers={"content-type": "application/json"}),
            "body",
        )


def test_submit_goes_elsewhere_when_delivery_fails(fakes):
    down, refusing, good = fakes.add(8100), fakes.add(8101, enqueue_status=500), fakes.add(8102)
    svc = make_service(fakes, max_attempts=3)
    with serve(svc) as tc:
        tis = [register(tc, p)["ti_uuid"] for p in (8100, 8101, 8102)]
        down.up = False
        for _ in range(4):
            body = submit(tc).json()
            assert body["scheduled_ti"] == tis[2]
            assert query(tc, body["task_id"])["scheduled_ti"] == tis[2]
        assert len(good.enqueued) == 4 and not refusing.enqueued
        # unreachable: no new tasks until it answers again; refusing with an HTTP error: still healthy
        assert not svc.core.instance(tis[0]).healthy
        assert svc.core.instance(tis[1]).healthy
        assert sum(len(svc.core.tasks_on(t)) for t in tis) == 4  # the estimates let go of the failed tries


def test_a_lost_enqueue_answer_does_not_duplicate_a_completed_task(fakes):
    """The instance took the task and reported its completion, but the enqueue answer was lost."""
    _, other = fakes.add(8100), fakes.add(8101)
    svc = make_service(fakes)

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8100 and request.url.path == "/queue/enqueue":
            task_id = json.loads(request.content)["task_id"]
            svc.notify(task_id, "llm@8100", 3.0, {"done": True})
            raise httpx.ReadTimeout("answer lost", request=request)
        return fakes.handle(request)

    svc.client = TaskInstanceClient(transport=httpx.MockTransport(handle))
    with serve(svc) as tc:
        a = register(tc, 8100)["ti_uuid"]
        svc.core.set_healthy(register(tc, 8101)["ti_uuid"], False)  # the first choice must be a
        body = submit(tc).json()
        assert body["scheduled_ti"] == a
        assert query(tc, body["task_id"])["result"] == {"done": True}
        assert not other.enqueued


def test_submit_fails_with_reason_when_no_instance_takes_it(fakes):
    for p in (8100, 8101, 8102):
        fakes.add(p, enqueue_status=500)
    svc = make_service(fakes, max_attempts=2)
    with serve(svc) as tc:
        tis = [register(tc, p)["ti_uuid"] for p in (8100, 8101, 8102)]
        r = submit(tc)
        assert r.status_code == 503
        body = r.json()
        assert "could not deliver to 2 instance(s)" in body["detail"] and "HTTP 500" in body["detail"]
        task = query(tc, body["task_id"])
        assert task["task_status"] == "failed" and "could not deliver" in task["result"]["error"]
        assert all(not svc.core.tasks_on(t) for t in tis)
        for f in fakes.by_port.values():
            f.up = False
        r = submit(tc)  # two instances tried, both unreachable: now unhealthy
        assert r.status_code == 503 and "could not deliver to 2 instance(s)" in r.json()["detail"]
        r = submit(tc)  # the last healthy one fails too
        assert r.status_code == 503 and "no other healthy instance" in r.json()["detail"]
        assert query(tc, r.json()["task_id"])["task_status"] == "failed"
        assert not any(svc.core.instance(t).healthy for t in tis)
        r = submit(tc)  # refused before any delivery; the core records the task as failed
        assert r.status_code == 503 and "no healthy instance" in r.json()["detail"]
        assert svc.core.tracker.counts() == {"queued": 0, "scheduled": 0, "completed": 0, "failed": 4}


# -- /queue/info, /task/query ------------------------------------------------------


def test_queue_info(fakes):
    fakes.add(8100)
    fakes.add(8101, model="resnet", replicas=2)
    with serve(make_service(fakes)) as tc:
        a, b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        for _ in range(3):
            submit(tc, model="resnet")
        info = tc.get("/queue/info").json()
        assert info["status"] == "success"
        assert {(q["model_name"], q["ti_uuid"]) for q in info["queues"]} == {("llm", a), ("resnet", b)}
        only = tc.get("/queue/info", params={"model_name": "resnet"}).json()["queues"]
        # two replicas busy (100 ms each), one task waiting: (100 + 100 + 100) / 2
        assert only == [
            {
                "model_name": "resnet",
                "ti_uuid": b,
                "waiting_time_expect": 150.0,
                "waiting_time_error": pytest.approx((3 * 100**2) ** 0.5 / 2),
            }
        ]
        assert tc.get("/queue/info", params={"model_name": "nope"}).json() == {
            "status": "success",
            "queues": [],
        }


def test_task_query(fakes):
    fakes.add(8100)
    svc = make_service(fakes, clock=WallClock())
    with serve(svc) as tc:
        ti = register(tc, 8100)["ti_uuid"]
        tid = submit(tc).json()["task_id"]
        task = query(tc, tid)
        assert task["task_status"] == "scheduled" and task["result"] is None and task["scheduled_ti"] == ti
        assert abs(task["submit_time"] - time.time()) < 60  # epoch seconds
        notify(tc, tid, "llm@8100", result={"text": "hello"})
        assert query(tc, tid)["result"] == {"text": "hello"}
        r = tc.get("/task/query", params={"task_id": "task-unknown"})
        assert r.status_code == 404 and "task-unknown" in r.json()["detail"]
        assert_422(tc.get("/task/query"), "task_id")


# -- /notify/task_complete ---------------------------------------------------------


def test_notify(fakes):
    fakes.add(8100)
    fakes.add(8101)
    svc = make_service(fakes)
    with serve(svc) as tc:
        a = register(tc, 8100)["ti_uuid"]
        register(tc, 8101)
        tc.post("/scheduler/set", json={"name": "round_robin"})
        tasks = [submit(tc).json() for _ in range(4)]
        t1, t2 = [t["task_id"] for t in tasks if t["scheduled_ti"] == a][:2]
        svc.core.clock.advance(40.0)

        body = notify(tc, t1, "llm@8100", execution_time=30.0, result={"out": 1})
        assert body == {"status": "success", "message": body["message"], "total_time_ms": 40.0}
        assert query(tc, t1) == {
            "task_id": t1,
            "task_status": "completed",
            "scheduled_ti": a,
            "submit_time": T0_MS / 1000,
            "result": {"out": 1},
        }
        assert svc.core.task(t1).execution_ms == 30.0

        again = notify(tc, t1, "llm@8100", execution_time=99.0, result={"out": 2})
        assert again["status"] == "success" and "already recorded as completed" in again["message"]
        assert again["total_time_ms"] == 40.0 and query(tc, t1)["result"] == {"out": 1}

        for tid, iid, word in [
            (t2, "ghost@1", "unknown instance"),
            ("task-nope", "llm@8100", "unknown task"),
            (t2, "llm@8101", "not to 'llm@8101'"),
        ]:
            body = notify(tc, tid, iid)
            assert body["status"] == "warning" and word in body["message"] and "total_time_ms" not in body
        assert query(tc, t2)["task_status"] == "scheduled"

        body = notify(tc, t2, "llm@8100", execution_time=5.0, error="CUDA out of memory")
        assert body["status"] == "success"
        task = query(tc, t2)
        assert task["task_status"] == "failed" and "CUDA out of memory" in task["result"]["error"]

        assert_422(
            tc.post("/notify/task_complete", json={"task_id": t2, "instance_id": "llm@8100"}),
            "execution_time",
        )
        assert_422(
            tc.post(
                "/notify/task_complete", json={"task_id": t2, "instance_id": "llm@8100", "execution_time": -1}
            ),
            "execution_time",
        )


def test_online_predictor_learns_from_completions(fakes):
    fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        register(tc, 8100)
        for _ in range(4):
            notify(tc, submit(tc).json()["task_id"], "llm@8100", execution_time=20.0)
        submit(tc)
        submit(tc)  # running 20 ms + waiting 20 ms, as learned (prior was 100 ms)
        assert tc.get("/queue/info").json()["queues"][0]["waiting_time_expect"] == pytest.approx(40.0)


# -- health and watchdog -------------------------------------------------------------


def test_health_check_takes_an_instance_out_and_back(fakes):
    a_fake, _ = fakes.add(8100), fakes.add(8101)
    svc = make_service(fakes, unhealthy_after=2)
    with serve(svc) as tc:
        a, b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        a_fake.up = False
        tc.portal.call(svc.check_health)
        assert svc.core.instance(a).healthy  # one failure is not enough
        tc.portal.call(svc.check_health)
        assert not svc.core.instance(a).healthy
        assert {submit(tc).json()["scheduled_ti"] for _ in range(5)} == {b}
        a_fake.up = True
        tc.portal.call(svc.check_health)
        assert svc.core.instance(a).healthy
        tc.post("/scheduler/set", json={"name": "round_robin"})
        assert a in {submit(tc).json()["scheduled_ti"] for _ in range(4)}
        a_fake.status = "error"  # answering but reporting an error counts as unhealthy too
        tc.portal.call(svc.check_health)
        tc.portal.call(svc.check_health)
        assert not svc.core.instance(a).healthy


def test_health_loop_runs_in_the_background(fakes):
    from live_helpers import wait_for

    fake = fakes.add(8100)
    svc = make_service(fakes, health_interval_s=0.02, unhealthy_after=1)
    with serve(svc) as tc:
        ti = register(tc, 8100)["ti_uuid"]
        fake.up = False
        wait_for(lambda: not svc.core.instance(ti).healthy, 10, "the instance to be marked unhealthy")
        fake.up = True
        wait_for(lambda: svc.core.instance(ti).healthy, 10, "the instance to rejoin")


def test_watchdog_recovers_a_lost_completion(fakes):
    fake = fakes.add(8100)
    svc = make_service(fakes, task_timeout_s=10.0)
    with serve(svc) as tc:
        register(tc, 8100)
        tid, bad = submit(tc).json()["task_id"], submit(tc).json()["task_id"]
        fake.results[tid] = {"status": "completed", "result": {"ok": True}, "execution_time": 7.0}
        fake.results[bad] = {"status": "failed", "error": "bad input", "execution_time": 1.0}
        svc.core.clock.advance(9_000)
        tc.portal.call(svc.check_overdue)
        assert query(tc, tid)["task_status"] == "scheduled"  # not due yet: the instance was not asked
        assert (8100, f"/results/{tid}") not in fakes.calls
        svc.core.clock.advance(2_000)
        tc.portal.call(svc.check_overdue)
        assert query(tc, tid)["task_status"] == "completed" and query(tc, tid)["result"] == {"ok": True}
        assert svc.core.task(tid).execution_ms == 7.0
        assert query(tc, bad)["task_status"] == "failed" and "bad input" in query(tc, bad)["result"]["error"]


def test_watchdog_waits_for_a_queued_task_up_to_the_hard_limit(fakes):
    fake = fakes.add(8100)
    svc = make_service(fakes, task_timeout_s=10.0, task_hard_limit_s=30.0)
    with serve(svc) as tc:
        register(tc, 8100)
        tid = submit(tc).json()["task_id"]
        fake.results[tid] = {"status": "queued"}
        for _ in range(2):  # 11 s, 22 s: still queued on a live instance, keep waiting
            svc.core.clock.advance(11_000)
            tc.portal.call(svc.check_overdue)
            assert query(tc, tid)["task_status"] == "scheduled"
        svc.core.clock.advance(11_000)  # 33 s: past the hard limit
        tc.portal.call(svc.check_overdue)
        task = query(tc, tid)
        assert task["task_status"] == "failed" and "task_hard_limit_s=30" in task["result"]["error"]
        assert fakes.calls.count((8100, f"/results/{tid}")) == 3


def test_watchdog_moves_tasks_off_forgetful_or_dead_instances(fakes):
    a_fake, b_fake = fakes.add(8100), fakes.add(8101)
    svc = make_service(fakes, task_timeout_s=10.0)
    clock = svc.core.clock
    with serve(svc) as tc:
        a = register(tc, 8100)["ti_uuid"]
        tid = submit(tc).json()["task_id"]  # on a, the only instance yet
        b = register(tc, 8101)["ti_uuid"]
        clock.advance(11_000)
        tc.portal.call(svc.check_overdue)  # a answers 404: it does not know the task
        assert query(tc, tid)["scheduled_ti"] == b and b_fake.enqueued[-1]["task_id"] == tid
        assert svc.core.instance(a).healthy

        b_fake.up = False
        clock.advance(11_000)
        tc.portal.call(svc.check_overdue)  # b does not answer: back to a
        assert query(tc, tid)["scheduled_ti"] == a and [e["task_id"] for e in a_fake.enqueued] == [tid, tid]
        assert not svc.core.instance(b).healthy

        a_fake.up = False
        clock.advance(11_000)
        tc.portal.call(svc.check_overdue)  # nowhere left: failed with the reason
        task = query(tc, tid)
        assert task["task_status"] == "failed"
        assert (
            "did not answer" in task["result"]["error"]
            and "no other healthy instance" in task["result"]["error"]
        )
        assert svc.core.tracker.counts()["scheduled"] == 0 and not svc.core.tasks_on(a)


def test_watchdog_uses_the_health_verdict_without_asking(fakes):
    a_fake, b_fake = fakes.add(8100), fakes.add(8101)
    svc = make_service(fakes, task_timeout_s=1.0, unhealthy_after=1)
    with serve(svc) as tc:
        _, b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        tc.post("/scheduler/set", json={"name": "round_robin"})
        tids = [submit(tc).json()["task_id"] for _ in range(4)]
        for t in tids:
            b_fake.results[t] = {"status": "running"}
        a_fake.up = False
        tc.portal.call(svc.check_health)
        svc.core.clock.advance(2_000)
        tc.portal.call(svc.check_overdue)
        assert all(query(tc, t)["scheduled_ti"] == b for t in tids)
        assert {e["task_id"] for e in b_fake.enqueued} == set(tids)
        assert not any(port == 8100 and path.startswith("/results/") for port, path in fakes.calls)


# -- startup configuration, errors, schema ---------------------------------------------


def test_startup_registers_the_configured_instances(fakes, tmp_path, caplog):
    fakes.add(8100)
    cfg = tmp_path / "instances.yaml"
    cfg.write_text(
        "instances:\n  - {host: 127.0.0.1, port: 8100, model_name: llm}\n  - {host: 127.0.0.1, port: 8101}\n"
    )
    config = load_config(
        LiveConfig.from_sources(
            {},
            env={
                "SCHEDULER_CONFIG_PATH": str(cfg),
                "SCHEDULER_HEALTH_INTERVAL_S": "60",
                "SCHEDULER_STATE_DB": "none",
            },
        )
    )
    svc = LiveScheduler(
        config,
        core=build_core(config, ManualClock(T0_MS)),
        client=TaskInstanceClient(transport=httpx.MockTransport(fakes.handle)),
    )
    with caplog.at_level("ERROR", logger="scheduler.live"), serve(svc) as tc:
        queues = tc.get("/queue/info").json()["queues"]
        assert [q["model_name"] for q in queues] == ["llm"]
        assert submit(tc).status_code == 200
    assert "127.0.0.1:8101" in caplog.text


def test_unexpected_errors_are_json_500(fakes, caplog):
    svc = make_service(fakes)

    def broken(model=None):
        raise RuntimeError("bug")

    svc.queue_info = broken
    with caplog.at_level("ERROR", logger="scheduler.live"), serve(svc, raise_server_exceptions=False) as tc:
        r = tc.get("/queue/info")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error (RuntimeError); the scheduler log has the details"}
    assert "RuntimeError: bug" in caplog.text  # the traceback went to the log


def test_openapi_shows_the_models(fakes):
    with serve(make_service(fakes)) as tc:
        schemas = tc.get("/openapi.json").json()["components"]["schemas"]
    assert {"model_name", "task_input", "metadata", "task_id"} <= set(schemas["SubmitRequest"]["properties"])
    # the spec's five fields, plus the optional token counts (present only when reported)
    assert {"task_id", "task_status", "scheduled_ti", "submit_time", "result", "metrics"} == set(
        schemas["TaskQueryResponse"]["properties"]
    )
    assert "metrics" not in schemas["TaskQueryResponse"].get("required", [])
    assert "waiting_time_expect" in schemas["QueueInfoItem"]["properties"]


# -- configuration ---------------------------------------------------------------------


def test_config_sources_and_errors(tmp_path):
    c = LiveConfig.from_sources(
        {"port": "9000", "strategy": None},
        env={
            "SCHEDULER_PORT": "9100",
            "SCHEDULER_STRATEGY": "round_robin",
            "SCHEDULER_STRATEGY_PARAMS": "{d: 2}",
            "SCHEDULER_ACCESS_LOG": "yes",
        },
    )
    assert (c.port, c.strategy, c.strategy_params, c.access_log) == (9000, "round_robin", {"d": 2}, True)
    assert LiveConfig(host="0.0.0.0", port=9).callback_url == "http://127.0.0.1:9/notify/task_complete"
    assert LiveConfig(public_url="http://sched:1/").callback_url == "http://sched:1/notify/task_complete"
    for cli, env, words in [
        ({"port": "x"}, {}, "--port"),
        ({}, {"SCHEDULER_PORT": "70000"}, "SCHEDULER_PORT"),
        ({}, {"SCHEDULER_TASK_TIMEOUT_S": "-1"}, "SCHEDULER_TASK_TIMEOUT_S"),
        ({"task_timeout_s": 10, "task_hard_limit_s": 5}, {}, "task_hard_limit_s"),
        ({"lookup_table": str(tmp_path / "missing.yaml")}, {}, "readable file"),
    ]:
        with pytest.raises(SpecError, match=words):
            load_config(LiveConfig.from_sources(cli, env=env))
    with pytest.raises(ValueError, match="valid strategies"):
        build_core(LiveConfig(strategy="nope"))
    with pytest.raises(SpecError, match="--lookup-table FILE"):
        build_core(LiveConfig(predict_mode="lookup_table"))
    with pytest.raises(SpecError, match="default, lookup_table"):
        build_core(LiveConfig(predict_mode="oracle"))


def test_config_files(tmp_path):
    table = tmp_path / "table.json"
    table.write_text(
        json.dumps({"llm": {"mean_ms": 80, "std_ms": 20, "instances": {"llm@8100": {"mean_ms": 40}}}})
    )
    config = load_config(LiveConfig(lookup_table=str(table), predict_mode="lookup_table"))
    assert build_core(config).predict_mode == "lookup_table"
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: {mean_ms: -3}\n")
    with pytest.raises(SpecError, match="mean_ms"):
        load_config(LiveConfig(lookup_table=str(bad)))

    listing = tmp_path / "list.yaml"
    listing.write_text("- {host: a, port: 1}\n- {host: b, port: 2, model_name: m}\n")
    assert [(i.host, i.port, i.model_name) for i in load_instances(str(listing))] == [
        ("a", 1, None),
        ("b", 2, "m"),
    ]
    for text, words in [
        ("- {host: a}\n", "port"),
        ("- {host: a, port: 1, colour: red}\n", "colour"),
        ("just text\n", "a list"),
    ]:
        listing.write_text(text)
        with pytest.raises(SpecError, match=words):
            load_instances(str(listing))


def test_example_config_file_is_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert [(i.host, i.port) for i in load_instances(str(root / "examples" / "config_example.yaml"))] == [
        ("127.0.0.1", 8100),
        ("127.0.0.1", 8101),
    ]
    load_config(LiveConfig(lookup_table=str(root / "examples" / "lookup_table.yaml")))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--strategy", "nope"], "valid strategies"),
        (["--port", "abc"], "--port"),
        (["--predict-mode", "lookup_table"], "--lookup-table FILE"),
        (["--log-level", "loud"], "--log-level: got 'loud'"),
        (["--config", "/nonexistent/instances.yaml"], "readable file"),
    ],
)
def test_serve_command_rejects_bad_settings(args, words, capsys):
    from scheduler.__main__ import main

    assert main(["serve", *args]) == 2
    assert words in capsys.readouterr().err


# -- inputs that once gave a 500 (review findings) --------------------------------


@pytest.mark.parametrize("host", ["[::1", "::1]", "x" * 300])
def test_register_with_a_host_that_makes_no_url_is_an_error_not_a_500(fakes, host):
    with serve(make_service(fakes)) as tc:
        r = tc.post("/ti/register", json={"host": host, "port": 8100})
        assert r.status_code == 200 and r.json()["status"] == "error" and r.json()["ti_uuid"] == ""


@pytest.mark.parametrize("params", [{"d": 10**400}, {"d": 10**9}])
def test_huge_strategy_parameters_are_refused_with_the_range(fakes, params):
    with serve(make_service(fakes)) as tc:
        r = tc.post("/scheduler/set", json={"name": "power_of_two", "params": params})
        assert r.status_code == 200 and r.json()["status"] == "error" and "d:" in r.json()["message"]


def test_infinite_execution_time_is_malformed(fakes):
    with serve(make_service(fakes)) as tc:
        r = tc.post(
            "/notify/task_complete",
            content=b'{"task_id": "t", "instance_id": "i", "execution_time": Infinity}',
            headers={"content-type": "application/json"},
        )
        assert_422(r, "execution_time")


def test_a_503_names_the_recorded_task(fakes):
    with serve(make_service(fakes)) as tc:
        r = submit(tc, model="nope", task_id="client-7")
        assert r.status_code == 503 and r.json()["task_id"] == "client-7"
        assert query(tc, "client-7")["task_status"] == "failed"


def test_strategy_module_registers_strategies_before_the_core_is_built(tmp_path):
    mod = tmp_path / "my_strats.py"
    mod.write_text(
        "from scheduler import Strategy, register_strategy\n"
        "class Last(Strategy):\n"
        "    name = 'last_of_module'\n"
        "    def choose(self, view, rng):\n"
        "        return view.n - 1\n"
        "register_strategy(Last)\n"
    )
    from scheduler import strategies_scope

    with strategies_scope():
        config = load_config(LiveConfig(strategy="last_of_module", strategy_module=str(mod)))
        assert build_core(config, clock=ManualClock(T0_MS)).strategy_name == "last_of_module"
    for bad in (str(tmp_path / "missing.py"), "no_such_module_anywhere"):
        with pytest.raises(SpecError, match="strategy_module"):
            load_config(LiveConfig(strategy_module=bad))


def test_wait_for_tasks_polls_until_each_task_ends(fakes):
    from scheduler.live import wait_for_tasks

    fakes.add(8100)
    with serve(make_service(fakes)) as tc:
        register(tc, 8100)
        tid = submit(tc).json()["task_id"]
        with pytest.raises(TimeoutError, match="1 task"):
            wait_for_tasks(tc, [tid], timeout_s=0.1)
        notify(tc, tid, "llm@8100", result={"out": 2})
        done = wait_for_tasks(tc, [tid], timeout_s=5)
        assert done[tid]["task_status"] == "completed" and done[tid]["result"] == {"out": 2}
