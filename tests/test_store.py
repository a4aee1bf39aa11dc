"""Durable state (scheduler.live.store), idempotent submit, and recovery in process.

The scheduler runs in process (TestClient) with its task instances played by
test_api's MockTransport fakes; "a restart" is a second service built on the
same state file.  Real processes killed with SIGKILL are in test_recovery.py.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest
from test_api import T0_MS, FakeInstances, make_service, notify, query, register, serve, submit

from scheduler import ManualClock
from scheduler.live import LiveConfig
from scheduler.live.store import MemoryStore, SqliteStore, StoredInstance, StoredTask, open_store


@pytest.fixture
def fakes() -> FakeInstances:
    return FakeInstances()


def _task(tid: str, status: str = "scheduled", end_ms: float | None = None, **kw) -> StoredTask:
    return StoredTask(tid, "llm", status, "ti-1", 1.0, schedule_ms=1.0, end_ms=end_ms, **kw)


async def _flushed(store) -> None:
    await store.flush()


def test_open_store_names_the_kind(tmp_path):
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("none"), MemoryStore)
    assert "memory only" in open_store("NONE").description
    s = open_store(str(tmp_path / "s.db"))
    try:
        assert isinstance(s, SqliteStore) and "WAL" in s.description
    finally:
        s.close()


def test_sqlite_store_round_trip_and_wal(tmp_path):
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)
    s.put_task(_task("a", task_input={"size_ms": 5}, body_hash="h", answer_ti="ti-1", metadata={"k": 1}))
    s.put_task(
        _task("a", metadata={"k": 1})
    )  # a later row of the same task in the same batch keeps input and hash
    s.put_instance(StoredInstance("ti-1", "http://127.0.0.1:1", "llm", "inst-a", 2))
    s.put_setting("strategy", {"name": "round_robin", "params": {}})
    asyncio.run(_flushed(s))
    s.put_task(_task("a", "completed", end_ms=9.0, result={"ok": 1}, execution_ms=3.0))
    asyncio.run(_flushed(s))
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    state = SqliteStore(path).load()
    (t,) = state.tasks
    assert (t.status, t.result, t.execution_ms, t.metadata) == ("completed", {"ok": 1}, 3.0, {"k": 1})
    assert t.task_input is None  # an ended task keeps no input
    assert (t.body_hash, t.answer_ti) == ("h", "ti-1")
    assert state.instances == [
        StoredInstance("ti-1", "http://127.0.0.1:1", "llm", "inst-a", 2, 1.0, True, None)
    ]
    assert state.settings == {"strategy": {"name": "round_robin", "params": {}}}


def test_writes_are_batched_into_few_commits(tmp_path):
    s = SqliteStore(str(tmp_path / "state.db"), interval_s=0.02)

    async def burst() -> None:
        for i in range(500):
            s.put_task(_task(f"t{i}", task_input=i))
        await asyncio.gather(*(s.flush() for _ in range(50)))

    asyncio.run(burst())
    s.close()
    assert s.commits <= 3, s.commits  # 500 tasks and 50 waiters: one or two transactions, not 500
    assert len(SqliteStore(str(tmp_path / "state.db")).load().tasks) == 500


def test_a_later_state_rewrites_only_what_changes(tmp_path):
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)

    async def run() -> None:
        s.put_task(_task("a", task_input={"n": 1}, body_hash="h", metadata={"k": 1}))
        s.put_task(_task("b", task_input={"n": 2}, metadata={"k": 2}))
        await s.flush()
        # committed before: an UPDATE of the changing columns (the input stays until the task ends)
        s.update_task(_task("a", "scheduled", answer_ti="ti-2", remote_id="r-1"))
        await s.flush()
        s.update_task(_task("a", "completed", end_ms=5.0, result={"ok": 1}, execution_ms=2.0))
        s.put_task(_task("c", task_input={"n": 3}))
        s.update_task(_task("c", "failed", end_ms=6.0, error="boom"))  # its first row is in the same batch
        await s.flush()

    asyncio.run(run())
    s.close()
    state = {t.task_id: t for t in SqliteStore(path).load().tasks}
    a, b, c = state["a"], state["b"], state["c"]
    assert (a.status, a.result, a.execution_ms, a.end_ms) == ("completed", {"ok": 1}, 2.0, 5.0)
    assert (a.metadata, a.body_hash, a.answer_ti, a.task_input) == ({"k": 1}, "h", "ti-2", None)
    assert a.remote_id is None  # the latest state says so
    assert (b.status, b.task_input, b.metadata) == ("scheduled", {"n": 2}, {"k": 2})
    assert (c.status, c.error, c.task_input) == ("failed", "boom", None)


def test_a_submitted_tasks_first_row_from_its_decision_is_the_cores_record(fakes):
    # the submit path writes the first row from the core's decision (no copy of its record):
    # it must be exactly what the record says
    from scheduler.live.service.rows import stored_task, submitted_task

    fakes.add(8100)
    fakes.add(8101)
    svc = make_service(fakes)
    with serve(svc) as tc:
        register(tc, 8100), register(tc, 8101)
    for metadata in ({}, {"prompt_tokens": 12, "tag": "x"}):
        d = svc.core.submit("llm", {"p": 1}, metadata)
        rec = svc.core.task(d.task_id)
        assert rec is not None
        assert submitted_task(d, metadata, {"p": 1}, "h") == stored_task(rec, {"p": 1}, "h")


def test_a_stored_row_built_by_position_is_the_row_built_by_name():
    # stored_task passes every field by position (cheaper): a reordered StoredTask must not swap them
    from dataclasses import fields

    from scheduler.core import TaskRecord
    from scheduler.live.service.rows import stored_task
    from scheduler.live.store import StoredTask

    rec = TaskRecord(
        "t1", "llm", "completed", "ti-1", 1.0, 2.0, 9.0, 5.0, 0.5, 6.0, {"r": 1}, "e", {"m": 1}, 2
    )
    row = stored_task(rec, {"in": 1}, "h", "ti-2", "remote-7")
    shell = {"task_input": {"in": 1}, "body_hash": "h", "answer_ti": "ti-2", "remote_id": "remote-7"}
    by_name = StoredTask(
        **{f.name: shell[f.name] if f.name in shell else getattr(rec, f.name) for f in fields(StoredTask)}
    )
    assert row == by_name


def _rows_seen_by_another_connection(path: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM tasks").fetchone()[0]


def test_a_flush_is_done_once_its_rows_are_committed(tmp_path):
    # group commit on the event loop: another connection sees a task as soon as its flush is done
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)
    seen: list[int] = []

    async def run() -> None:
        for i in range(50):
            s.put_task(_task(f"t{i}", task_input=i))
            await s.flush()
            seen.append(_rows_seen_by_another_connection(path))

    try:
        asyncio.run(run())
        assert seen == list(range(1, 51))
        assert s.commits == 50
        assert not any(t.name == "state-writer" for t in threading.enumerate())  # no writer thread
    finally:
        s.close()


def test_a_tasks_flush_waits_only_while_its_rows_are_not_committed(tmp_path):
    # flush_task: a task whose rows another flush already committed is done at once, without
    # yielding to the loop; one with a row waiting (or an instance row waiting) waits for its commit
    path = str(tmp_path / "state.db")
    s = SqliteStore(path)
    turns: list[str] = []

    async def other() -> None:
        turns.append("other ran")

    async def run() -> None:
        loop = asyncio.get_running_loop()
        s.put_task(_task("a", task_input=1))
        s.put_task(_task("b", task_input=2))
        await s.flush_task("a")  # a's row waits: a commit, which writes b's as well
        assert _rows_seen_by_another_connection(path) == 2 and s.commits == 1
        s.update_task(_task("a", "completed", end_ms=2.0))
        loop.create_task(other())
        await s.flush_task("b")  # b's row is in; a's later one waiting does not hold b
        assert turns == [] and s.commits == 1  # no loop turn, no commit
        await s.flush_task("a")
        assert s.commits == 2 and turns == ["other ran"]
        s.put_instance(StoredInstance("ti-1", "http://127.0.0.1:1", "llm", "i1", 1))
        await s.flush_task("b")  # an instance row waiting: the commit is awaited
        assert s.commits == 3

    try:
        asyncio.run(run())
        s._failed = True  # after a failed commit every task's flush waits for a commit of its own
        assert asyncio.run(_waits(s, "b"))
    finally:
        s.close()


async def _waits(store, task_id: str) -> bool:
    pending = store.flush_task(task_id)
    waits = isinstance(pending, asyncio.Future)
    await pending
    return waits


def test_rows_put_without_a_flush_are_committed_within_the_idle_interval(tmp_path):
    path = str(tmp_path / "state.db")
    s = SqliteStore(path, idle_commit_s=0.01)

    async def run() -> int:
        s.put_task(_task("a", "completed", end_ms=2.0))
        await asyncio.sleep(0.5)  # generous: the commit is due after 10 ms
        return _rows_seen_by_another_connection(path)

    try:
        assert asyncio.run(run()) == 1
    finally:
        s.close()


def test_the_log_is_checkpointed_and_folded_in_on_close(tmp_path):
    path = str(tmp_path / "state.db")
    s = SqliteStore(path, checkpoint_s=0.05)

    async def run() -> None:
        for i in range(300):
            s.put_task(_task(f"t{i}", task_input={"x": "y" * 100}))
            await s.flush()
        await asyncio.sleep(0.5)  # the checkpointer wakes every 50 ms

    asyncio.run(run())
    assert s.checkpoints >= 1  # by the checkpointer thread (the loop's connection never checkpoints)
    s.close()
    wal = path + "-wal"  # folded in on close (the last connection to close removes the file)
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    assert len(SqliteStore(path).load().tasks) == 300


def test_the_log_is_started_again_while_commits_never_stop(tmp_path):
    # found measuring: a checkpoint in the checkpointer thread never caught up with a loop that
    # kept committing, so SQLite never started the log again: 140 MB after 48,000 tasks
    path = str(tmp_path / "state.db")
    s = SqliteStore(path, checkpoint_s=0.01)
    payload = {"x": "y" * 2000}

    async def run() -> None:
        for i in range(5000):
            s.put_task(_task(f"t{i}", task_input=payload))
            await s.flush()

    try:
        asyncio.run(run())
        assert os.path.getsize(path + "-wal") < 24 << 20  # ~50 MB of frames were written
    finally:
        s.close()


def test_retention_deletes_old_ended_tasks_from_the_file(tmp_path):
    path = str(tmp_path / "state.db")
    s = SqliteStore(path, max_history=50)

    async def run() -> None:
        for i in range(400):
            s.put_task(_task(f"t{i:03d}", "completed", end_ms=float(i)))
            if i % 20 == 0:
                await s.flush()
        s.put_task(_task("live"))  # not ended: never deleted
        await s.flush()

    asyncio.run(run())
    s.close()
    tasks = SqliteStore(path).load().tasks
    ended = sorted(t.task_id for t in tasks if t.status == "completed")
    assert 50 <= len(ended) <= 150  # deleted in batches: max_history plus a bounded slack
    assert ended[-1] == "t399" and "t000" not in ended
    assert any(t.task_id == "live" for t in tasks)


def test_retention_in_the_file_is_bounded_in_bytes_as_well(fakes, tmp_path):
    # found in review: the file kept --max-history ended tasks whatever their size, ignoring
    # --max-history-bytes (the tracker in memory honoured it): 300 results of 10 kB each stayed
    fake = fakes.add(8100)
    path = tmp_path / "state.db"
    svc = make_service(fakes, state_db=str(path), max_history=100_000, max_history_bytes=200_000)
    big = "x" * 10_000
    with serve(svc) as tc:
        register(tc, 8100)
        for _ in range(300):
            tid = submit(tc).json()["task_id"]
            assert notify(tc, tid, fake.instance_id, result={"text": big})["status"] == "success"
        tc.portal.call(_flushed, svc.store)
    with sqlite3.connect(path) as db:
        n, size = db.execute(
            "SELECT count(*), sum(length(result) + length(metadata)) FROM tasks WHERE ended = 1"
        ).fetchone()
    assert size <= 200_000 * 1.1 + 10_100, (n, size)  # the bound, its batch slack, one row
    assert 15 <= n <= 25, n  # about 200 kB / 10 kB: the newest kept
    with sqlite3.connect(path) as db:
        newest = db.execute("SELECT task_id FROM tasks ORDER BY end_ms DESC, rowid DESC LIMIT 1").fetchone()[
            0
        ]
    assert newest == tid


# -- idempotent submit ---------------------------------------------------------------------


def test_a_retried_submit_gets_the_original_answer(fakes):
    fake = fakes.add(8100)
    fakes.add(8101)
    with serve(make_service(fakes)) as tc:
        register(tc, 8100), register(tc, 8101)
        first = submit(tc, task_id="job-1")
        assert first.status_code == 200
        again = submit(tc, task_id="job-1")
        assert again.status_code == 200 and again.json() == first.json()
        assert (
            sum(e["task_id"] == "job-1" for e in fakes.by_port[8100].enqueued + fakes.by_port[8101].enqueued)
            == 1
        )
        other = tc.post(
            "/queue/submit", json={"model_name": "llm", "task_input": {"prompt": "no"}, "task_id": "job-1"}
        )
        assert other.status_code == 409 and "different body" in other.json()["detail"]
        assert fake is fakes.by_port[8100]


def test_a_retried_refused_submit_gets_the_same_refusal(fakes):
    with serve(make_service(fakes)) as tc:
        first = submit(tc, model="nobody", task_id="job-2")
        again = submit(tc, model="nobody", task_id="job-2")
        assert first.status_code == again.status_code == 503
        assert again.json()["task_id"] == "job-2"


# -- restart on the same file --------------------------------------------------------------


def _service(fakes: FakeInstances, path: str, clock=None, **kw):
    return make_service(fakes, clock=clock or ManualClock(T0_MS), state_db=path, **kw)


def test_a_restart_brings_back_tasks_instances_and_settings(fakes, tmp_path):
    path = str(tmp_path / "state.db")
    a, b = fakes.add(8100), fakes.add(8101)
    with serve(_service(fakes, path)) as tc:
        tis = [register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]]
        assert tc.post("/scheduler/set", json={"name": "round_robin"}).json()["status"] == "success"
        ids = [submit(tc, task_id=f"t{i}").json()["task_id"] for i in range(6)]
        done = ids[0]
        owner = query(tc, done)["scheduled_ti"]
        name = a.instance_id if owner == tis[0] else b.instance_id
        assert notify(tc, done, name, result={"v": 1})["status"] == "success"
    # while the scheduler is down: one task finished on its instance (notification lost),
    # another one was forgotten by its instance (it restarted), the rest still run
    on_a = [e["task_id"] for e in a.enqueued if e["task_id"] != done]
    a.results[on_a[0]] = {"status": "completed", "result": {"v": 2}, "execution_time": 4.0}
    a.results.update({t: {"status": "running"} for t in on_a[2:]})
    on_b = [e["task_id"] for e in b.enqueued if e["task_id"] != done]
    b.results.update({t: {"status": "queued"} for t in on_b})
    sent_before = len(a.enqueued) + len(b.enqueued)

    svc = _service(fakes, path)
    with serve(svc) as tc:
        assert svc.core.strategy_name == "round_robin"
        assert sorted(q["ti_uuid"] for q in tc.get("/queue/info").json()["queues"]) == sorted(tis)
        assert query(tc, done)["task_status"] == "completed" and query(tc, done)["result"] == {"v": 1}
        assert query(tc, on_a[0])["task_status"] == "completed"  # reconciled from GET /results
        forgotten = query(tc, on_a[1])
        assert forgotten["task_status"] == "scheduled"  # dispatched again: the instance did not know it
        for t in on_a[2:] + on_b:
            assert query(tc, t)["task_status"] == "scheduled"
        assert len(a.enqueued) + len(b.enqueued) == sent_before + 1  # only the forgotten task was sent again
        # the estimates count what is in flight again
        assert sum(len(svc.core.tasks_on(t)) for t in tis) == len(on_a[1:]) + len(on_b)
        # idempotent retry survives the restart
        assert submit(tc, task_id="t3").json()["task_id"] == "t3"
        assert submit(tc, task_id="t3", metadata={"x": 1}).status_code == 409


def test_an_instance_that_does_not_answer_after_a_restart_stays_registered_but_unhealthy(fakes, tmp_path):
    path = str(tmp_path / "state.db")
    fakes.add(8100)
    b = fakes.add(8101)
    with serve(_service(fakes, path)) as tc:
        ti_a, ti_b = register(tc, 8100)["ti_uuid"], register(tc, 8101)["ti_uuid"]
        ids = [submit(tc).json()["task_id"] for _ in range(6)]
    b.up = False
    svc = _service(fakes, path)
    with serve(svc) as tc:
        assert svc.core.instance(ti_a).healthy and not svc.core.instance(ti_b).healthy
        assert svc.core.has_instance(ti_b)
        # the dead instance's tasks were dispatched again to the live one
        for tid in ids:
            assert query(tc, tid)["scheduled_ti"] == ti_a
        b.up = True
        tc.portal.call(svc.check_health)
        assert svc.core.instance(ti_b).healthy  # answers again: takes tasks again


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_after_a_restart_count_what_this_process_saw(fakes, tmp_path):
    # found in review: a task submitted before a restart and completed after it was in no counter
    # and no latency histogram of the new process (its metrics did not know it was open)
    path = str(tmp_path / "state.db")
    fake = fakes.add(8100)
    with serve(_service(fakes, path)) as tc:
        register(tc, 8100)
        ids = [submit(tc).json()["task_id"] for _ in range(3)]
        assert notify(tc, ids[0], fake.instance_id)["status"] == "success"
    fake.results.update({t: {"status": "running"} for t in ids[1:]})
    svc = _service(fakes, path)
    with serve(svc) as tc:
        m = _samples(tc.get("/metrics").text)
        llm = (("model", "llm"),)
        assert m[("infersched_tasks_in_flight", ())] == 2  # the restored tasks
        assert m.get(("infersched_tasks_submitted_total", llm), 0) == 0  # counters restart at zero
        assert notify(tc, ids[1], fake.instance_id)["status"] == "success"
        assert notify(tc, ids[2], fake.instance_id, error="boom")["status"] == "success"
        m = _samples(tc.get("/metrics").text)
    assert m[("infersched_tasks_completed_total", llm)] == 1
    assert m[("infersched_tasks_failed_total", llm)] == 1
    assert m[("infersched_task_latency_seconds_count", llm)] == 2
    assert m[("infersched_tasks_in_flight", ())] == 0


def test_memory_only_store_forgets(fakes):
    fakes.add(8100)
    svc = make_service(fakes, state_db="none")
    assert isinstance(svc.store, MemoryStore)
    with serve(svc) as tc:
        register(tc, 8100)
        tid = submit(tc).json()["task_id"]
    with serve(make_service(fakes, state_db="none")) as tc:
        assert tc.get("/task/query", params={"task_id": tid}).status_code == 404


def test_serve_defaults_to_a_state_file_and_code_to_memory():
    assert LiveConfig().state_db is None
    assert LiveConfig.from_sources({}, env={}).state_db == "scheduler-state.db"
    assert LiveConfig.from_sources({}, env={"SCHEDULER_STATE_DB": "/x.db"}).state_db == "/x.db"
    assert LiveConfig.from_sources({"state_db": "none"}, env={}).state_db == "none"
