"""Conformance of the simulator (engine + core) with queueing theory.

Each test builds a scenario whose answer is known in closed form (sim.theory)
and compares the simulated mean wait with it.  Every scenario here uses
exponential or lognormal sizes with mean E[S] = 100 ms, Poisson arrivals, a
fixed seed and several replications.

Tolerance (unless a test says otherwise): |sim - theory| < max(3 h, 3%), where
h is the 95% confidence half-width over replications that the summary carries
(Student t).  With 5 to 8 replications 3 h is 7 to 8 estimated standard
errors of the mean: a correct simulator fails with probability about 2e-4
(t distribution with 7 degrees of freedom), whatever the seed; the 3% floor
only matters if h came out tiny.  So that this bound can still catch a real error (a wrong service
rate, a lost replica, sizes drawn from the wrong distribution), every test
also asserts that its own 3 h is below a stated fraction of the theoretical
value, i.e. that the run was long enough to have power.

Warm-up: a queue that starts empty relaxes to steady state on the time scale
of the M/M/1 relaxation time, tau = rho / (1 - sqrt(rho))^2 arrivals per
server (26 at rho = 0.7, 342 at rho = 0.9), longer by (1 + cv^2) / 2 for
variable sizes; the initial deficit decays like exp(-t / tau).  Every scenario
drops 6 tau of arrivals per server (at least 1000): what is left of the
transient, exp(-6) = 0.25% of a deficit lasting about tau, spread over a
measured window of at least 7 tau, biases the mean by well under 0.1%.
Power of two is the exception: its queues are a few tasks long, so it
relaxes within tens of service times; it drops 100 arrivals per server.

Little's law is checked on every run of this file (``check_littles_law``).

Cost.  The scenarios are simulated once per module, two at a time on local
processes (only those the selected tests need): about one minute on two
free cores, two and a half under coverage tracing (``make test``).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import sim
from sim import theory as th

MEAN_MS = 100.0
EXP = {"dist": "exponential", "mean_ms": MEAN_MS}
REL_FLOOR = 0.03


def relaxation_arrivals(rho: float) -> float:
    """Arrivals per server over one M/M/1 relaxation time at utilization rho."""
    return rho / (1.0 - math.sqrt(rho)) ** 2


def warmup(rho: float, servers: int = 1, cv: float = 1.0) -> int:
    """Heavy-traffic-safe warm-up: 6 relaxation times of arrivals per server (at least 1000)."""
    return max(1000, int(math.ceil(6 * relaxation_arrivals(rho) * (1 + cv * cv) / 2 * servers)))


def scenario(
    name,
    *,
    count,
    replicas=1,
    service=EXP,
    rho,
    strategies,
    predictor="oracle",
    tasks,
    replications,
    seed,
    warmup_tasks=None,
):
    """A one-model scenario at utilization ``rho`` of ``count * replicas`` servers of mean 100 ms."""
    servers = count * replicas
    rate_per_s = rho * servers * 1000.0 / MEAN_MS
    cv = service.get("cv", 1.0)
    return {
        "name": name,
        "seed": seed,
        "replications": replications,
        "tasks": tasks,
        "warmup_tasks": warmup_tasks if warmup_tasks is not None else warmup(rho, servers, cv),
        "strategies": strategies,
        "predictor": {"mode": predictor},
        "models": {"m": {"service_time": service}},
        "instances": [{"model": "m", "count": count, "replicas": replicas}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": rate_per_s}},
    }


def _lognormal(cv):
    return {"dist": "lognormal", "mean_ms": MEAN_MS, "cv": cv}


# name -> scenario.  The M/M/c and least-work-left cases share seed and sizes
# so that their sample paths can be compared task by task.
CASES = {
    "mm1": scenario(
        "mm1", count=1, rho=0.7, strategies=["round_robin"], tasks=50_000, replications=8, seed=101
    ),
    "mmc": scenario(
        "mmc",
        count=1,
        replicas=4,
        rho=0.8,
        strategies=["round_robin"],
        tasks=45_000,
        replications=8,
        seed=102,
    ),
    "lwl": scenario(
        "lwl",
        count=4,
        rho=0.8,
        strategies=["shortest_queue"],
        predictor="clairvoyant",
        tasks=45_000,
        replications=8,
        seed=102,
    ),
    "mg1_cv0.5": scenario(
        "mg1_cv0.5",
        count=1,
        service=_lognormal(0.5),
        rho=0.7,
        strategies=["round_robin"],
        tasks=40_000,
        replications=8,
        seed=103,
    ),
    "mg1_cv1.5": scenario(
        "mg1_cv1.5",
        count=1,
        service=_lognormal(1.5),
        rho=0.6,
        strategies=["round_robin"],
        tasks=60_000,
        replications=8,
        seed=104,
    ),
    "random8": scenario(
        "random8", count=8, rho=0.7, strategies=["random"], tasks=50_000, replications=8, seed=105
    ),
    "p2_100": scenario(
        "p2_100",
        count=100,
        rho=0.9,
        strategies=["power_of_two"],
        tasks=80_000,
        replications=6,
        seed=106,
        warmup_tasks=10_000,
    ),
    "order10": scenario(
        "order10",
        count=10,
        rho=0.9,
        strategies=["random", "round_robin", "power_of_two", "shortest_queue"],
        tasks=45_000,
        replications=5,
        seed=107,
    ),
}
# cases whose per-task waits the tests compare (kept small: one float per task)
KEEP_WAITS = {"mmc", "lwl"}


# -- Little's law --------------------------------------------------------------------------


def littles_law_table(tasks, rate_per_s: float):
    """L (time-average number of measured tasks present) and lambda W, per run.

    The window runs from the first to the last measured arrival; lambda is the
    scenario's nominal arrival rate, W the mean latency.  Since the window's L
    equals lambda_hat * W up to edge effects of order W / window, L / (lambda W)
    - 1 is the relative error of the observed arrival rate: standard
    deviation 1 / sqrt(n) for n Poisson arrivals.  (L = lambda_hat W over a
    window that holds every task entirely, as sim.littles_law computes, is an
    identity; using the nominal rate makes this a check of the arrivals as well.)
    """
    rows = []
    lam_per_ms = rate_per_s / 1000.0
    for (strategy, rep), g in tasks.groupby(["strategy", "replication"], observed=True, sort=True):
        a = g["arrival_ms"].to_numpy()
        f = g["finish_ms"].to_numpy()
        t0, t1 = float(a.min()), float(a.max())
        present = np.clip(f, t0, t1) - np.clip(a, t0, t1)
        L = float(present.sum()) / (t1 - t0)
        W = float((f - a).mean())
        rows.append(
            {
                "strategy": strategy,
                "replication": int(rep),
                "n": int(a.size),
                "L": L,
                "lambda_W": lam_per_ms * W,
            }
        )
    return rows


def check_littles_law(rows, where: str) -> None:
    """|L / (lambda W) - 1| < 5 / sqrt(n) + 0.2%: five standard deviations of the
    arrival count, plus the window's edge effects (far below 0.2% here)."""
    assert rows, f"{where}: no run to check"
    for r in rows:
        rel = abs(r["L"] / r["lambda_W"] - 1.0)
        tol = 5.0 / math.sqrt(r["n"]) + 0.002
        assert rel < tol, (
            f"{where} {r['strategy']} replication {r['replication']}: L = {r['L']:.4f} but "
            f"lambda W = {r['lambda_W']:.4f} (relative difference {rel:.4f} >= {tol:.4f})"
        )


