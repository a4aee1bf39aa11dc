"""``POST /queue/submit_batch``: each task answered as ``/queue/submit`` would answer it, in order.

The scheduler runs in process (TestClient) with test_api's MockTransport instances.
"""

from __future__ import annotations

import sqlite3

import pytest
from test_api import FakeInstances, make_service, query, register, serve, submit

from scheduler.live.models import MAX_BATCH


@pytest.fixture
def fakes() -> FakeInstances:
    f = FakeInstances()
    f.add(8100)
    f.add(8101)
    return f


def task(i: int, **extra) -> dict:
    return {"model_name": "llm", "task_input": {"i": i}, **extra}


def batch(tc, tasks: list, headers: dict | None = None):
    return tc.post("/queue/submit_batch", json={"tasks": tasks}, headers=headers or {})


def test_each_task_gets_the_answer_submit_would_give_it_in_order(fakes):
    with serve(make_service(fakes, strategy="round_robin")) as tc:
        tis = [register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]]
        assert submit(tc, task_id="used").status_code == 200
        r = batch(
            tc,
            [
                task(0),
                {"task_input": {"no": "model"}},  # not a submit body: 422 for it alone
                task(2, model_name="nope"),  # no instance serves it: 503, recorded as failed
                task(3, task_id="used", metadata={"other": 1}),  # task_id used with another body: 409
                task(4),
                task(5),
            ],
        )
        assert r.status_code == 200, r.text
        body = r.json()
        codes = [t["status_code"] for t in body["results"]]
        assert codes == [200, 422, 503, 409, 200, 200]
        assert body["accepted"] == 3
        ok = [body["results"][i] for i in (0, 4, 5)]
        assert all(t["status"] == "success" and t["task_id"] for t in ok)
        # decided in the order sent: round robin alternates, continuing after the first submit
        assert [t["scheduled_ti"] for t in ok] == [tis[1], tis[0], tis[1]]
        for t in ok:
            assert query(tc, t["task_id"])["task_status"] == "scheduled"
        bad = body["results"][1]
        assert bad["status"] == "error" and bad["detail"][0]["loc"] == ["body", "tasks", 1, "model_name"]
        failed = body["results"][2]
        assert "nope" in failed["detail"] and query(tc, failed["task_id"])["task_status"] == "failed"
        assert "different body" in body["results"][3]["detail"]
        sent = [e["input_data"].get("i") for f in fakes.by_port.values() for e in f.enqueued]
        sent = [i for i in sent if i is not None]  # the first submit sent a prompt
        assert sorted(sent) == [0, 4, 5]


def test_idempotent_task_ids_within_and_across_batches(fakes):
    with serve(make_service(fakes)) as tc:
        register(tc, 8100)
        first = batch(tc, [task(1, task_id="a"), task(1, task_id="a"), task(2, task_id="b")]).json()
        assert [t["status_code"] for t in first["results"]] == [200, 200, 200]
        assert first["results"][0] == first["results"][1]
        again = batch(tc, [task(2, task_id="b"), task(1, task_id="a")]).json()
        assert again["results"] == [first["results"][2], first["results"][0]]
        assert len(fakes.by_port[8100].enqueued) == 2  # each task delivered once


def test_max_pending_answers_429_per_task(fakes):
    with serve(make_service(fakes, max_pending=3)) as tc:
        register(tc, 8100)
        body = batch(tc, [task(i) for i in range(5)]).json()
        assert [t["status_code"] for t in body["results"]] == [200, 200, 200, 429, 429]
        assert "--max-pending" in body["results"][3]["detail"]


def test_batch_size_and_shape_are_checked(fakes):
    with serve(make_service(fakes)) as tc:
        register(tc, 8100)
        assert batch(tc, []).status_code == 422
        assert batch(tc, [task(i) for i in range(MAX_BATCH + 1)]).status_code == 422
        assert tc.post("/queue/submit_batch", json={"tasks": [1, 2]}).status_code == 422
        full = batch(tc, [task(i) for i in range(MAX_BATCH)]).json()
        assert full["accepted"] == MAX_BATCH


def test_tokens_guard_the_batch(fakes):
    svc = make_service(fakes, api_token="api-t", admin_token="admin-t")
    with serve(svc) as tc:
        r = tc.post(
            "/ti/register",
            json={"host": "127.0.0.1", "port": 8100},
            headers={"Authorization": "Bearer admin-t"},
        )
        assert r.json()["status"] == "success"
        assert batch(tc, [task(0)]).status_code == 401
        assert batch(tc, [task(0)], {"Authorization": "Bearer wrong"}).status_code == 401
        ok = batch(tc, [task(0)], {"Authorization": "Bearer api-t"})
        assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_accepted_tasks_are_in_the_state_file_when_the_batch_answers(fakes, tmp_path):
    path = tmp_path / "state.db"
    with serve(make_service(fakes, state_db=str(path))) as tc:
        register(tc, 8100)
        body = batch(tc, [task(i) for i in range(20)]).json()
        ids = [t["task_id"] for t in body["results"]]
        with sqlite3.connect(path) as db:
            stored = {r[0] for r in db.execute("SELECT task_id FROM tasks")}
        assert set(ids) <= stored
