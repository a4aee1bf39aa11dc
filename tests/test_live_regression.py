"""Live mode serves the ``regression`` predictor: set through /scheduler/predict_mode, fed by each
task's metadata (the same core as the simulator), with an injected clock."""

from __future__ import annotations

import pytest
from test_api import FakeInstances, make_service, notify, register, serve

from scheduler.live import LIVE_PREDICT_MODES


@pytest.fixture
def fakes() -> FakeInstances:
    return FakeInstances()


def test_regression_through_predict_mode_uses_task_metadata(fakes):
    assert "regression" in LIVE_PREDICT_MODES
    fakes.add(8100)
    svc = make_service(fakes)
    with serve(svc) as tc:
        ti = register(tc, 8100)["ti_uuid"]
        body = tc.post("/scheduler/predict_mode", json={"mode": "regression"}).json()
        assert body == {"status": "success", "message": "OK"}
        assert tc.get("/scheduler/stats").json()["predict_mode"] == "regression"
        inst = svc.core.instance_ids()[0]
        for k in range(30):  # execution time 20 + 0.05 per input token
            tokens = 100 * (k % 10 + 1)
            r = tc.post(
                "/queue/submit",
                json={"model_name": "llm", "task_input": {}, "metadata": {"input_tokens": tokens}},
            )
            assert r.status_code == 200, r.text
            assert (
                notify(tc, r.json()["task_id"], "llm@8100", execution_time=20 + 0.05 * tokens)["status"]
                == "success"
            )
        core = svc.core
        pool, pos = core.instance(inst).pool, core.instance(inst).pos
        mean, err = core.predictor.predict_one(pool, pos, None, {"input_tokens": 3000})
        assert mean == pytest.approx(170.0, rel=1e-3) and err < 1.0
        # a submitted task's prediction follows its own tokens
        r = tc.post(
            "/queue/submit", json={"model_name": "llm", "task_input": {}, "metadata": {"input_tokens": 2000}}
        )
        assert r.status_code == 200
        rec = core.task(r.json()["task_id"])
        assert rec.predicted_ms == pytest.approx(120.0, rel=1e-3)
    assert ti


def test_regression_from_the_command_line_config(fakes):
    svc = make_service(fakes, predict_mode="regression")
    assert svc.predict_mode == "regression"
