"""Unit tests of sim.theory against values worked out by hand."""

import math

import numpy as np
import pytest

from sim import theory as th


def test_mm1_rho_half():
    # lambda = 5/s = 0.005/ms, E[S] = 100 ms: rho = 0.5, mu = 0.01/ms
    # Wq = rho / (mu - lambda) = 0.5 / 0.005 = 100 ms; W = 1 / (mu - lambda) = 200 ms
    assert th.utilization(5, 100) == pytest.approx(0.5)
    assert th.mm1_wait_ms(5, 100) == pytest.approx(100.0)
    assert th.mm1_latency_ms(5, 100) == pytest.approx(200.0)


def test_mm1_rho_09():
    # lambda = 9/s, E[S] = 100 ms: Wq = 0.9 / (0.01 - 0.009) = 900 ms
    assert th.mm1_wait_ms(9, 100) == pytest.approx(900.0)


def test_erlang_b_and_c_known_values():
    # B(1, a) = a / (1 + a); B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2
    assert th.erlang_b(1, 1.0) == pytest.approx(0.5)
    assert th.erlang_b(2, 1.0) == pytest.approx(0.2)
    # M/M/1: C = rho
    assert th.erlang_c(1, 0.7) == pytest.approx(0.7)
    # M/M/2 at rho = 0.5 (a = 1): C = 2 rho^2 / (1 + rho) = 1/3
    assert th.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/3 with a = 2: C = 4/9
    assert th.erlang_c(3, 2.0) == pytest.approx(4 / 9)


def test_mmc_wait():
    # M/M/2, lambda = 10/s, E[S] = 100 ms: C = 1/3, Wq = C / (2 mu - lambda) = (1/3) / 0.01 = 33.33 ms
    assert th.mmc_wait_ms(10, 100, 2) == pytest.approx(100 / 3)
    assert th.mmc_latency_ms(10, 100, 2) == pytest.approx(100 / 3 + 100)
    # c = 1 is M/M/1
    assert th.mmc_wait_ms(7, 100, 1) == pytest.approx(th.mm1_wait_ms(7, 100))


def test_mmc_many_servers_stable_recursion():
    # large c must not overflow (factorials) and the wait shrinks with pooling
    w = th.mmc_wait_ms(900, 100, 100)  # a = 90 erlangs on 100 servers
    assert 0 < w < th.mm1_wait_ms(9, 100)
    assert math.isfinite(w)


def test_mg1_pollaczek_khinchine():
    # exponential (std = mean) equals M/M/1
    assert th.mg1_wait_ms(5, 100, 100) == pytest.approx(100.0)
    # deterministic at rho = 0.5: lambda E[S^2] / (2 (1 - rho)) = 0.005 * 1e4 / 1 = 50 ms
    assert th.mg1_wait_ms(5, 100, 0) == pytest.approx(50.0)
    # cv = 2 at rho = 0.5: E[S^2] = 5 * 1e4, Wq = 0.005 * 5e4 / 1 = 250 ms
    assert th.mg1_wait_ms(5, 100, 200) == pytest.approx(250.0)
    assert th.mg1_latency_ms(5, 100, 200) == pytest.approx(350.0)


def test_random_routing_is_split_mm1():
    # 40/s over 8 queues of E[S] = 100 ms: each M/M/1 at 5/s, Wq = 100 ms
    assert th.random_routing_wait_ms(40, 100, 8) == pytest.approx(100.0)
    assert th.random_routing_latency_ms(40, 100, 8) == pytest.approx(200.0)
    assert th.random_routing_wait_ms(40, 100, 8, service_std_ms=0) == pytest.approx(50.0)


def test_supermarket_d2_rho_half():
    s = th.supermarket_tail(0.5, 2)
    # s_k = 0.5^(2^k - 1): 1, 0.5, 0.125, 0.0078125, 0.5^15
    np.testing.assert_allclose(s[:5], [1.0, 0.5, 0.125, 0.0078125, 0.5**15])
    L = 0.5 + 0.125 + 0.0078125 + 0.5**15 + 0.5**31
    assert th.supermarket_mean_tasks(0.5, 2) == pytest.approx(L, rel=1e-12)
    # Little: W = L E[S] / rho
    assert th.supermarket_latency_ms(0.5, 100, 2) == pytest.approx(L * 100 / 0.5)
    assert th.supermarket_wait_ms(0.5, 100, 2) == pytest.approx(L * 100 / 0.5 - 100)


def test_supermarket_d1_is_mm1():
    # d = 1 is random routing: s_k = rho^k, L = rho / (1 - rho), W = E[S] / (1 - rho)
    assert th.supermarket_mean_tasks(0.8, 1) == pytest.approx(4.0, rel=1e-9)
    assert th.supermarket_latency_ms(0.8, 100, 1) == pytest.approx(500.0, rel=1e-9)


def test_supermarket_d2_beats_random_at_high_load():
    # at rho = 0.9: M/M/1 time in system is 10 E[S]; two choices cut it to about 2.6 E[S]
    w2 = th.supermarket_latency_ms(0.9, 100, 2)
    assert 200 < w2 < 300
    assert th.supermarket_latency_ms(0.9, 100, 3) < w2 < th.supermarket_latency_ms(0.9, 100, 1)


def test_littles_law():
    # 50 tasks/s staying 200 ms on average: 10 present
    assert th.littles_law_tasks(50, 200) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: th.mm1_wait_ms(10, 100), "unstable"),
        (lambda: th.mmc_wait_ms(25, 100, 2), "unstable"),
        (lambda: th.mg1_wait_ms(10, 100, 50), "unstable"),
        (lambda: th.supermarket_tail(1.0), "unstable"),
        (lambda: th.mm1_wait_ms(5, 0), "mean_service_ms"),
        (lambda: th.mmc_wait_ms(5, 100, 0), "servers"),
        (lambda: th.erlang_c(2.5, 1.0), "servers"),
        (lambda: th.mg1_wait_ms(5, 100, -1), "service_std_ms"),
        (lambda: th.utilization(-1, 100), "rate_per_s"),
        (lambda: th.supermarket_tail(0.5, d=0), "d"),
    ],
)
def test_bad_input_names_the_problem(call, name):
    with pytest.raises(ValueError, match=name):
        call()
