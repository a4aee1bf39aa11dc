"""Quality conformance: with residual-life estimates the strategies that know more
do not lose to those that only count (issue 10).

Eight identical instances, Poisson arrivals, mean service 100 ms, the oracle
predictor unless a test says otherwise.  Every strategy of a scenario sees the
same arrivals and sizes (common random numbers), so each comparison is made
on the paired per-replication differences ``d`` (strategy A minus strategy
B): "A is at least as good as B" means the 95% Student-t interval of ``d``
reaches zero or below, ``mean(d) - h <= 0``.  So that this can fail, every
comparison also asserts that the run had power: ``h`` below 4% of B's value
for means, 6% for p95 and 10% for p99 (the countdown estimate this replaced
lost by about 4% in the mean on lognormal cv 2 at load 0.9, and this file
fails on it).

Cost: about 1.1 million simulated tasks, two scenarios at a time on local
processes.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

import sim

N, MEAN_MS = 8, 100.0
SERVICES = {
    "exponential": {"dist": "exponential", "mean_ms": MEAN_MS},
    "deterministic": {"dist": "deterministic", "value_ms": MEAN_MS},
    "gamma_cv0.5": {"dist": "gamma", "mean_ms": MEAN_MS, "cv": 0.5},
    "lognormal_cv1": {"dist": "lognormal", "mean_ms": MEAN_MS, "cv": 1.0},
    "lognormal_cv2": {"dist": "lognormal", "mean_ms": MEAN_MS, "cv": 2.0},
}
PAIR = ["shortest_queue", "least_requests"]
# the largest 95% half-width, relative to the compared value, for a comparison to count
POWER = {"latency_mean_ms": 0.04, "latency_p95_ms": 0.06, "latency_p99_ms": 0.10}
# tasks per replication at loads 0.7 and 0.9: enough for the power above, no more
TASKS = {
    "exponential": (3000, 4000),  # shortest_queue decides as least_requests: nothing to average out
    "deterministic": (4000, 6000),
    "gamma_cv0.5": (6000, 12_000),
    "lognormal_cv1": (6000, 12_000),
    "lognormal_cv2": (12_000, 24_000),
}


def scenario(service: str, load: float, *, strategies, mode="oracle", seed=1, tasks=None) -> dict:
    heavy = load >= 0.9
    tasks = tasks or TASKS[service][heavy]
    return {
        "name": f"{service}-{load}-{mode}",
        "seed": seed,
        "replications": 5 if heavy or service == "lognormal_cv2" else 4,
        "tasks": tasks,
        "warmup_tasks": tasks // 6,
        "predictor": {"mode": mode},
        "models": {"m": {"service_time": SERVICES[service]}},
        "instances": [{"model": "m", "count": N}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": load * N * 1000.0 / MEAN_MS}},
        "strategies": strategies,
    }


CASES = {f"{s}@{load}": scenario(s, load, strategies=PAIR) for s in SERVICES for load in (0.7, 0.9)}
# the same seed makes the same arrivals and sizes: these pair with the runs above
CASES["lognormal_cv2@0.9/risk"] = scenario(
    "lognormal_cv2", 0.9, strategies=["shortest_queue", "weighted", "min_quantile"], tasks=12_000
)
CASES["lognormal_cv2@0.9/online"] = scenario(
    "lognormal_cv2", 0.9, strategies=["shortest_queue"], mode="online"
)


def run_case(name: str):
    reps = sim.run(CASES[name]).replications
    return reps[reps["model"] == sim.ALL_MODELS]


@pytest.fixture(scope="module")
def runs():
    names = sorted(CASES, key=lambda n: -CASES[n]["tasks"] * len(CASES[n]["strategies"]))
    workers = min(2, os.cpu_count() or 1)
    if workers == 1:
        return {n: run_case(n) for n in names}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(run_case, names)))


def paired(a, b, metric: str):
    """Per-replication values of strategies a and b (``(case, strategy)``), paired."""
    va = a[0][a[0]["strategy"] == a[1]].set_index("replication")[metric]
    vb = b[0][b[0]["strategy"] == b[1]].set_index("replication")[metric]
    assert len(va) == len(vb) >= 4 and (va.index == vb.index).all()
    return va.to_numpy(), vb.to_numpy()


def assert_no_worse(a, b, metric: str, what: str, *, slack: float = 0.0) -> None:
    """Strategy run a is at least as good as b on metric (up to ``slack`` of b), with power."""
    va, vb = paired(a, b, metric)
    d = va - vb
    h = sim.ci_half_width(d)
    ref = vb.mean()
    print(f"\n{what} {metric}: {va.mean():.1f} vs {vb.mean():.1f} ms, difference {d.mean():+.1f} +- {h:.1f}")
    assert h < POWER[metric] * ref, f"{what}: too little power (h = {h:.1f} ms, {h / ref:.1%} of {ref:.1f})"
    assert d.mean() - h <= slack * ref, (
        f"{what} {metric}: {va.mean():.1f} ms is significantly worse than {vb.mean():.1f} ms "
        f"(difference {d.mean():+.1f} +- {h:.1f})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.7, 0.9])
@pytest.mark.parametrize("service", list(SERVICES))
def test_shortest_queue_at_least_as_good_as_least_requests(runs, service, load):
    r = runs[f"{service}@{load}"]
    for metric in ("latency_mean_ms", "latency_p95_ms"):
        assert_no_worse((r, "shortest_queue"), (r, "least_requests"), metric, f"{service} load {load}")


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.7, 0.9])
def test_shortest_queue_is_join_the_shortest_queue_on_exponential_service(runs, load):
    """Memoryless service: every running task keeps its full mean, so the expected
    wait is the count times the mean and the choices are those of the count."""
    r = runs[f"exponential@{load}"]
    sq, lr = paired((r, "shortest_queue"), (r, "least_requests"), "latency_mean_ms")
    d = sq - lr
    h = sim.ci_half_width(d)
    assert abs(d.mean()) <= max(h, 1e-9 * lr.mean()), (sq.mean(), lr.mean(), h)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["weighted", "min_quantile"])
def test_risk_averse_strategies_no_worse_on_p99_for_heavy_tails(runs, strategy):
    r = runs["lognormal_cv2@0.9/risk"]
    assert_no_worse((r, strategy), (r, "shortest_queue"), "latency_p99_ms", "lognormal cv 2 load 0.9")


@pytest.mark.slow
def test_online_predictor_within_3_percent_of_the_oracle(runs):
    """The online predictor learns means per instance and the shape per model (here in the
    warm-up's 4,000 tasks); after that its mean latency is within 3% of the oracle's.  (Their
    decisions differ, so the pairing helps less than between strategies of one run: the mean,
    not a tail quantile, has the power for a 3% bound here.)"""
    online, oracle = runs["lognormal_cv2@0.9/online"], runs["lognormal_cv2@0.9"]
    assert_no_worse(
        (online, "shortest_queue"),
        (oracle, "shortest_queue"),
        "latency_mean_ms",
        "online vs oracle",
        slack=0.03,
    )
