"""The Scheduler facade: the flow both shells drive."""

import pytest

from scheduler import (
    COMPLETED,
    FAILED,
    SCHEDULED,
    DuplicateTaskError,
    InvalidTransitionError,
    ManualClock,
    NoInstanceError,
    Predictor,
    Scheduler,
    SpecError,
    UnknownInstanceError,
    UnknownPredictModeError,
    UnknownStrategyError,
    UnknownTaskError,
)


def make(strategy="shortest_queue", **kw):
    clock = ManualClock()
    return Scheduler(strategy, clock=clock, rng=0, **kw), clock


def test_submit_schedule_complete_flow():
    s, clock = make(predictor=Predictor("online", prior_mean_ms=50, prior_std_ms=5))
    a = s.add_instance("llm", replicas=1)
    d = s.submit("llm", {"prompt": "hi"}, {"input_tokens": 2})
    assert d.instance_id == a and d.model == "llm" and d.strategy == "shortest_queue"
    assert d.predicted_ms == 50 and d.predicted_error_ms == 5 and d.candidates == 1 and d.wait_ms == 0
    rec = s.task(d.task_id)
    assert rec.status == SCHEDULED and rec.instance_id == a and rec.metadata == {"input_tokens": 2}
    clock.advance(42.0)
    done = s.complete(d.task_id, 40.0, result={"text": "ok"})
    assert done.status == COMPLETED and done.total_ms == 42.0 and done.wait_ms == 2.0
    assert s.tasks_on(a) == []
    with pytest.raises(InvalidTransitionError):
        s.complete(d.task_id, 40.0)


def test_peek_is_the_record_itself_and_task_a_copy():
    s, _ = make()
    s.add_instance("llm", replicas=1)
    d = s.submit("llm", {}, {"k": 1})
    assert s.peek(d.task_id) is s.peek(d.task_id) and s.peek(d.task_id) == s.task(d.task_id)
    assert s.task(d.task_id) is not s.peek(d.task_id) and s.peek("nope") is None
    s.task(d.task_id).metadata["k"] = 2  # a copy's change stays in the copy
    assert s.peek(d.task_id).metadata == {"k": 1}


def test_task_ids_unique_and_client_ids_kept():
    s, _ = make()
    s.add_instance("m")
    ids = {s.submit("m").task_id for _ in range(50)}
    assert len(ids) == 50
    assert s.submit("m", task_id="mine").task_id == "mine"


def test_no_instance_records_failure_and_says_why():
    s, _ = make()
    with pytest.raises(NoInstanceError, match="no instance serves this model") as e:
        s.submit("ghost", task_id="t1")
    assert e.value.model == "ghost"
    rec = s.task("t1")
    assert rec.status == FAILED and "ghost" in rec.error
    i = s.add_instance("m")
    s.set_healthy(i, False)
    with pytest.raises(NoInstanceError, match="no healthy instance"):
        s.submit("m")
    s.set_healthy(i, True)
    assert s.submit("m").instance_id == i


def test_strategy_switch_keeps_queue_estimates():
    s, _ = make(predictor=Predictor("online", prior_mean_ms=100, prior_std_ms=0))
    a = s.add_instance("m", instance_id="a")
    s.add_instance("m", instance_id="b")
    for _ in range(3):
        s.submit("m")
    before = {q.instance_id: (q.running, q.pending, q.wait_mean_ms) for q in s.queue_info()}
    s.set_strategy("round_robin")
    assert s.strategy_name == "round_robin"
    after = {q.instance_id: (q.running, q.pending, q.wait_mean_ms) for q in s.queue_info()}
    assert before == after and sum(v[0] + v[1] for v in after.values()) == 3
    s.set_strategy("weighted", w=2.0)
    assert s.strategy.params() == {"w": 2.0}
    with pytest.raises(UnknownStrategyError) as e:
        s.set_strategy("fastest")
    assert "shortest_queue" in str(e.value) and "round_robin" in str(e.value)
    assert s.strategy_name == "weighted"  # unchanged after the refusal
    with pytest.raises(SpecError, match="w"):
        s.set_strategy("weighted", w=-1)
    assert a in s.instance_ids("m")


