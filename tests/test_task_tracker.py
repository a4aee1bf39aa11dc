"""TaskTracker: registration, transitions, queries, thread safety, history cleanup."""

import threading

import pytest

from scheduler.core.errors import DuplicateTaskError, InvalidTransitionError, UnknownTaskError
from scheduler.core.tracker import COMPLETED, FAILED, QUEUED, SCHEDULED, TaskTracker


def test_registration_records_model_time_and_metadata():
    t = TaskTracker()
    rec = t.add("t1", "llm", 10.0, {"input_tokens": 5})
    assert (rec.status, rec.model, rec.submit_ms, rec.metadata) == (QUEUED, "llm", 10.0, {"input_tokens": 5})
    assert "t1" in t and len(t) == 1
    with pytest.raises(DuplicateTaskError, match="t1"):
        t.add("t1", "llm", 11.0)


def test_full_life_and_timings():
    t = TaskTracker()
    t.add("t1", "llm", 100.0)
    t.schedule("t1", "ti-a", 101.0, predicted_ms=40.0, predicted_error_ms=4.0)
    rec = t.complete("t1", 160.0, execution_ms=50.0, result={"y": 1})
    assert rec.status == COMPLETED and rec.instance_id == "ti-a"
    assert rec.total_ms == 60.0 and rec.wait_ms == 10.0 and rec.result == {"y": 1}
    assert (rec.predicted_ms, rec.predicted_error_ms, rec.attempts) == (40.0, 4.0, 1)


@pytest.mark.parametrize(
    "path, refused",
    [
        ([], COMPLETED),  # queued -> completed skips scheduling
        (["schedule", "complete"], FAILED),  # completed is final
        (["schedule", "fail"], COMPLETED),  # failed is final
        (["schedule", "complete"], SCHEDULED),
        (["fail"], SCHEDULED),
    ],
)
def test_refused_transitions(path, refused):
    t = TaskTracker()
    t.add("t", "m", 0.0)
    for step in path:
        {
            "schedule": lambda: t.schedule("t", "i", 1.0),
            "complete": lambda: t.complete("t", 2.0, 1.0),
            "fail": lambda: t.fail("t", 2.0, "boom"),
        }[step]()
    before = t.get("t").status
    action = {
        COMPLETED: lambda: t.complete("t", 3.0, 1.0),
        FAILED: lambda: t.fail("t", 3.0, "x"),
        SCHEDULED: lambda: t.schedule("t", "j", 3.0),
    }[refused]
    with pytest.raises(InvalidTransitionError) as e:
        action()
    assert e.value.current == before and e.value.target == refused
    assert t.get("t").status == before  # nothing changed


def test_requeue_allows_redispatch_and_counts_attempts():
    t = TaskTracker()
    t.add("t", "m", 0.0)
    t.schedule("t", "a", 1.0)
    assert t.requeue("t").status == QUEUED
    rec = t.schedule("t", "b", 2.0)
    assert rec.instance_id == "b" and rec.attempts == 2


def test_unknown_task():
    t = TaskTracker()
    assert t.get("nope") is None
    with pytest.raises(UnknownTaskError, match="nope"):
        t.complete("nope", 1.0, 1.0)


def test_queries_return_copies():
    t = TaskTracker()
    t.add("a", "m", 0.0, {"k": 1})
    t.add("b", "m", 0.0)
    t.schedule("a", "i1", 1.0)
    t.schedule("b", "i2", 1.0)
    t.complete("b", 5.0, 2.0)
    got = t.get("a")
    got.status = "completed"
    got.metadata["k"] = 99
    assert t.get("a").status == SCHEDULED and t.get("a").metadata == {"k": 1}
    assert [r.task_id for r in t.by_status(SCHEDULED)] == ["a"]
    assert [r.task_id for r in t.by_instance("i2")] == ["b"]
    assert t.by_instance("i1", statuses=[COMPLETED]) == []
    assert t.counts() == {QUEUED: 0, SCHEDULED: 1, COMPLETED: 1, FAILED: 0}
    with pytest.raises(ValueError, match="status must be one of"):
        t.by_status("done")


def test_history_keeps_newest_finished_and_never_drops_live_tasks():
    t = TaskTracker(max_history=3)
    t.add("live", "m", 0.0)
    t.schedule("live", "i", 0.0)
    for k in range(6):
        t.add(f"t{k}", "m", float(k))
        t.schedule(f"t{k}", "i", float(k))
        t.complete(f"t{k}", float(k) + 1, 1.0)
    assert [x for x in ("t0", "t1", "t2") if x in t] == []
    assert all(f"t{k}" in t for k in (3, 4, 5)) and "live" in t
    assert t.counts()[COMPLETED] == 3
    assert t.stats()["dropped_from_history"] == 3


def test_timing_statistics_over_recent_window():
    t = TaskTracker(window=4)
    for k in range(10):
        t.add(f"t{k}", "m", 0.0)
        t.schedule(f"t{k}", "i", 0.0)
        t.complete(f"t{k}", 10.0 * (k + 1), execution_ms=5.0)
    s = t.stats()
    assert s["window"] == 4
    # the last four totals: 70, 80, 90, 100
    assert s["total_ms"]["mean"] == pytest.approx(85.0)
    assert s["total_ms"]["p50"] == pytest.approx(85.0)
    assert s["wait_ms"]["mean"] == pytest.approx(80.0)
    assert s["execution_ms"]["p99"] == pytest.approx(5.0)
    assert TaskTracker().stats()["total_ms"] is None


def test_thread_safety_under_many_threads():
    t = TaskTracker(max_history=10_000)
    n_threads, per_thread = 16, 300
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(w):
        try:
            barrier.wait()
            for k in range(per_thread):
                tid = f"w{w}-{k}"
                t.add(tid, "m", 0.0)
                t.schedule(tid, f"i{w % 3}", 1.0)
                if k % 5 == 0:
                    t.fail(tid, 2.0, "x")
                else:
                    t.complete(tid, 2.0, 1.0)
                t.get(tid)
                t.counts()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    c = t.counts()
    total = n_threads * per_thread
    assert c[FAILED] == n_threads * (per_thread // 5) and c[COMPLETED] == total - c[FAILED]
    assert c[QUEUED] == c[SCHEDULED] == 0 and len(t) == total
