"""Property tests: any interleaving of submit, complete, fail, retry and remove keeps the
queue estimates sound, and every instance returns to zero once its tasks have ended."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import ManualClock, NoInstanceError, Predictor, Scheduler, strategy_names

ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(0, 1)),
        st.tuples(st.just("complete"), st.integers(0, 10_000)),
        st.tuples(st.just("fail"), st.integers(0, 10_000)),
        st.tuples(st.just("retry"), st.integers(0, 10_000)),
        st.tuples(st.just("remove"), st.integers(0, 5)),
        st.tuples(st.just("health"), st.integers(0, 5)),
        st.tuples(st.just("advance"), st.floats(0, 500)),
    ),
    max_size=120,
)


def check_estimates(s):
    for q in s.queue_info(include_removed=True):
        assert q.wait_mean_ms >= 0 and q.wait_std_ms >= 0, q
        assert q.running >= 0 and q.pending >= 0
        assert q.running <= q.replicas
        assert q.pending == 0 or q.running == q.replicas  # FIFO: nobody waits while a replica is free


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=ops,
    strategy=st.sampled_from(strategy_names()),
    replicas=st.lists(st.integers(1, 3), min_size=1, max_size=6),
    mode=st.sampled_from(["online", "lookup_table"]),
)
def test_any_interleaving_keeps_estimates_sound(program, strategy, replicas, mode):
    clock = ManualClock()
    pred = Predictor(
        mode,
        prior_mean_ms=20,
        prior_std_ms=5,
        min_samples=1,
        lookup_table={"m0": {"mean_ms": 30, "std_ms": 10}, "m1": {"mean_ms": 5, "std_ms": 0}},
    )
    s = Scheduler(strategy, clock=clock, rng=1, predictor=pred)
    ids = [s.add_instance(f"m{k % 2}", replicas=r) for k, r in enumerate(replicas)]
    live: list[str] = []
    for op, arg in program:
        if op == "submit":
            try:
                live.append(s.submit(f"m{arg}").task_id)
            except NoInstanceError:
                pass
        elif op in ("complete", "fail", "retry") and live:
            tid = live[arg % len(live)]
            if op == "complete":
                s.complete(tid, 10.0)
                live.remove(tid)
            elif op == "fail":
                s.fail(tid, "boom")
                live.remove(tid)
            else:
                try:
                    s.retry(tid, exclude=[s.task(tid).instance_id])
                except NoInstanceError:
                    live.remove(tid)  # recorded as failed
        elif op == "remove":
            iid = ids[arg % len(ids)]
            if s.has_instance(iid):
                s.remove_instance(iid)
        elif op == "health":
            iid = ids[arg % len(ids)]
            s.set_healthy(iid, not s.instance(iid).healthy)
        elif op == "advance":
            clock.advance(arg)
        check_estimates(s)
    # every task ends: all instances return to exactly zero
    for tid in list(live):
        s.complete(tid, 1.0)
    for q in s.queue_info(include_removed=True):
        assert (q.running, q.pending, q.wait_mean_ms, q.wait_std_ms) == (0, 0, 0.0, 0.0), q
    for iid in ids:
        assert s.tasks_on(iid) == []
    c = s.tracker.counts()
    assert c["queued"] == 0 and c["scheduled"] == 0
