"""Queueing-theory reference values for the simulator's conformance tests.

Closed-form mean waits and times in system for the systems the simulator can
reproduce exactly, so that a simulated run can be checked against theory:

* M/M/1 and M/M/c (Erlang C): Poisson arrivals, exponential service, FCFS;
* M/G/1 (Pollaczek-Khinchine): Poisson arrivals, any service distribution;
* ``n`` independent queues under uniformly random routing (Poisson splitting);
* the supermarket model: power of ``d`` choices over many identical
  exponential servers, in the limit of a large number of servers.

Units.  Arrival rates are given per second (``arrival_rate_per_s``, as in
scenario files); service times are given and results returned in
milliseconds (``mean_service_ms``, ``..._ms``).  Internally the arrival rate is
converted to per millisecond (``lam_per_ms = arrival_rate_per_s / 1000``).
``rho`` (utilization) and Erlang loads are dimensionless.

Every function raises ``ValueError`` naming the parameter when the system is
unstable (utilization >= 1) or an argument is out of range.  Only numpy and
the standard library are used.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "per_ms",
    "utilization",
    "erlang_b",
    "erlang_c",
    "mm1_wait_ms",
    "mm1_latency_ms",
    "mmc_wait_ms",
    "mmc_latency_ms",
    "mg1_wait_ms",
    "mg1_latency_ms",
    "random_routing_wait_ms",
    "random_routing_latency_ms",
    "supermarket_tail",
    "supermarket_mean_tasks",
    "supermarket_latency_ms",
    "supermarket_wait_ms",
    "littles_law_tasks",
]


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def _servers(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def per_ms(rate_per_s: float) -> float:
    """Convert a rate per second to a rate per millisecond."""
    return _positive("rate_per_s", rate_per_s, allow_zero=True) / 1000.0


def utilization(arrival_rate_per_s: float, mean_service_ms: float, servers: int = 1) -> float:
    """rho = lambda * E[S] / c (dimensionless)."""
    lam = per_ms(arrival_rate_per_s)
    s = _positive("mean_service_ms", mean_service_ms)
    return lam * s / _servers("servers", servers)


def _stable(rho: float, what: str) -> float:
    if rho >= 1.0:
        raise ValueError(
            f"unstable system: utilization {rho:.4g} >= 1 ({what}); "
            f"lower arrival_rate_per_s or mean_service_ms, or add servers"
        )
    return rho


# -- M/M/1 and M/M/c ------------------------------------------------------------


def mm1_wait_ms(arrival_rate_per_s: float, mean_service_ms: float) -> float:
    """Mean time in queue of M/M/1: Wq = rho / (mu - lambda), in ms."""
    lam = per_ms(arrival_rate_per_s)
    mu = 1.0 / _positive("mean_service_ms", mean_service_ms)
    rho = _stable(lam / mu, "M/M/1")
    return rho / (mu - lam)


def mm1_latency_ms(arrival_rate_per_s: float, mean_service_ms: float) -> float:
    """Mean time in system of M/M/1: W = 1 / (mu - lambda) = Wq + E[S], in ms."""
    return mm1_wait_ms(arrival_rate_per_s, mean_service_ms) + float(mean_service_ms)


def erlang_b(servers: int, offered_erlangs: float) -> float:
    """Erlang B blocking probability for ``servers`` and offered load a = lambda/mu (erlangs).

    Computed with the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).
    """
    c = _servers("servers", servers)
    a = _positive("offered_erlangs", offered_erlangs, allow_zero=True)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Erlang C: probability that an arriving task waits in M/M/c.

    ``offered_erlangs`` is a = lambda * E[S]; the system needs a < c.
    C = c B / (c - a (1 - B)) with B the Erlang B value.
    """
    c = _servers("servers", servers)
    a = _positive("offered_erlangs", offered_erlangs, allow_zero=True)
    _stable(a / c, f"M/M/{c}")
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


def mmc_wait_ms(arrival_rate_per_s: float, mean_service_ms: float, servers: int) -> float:
    """Mean time in queue of M/M/c: Wq = C(c, a) / (c mu - lambda), in ms."""
    c = _servers("servers", servers)
    lam = per_ms(arrival_rate_per_s)
    s = _positive("mean_service_ms", mean_service_ms)
    mu = 1.0 / s
    prob_wait = erlang_c(c, lam * s)
    return prob_wait / (c * mu - lam)


def mmc_latency_ms(arrival_rate_per_s: float, mean_service_ms: float, servers: int) -> float:
    """Mean time in system of M/M/c: Wq + E[S], in ms."""
    return mmc_wait_ms(arrival_rate_per_s, mean_service_ms, servers) + float(mean_service_ms)


