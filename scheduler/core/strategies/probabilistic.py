import numpy as np

from .base import Candidates, Strategy, argmax_random, check_number

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, vectorised with numpy alone
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_P = 0.3275911


def normal_cdf(z: np.ndarray) -> np.ndarray:
    x = np.abs(z) * 0.7071067811865476
    t = 1.0 / (1.0 + _P * x)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.copysign(erf, z))


class Probabilistic(Strategy):
    """The candidate most likely to finish this task first.

    Each candidate's completion time (wait plus execution) is taken as normal
    with the estimated mean and standard deviation.  The probability that
    candidate i finishes first is approximated by the product over the others
    of P(T_i < T_j), evaluated for every pair at once.  Candidates whose
    completion is ``cutoff`` standard deviations behind the best cannot win
    and are skipped before the pairwise step.
    """

    name = "probabilistic"
    description = "most likely to finish this task first (wait and execution distributions)"

    def __init__(self, cutoff: float = 4.0):
        self.cutoff = check_number("cutoff", cutoff, low=0.0, low_open=True)

    def params(self):
        return {"cutoff": self.cutoff}

    def choose(self, view: Candidates, rng) -> int:
        mu = view.completion_mean
        sd = view.completion_std
        bound = (mu + self.cutoff * sd).min()
        live = np.flatnonzero(mu - self.cutoff * sd <= bound)
        if live.size == 1:
            return int(live[0])
        m, s = mu[live], sd[live]
        scale = np.sqrt(s[:, None] ** 2 + s[None, :] ** 2)
        diff = m[None, :] - m[:, None]  # row i, column j: mu_j - mu_i
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(scale > 0, diff / scale, np.sign(diff) * np.inf)
        z = np.nan_to_num(z, nan=0.0)
        logp = np.log(np.maximum(normal_cdf(z), 1e-300)).sum(axis=1)
        return int(live[argmax_random(logp, rng)])
