from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..validate import check_integer, check_number
from .base import Candidates, Strategy, argmax_random, argmin_random

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, vectorised with numpy alone
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_P = 0.3275911
_SQRT_HALF = 0.7071067811865476


class Constants:
    """The integration's constants as 0-d arrays, made once per strategy: numpy combines an
    array with a 0-d array faster than with a Python float, to the same result."""

    __slots__ = ("a", "p", "sqrt_half", "one", "half", "tiny")

    def __init__(self) -> None:
        self.a = tuple(np.array(c) for c in _A)
        self.p, self.sqrt_half = np.array(_P), np.array(_SQRT_HALF)
        self.one, self.half, self.tiny = np.array(1.0), np.array(0.5), np.array(1e-300)


def normal_cdf(z: NDArray[np.float64], k: Constants | None = None) -> NDArray[np.float64]:
    """The standard normal CDF at ``z`` (a new array).  The steps are those of
    ``0.5 * (1 + copysign(1 - poly(t) * exp(-x * x), z))`` with ``x = |z| / sqrt(2)`` and
    ``t = 1 / (1 + p * x)``, done in place (every result as that expression gives it)."""
    k = k or Constants()
    a0, a1, a2, a3, a4 = k.a
    x = np.abs(z)
    x *= k.sqrt_half
    t = np.multiply(x, k.p)
    t += k.one
    np.divide(k.one, t, out=t)
    poly = np.multiply(t, a4)  # Horner: t * (a0 + t * (a1 + t * (a2 + t * (a3 + t * a4))))
    for c in (a3, a2, a1, a0):
        poly += c
        poly *= t
    np.multiply(x, x, out=x)
    np.negative(x, out=x)
    np.exp(x, out=x)
    x *= poly
    np.subtract(k.one, x, out=x)  # erf(|z| / sqrt(2))
    np.copysign(x, z, out=x)
    x += k.one
    x *= k.half
    return x


def least(values: NDArray[np.float64]) -> float:
    """``values.min()`` as a Python float, read at ``argmin`` (cheaper); a zero (whose sign
    ``min`` and ``argmin`` may pick differently) is read from ``min`` itself."""
    b: float = values.item(values.argmin())
    return b if b != 0.0 else values.min().item()


def win_probabilities(
    mu: np.ndarray,
    sd: np.ndarray,
    cutoff: float = 4.0,
    nodes: int = 13,
) -> np.ndarray:
    """P(candidate i finishes first) for independent normal completion times.

    P_i = integral of dF_i(t) * prod_{j != i} (1 - F_j(t)), summed over a grid
    made of every candidate's own mean +- ``cutoff`` standard deviations
    (``nodes`` points each), so that narrow and wide distributions are both
    resolved.  Mass is taken from CDF differences per cell, which handles
    zero-variance (deterministic) completions exactly; survival is evaluated at
    the cell middle.  The grid stops where the earliest-bounded candidate has
    surely finished.  (Each step is done in place where that gives the same floats.)
    """
    z = np.linspace(-cutoff, cutoff, nodes)
    return _integrate(mu, sd, least(mu + cutoff * sd), np.count_nonzero(sd) != sd.size, z, Constants())


