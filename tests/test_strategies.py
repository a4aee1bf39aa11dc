"""Each strategy's choice on constructed states, and fairness of ties."""

from collections import Counter

import numpy as np
import pytest

from scheduler import (
    ManualClock,
    Predictor,
    Scheduler,
    SpecError,
    check_integer,
    check_number,
    make_strategy,
    register_strategy,
    strategies_scope,
    strategy_names,
)
from scheduler.core.strategies import Strategy
from scheduler.core.strategies.probabilistic import normal_cdf

SPEC_NAMES = {"shortest_queue", "round_robin", "weighted", "probabilistic"}
ALL_NAMES = SPEC_NAMES | {"random", "power_of_two", "least_requests", "min_quantile"}


class View:
    """A constructed candidate set (the duck type strategies read)."""

    def __init__(self, wait_mean, exec_mean, wait_std=None, exec_std=None, in_flight=None, model="m"):
        self.model = model
        self.wait_mean = np.asarray(wait_mean, float)
        self.n = self.wait_mean.size
        self.exec_mean = np.asarray(exec_mean, float)
        self.wait_var = np.asarray(wait_std if wait_std is not None else np.zeros(self.n), float) ** 2
        self.exec_std = np.asarray(exec_std if exec_std is not None else np.zeros(self.n), float)
        self.in_flight = np.asarray(in_flight if in_flight is not None else np.zeros(self.n), float)

    @property
    def completion_mean(self):
        return self.wait_mean + self.exec_mean

    @property
    def completion_std(self):
        return np.sqrt(self.wait_var + self.exec_std**2)

    def completion_plus(self, k):
        return self.completion_mean + k * self.completion_std


def choose(name, view, seed=0, **params):
    return make_strategy(name, **params).choose(view, np.random.default_rng(seed))


def test_all_eight_names_registered():
    assert ALL_NAMES <= set(strategy_names())


def test_shortest_queue_takes_least_expected_completion():
    # instance 1 has the shortest wait, but instance 2 is much faster for this task
    v = View(wait_mean=[100, 10, 30], exec_mean=[50, 80, 20])
    assert choose("shortest_queue", v) == 2


def test_weighted_trades_mean_for_risk():
    v = View(wait_mean=[0, 0], exec_mean=[100, 110], exec_std=[50, 1])
    assert choose("weighted", v, w=0.0) == 0
    assert choose("weighted", v, w=1.0) == 1
    with pytest.raises(SpecError, match="w"):
        make_strategy("weighted", w="heavy")


def test_min_quantile_uses_the_tail():
    v = View(wait_mean=[0, 0], exec_mean=[100, 120], exec_std=[60, 5])
    assert choose("min_quantile", v, p=0.5) == 0  # medians: 100 < 120
    assert choose("min_quantile", v, p=0.95) == 1  # p95: ~199 > ~128
    for bad in (0, 1, 1.5):
        with pytest.raises(SpecError, match="p"):
            make_strategy("min_quantile", p=bad)


def test_probabilistic_most_likely_first():
    # means equal; the narrow one is not more likely to win a 2-way race, but among three,
    # a clearly earlier one wins
    v = View(wait_mean=[50, 10, 60], exec_mean=[10, 10, 10], wait_std=[5, 5, 5])
    assert choose("probabilistic", v) == 1
    # a slightly later mean with a much wider spread loses to a tight early one
    v = View(wait_mean=[20, 22, 300], exec_mean=[0, 0, 0], wait_std=[1, 30, 1])
    assert choose("probabilistic", v) == 0
    # deterministic completions: the earliest one, exactly
    v = View(wait_mean=[5, 3, 9], exec_mean=[1, 1, 1])
    assert choose("probabilistic", v) == 1


@pytest.mark.parametrize(
    "mu, sd",
    [
        ([100, 99, 101], [1, 60, 1]),  # a wide one against two tight neighbours
        ([100, 110, 130], [1, 40, 60]),  # the lowest mean, but the wide ones win more often together
        ([50, 52, 54, 56], [20, 2, 2, 30]),
        ([10, 10.5, 30], [0, 3, 0]),  # mixed point masses and spread
    ],
)
def test_probabilistic_matches_monte_carlo(mu, sd):
    from scheduler.core.strategies.probabilistic import win_probabilities

    mu, sd = np.array(mu, float), np.array(sd, float)
    draws = np.random.default_rng(1).normal(mu, sd, size=(200_000, mu.size))
    truth = np.bincount(draws.argmin(axis=1), minlength=mu.size) / len(draws)
    got = win_probabilities(mu, sd)
    assert np.abs(got - truth).max() < 0.01, (got, truth)
    v = View(wait_mean=mu, exec_mean=np.zeros(mu.size), wait_std=sd)
    assert choose("probabilistic", v) == truth.argmax()