def test_predict_mode_switch_changes_predictions():
    table = {"m": {"mean_ms": 7.0, "std_ms": 1.0}}
    s, _ = make(predictor=Predictor("online", prior_mean_ms=100, prior_std_ms=10, lookup_table=table))
    s.add_instance("m")
    assert s.submit("m").predicted_ms == 100
    s.set_predict_mode("lookup_table")
    assert s.predict_mode == "lookup_table" and s.submit("m").predicted_ms == 7.0
    s.set_predict_mode("online")
    assert s.predict_mode == "online"
    with pytest.raises(UnknownPredictModeError, match="lookup_table"):
        s.set_predict_mode("psychic")
    with pytest.raises(UnknownPredictModeError):  # the live API's name, translated at its boundary
        s.set_predict_mode("default")


def test_removal_drains_safely():
    s, clock = make("round_robin", predictor=Predictor("online", prior_mean_ms=10, prior_std_ms=0))
    a = s.add_instance("m", instance_id="a")
    b = s.add_instance("m", instance_id="b")
    tasks = [s.submit("m") for _ in range(4)]
    on_a = [d.task_id for d in tasks if d.instance_id == a]
    assert s.remove_instance(a) == len(on_a) == 2
    assert all(s.submit("m").instance_id == b for _ in range(5))
    clock.advance(5)
    for tid in on_a:  # pending ones still complete and count
        assert s.complete(tid, 5.0).status == COMPLETED
    assert s.tasks_on(a) == []
    assert a not in s.instance_ids() and a in s.instance_ids(active_only=False)
    assert [q.instance_id for q in s.queue_info()] == [b]
    with pytest.raises(UnknownInstanceError):
        s.remove_instance(a)
    with pytest.raises(UnknownInstanceError):
        s.remove_instance("zzz")
    s.remove_instance(b)
    with pytest.raises(NoInstanceError):
        s.submit("m")


def test_fail_releases_estimate_and_does_not_learn():
    s, clock = make(predictor=Predictor("online", prior_mean_ms=10, prior_std_ms=0, min_samples=1))
    a = s.add_instance("m")
    d = s.submit("m")
    assert s.queue_info()[0].running == 1
    rec = s.fail(d.task_id, "instance returned 500")
    assert rec.status == FAILED and rec.error == "instance returned 500"
    q = s.queue_info()[0]
    assert (q.running, q.pending, q.wait_mean_ms) == (0, 0, 0.0)
    assert s.predictor.observations("m") == 0
    with pytest.raises(UnknownTaskError):
        s.fail("nope", "x")
    assert a


def test_retry_moves_task_and_rolls_back_estimate():
    s, _ = make("round_robin")
    a = s.add_instance("m", instance_id="a")
    b = s.add_instance("m", instance_id="b")
    d = s.submit("m")
    first = d.instance_id
    d2 = s.retry(d.task_id, exclude=[first])
    assert d2.instance_id != first and d2.task_id == d.task_id
    assert s.tasks_on(first) == [] and s.tasks_on(d2.instance_id) == [d.task_id]
    assert s.task(d.task_id).attempts == 2
    with pytest.raises(NoInstanceError, match="refused"):
        s.retry(d.task_id, exclude=[a, b])
    assert s.task(d.task_id).status == FAILED
    assert s.tasks_on(a) == s.tasks_on(b) == []
    with pytest.raises(UnknownTaskError):
        s.retry(d.task_id)


def test_timing_statistics_through_the_facade():
    s, clock = make()
    s.add_instance("m", replicas=1)
    ids = [s.submit("m").task_id for _ in range(3)]
    for tid in ids:
        clock.advance(10.0)
        s.complete(tid, 10.0)
    st = s.tracker.stats()
    assert st["counts"][COMPLETED] == 3
    assert st["execution_ms"]["mean"] == 10.0
    assert st["total_ms"]["mean"] == pytest.approx(20.0)  # 10, 20, 30
    assert st["wait_ms"]["mean"] == pytest.approx(10.0)


def test_instance_validation_names_fields():
    s, _ = make()
    with pytest.raises(SpecError, match="replicas"):
        s.add_instance("m", replicas=0)
    with pytest.raises(SpecError, match="speed"):
        s.add_instance("m", speed=0)
    with pytest.raises(SpecError, match="model"):
        s.add_instance("")
    s.add_instance("m", instance_id="x")
    with pytest.raises(SpecError, match="instance_id"):
        s.add_instance("m", instance_id="x")