def _integrate(
    mu: np.ndarray, sd: np.ndarray, bound: float, has_point: bool, z: np.ndarray, k: Constants
) -> np.ndarray:
    """:func:`win_probabilities` given its ``bound`` (the least of ``mu + cutoff * sd``), whether
    some ``sd`` is 0, the grid's offsets ``z`` and the constants."""
    edges = np.multiply(sd[:, None], z[None, :])
    edges += mu[:, None]  # mu + sd * z
    np.minimum(edges, bound, out=edges)
    edges = edges.ravel()  # a view (edges is a new C-ordered array), sorted in place:
    edges.sort()  # np.sort(edges, axis=None); repeated edges make empty cells: harmless
    point = sd == 0 if has_point else None
    scale = np.where(point, 1.0, sd) if point is not None else sd
    arg = np.subtract(edges[None, :], mu[:, None])
    arg /= scale[:, None]
    cdf = normal_cdf(arg, k)
    if point is not None:
        cdf[point] = edges[None, :] >= mu[point, None]
    lo, hi = cdf[:, :-1], cdf[:, 1:]
    mass = np.subtract(hi, lo)  # np.diff(cdf, axis=1)
    surv = np.add(lo, hi)
    surv *= k.half
    np.subtract(k.one, surv, out=surv)  # 1 - (lo + hi) / 2
    if point is not None:  # a certain completion has not happened before its own edge
        surv[point] = 1.0 - cdf[point, :-1]
    np.maximum(surv, k.tiny, out=surv)
    log_surv = np.log(surv, out=surv)
    others = np.subtract(log_surv.sum(axis=0)[None, :], log_surv)
    np.exp(others, out=others)
    if point is not None:
        # a certain completion at mu_i: its mass sits at the right edge of its cell, where
        # the others' survival is read exactly (a tie with another certain one counts half)
        right = 1.0 - cdf[:, 1:]
        right[point] = 1.0 - 0.5 * (cdf[point, :-1] + cdf[point, 1:])
        log_right = np.log(np.maximum(right, 1e-300))
        others[point] = np.exp(log_right.sum(axis=0)[None, :] - log_right[point])
    mass *= others
    p: NDArray[np.float64] = mass.sum(axis=1)
    return p


class Probabilistic(Strategy):
    """The candidate most likely to finish this task first.

    Each candidate's completion time (wait plus execution) is taken as normal
    with the estimated mean and standard deviation, independent across
    candidates, and the probability that each finishes first is integrated
    numerically (:func:`win_probabilities`).  Candidates ``cutoff`` standard
    deviations behind the surest finisher cannot win and are skipped, and at
    most ``max_contenders`` (those with the least expected completion) enter
    the integration, which bounds the cost of one decision.
    """

    name = "probabilistic"
    description = "most likely to finish this task first (wait and execution distributions)"
    param_help = {
        "cutoff": "standard deviations each side of a completion time that are integrated, in (0, 10]",
        "max_contenders": "the candidates with the least expected completion that compete, 2..256",
        "nodes": "integration points per candidate, 3..101",
    }

    def __init__(self, cutoff: float = 4.0, max_contenders: int = 8, nodes: int = 13):
        self.cutoff = check_number("cutoff", cutoff, low=0.0, high=10.0, low_open=True)
        self.max_contenders = check_integer("max_contenders", max_contenders, low=2, high=256)
        self.nodes = check_integer("nodes", nodes, low=3, high=101)
        self._z = np.linspace(-self.cutoff, self.cutoff, self.nodes)
        self._k = Constants()

    def params(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "max_contenders": self.max_contenders, "nodes": self.nodes}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        mu = view.completion_mean
        sd = view.completion_std
        reach = self.cutoff * sd
        ends = mu + reach
        first = int(ends.argmin())  # the surest finisher: it is live, so it bounds the contenders too
        bound = ends.item(first)
        if bound == 0.0:  # which zero: min's choice (see least)
            bound = least(ends)
        kept: float | None = bound if bound != 0.0 else None  # the contenders' bound, if it is this one
        live = (mu - reach <= bound).nonzero()[0]
        if live.size == 1:
            return int(live[0])
        if live.size > self.max_contenders:
            k = self.max_contenders
            if live.size == mu.size:  # every candidate is live: mu itself, no copies
                live = mu.argpartition(k - 1)[:k]
            else:
                live = live[mu[live].argpartition(k - 1)[:k]]
            live.sort()
            if first not in live.tolist():  # the surest finisher is not among them
                kept = None
            m, s = mu[live], sd[live]
        elif live.size == mu.size:  # every candidate is live, in order: mu and sd themselves
            m, s = mu, sd
        else:
            m, s = mu[live], sd[live]
        nonzero = np.count_nonzero(s)
        if not nonzero:  # every completion is certain: the earliest one
            return int(live[argmin_random(m, rng)])
        if kept is None:  # the contenders' own bound (a zero's sign is theirs too)
            kept = least(m + self.cutoff * s)
        p = _integrate(m, s, kept, nonzero != s.size, self._z, self._k)
        return int(live[argmax_random(p, rng, rtol=1e-6)])
