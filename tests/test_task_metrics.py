"""Token counts reported with a completion (``metrics``) are kept with the task, shown by
``/task/query`` and ``/task/details``, written to the decision log and fed to the predictor
(the ``regression`` mode learns from them even when the client sent no token counts)."""

from __future__ import annotations

import pytest
from test_api import FakeInstances, make_service, notify, register, serve

from scheduler.core import Scheduler
from scheduler.core.replay import replay


@pytest.fixture
def fakes() -> FakeInstances:
    return FakeInstances()


def test_metrics_reach_task_query_details_and_feed_the_regression(fakes):
    fakes.add(8100)
    svc = make_service(fakes, predict_mode="regression")
    with serve(svc) as tc:
        register(tc, 8100)
        ids = []
        for k in range(30):  # execution time 20 + 0.05 per input token; the client sends no tokens
            tokens = 100 * (k % 10 + 1)
            r = tc.post("/queue/submit", json={"model_name": "llm", "task_input": {}})
            assert r.status_code == 200, r.text
            tid = r.json()["task_id"]
            ids.append(tid)
            metrics = {"input_tokens": tokens, "output_tokens": 7}
            ack = notify(tc, tid, "llm@8100", execution_time=20 + 0.05 * tokens, metrics=metrics)
            assert ack["status"] == "success", ack
        query = tc.get("/task/query", params={"task_id": ids[0]}).json()
        assert query["metrics"] == {"input_tokens": 100, "output_tokens": 7}
        details = tc.post("/task/details", json={"task_ids": ids[:2]}).json()["tasks"]
        assert [d["metrics"]["input_tokens"] for d in details] == [100, 200]
        core = svc.core
        inst = core.instance(core.instance_ids()[0])
        mean, err = core.predictor.predict_one(inst.pool, inst.pos, None, {"input_tokens": 3000})
        assert mean == pytest.approx(170.0, rel=1e-3) and err < 1.0


def test_bad_metrics_are_refused_with_the_field_named(fakes):
    fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        register(tc, 8100)
        tid = tc.post("/queue/submit", json={"model_name": "llm", "task_input": {}}).json()["task_id"]
        for bad in ({"input_tokens": -1}, {"output_tokens": "many"}, {"input_tokens": True}):
            r = tc.post(
                "/notify/task_complete",
                json={"task_id": tid, "instance_id": "llm@8100", "execution_time": 1.0, "metrics": bad},
            )
            assert r.status_code == 422, r.text
            assert "metrics" in r.text
        assert tc.get("/task/query", params={"task_id": tid}).json()["task_status"] == "scheduled"
        notify(tc, tid, "llm@8100")  # without metrics: as before
        assert "metrics" not in tc.get("/task/query", params={"task_id": tid}).json()


def test_metrics_are_logged_and_replayed():
    events: list[dict] = []
    core = Scheduler("min_quantile", recorder=events.append)
    core.set_predict_mode("regression")
    for _ in range(2):
        core.add_instance("llm")
    for k in range(40):  # the regression's fit (from metrics only) steers the next decisions
        tokens = 100 * (k % 5 + 1)
        tid = core.submit("llm", {}, {"input_tokens": tokens} if k % 3 else None).task_id
        if k % 2:
            core.complete(tid, 20 + 0.05 * tokens, {"ok": True}, {"input_tokens": tokens})
    done = [e for e in events if e["event"] == "complete"]
    assert done[0]["metrics"] == {"input_tokens": 200}
    assert core.task(done[0]["task_id"]).metrics == {"input_tokens": 200}
    report = replay(events)
    assert report.decisions == 40 and report.all_identical, report