def test_normal_cdf_accuracy():
    from statistics import NormalDist

    z = np.linspace(-6, 6, 121)
    exact = np.array([NormalDist().cdf(x) for x in z])
    assert np.max(np.abs(normal_cdf(z) - exact)) < 2e-7


def test_least_requests_and_power_of_two_use_in_flight_counts():
    v = View(wait_mean=[0, 0, 0], exec_mean=[1, 1, 1], in_flight=[3, 1, 2])
    assert choose("least_requests", v) == 1
    # with d >= n, power of d sees every candidate
    assert choose("power_of_two", v, d=3) == 1
    # with d = 2 it never picks the worse of any sampled pair: never the most loaded one
    picks = Counter(choose("power_of_two", v, seed=s) for s in range(300))
    assert picks[0] == 0 and picks[1] > picks[2] > 0
    with pytest.raises(SpecError, match="d"):
        make_strategy("power_of_two", d=0)


def test_power_of_d_general_d():
    v = View(wait_mean=np.zeros(10), exec_mean=np.ones(10), in_flight=np.arange(10))
    picks = Counter(choose("power_of_two", v, seed=s, d=4) for s in range(400))
    assert max(picks) <= 6  # the least of 4 distinct samples is never among the 4 most loaded


def test_round_robin_cycles_per_model():
    rr = make_strategy("round_robin")
    rng = np.random.default_rng(0)
    a, b = View([0, 0, 0], [1, 1, 1], model="a"), View([0, 0], [1, 1], model="b")
    seq = [
        rr.choose(a, rng),
        rr.choose(b, rng),
        rr.choose(a, rng),
        rr.choose(a, rng),
        rr.choose(a, rng),
        rr.choose(b, rng),
    ]
    assert seq == [0, 0, 1, 2, 0, 1]


def test_random_is_uniform_and_seeded():
    v = View(np.zeros(4), np.ones(4))
    rng = np.random.default_rng(3)
    r = make_strategy("random")
    counts = Counter(r.choose(v, rng) for _ in range(4000))
    assert set(counts) == {0, 1, 2, 3} and all(800 < c < 1200 for c in counts.values())


