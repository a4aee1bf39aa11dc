"""The dispatch path in the simulator: ``network: {dispatch_ms, notify_ms}`` (sim.network).

Zero delays are no delays at all (the same frames, bit for bit, as a scenario
without the key, and as the engine gave before the key existed); non-zero ones
delay the instance's start and the core's hearing of the end by exactly the drawn
amounts.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import sim
from scheduler import SpecError
from sim.scenario import accepted_keys

DEMO = "examples/scenarios/demo.yaml"


def _demo(tasks=2000, **network):
    scn = sim.load_scenario(DEMO).with_changes({"tasks": tasks, "warmup_tasks": 100, "replications": 1})
    if not network:
        return scn
    return sim.load_scenario(dict(scn.to_dict(), network=network))


def _fingerprint(tasks: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(np.round(tasks["latency_ms"].to_numpy(), 3).tobytes())
    h.update(tasks["instance"].astype(str).str.cat().encode())
    return h.hexdigest()[:16]


def test_zero_delays_reproduce_todays_frames_exactly():
    plain = sim.run(_demo())
    # computed with the engine as it was before network delays existed (main at 5e589e8)
    assert _fingerprint(plain.tasks) == "2af3b399697a3e94"
    zero = {"dist": "deterministic", "value_ms": 0}
    for network in ({"dispatch_ms": zero}, {"dispatch_ms": zero, "notify_ms": zero}, {"notify_ms": zero}):
        again = sim.run(_demo(**network))
        pd.testing.assert_frame_equal(
            plain.tasks.drop(columns="scenario"), again.tasks.drop(columns="scenario"), check_exact=True
        )
        pd.testing.assert_frame_equal(plain.summary, again.summary, check_exact=True)


def test_delays_shift_start_and_completion_by_exactly_the_drawn_amounts():
    # one instance, tasks 1 s apart, service 10 ms: no queueing, so latency = dispatch + service + notify
    scn = {
        "tasks": 20,
        "models": {"m": {"service_time": {"dist": "deterministic", "value_ms": 10}}},
        "instances": [{"model": "m", "count": 1}],
        "workload": {"arrival": {"process": "deterministic", "rate_per_s": 1}},
        "network": {
            "dispatch_ms": {"dist": "uniform", "low_ms": 1, "high_ms": 3},
            "notify_ms": {"dist": "deterministic", "value_ms": 2.5},
        },
    }
    s = sim.load_scenario(scn)
    w = sim.draw_workload(s, sim.replication_seeds(s.seed, 1)[0])
    dispatch = w.network["dispatch_ms"]
    assert set(w.network) == {"dispatch_ms", "notify_ms"} and ((dispatch >= 1) & (dispatch <= 3)).all()
    t = sim.run(s).tasks.sort_values("task_id")
    assert t["latency_ms"].to_numpy() == pytest.approx(dispatch + 10.0 + 2.5)
    assert t["service_ms"].to_numpy() == pytest.approx(10.0)
    # as in live tables: the hops count as wait, start = finish - service
    assert t["wait_ms"].to_numpy() == pytest.approx(dispatch + 2.5)


def test_the_core_hears_of_completions_late_so_its_estimates_are_stale():
    # a long notify delay: the core still counts finished tasks as queued, so least_requests
    # spreads load as if the fast instance were busy; the latencies differ from the plain run
    scn = _demo(tasks=1500)
    plain = sim.run(scn, strategies=["least_requests"]).summary
    late = sim.run(
        _demo(tasks=1500, notify_ms={"dist": "deterministic", "value_ms": 20}), strategies=["least_requests"]
    ).summary
    a = plain.set_index("model").loc["resnet", "latency_mean_ms"]
    b = late.set_index("model").loc["resnet", "latency_mean_ms"]
    assert b > a + 20.0  # more than the delay itself: the stale estimates route worse


def test_network_spec_is_validated_and_normalised():
    s = _demo(dispatch_ms={"dist": "lognormal", "mean_ms": 1.5, "cv": 0.5})
    assert s.to_dict()["network"] == {
        "dispatch_ms": {"dist": "lognormal", "mean_ms": 1.5, "cv": 0.5},
        "notify_ms": {"dist": "deterministic", "value_ms": 0.0},
    }
    assert s.network.notify is None and s.network.dispatch is not None
    assert "network" not in _demo().to_dict()  # scenarios without it normalise as before
    with pytest.raises(SpecError) as e:
        _demo(dispatch_ms={"dist": "lognormal", "mean_ms": 1.5}, callback_ms=3)
    assert e.value.field == "network.callback_ms"
    with pytest.raises(SpecError) as e:
        _demo(notify_ms={"dist": "lognormal", "mean_ms": -1, "cv": 0.5})
    assert e.value.field.startswith("network.notify_ms")
    with pytest.raises(SpecError) as e:
        _demo(notify_ms=3)
    assert e.value.field == "network.notify_ms"
    assert accepted_keys()["network"] == ("dispatch_ms", "notify_ms")


def test_streaming_refuses_network_delays():
    from sim.stream_engine import workload_chunks

    s = _demo(dispatch_ms={"dist": "exponential", "mean_ms": 1})
    with pytest.raises(SpecError, match="network delays"):
        next(workload_chunks(s, sim.replication_seeds(1, 1)[0]))