# -- running the cases (once per module, in parallel) --------------------------------------


def run_case(name: str) -> dict:
    """Simulate one case and keep what the tests read (small enough to send between processes)."""
    spec = CASES[name]
    res = sim.run(spec)
    out = {
        "summary": res.summary,
        "replications": res.replications,
        "little": littles_law_table(res.tasks, spec["workload"]["arrival"]["rate_per_s"]),
        "instances": res.instances,
        # fraction of tasks that wait at all, per run (PASTA: the probability that all servers are busy)
        "p_wait": res.tasks.assign(waited=res.tasks["wait_ms"] > 0)
        .groupby(["strategy", "replication"], observed=True)["waited"]
        .mean(),
        "wall_s": res.wall_s,
    }
    if name in KEEP_WAITS:
        t = res.tasks.sort_values(["strategy", "replication", "task_id"])
        out["task_id"] = t["task_id"].to_numpy()
        out["wait_ms"] = t["wait_ms"].to_numpy()
    return out


def uses(*names):
    """Mark a test with the cases it reads, so only those are simulated."""

    def mark(fn):
        fn.cases = names
        return fn

    return mark


def _cost(name: str) -> int:
    spec = CASES[name]
    return spec["tasks"] * spec["replications"] * len(spec["strategies"])


@pytest.fixture(scope="module")
def results(request):
    wanted = []
    for item in request.session.items:
        fn = getattr(item, "function", None)
        if getattr(item, "module", None) is request.module and fn is not None:
            wanted += [c for c in getattr(fn, "cases", ()) if c not in wanted]
    wanted.sort(key=_cost, reverse=True)  # longest first: the two workers finish together
    workers = min(2, os.cpu_count() or 1, len(wanted))
    if workers <= 1:
        out = {name: run_case(name) for name in wanted}
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            out = dict(zip(wanted, pool.map(run_case, wanted)))
    print("\nsimulated " + ", ".join(f"{name} in {r['wall_s']:.1f} s" for name, r in out.items()))
    return out