def test_recorder_sees_every_event_in_order():
    events = []
    s, clock = make(recorder=events.append)
    s.add_instance("m", instance_id="a")
    d = s.submit("m")
    clock.advance(3)
    s.complete(d.task_id, 3.0)
    kinds = [e["event"] for e in events]
    assert kinds == ["config", "add_instance", "submit", "decision", "complete"]
    assert events[0]["strategy"] == "shortest_queue" and "rng_state" in events[0]
    assert events[3]["instance_id"] == "a" and events[4]["t"] == 3.0


def test_seeded_schedulers_decide_identically():
    def run(seed):
        s, clock = make("random")
        s.rng = __import__("numpy").random.default_rng(seed)
        for _ in range(5):
            s.add_instance("m")
        return [s.submit("m").instance_id for _ in range(30)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_retry_exclusions_from_another_model_do_not_apply():
    s, _ = make("round_robin")
    s.add_instance("a", instance_id="a-0")
    other = s.add_instance("b", instance_id="b-0")  # same pool position as a-0, in another pool
    d = s.submit("a")
    # excluding b-0 must not remove a-0 (the only instance of model a)
    assert s.retry(d.task_id, exclude=[other]).instance_id == "a-0"


def test_a_strategy_error_during_retry_fails_the_task_instead_of_leaving_it_queued():
    from scheduler import Strategy

    class Flaky(Strategy):
        name = "flaky"
        calls = 0

        def choose(self, view, rng):
            Flaky.calls += 1
            if Flaky.calls > 1:
                raise ZeroDivisionError("bug")
            return 0

    s, _ = make()
    s.set_strategy(Flaky())
    s.add_instance("m")
    d = s.submit("m")
    with pytest.raises(ZeroDivisionError):
        s.retry(d.task_id)
    rec = s.task(d.task_id)
    assert rec.status == FAILED and "ZeroDivisionError" in rec.error


@pytest.mark.parametrize("strategy", ["shortest_queue", "min_quantile", "probabilistic", "power_of_two"])
@pytest.mark.parametrize("mode", ["online", "regression"])
def test_lean_place_and_finish_decide_as_submit_and_complete(strategy, mode):
    """The simulator's lean path: same choices, predictions and queue estimates, no records."""
    import numpy as np

    def drive(lean):
        pred = Predictor(mode, prior_mean_ms=20, prior_std_ms=10, features=["input_tokens"])
        s, clock = make(strategy, predictor=pred)
        for k in range(4):
            s.add_instance("m", replicas=1 + k % 2, speed=1.0 + k / 4)
        rng = np.random.default_rng(7)
        out, running = [], []
        for n in range(400):
            clock.advance(float(rng.exponential(4.0)))
            meta = {"input_tokens": int(rng.integers(1, 100))}
            if lean:
                out.append(s.place("m", str(n), None, meta))
            else:
                d = s.submit("m", None, meta, task_id=str(n))
                out.append((d.instance_id, d.predicted_ms, d.predicted_error_ms))
            running.append((str(n), meta))
            if len(running) > 6:
                tid, m = running.pop(int(rng.integers(len(running))))
                size = float(rng.gamma(2.0, 10.0))
                s.finish(tid, size, m) if lean else s.complete(tid, size)
        return out, s.queue_info(), s

    lean, full = drive(True), drive(False)
    assert lean[0] == full[0] and lean[1] == full[1]
    assert len(lean[2].tracker) == 0 and lean[2].in_flight() == full[2].in_flight() == 6


def test_lean_path_refuses_what_it_cannot_keep():
    s, _ = make()
    s.add_instance("m", instance_id="a")
    assert s.place("m", "t1")[0] == "a"
    with pytest.raises(DuplicateTaskError):
        s.place("m", "t1")  # in flight already
    s.finish("t1", 3.0)
    with pytest.raises(UnknownTaskError):
        s.finish("t1", 3.0)
    with pytest.raises(NoInstanceError):
        s.place("ghost", "t2")
    assert s.task("t2").status == FAILED  # a refused task is recorded, as submit records it
    r, _ = make(recorder=[].append)
    with pytest.raises(RuntimeError, match="recorder"):
        r.place("m", "t3")