@pytest.mark.parametrize(
    "name", ["shortest_queue", "weighted", "probabilistic", "least_requests", "min_quantile", "power_of_two"]
)
def test_ties_are_broken_fairly_at_random(name):
    # four identical candidates: every one must be chosen, roughly equally often
    v = View(
        np.full(4, 10.0),
        np.full(4, 5.0),
        wait_std=np.full(4, 2.0),
        exec_std=np.full(4, 1.0),
        in_flight=np.full(4, 2.0),
    )
    s = make_strategy(name)
    rng = np.random.default_rng(7)
    counts = Counter(s.choose(v, rng) for _ in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(800 < c < 1200 for c in counts.values()), counts  # 1000 expected, sd ~27


def test_tie_break_never_follows_list_order():
    v = View([5, 5], [1, 1])
    picks = {choose("shortest_queue", v, seed=s) for s in range(40)}
    assert picks == {0, 1}


def test_strategies_through_scheduler_on_time_aware_state():
    """shortest_queue, from a real queue state: a backlog that has partly run is shorter."""
    clock = ManualClock()
    s = Scheduler(
        "round_robin",
        clock=clock,
        rng=0,
        predictor=Predictor("lookup_table", lookup_table={"m": {"mean_ms": 100, "std_ms": 0}}),
    )
    a = s.add_instance("m", instance_id="a")
    b = s.add_instance("m", instance_id="b")
    s.submit("m")  # a: starts at t=0, predicted end 100
    clock.advance(60)
    s.submit("m")  # b: starts at t=60, predicted end 160
    s.set_strategy("shortest_queue")
    waits = {q.instance_id: q.wait_mean_ms for q in s.queue_info()}
    assert waits == {"a": 40.0, "b": 100.0}
    assert s.submit("m").instance_id == a
    clock.advance(100)  # both are overdue: residual clamps at 0, a still has its second task
    waits = {q.instance_id: q.wait_mean_ms for q in s.queue_info()}
    assert waits == {"a": 100.0, "b": 0.0}
    assert s.submit("m").instance_id == b


def test_custom_strategy_registration():
    class Last(Strategy):
        name = "last_one"

        def choose(self, view, rng):
            return view.n - 1

    with strategies_scope() as registry:
        register_strategy(Last)
        assert registry["last_one"] is Last
        s = Scheduler("last_one", clock=ManualClock(), rng=0)
        s.add_instance("m", instance_id="x")
        s.add_instance("m", instance_id="y")
        assert s.submit("m").instance_id == "y"
        register_strategy(Last, "random")  # a built-in name may be shadowed inside the scope
        assert isinstance(make_strategy("random"), Last)
    assert "last_one" not in strategy_names()
    assert type(make_strategy("random")).__name__ == "Random"  # and is restored after it
    with pytest.raises(TypeError):
        register_strategy(int)


def test_bad_strategy_choice_is_caught():
    class Broken(Strategy):
        name = "broken"

        def choose(self, view, rng):
            return view.n

    s = Scheduler(Broken(), clock=ManualClock(), rng=0)
    s.add_instance("m")
    with pytest.raises(RuntimeError, match="broken"):
        s.submit("m")


@pytest.mark.parametrize("mode", ["online", "oracle", "lookup_table", "clairvoyant"])
@pytest.mark.parametrize("all_available", [True, False])
def test_strategies_cannot_write_core_state_through_the_view(mode, all_available):
    """Every array a strategy sees is read-only, whichever path computed it."""
    seen = {}

    class Vandal(Strategy):
        name = "vandal"

        def choose(self, view, rng):
            for attr in ("wait_mean", "wait_var", "exec_mean", "exec_std", "replicas"):
                arr = getattr(view, attr)
                with pytest.raises(ValueError, match="read-only"):
                    arr += 1
                seen[attr] = arr.copy()
            view.instance_ids.append("intruder")  # a copy: harmless
            return 0

    pred = Predictor(
        mode,
        oracle={"m": {"dist": "exponential", "mean_ms": 50}},
        lookup_table={"m": {"mean_ms": 40, "std_ms": 4}},
        min_samples=1,
    )
    s = Scheduler(Vandal(), clock=ManualClock(), rng=0, predictor=pred)
    for k in range(3):
        s.add_instance("m", instance_id=f"i{k}", replicas=2)
    for _ in range(3):
        tid = s.submit("m", size_ms=30.0).task_id
        s.complete(tid, 30.0)
    if not all_available:
        s.set_healthy("i1", False)
    d = s.submit("m", size_ms=30.0)
    assert d.predicted_ms == seen["exec_mean"][0] and d.wait_ms == seen["wait_mean"][0]
    assert s.prediction(d.instance_id, size_ms=30.0).expected_ms == d.predicted_ms


def test_check_number_and_check_integer_name_the_field_and_the_range():
    assert check_number("w", 2) == 2.0 and isinstance(check_number("w", np.float32(0.5)), float)
    assert check_integer("d", 3.0) == 3 and check_integer("d", np.int64(4)) == 4
    for bad, accepted in [
        (("w", -1), {"low": 0.0}),
        (("w", "1"), {"low": 0.0}),
        (("w", True), {}),
        (("w", float("nan")), {}),
        (("w", 1e400), {}),
        (("p", 1.0), {"low": 0.0, "high": 1.0, "high_open": True}),
    ]:
        with pytest.raises(SpecError, match=bad[0]):
            check_number(*bad, **accepted)
    with pytest.raises(SpecError, match=r"p: got 1.0, expected a number in \(0, 1\)"):
        check_number("p", 1.0, low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(SpecError, match="w: got -1, expected a number >= 0"):
        check_number("w", -1, low=0)
    with pytest.raises(SpecError, match="d: got 1.5, expected an integer >= 1"):
        check_integer("d", 1.5, low=1)
    for bad in (True, "2", float("inf"), 10**400, 0):
        with pytest.raises(SpecError, match="an integer"):
            check_integer("d", bad, low=1)


@pytest.mark.parametrize("mode", ["online", "oracle", "lookup_table", "clairvoyant"])
def test_completion_std_and_plus_are_exactly_their_formulas(mode):
    """completion_std (which reads the online predictor's kept squares of its spreads) and
    completion_plus give exactly the floats of the expressions they stand for, as the
    predictions change, the pool grows and an instance leaves the candidates."""
    checked = []

    class Check(Strategy):
        name = "check"

        def choose(self, view, rng):
            std = np.sqrt(view.wait_var + view.exec_std * view.exec_std)
            assert view.completion_std.tobytes() == std.tobytes()
            for k in (0.0, 1.0, 1.6448536269514722):
                plus = view.completion_mean + np.array(k) * view.completion_std
                assert view.completion_plus(np.array(k)).tobytes() == plus.tobytes()
            checked.append(view.n)
            return int(rng.integers(view.n))

    pred = Predictor(
        mode,
        oracle={"m": {"dist": "gamma", "mean_ms": 50, "cv": 1.5}},
        lookup_table={"m": {"mean_ms": 40, "std_ms": 4}},
        min_samples=2,
    )
    clock = ManualClock()
    s = Scheduler(Check(), clock=clock, rng=0, predictor=pred)
    sizes = np.random.default_rng(1).gamma(0.5, 80.0, 400)
    for k in range(12):  # past the arrays' first capacity
        s.add_instance("m", instance_id=f"i{k}")
    flight = []
    for k, size in enumerate(sizes):
        clock.advance(3.0)
        flight.append(s.submit("m", size_ms=float(size)).task_id)
        if len(flight) > 20:
            s.complete(flight.pop(0), float(sizes[k - 20]))
        if k == 200:
            s.set_healthy("i3", False)
    assert len(checked) == len(sizes) and min(checked) == 11


def _probabilistic_as_written(strategy, mu, sd, rng):
    """Probabilistic.choose as first written (the bound recomputed over the contenders, the
    counts taken twice): the reference its shortcuts must match, choice and draws alike."""
    from scheduler.core.strategies.base import argmax_random, argmin_random
    from scheduler.core.strategies.probabilistic import least, win_probabilities

    reach = strategy.cutoff * sd
    live = (mu - reach <= least(mu + reach)).nonzero()[0]
    if live.size == 1:
        return int(live[0])
    if live.size > strategy.max_contenders:
        k = strategy.max_contenders
        live = live[mu[live].argpartition(k - 1)[:k]]
        live.sort()
    m, s = mu[live], sd[live]
    if not np.count_nonzero(s):
        return int(live[argmin_random(m, rng)])
    p = win_probabilities(m, s, strategy.cutoff, strategy.nodes)
    return int(live[argmax_random(p, rng, rtol=1e-6)])


def test_probabilistic_shortcuts_choose_as_the_integration_as_written():
    """The bound and the count of certain completions, taken once per decision, and the
    candidates' own arrays when every one competes: the same choice and the same draws as the
    reference above, over random views with certain completions, zeros, ties, contenders cut
    (the surest finisher among them or not) and every candidate live."""
    gen = np.random.default_rng(7)
    for trial in range(600):
        n = int(gen.integers(2, 40))
        mu = gen.choice([0.0, 5.0, 10.0], n) if trial % 5 == 0 else gen.gamma(2.0, 10.0, n)
        sd = gen.gamma(1.0, 1.0 + 20.0 * gen.random(), n)
        sd[gen.random(n) < 0.15 * (trial % 3)] = 0.0  # some certain completions
        if trial % 7 == 0:
            mu[:] = 0.0  # the bound is a zero
        if trial % 11 == 0:
            sd[:] = 0.0  # every completion certain
        view = View(mu, np.zeros(n), wait_std=sd)
        strategy = make_strategy("probabilistic", max_contenders=int(gen.integers(2, 10)))
        a, b = np.random.default_rng(trial), np.random.default_rng(trial)
        expected = _probabilistic_as_written(strategy, view.completion_mean, view.completion_std, b)
        assert strategy.choose(view, a) == expected, trial
        assert a.random() == b.random()