# -- M/G/1 ----------------------------------------------------------------------


def mg1_wait_ms(arrival_rate_per_s: float, mean_service_ms: float, service_std_ms: float) -> float:
    """Pollaczek-Khinchine mean time in queue of M/G/1, in ms.

    Wq = lambda E[S^2] / (2 (1 - rho)), with E[S^2] = std^2 + mean^2.
    With ``service_std_ms == mean_service_ms`` (exponential) this is M/M/1;
    with 0 (deterministic) it is half of that.
    """
    lam = per_ms(arrival_rate_per_s)
    s = _positive("mean_service_ms", mean_service_ms)
    sd = _positive("service_std_ms", service_std_ms, allow_zero=True)
    rho = _stable(lam * s, "M/G/1")
    return lam * (sd * sd + s * s) / (2.0 * (1.0 - rho))


def mg1_latency_ms(arrival_rate_per_s: float, mean_service_ms: float, service_std_ms: float) -> float:
    """Mean time in system of M/G/1: Wq + E[S], in ms."""
    return mg1_wait_ms(arrival_rate_per_s, mean_service_ms, service_std_ms) + float(mean_service_ms)


# -- random routing ---------------------------------------------------------------


def random_routing_wait_ms(
    arrival_rate_per_s: float, mean_service_ms: float, instances: int, service_std_ms: float | None = None
) -> float:
    """Mean wait when a Poisson stream is routed uniformly at random over ``instances``
    identical single-server FCFS queues.

    Random splitting of a Poisson process gives independent Poisson streams of
    rate lambda / n, so each queue is M/G/1 (M/M/1 when ``service_std_ms`` is
    ``None``, meaning exponential service).
    """
    n = _servers("instances", instances)
    lam = _positive("arrival_rate_per_s", arrival_rate_per_s, allow_zero=True) / n
    sd = float(mean_service_ms) if service_std_ms is None else service_std_ms
    return mg1_wait_ms(lam, mean_service_ms, sd)


def random_routing_latency_ms(
    arrival_rate_per_s: float, mean_service_ms: float, instances: int, service_std_ms: float | None = None
) -> float:
    return random_routing_wait_ms(arrival_rate_per_s, mean_service_ms, instances, service_std_ms) + float(
        mean_service_ms
    )


# -- supermarket model (power of d choices) --------------------------------------


def supermarket_tail(rho: float, d: int = 2, tol: float = 1e-15, k_max: int = 10_000) -> np.ndarray:
    """Fraction s_k of queues holding at least k tasks, k = 0, 1, 2, ...

    Limit of n -> infinity identical exponential servers, Poisson arrivals of
    total rate n * lambda, each task joining the shorter (by number of tasks)
    of ``d`` queues sampled at random:  s_k = rho^((d^k - 1) / (d - 1)).
    ``d = 1`` is random routing, s_k = rho^k.  The array stops once s_k < tol
    (or at ``k_max`` terms).
    """
    r = _positive("rho", rho, allow_zero=True)
    _stable(r, "supermarket model")
    d = _servers("d", d)
    if r == 0.0:
        return np.array([1.0])
    out = [1.0]
    log_r = math.log(r)
    for k in range(1, k_max):
        expo = float(k) if d == 1 else (float(d) ** k - 1.0) / (d - 1.0)
        s = math.exp(expo * log_r)
        if s < tol:
            break
        out.append(s)
    return np.array(out)


def supermarket_mean_tasks(rho: float, d: int = 2) -> float:
    """Mean number of tasks per queue (waiting plus in service): sum_{k>=1} s_k."""
    return float(supermarket_tail(rho, d)[1:].sum())


def supermarket_latency_ms(rho: float, mean_service_ms: float, d: int = 2) -> float:
    """Mean time in system (ms) in the supermarket-model limit, by Little's law.

    Each queue sees arrivals at rate lambda = rho / E[S], so W = L / lambda
    = sum_{k>=1} s_k * E[S] / rho.
    """
    r = _positive("rho", rho)
    s = _positive("mean_service_ms", mean_service_ms)
    return supermarket_mean_tasks(r, d) * s / r


def supermarket_wait_ms(rho: float, mean_service_ms: float, d: int = 2) -> float:
    """Mean time in queue (ms) in the supermarket-model limit: W - E[S]."""
    return supermarket_latency_ms(rho, mean_service_ms, d) - float(mean_service_ms)


# -- Little's law -----------------------------------------------------------------


def littles_law_tasks(arrival_rate_per_s: float, mean_time_ms: float) -> float:
    """L = lambda W: the mean number of tasks present given their mean time there (ms)."""
    return per_ms(arrival_rate_per_s) * _positive("mean_time_ms", mean_time_ms, allow_zero=True)
