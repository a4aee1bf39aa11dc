"""Residual life: how much longer a running task takes, given how long it has run.

For a service time ``X`` and an age ``a`` (time the task has run), the mean
residual life is ``E[X - a | X > a]`` and its spread ``Var[X - a | X > a]``.
Exponential service keeps its full mean at every age; heavy-tailed service
(lognormal with a large cv, gamma with cv > 1) expects *more* the longer a task
has run; light-tailed service (cv < 1) less, but never zero while it runs.

:func:`residual_moments` gives them in closed form per family (the regularised
incomplete gamma for gamma, the normal tail for lognormal, order statistics
for an empirical sample).  The decision path cannot afford that per task, so
:class:`ResidualTable` tabulates a distribution's shape once, in units of its
mean, on a fine grid of ages; a running task whose prediction has mean ``mu``
and age ``a`` then costs one table read: ``mu * g[a / mu]``.

:func:`fit_shape` picks a family for the online predictor from what completed
tasks showed: the variance of log service times fixes each candidate's shape,
and the family whose implied mean of the logs is closer to the observed one
wins (lognormal against gamma; exponential is gamma with cv 1).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .distributions import (
    Deterministic,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Scaled,
    Uniform,
    gamma_p_logq,
)

CELLS = 16384  # table resolution: ages from 0 to ``u_max`` means
TAIL_P = 1e-6  # the table reaches the (1 - TAIL_P) quantile; older tasks keep its last value
SQRT2 = math.sqrt(2.0)


def _log_norm_sf(z: float) -> float:
    """log P(N(0,1) > z), accurate far into the tail."""
    if z < 30.0:
        return math.log(0.5 * math.erfc(z / SQRT2))
    z2 = z * z  # asymptotic series of the Mills ratio
    return -0.5 * z2 - math.log(z * math.sqrt(2.0 * math.pi)) + math.log1p(-1.0 / z2 + 3.0 / (z2 * z2))


def _from_tails(log_s: float, log_e1: float, log_e2: float, age: float) -> tuple[float, float]:
    """Residual mean and variance from log P(X > a), log E[X; X > a], log E[X^2; X > a]."""
    e1 = math.exp(log_e1 - log_s)  # E[X | X > a]
    e2 = math.exp(log_e2 - log_s)
    return max(e1 - age, 0.0), max(e2 - e1 * e1, 0.0)


def residual_moments(dist: Distribution, age: float) -> tuple[float, float]:
    """Mean and variance (ms, ms^2) of ``X - age`` given ``X > age``, for ``X ~ dist``.

    An age past every possible value (a deterministic or uniform task that is
    overdue) gives ``(0, 0)``: the distribution says the task is done."""
    age = max(float(age), 0.0)
    if isinstance(dist, Scaled):
        f = dist.factor
        m, v = residual_moments(dist.base, age / f) if f > 0 else (0.0, 0.0)
        return m * f, v * f * f
    if isinstance(dist, Exponential):
        return dist.mean_ms, dist.mean_ms**2
    if isinstance(dist, Deterministic):
        return max(dist.value_ms - age, 0.0), 0.0
    if isinstance(dist, Uniform):
        lo, hi = dist.low_ms, dist.high_ms
        if age >= hi:
            return 0.0, 0.0
        lo = max(lo, age)  # uniform on [max(lo, a), hi], less a
        return 0.5 * (lo + hi) - age, (hi - lo) ** 2 / 12.0
    if isinstance(dist, (LogNormal, Gamma)) and dist.cv == 0:
        return max(dist.mean_ms - age, 0.0), 0.0
    if isinstance(dist, LogNormal):
        mean, cv = dist.mean_ms, dist.cv
        if age <= 0:
            return mean, (mean * cv) ** 2
        s2 = math.log1p(cv * cv)
        s = math.sqrt(s2)
        z = (math.log(age / mean) + 0.5 * s2) / s  # standardised log age
        return _from_tails(
            _log_norm_sf(z),
            math.log(mean) + _log_norm_sf(z - s),
            2.0 * math.log(mean) + s2 + _log_norm_sf(z - 2.0 * s),
            age,
        )
    if isinstance(dist, Gamma):
        k, theta = dist.shape, dist.scale
        x = age / theta
        return _from_tails(
            gamma_p_logq(k, x)[1],
            math.log(k * theta) + gamma_p_logq(k + 1.0, x)[1],
            math.log(k * (k + 1.0) * theta * theta) + gamma_p_logq(k + 2.0, x)[1],
            age,
        )
    if isinstance(dist, Empirical):
        left = dist.values[dist.values > age] - age
        if left.size == 0:
            return 0.0, 0.0
        return float(left.mean()), float(left.var())
    raise TypeError(f"no residual life for {type(dist).__name__}")


class ResidualTable:
    """A distribution's residual life in units of its mean, tabulated on ages.

    ``g[k]`` and ``h[k]`` are the residual mean and variance at age
    ``(k + 0.5) / inv_du`` means, for a distribution of mean 1 (``gh`` holds
    both, row by row); a task of predicted mean ``mu`` and age ``a`` reads row
    ``int(a / mu * inv_du)`` (clipped to the last row) and scales by ``mu`` and
    ``mu**2``."""

    __slots__ = ("g", "h", "gh", "hg", "inv_du", "u_max", "name", "flat")

    def __init__(self, dist: Distribution, cells: int = CELLS):
        mean = dist.mean_ms
        if not mean > 0:
            raise ValueError("residual life needs a distribution with a positive mean")
        self.name = _describe(dist)
        u_max = max(_top(dist) / mean, 1.0)
        # exact values on a coarse grid (dense below two means, geometric beyond), then resampled
        nodes = np.linspace(0.0, min(u_max, 2.0), 129)
        if u_max > 2.0:
            nodes = np.concatenate([nodes, np.geomspace(2.0, u_max, 129)[1:]])
        mv = np.array([residual_moments(dist, u * mean) for u in nodes])
        centres = (np.arange(cells) + 0.5) * (u_max / cells)
        self.g: NDArray[np.float64] = np.interp(centres, nodes, mv[:, 0] / mean)
        self.h: NDArray[np.float64] = np.interp(centres, nodes, mv[:, 1] / (mean * mean))
        self.gh: NDArray[np.float64] = np.stack([self.g, self.h], axis=1)  # one read for both
        self.hg: NDArray[np.float64] = np.stack([self.g, self.h])  # the same as planes (g, then h)
        for a in (self.g, self.h, self.gh, self.hg):
            a.setflags(write=False)
        # every row the same (memoryless service): the estimate does not depend on age
        self.flat = bool((self.g == self.g[0]).all() and (self.h == self.h[0]).all())
        self.inv_du = cells / u_max
        self.u_max = u_max

    def at(self, age_over_mean: float) -> tuple[float, float]:
        """(g, h) at one age, in means (the scalar form of the decision path's read)."""
        k = min(max(int(age_over_mean * self.inv_du), 0), self.g.size - 1)
        return float(self.g[k]), float(self.h[k])

    def __repr__(self) -> str:
        return f"ResidualTable({self.name}, u_max={self.u_max:.3g})"


def _top(dist: Distribution) -> float:
    """Where the table stops: the largest value, or the (1 - TAIL_P) quantile."""
    base, f = (dist.base, dist.factor) if isinstance(dist, Scaled) else (dist, 1.0)
    if isinstance(base, Empirical):
        return float(base.values[-1]) * f
    if isinstance(base, Deterministic):
        return base.value_ms * f
    if isinstance(base, Uniform):
        return base.high_ms * f
    return dist.quantile(1.0 - TAIL_P)


def _describe(dist: Distribution) -> str:
    base = dist.base if isinstance(dist, Scaled) else dist
    cv = dist.std_ms / dist.mean_ms
    return f"{base.name} cv={cv:.3g}"


def countdown_suffices(dist: Distribution) -> bool:
    """True where the countdown ``max(end - now, 0)`` is already exact: no spread."""
    return dist.std_ms == 0


# -- the online predictor's fitted shape ------------------------------------------------
def _digamma(x: float) -> float:
    acc = 0.0
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return acc + math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f / 240)))


