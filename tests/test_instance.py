"""The reference task instance: protocol, FIFO over replicas, callbacks, bounded history, work kinds.

Instances run in-process under uvicorn (a thread, 127.0.0.1); a second small
app receives their completion callbacks.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from live_helpers import ServerThread, wait_for

from scheduler import SpecError, from_spec
from scheduler.instance import InstanceRuntime, MatmulWork, SleepWork, create_instance_app
from scheduler.instance.__main__ import main as instance_main
from scheduler.instance.__main__ import parse_service_time


def sleeper(ms: float, *, replicas: int = 1, history: int = 100, **kw) -> InstanceRuntime:
    work = SleepWork(from_spec({"dist": "deterministic", "value_ms": ms}), np.random.default_rng(0))
    return InstanceRuntime(
        work, model="llm", instance_id="llm-test", replicas=replicas, history=history, **kw
    )


def receiver() -> tuple[FastAPI, list[dict]]:
    got: list[dict] = []
    app = FastAPI()

    @app.post("/notify/task_complete")
    async def note(body: dict):
        got.append(body)
        return {"status": "success", "message": "recorded"}

    return app, got


def enqueue(c: httpx.Client, task_id: str, callback_url: str | None = None, input_data=None) -> dict:
    r = c.post(
        "/queue/enqueue",
        json={
            "task_id": task_id,
            "input_data": input_data or {},
            "metadata": {},
            "callback_url": callback_url,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


def result_of(c: httpx.Client, task_id: str) -> dict:
    r = c.get(f"/results/{task_id}")
    assert r.status_code == 200, r.text
    return r.json()


def finished(c: httpx.Client, task_ids: list[str]) -> list[dict] | None:
    res = [result_of(c, t) for t in task_ids]
    return res if all(r["status"] in ("completed", "failed") for r in res) else None


def test_protocol_fifo_and_callbacks():
    app, got = receiver()
    with (
        ServerThread(app) as rx,
        ServerThread(create_instance_app(sleeper(30))) as url,
        httpx.Client(base_url=url, timeout=10) as c,
    ):
        assert c.get("/status").json() == {
            "instance_id": "llm-test",
            "model_type": "llm",
            "replicas_running": 1,
            "queue_size": 0,
            "status": "idle",
        }
        ids = [f"t{i}" for i in range(3)]
        for tid in ids:
            body = enqueue(c, tid, f"{rx}/notify/task_complete")
            assert body["task_id"] == tid and body["queue_size"] >= 1 and body["enqueue_time"] > 1e9
        wait_for(lambda: len(got) == 3, 30, "three callbacks")
        assert [g["task_id"] for g in got] == ids  # one replica: first in, first out
        for g in got:
            assert g["instance_id"] == "llm-test" and g["error"] is None
            assert g["result"] == {"service_ms": 30.0} and g["execution_time"] >= 29.0
        res = [result_of(c, t) for t in ids]
        for r in res:
            assert r["status"] == "completed" and r["result"] == {"service_ms": 30.0}
            assert r["total_time"] == pytest.approx(r["wait_time"] + r["execution_time"], abs=5.0)
        starts = [r["enqueue_time"] + r["wait_time"] / 1000 for r in res]
        for i in range(2):  # each starts when the previous ended
            assert starts[i + 1] >= res[i]["completion_time"] - 1e-3
        assert c.get("/status").json()["status"] == "idle"
        r = c.get("/results/nope")
        assert r.status_code == 404 and "nope" in r.json()["detail"]
        assert c.post("/queue/enqueue", json={"task_id": "", "input_data": {}}).status_code == 422
        assert c.post("/queue/enqueue", json={"input_data": {}, "metadata": []}).status_code == 422
        # without a task_id (the seed-era client) the instance assigns one and answers with it
        assigned = c.post("/queue/enqueue", json={"input_data": {}}).json()["task_id"]
        assert assigned.startswith("llm-test-") and assigned not in ids


def test_replicas_run_in_parallel():
    with ServerThread(create_instance_app(sleeper(500, replicas=2))) as url, httpx.Client(base_url=url) as c:
        enqueue(c, "a")
        enqueue(c, "b")
        enqueue(c, "c")
        a, b, third = wait_for(lambda: finished(c, ["a", "b", "c"]), 30, "three tasks")
        start_b = b["enqueue_time"] + b["wait_time"] / 1000
        assert start_b < a["completion_time"]  # b did not wait for a
        start_c = third["enqueue_time"] + third["wait_time"] / 1000
        assert (
            start_c >= min(a["completion_time"], b["completion_time"]) - 1e-3
        )  # c waited for a free replica


def test_status_and_predict_follow_the_backlog():
    with ServerThread(create_instance_app(sleeper(10_000))) as url, httpx.Client(base_url=url) as c:
        assert c.post("/queue/predict").json() == {"expected_ms": 0.0, "error_ms": 0.0, "queue_size": 0}
        for tid in ("a", "b", "c"):
            enqueue(c, tid)
        assert enqueue(c, "a")["queue_size"] == 3  # the same task again is accepted once
        st = c.get("/status").json()
        assert st["queue_size"] == 3 and st["status"] == "running"
        # one replica: a new task waits for all three, 10 s each (the distribution's mean)
        assert c.post("/queue/predict").json() == {"expected_ms": 30_000.0, "error_ms": 0.0, "queue_size": 3}
        assert wait_for(lambda: result_of(c, "a")["status"] == "running", 10, "a to start")
        assert result_of(c, "c")["status"] == "queued"


def test_history_is_bounded():
    with ServerThread(create_instance_app(sleeper(0, history=2))) as url, httpx.Client(base_url=url) as c:
        ids = [f"t{i}" for i in range(4)]
        for tid in ids:
            enqueue(c, tid)
        wait_for(
            lambda: c.get("/results/t3").status_code == 200 and result_of(c, "t3")["status"] == "completed",
            30,
            "the last task",
        )
        assert [c.get(f"/results/{t}").status_code for t in ids] == [404, 404, 200, 200]


def test_a_dead_callback_does_not_stop_the_instance():
    from scheduler.live import free_port

    dead = f"http://127.0.0.1:{free_port()}/notify/task_complete"
    with (
        ServerThread(create_instance_app(sleeper(0, notify_deadline_s=0.3))) as url,
        httpx.Client(base_url=url) as c,
    ):
        enqueue(c, "a", dead)
        enqueue(c, "b", dead)
        res = wait_for(lambda: finished(c, ["a", "b"]), 30, "both tasks")
        assert [r["status"] for r in res] == ["completed", "completed"]


def test_matmul_does_real_work_off_the_event_loop():
    runtime = InstanceRuntime(
        MatmulWork(np.random.default_rng(1), max_n=1024), model="mm", instance_id="mm-test", replicas=1
    )
    with ServerThread(create_instance_app(runtime)) as url, httpx.Client(base_url=url, timeout=30) as c:
        enqueue(c, "small", input_data={"n": 32})
        enqueue(c, "big", input_data={"n": 700, "repeat": 3})
        seen = set()

        def big_done():
            status = result_of(c, "big")["status"]  # answered while the product runs: the loop is free
            seen.add(status)
            return status == "completed"

        wait_for(big_done, 120, "the big product", interval_s=0.005)
        assert "running" in seen
        small, big = result_of(c, "small"), result_of(c, "big")
        assert small["result"]["n"] == 32 and big["result"] == {
            "n": 700,
            "repeat": 3,
            "mean_abs": pytest.approx(big["result"]["mean_abs"]),
        }
        assert big["execution_time"] > small["execution_time"]  # ~30000x the arithmetic
        for tid, bad, words in [
            ("b1", {"n": "x"}, "task_input.n"),
            ("b2", {"n": 5000}, "1..1024"),
            ("b3", [1, 2], "a mapping"),
            ("b4", {"n": 8, "repeat": 0}, "task_input.repeat"),
        ]:
            enqueue(c, tid, input_data=bad)
            r = wait_for(lambda tid=tid: finished(c, [tid]), 30, tid)[0]
            assert r["status"] == "failed" and words in r["error"], r


def test_sleep_work_is_seeded_and_scaled():
    dist = from_spec({"dist": "lognormal", "mean_ms": 1.0, "cv": 0.5})

    async def draws(seed, speed=1.0):
        work = SleepWork(dist, np.random.default_rng(seed), speed)
        return [(await work.run(None))["service_ms"] for _ in range(5)]

    assert asyncio.run(draws(7)) == asyncio.run(draws(7)) != asyncio.run(draws(8))
    assert asyncio.run(draws(7, speed=2.0)) == pytest.approx([x / 2 for x in asyncio.run(draws(7))])
    assert SleepWork(
        from_spec({"dist": "deterministic", "value_ms": 40}), np.random.default_rng(), 4
    ).prior_ms == (10.0, 0.0)


def test_sleep_work_never_ends_early():
    """uvloop (libuv) keeps its clock in whole milliseconds, read once per loop iteration, and
    rounds a timer's delay to a millisecond: a plain ``asyncio.sleep`` of 5.4 ms can end up to
    about 1.5 ms early by ``time.perf_counter``.  The reference instance reports what it slept
    as the execution time, so it sleeps again for what is left."""
    uvloop = pytest.importorskip("uvloop")
    work = SleepWork(from_spec({"dist": "deterministic", "value_ms": 5.4}), np.random.default_rng(0))

    async def sleeps() -> list[float]:
        took = []
        for _ in range(20):
            t0 = time.perf_counter()
            await work.run(None)
            took.append((time.perf_counter() - t0) * 1000.0)
        return took

    loop = uvloop.new_event_loop()
    try:
        took = loop.run_until_complete(sleeps())
    finally:
        loop.close()
    assert min(took) >= 5.4, took


def test_service_time_option(tmp_path):
    assert parse_service_time('{"dist": "exponential", "mean_ms": 5}').mean_ms == 5
    assert parse_service_time("{dist: lognormal, mean_ms: 50, cv: 0.5}").std_ms == pytest.approx(25)
    values = tmp_path / "times.txt"
    values.write_text("10, 20\n30\n")
    assert parse_service_time(f"{{dist: empirical, file: {values}}}").mean_ms == pytest.approx(20)
    for text, words in [
        ("{dist: normal, mean_ms: 5}", "--service-time.dist"),
        ("[oops", "JSON or YAML"),
        ("{dist: exponential}", "mean_ms"),
        (f"{{dist: empirical, file: {tmp_path}/x}}", "file"),
    ]:
        with pytest.raises(SpecError, match=words):
            parse_service_time(text)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--replicas", "0"], "--replicas"),
        (["--service-time", "{dist: exponential, mean_ms: -1}"], "mean_ms"),
        (["--port", "0"], "--port"),
        (["--speed", "0"], "--speed"),
    ],
)
def test_cli_rejects_bad_options(args, words, capsys):
    assert instance_main(["--model", "x", *args]) == 2
    assert words in capsys.readouterr().err


def test_sleep_work_honours_the_token_service_model_from_metadata():
    """The reference instance draws a task's size with the simulator's TokenService from the
    task's metadata: the same generator state gives the same size as the simulator's draw."""
    from scheduler.core.tokens import TokenService
    from scheduler.instance.__main__ import parse_service_time
    from scheduler.instance.work import TaskInputError

    spec = "{dist: tokens, base_ms: 2, per_input_token_ms: 0.001, per_output_token_ms: 0.01, cv: 0.3}"
    service = parse_service_time(spec)
    assert isinstance(service, TokenService)
    meta = {"input_tokens": 800, "output_tokens": 120}
    work = SleepWork(service, np.random.default_rng(5), speed=2.0)
    got = asyncio.run(work.run(None, meta))["service_ms"]
    expected = service.sample_one(np.random.default_rng(5), meta) / 2.0
    assert got == pytest.approx(expected) and got > 0
    # without tokens only base_ms remains; a size in the input still wins; bad metadata fails the task
    assert work.prior_ms == pytest.approx((1.0, 0.3))
    assert asyncio.run(work.run({"size_ms": 4.0}, meta))["service_ms"] == 2.0
    with pytest.raises(TaskInputError, match="metadata.input_tokens"):
        asyncio.run(work.run(None, {"input_tokens": "lots"}))
