"""Decision log and replay in the core: every decision comes out identical."""

import numpy as np
import pytest

from scheduler import (
    DecisionLog,
    ManualClock,
    NoInstanceError,
    Predictor,
    Scheduler,
    read_log,
    replay,
    strategy_names,
)


def drive(sched, clock, rng, n=300):
    """A busy mixed workload: arrivals, completions, a failure, a retry, removal and health."""
    live = []
    for k in range(n):
        clock.advance(float(rng.exponential(5.0)))
        try:
            live.append(sched.submit("m" if k % 3 else "n", size_ms=float(rng.exponential(20))).task_id)
        except NoInstanceError:
            pass
        if live and rng.random() < 0.8:
            tid = live.pop(int(rng.integers(len(live))))
            if rng.random() < 0.05:
                sched.fail(tid, "injected")
            else:
                sched.complete(tid, float(rng.exponential(20)))
        if k == 100:
            sched.set_healthy("m-1", False)
        if k == 150:
            sched.set_healthy("m-1", True)
        if k == 200 and live:
            try:
                sched.retry(live[0], exclude=[sched.task(live[0]).instance_id])
            except NoInstanceError:
                live.pop(0)
        if k == 250:
            sched.remove_instance("n-0")
    return live


@pytest.mark.parametrize("strategy", strategy_names())
def test_replay_reproduces_every_decision(strategy, tmp_path):
    path = tmp_path / "log.jsonl"
    clock = ManualClock()
    with DecisionLog(path) as log:
        pred = Predictor("online", prior_mean_ms=20, prior_std_ms=10, min_samples=2)
        s = Scheduler(strategy, clock=clock, rng=np.random.default_rng(11), predictor=pred, recorder=log)
        for k in range(4):
            s.add_instance("m", instance_id=f"m-{k}", replicas=1 + k % 2, speed=1.0 + 0.5 * k)
        s.add_instance("n", instance_id="n-0")
        drive(s, clock, np.random.default_rng(5))
    report = replay(read_log(path))
    assert report.decisions > 250
    assert report.all_identical, report.mismatches


def test_replay_detects_a_different_decision(tmp_path):
    events = []
    clock = ManualClock()
    s = Scheduler("round_robin", clock=clock, rng=0, recorder=events.append)
    s.add_instance("m", instance_id="a")
    s.add_instance("m", instance_id="b")
    for _ in range(4):
        s.submit("m")
    tampered = [dict(e, instance_id="a") if e["event"] == "decision" else e for e in events]
    report = replay(tampered)
    assert (report.decisions, report.identical) == (4, 2)
    assert report.mismatches[0]["recorded"] == "a" and report.mismatches[0]["replayed"] == "b"
    assert "2 of 4 decisions identical" in str(report)


def test_log_must_start_with_config():
    with pytest.raises(ValueError, match="config"):
        replay([{"event": "submit", "t": 0, "task_id": "x", "model": "m"}])


def test_torn_last_line_is_skipped(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"event": "config"}\n{"event": "sub')
    assert list(read_log(p)) == [{"event": "config"}]