def _trigamma(x: float) -> float:
    acc = 0.0
    while x < 6.0:
        acc += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    return acc + 1.0 / x + 0.5 * f + (1.0 / x) * f * (1 / 6 - f * (1 / 30 - f * (1 / 42 - f / 30)))


def _gamma_shape_for_log_var(var_log: float) -> float:
    """The gamma shape k whose log has variance ``var_log`` (trigamma(k) = var_log)."""
    lo, hi = 1e-3, 1e6
    for _ in range(100):  # trigamma decreases; bisect in log space
        mid = math.sqrt(lo * hi)
        if _trigamma(mid) > var_log:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def fit_shape(mean: float, mean_log: float, var_log: float, min_cv: float = 0.05) -> Distribution | None:
    """A unit-mean shape for service times with these statistics, or ``None`` when
    they show (almost) no spread, where the countdown is exact enough.

    ``mean`` is the mean of the values, ``mean_log`` and ``var_log`` the mean and
    variance of their logarithms.  Both candidate families are fitted to
    ``var_log``; the one whose implied ``E[log(X / mean)]`` is closer to the
    observed ``mean_log - log(mean)`` is returned, its cv rounded to 0.05 so
    that a slowly changing estimate reuses a table."""
    if not (mean > 0 and math.isfinite(mean_log) and var_log > 0):
        return None
    observed = mean_log - math.log(mean)
    cv_ln = math.sqrt(math.expm1(var_log))
    k = _gamma_shape_for_log_var(var_log)
    gamma_e = _digamma(k) - math.log(k)
    lognormal = abs(-0.5 * var_log - observed) <= abs(gamma_e - observed)
    cv = round((cv_ln if lognormal else 1.0 / math.sqrt(k)) * 20.0) / 20.0
    if cv < min_cv:
        return None
    return LogNormal(1.0, min(cv, 10.0)) if lognormal else Gamma(1.0, min(cv, 10.0))