def case(results, name: str) -> dict:
    """The results of one case, after checking Little's law on every one of its runs."""
    res = results[name]
    check_littles_law(res["little"], name)
    return res


def overall(res, strategy=None):
    s = res["summary"]
    s = s[s["model"] == sim.ALL_MODELS]
    if strategy is not None:
        s = s[s["strategy"] == strategy]
    assert len(s) == 1
    return s.iloc[0]


def assert_close(
    row, theory: float, what: str, *, power: float, metric: str = "wait_mean_ms", floor: float = REL_FLOOR
) -> None:
    """|sim - theory| < max(3 h, floor * theory); and 3 h < power * theory (the test can see errors)."""
    value, h = float(row[metric]), float(row[f"{metric}_ci"])
    tol = max(3.0 * h, floor * theory)
    print(
        f"\n{what}: sim {value:.2f} ms (95% CI +-{h:.2f}), theory {theory:.2f} ms, "
        f"difference {100 * (value - theory) / theory:+.1f}%, tolerance {tol:.2f} ms"
    )
    assert math.isfinite(h) and 3.0 * h < power * theory, (
        f"{what}: the run is too short to test anything: 3 h = {3 * h:.1f} ms >= {power:.0%} of {theory:.1f} ms"
    )
    assert abs(value - theory) < tol, (
        f"{what}: simulated {value:.2f} ms, theory {theory:.2f} ms (tolerance {tol:.2f})"
    )


def assert_probability(per_run, theory: float, what: str) -> None:
    """A probability estimated per replication: |mean - theory| < max(3 h, 0.01), with 3 h < 0.05."""
    v = per_run.to_numpy(dtype=float)
    h = sim.ci_half_width(v)
    print(f"\n{what}: sim {v.mean():.4f} (95% CI +-{h:.4f}), theory {theory:.4f}")
    assert 3 * h < 0.05, f"{what}: too few replications or tasks to test it (3 h = {3 * h:.3f})"
    assert abs(v.mean() - theory) < max(3 * h, 0.01), f"{what}: simulated {v.mean():.4f}, theory {theory:.4f}"


def _rate(name: str) -> float:
    return CASES[name]["workload"]["arrival"]["rate_per_s"]


# -- the tests ----------------------------------------------------------------------------------


@uses("mm1")
def test_mm1_mean_wait(results):
    r = overall(case(results, "mm1"))
    assert_close(r, th.mm1_wait_ms(_rate("mm1"), MEAN_MS), "M/M/1 rho=0.7 mean wait", power=0.15)
    # utilization is rho (busy time over the window), to 2%; by PASTA a task waits with probability rho
    assert r["utilization"] == pytest.approx(0.7, rel=0.02)
    assert_probability(case(results, "mm1")["p_wait"], 0.7, "M/M/1 P(wait > 0) = rho")


@uses("mmc")
def test_mmc_mean_wait_erlang_c(results):
    r = overall(case(results, "mmc"))
    assert_close(
        r, th.mmc_wait_ms(_rate("mmc"), MEAN_MS, 4), "M/M/4 rho=0.8 mean wait (Erlang C)", power=0.25
    )
    # and the fraction of tasks that wait at all is the Erlang C probability itself
    assert_probability(case(results, "mmc")["p_wait"], th.erlang_c(4, 3.2), "M/M/4 P(wait > 0) = Erlang C")


@pytest.mark.parametrize("cv, name", [(0.5, "mg1_cv0.5"), (1.5, "mg1_cv1.5")])
@uses("mg1_cv0.5", "mg1_cv1.5")
def test_mg1_mean_wait_pollaczek_khinchine(results, cv, name):
    rho = 0.7 if cv == 0.5 else 0.6
    theory = th.mg1_wait_ms(_rate(name), MEAN_MS, cv * MEAN_MS)
    r = overall(case(results, name))
    assert_close(r, theory, f"M/G/1 lognormal cv={cv} rho={rho} mean wait (P-K)", power=0.20)
    # the distribution matters: the exponential (M/M/1) answer is far outside the tolerance
    mm1 = th.mm1_wait_ms(_rate(name), MEAN_MS)
    assert abs(r["wait_mean_ms"] - mm1) > 3 * abs(r["wait_mean_ms"] - theory)


@uses("random8")
def test_random_routing_is_independent_mm1_queues(results):
    res = case(results, "random8")
    r = overall(res)
    assert_close(
        r,
        th.random_routing_wait_ms(_rate("random8"), MEAN_MS, 8),
        "random over 8 instances rho=0.7 mean wait",
        power=0.15,
    )
    # Poisson splitting: every instance gets 1/8 of the tasks and utilization rho
    inst = res["instances"].groupby("instance")[["tasks", "utilization"]].mean()
    share = inst["tasks"] / inst["tasks"].sum()
    assert np.allclose(share, 1 / 8, rtol=0.05)
    assert np.allclose(inst["utilization"], 0.7, rtol=0.05)


