from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..validate import check_integer, check_number
from .base import Candidates, Strategy, argmax_random, argmin_random

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, vectorised with numpy alone
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_P = 0.3275911


def normal_cdf(z: NDArray[np.float64]) -> NDArray[np.float64]:
    x = np.abs(z) * 0.7071067811865476
    t = 1.0 / (1.0 + _P * x)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    erf = 1.0 - poly * np.exp(-x * x)
    out: NDArray[np.float64] = 0.5 * (1.0 + np.copysign(erf, z))
    return out


def win_probabilities(
    mu: np.ndarray, sd: np.ndarray, cutoff: float = 4.0, nodes: int = 13, _z: np.ndarray | None = None
) -> np.ndarray:
    """P(candidate i finishes first) for independent normal completion times.

    P_i = integral of dF_i(t) * prod_{j != i} (1 - F_j(t)), summed over a grid
    made of every candidate's own mean +- ``cutoff`` standard deviations
    (``nodes`` points each), so that narrow and wide distributions are both
    resolved.  Mass is taken from CDF differences per cell, which handles
    zero-variance (deterministic) completions exactly; survival is evaluated at
    the cell middle.  The grid stops where the earliest-bounded candidate has
    surely finished.
    """
    z = np.linspace(-cutoff, cutoff, nodes) if _z is None else _z
    bound = (mu + cutoff * sd).min()
    edges = mu[:, None] + sd[:, None] * z[None, :]
    np.minimum(edges, bound, out=edges)
    edges = np.sort(edges, axis=None)  # repeated edges make empty cells: harmless
    point = sd == 0
    has_point = point.any()
    scale = np.where(point, 1.0, sd) if has_point else sd
    cdf = normal_cdf((edges[None, :] - mu[:, None]) / scale[:, None])
    if has_point:
        cdf[point] = edges[None, :] >= mu[point, None]
    mass = np.diff(cdf, axis=1)
    surv = 1.0 - 0.5 * (cdf[:, :-1] + cdf[:, 1:])
    if has_point:  # a certain completion has not happened before its own edge
        surv[point] = 1.0 - cdf[point, :-1]
    log_surv = np.log(np.maximum(surv, 1e-300))
    others = np.exp(log_surv.sum(axis=0)[None, :] - log_surv)
    if has_point:
        # a certain completion at mu_i: its mass sits at the right edge of its cell, where
        # the others' survival is read exactly (a tie with another certain one counts half)
        right = 1.0 - cdf[:, 1:]
        right[point] = 1.0 - 0.5 * (cdf[point, :-1] + cdf[point, 1:])
        log_right = np.log(np.maximum(right, 1e-300))
        others[point] = np.exp(log_right.sum(axis=0)[None, :] - log_right[point])
    p: NDArray[np.float64] = (mass * others).sum(axis=1)
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

    def params(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "max_contenders": self.max_contenders, "nodes": self.nodes}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        mu = view.completion_mean
        sd = view.completion_std
        bound = (mu + self.cutoff * sd).min()
        live = np.flatnonzero(mu - self.cutoff * sd <= bound)
        if live.size == 1:
            return int(live[0])
        if live.size > self.max_contenders:
            keep = np.argpartition(mu[live], self.max_contenders - 1)[: self.max_contenders]
            live = np.sort(live[keep])
        m, s = mu[live], sd[live]
        if not s.any():  # every completion is certain: the earliest one
            return int(live[argmin_random(m, rng)])
        p = win_probabilities(m, s, self.cutoff, self.nodes, self._z)
        return int(live[argmax_random(p, rng, rtol=1e-6)])
