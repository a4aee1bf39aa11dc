"""The time-aware queue estimate, checked against hand computations."""

import pytest

from scheduler import ManualClock, Predictor, Scheduler


def setup(replicas=1, mean=100.0, std=0.0):
    clock = ManualClock()
    table = {"m": {"mean_ms": mean, "std_ms": std}}
    s = Scheduler("round_robin", clock=clock, rng=0, predictor=Predictor("lookup_table", lookup_table=table))
    a = s.add_instance("m", instance_id="a", replicas=replicas)
    return s, clock, a


def info(s):
    q = s.queue_info()[0]
    return q.running, q.pending, q.wait_mean_ms, q.wait_std_ms


def test_single_replica_residual_plus_pending():
    s, clock, a = setup()
    assert info(s) == (0, 0, 0.0, 0.0)
    t1 = s.submit("m").task_id
    t2 = s.submit("m").task_id
    assert info(s)[:3] == (1, 1, 200.0)
    clock.advance(30)
    assert info(s)[2] == 170.0  # the running task has run 30 ms
    clock.advance(200)
    assert info(s)[2] == 100.0  # overdue: residual clamps at zero
    s.complete(t1, 230.0)  # t2 starts now
    assert info(s)[:3] == (1, 0, 100.0)
    clock.advance(40)
    assert info(s)[2] == 60.0
    s.complete(t2, 40.0)
    assert info(s) == (0, 0, 0.0, 0.0)


def test_replicas_share_the_work():
    s, clock, a = setup(replicas=2)
    ids = [s.submit("m").task_id for _ in range(2)]
    assert info(s)[:3] == (2, 0, 100.0)  # both busy: the earliest residual
    clock.advance(50)
    assert info(s)[2] == 50.0
    s.submit("m")
    s.submit("m")
    # residuals 50 + 50, pending 100 + 100, two replicas
    assert info(s)[:3] == (2, 2, 150.0)
    s.complete(ids[0], 50.0)  # frees a replica; the first pending starts at t=50
    assert info(s)[:3] == (2, 1, (50 + 100 + 100) / 2)


def test_variance_adds_over_tasks_ahead():
    s, clock, a = setup(mean=100, std=10)
    for _ in range(3):
        s.submit("m")
    _, _, mean, std = info(s)
    assert mean == 300.0 and std == pytest.approx((3 * 100) ** 0.5)
    w = s.wait_estimate(a)
    assert w.quantile(0.5) == pytest.approx(300.0) and w.quantile(0.99) > 300


def test_out_of_order_completion_and_heterogeneous_replicas():
    clock = ManualClock()
    s = Scheduler(
        "least_requests",
        clock=clock,
        rng=0,
        predictor=Predictor("lookup_table", lookup_table={"m": {"mean_ms": 10, "std_ms": 0}}),
    )
    s.add_instance("m", instance_id="one", replicas=1)
    s.add_instance("m", instance_id="three", replicas=3)
    ids = [s.submit("m") for _ in range(6)]
    by = {q.instance_id: q for q in s.queue_info()}
    assert by["one"].running + by["one"].pending + by["three"].running + by["three"].pending == 6
    # complete a task that is still pending in the core's view: it simply leaves
    pending = [d for d in ids if d.task_id in s.tasks_on(d.instance_id)[s.instance(d.instance_id).replicas :]]
    for d in pending:
        s.complete(d.task_id, 1.0)
    for d in ids:
        if d not in pending:
            s.complete(d.task_id, 1.0)
    assert all((q.running, q.pending, q.wait_mean_ms) == (0, 0, 0.0) for q in s.queue_info())


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_few_instances_on_python_floats_match_the_numpy_path(replicas, monkeypatch):
    """Up to ``Pool.FEW`` instances the countdown wait is computed on Python floats: bit for bit what
    the numpy path gives, at every step of a random history (running, waiting, overdue, idle),
    for every position and for a selection."""
    import numpy as np

    from scheduler.core.queues import Pool

    clock = ManualClock()
    s = Scheduler("random", clock=clock, rng=3, predictor=Predictor("online", residual=False))
    for i in range(6):
        s.add_instance("m", instance_id=f"i{i}", replicas=replicas)
    pool = s._pools["m"]
    rng = np.random.default_rng(7)
    live: list[str] = []
    sel = np.array([4, 0, 2], dtype=np.intp)
    waited = 0
    for _ in range(400):
        if live and rng.random() < 0.45:
            s.complete(live.pop(int(rng.integers(len(live)))), float(rng.exponential(80.0)))
        else:
            live.append(s.submit("m").task_id)
        clock.advance(float(rng.exponential(20.0)))
        now = clock.now_ms()
        assert pool.res is None and pool._homogeneous  # the countdown, the path Pool.FEW replaces
        waited += bool(pool.n_pending.any())
        few = pool.wait_mean(now), pool.wait_mean(now, sel)
        monkeypatch.setattr(Pool, "FEW", 0)
        arrays = pool.wait_mean(now), pool.wait_mean(now, sel)
        monkeypatch.undo()
        for a, b in zip(few, arrays):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes() and not a.flags.writeable
    assert waited > 50  # tasks waited at many of the steps, not only running ones