@pytest.mark.slow
@uses("lwl", "mmc")
def test_least_work_left_is_central_queue_mmc(results):
    """shortest_queue with the clairvoyant predictor over 4 single-replica instances
    sends each task where the least work is left, which reproduces one FCFS queue
    with 4 servers (M/M/4).  With the same arrivals and sizes (same seed) the
    two systems have the same sample path: every task waits exactly as long."""
    r = overall(case(results, "lwl"))
    assert_close(
        r,
        th.mmc_wait_ms(_rate("lwl"), MEAN_MS, 4),
        "least work left over 4 instances rho=0.8 mean wait (Erlang C)",
        power=0.25,
    )
    lwl, mmc = case(results, "lwl"), case(results, "mmc")
    assert np.array_equal(lwl["task_id"], mmc["task_id"])
    # float sums in a different order: equal to well below a microsecond
    np.testing.assert_allclose(lwl["wait_ms"], mmc["wait_ms"], rtol=0, atol=1e-6)


@pytest.mark.slow
@uses("p2_100")
def test_power_of_two_near_supermarket_limit(results):
    """power_of_two over 100 instances at load 0.9 against the N -> infinity
    supermarket model, W = sum_k rho^(2^k - 1) E[S] / rho.

    Finite N: with 100 servers the mean queue lengths exceed the limit by O(1/N)
    (the sampled pair is distinct and the load fluctuates with the total
    number of tasks), a bias of a few percent at rho = 0.9, measured at +1 to 3%.
    The tolerance is max(3 h, 6%): wide enough for that bias, narrow enough to
    tell power-of-two (161 ms) from random routing (900 ms), from d = 3
    (supermarket 83 ms) or from one central queue (M/M/100, about 1 ms)."""
    r = overall(case(results, "p2_100"))
    theory = th.supermarket_wait_ms(0.9, MEAN_MS, 2)
    assert_close(
        r, theory, "power_of_two over 100 instances rho=0.9 mean wait (supermarket)", power=0.20, floor=0.06
    )
    assert_close(
        r,
        th.supermarket_latency_ms(0.9, MEAN_MS, 2),
        "power_of_two over 100 instances rho=0.9 mean latency (supermarket)",
        power=0.20,
        metric="latency_mean_ms",
        floor=0.06,
    )
    # the finite system is not better than its limit by more than noise
    assert r["wait_mean_ms"] > theory - 3 * r["wait_mean_ms_ci"]


@pytest.mark.slow
@uses("order10")
def test_strategy_ordering_at_load_09(results):
    """10 identical exponential instances at load 0.9, same arrivals and sizes for
    every strategy: mean latency random > round_robin > power_of_two > shortest_queue.

    Each step of the order is asserted on the paired per-replication differences
    (common random numbers): the lower end of their 95% t interval must be > 0."""
    reps = case(results, "order10")["replications"]
    reps = reps[reps["model"] == sim.ALL_MODELS]
    lat = reps.pivot(index="replication", columns="strategy", values="latency_mean_ms")
    order = ["random", "round_robin", "power_of_two", "shortest_queue"]
    print(
        "\nmean latency at load 0.9 over 10 instances (ms): "
        + ", ".join(f"{s} {lat[s].mean():.1f}" for s in order)
    )
    # theory brackets: random is M/M/1 at 0.9, shortest_queue cannot beat one central M/M/10 queue
    assert lat["random"].mean() == pytest.approx(
        th.random_routing_latency_ms(_rate("order10"), MEAN_MS, 10), rel=0.25
    )
    assert lat["shortest_queue"].mean() >= th.mmc_latency_ms(_rate("order10"), MEAN_MS, 10) * 0.97
    for worse, better in zip(order, order[1:]):
        d = (lat[worse] - lat[better]).to_numpy()
        h = sim.ci_half_width(d)
        assert d.mean() - h > 0, (
            f"{worse} ({lat[worse].mean():.1f} ms) is not significantly slower than "
            f"{better} ({lat[better].mean():.1f} ms): difference {d.mean():.1f} +- {h:.1f}"
        )


def test_littles_law_check_catches_a_wrong_arrival_rate():
    """The Little's-law helper is not an identity: an M/D/1-like synthetic table
    passes at its true rate and fails at a rate 5% off."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 20_000
    a = np.cumsum(rng.exponential(100.0, n))  # 10 per second
    f = a + 50.0
    tasks = pd.DataFrame({"strategy": "x", "replication": 0, "arrival_ms": a, "finish_ms": f})
    check_littles_law(littles_law_table(tasks, 10.0), "true rate")
    with pytest.raises(AssertionError, match="lambda W"):
        check_littles_law(littles_law_table(tasks, 10.5), "wrong rate")
