"""What the predictor keeps per pool, and the prediction it hands out for one instance.

:class:`PoolStats` holds one model's per-position statistics as arrays (for vector
reads by strategies) beside their accumulators; :class:`Prediction` is the
execution time predicted for one task on one instance, with its distribution
where the mode knows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .arrays import readonly
from .distributions import Distribution, LogNormal
from .residual import residual_moments
from .stats import DecayingStats, Welford

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Prediction:
    """Predicted execution time of one task on one instance (ms)."""

    expected_ms: float
    error_ms: float  # standard deviation
    dist: Distribution | None = None  # the full distribution where the mode knows it

    def quantile(self, p: float) -> float:
        if self.dist is not None:
            return float(self.dist.quantile(p))
        if self.error_ms <= 0 or self.expected_ms <= 0:
            return self.expected_ms
        # moment-matched lognormal: positive and right-skewed, like service times
        return LogNormal(self.expected_ms, self.error_ms / self.expected_ms).quantile(p)

    def quantiles(self, ps: Iterable[float] = (0.5, 0.9, 0.95, 0.99)) -> dict[float, float]:
        return {p: self.quantile(p) for p in ps}

    def residual(self, age_ms: float) -> tuple[float, float]:
        """Mean and variance (ms, ms^2) of the time still to run after ``age_ms`` of
        service: the residual life of the distribution where known, else the countdown
        ``max(expected - age, 0)`` with the prediction's variance."""
        if self.dist is not None:
            return residual_moments(self.dist, age_ms)
        return max(self.expected_ms - age_ms, 0.0), self.error_ms**2


class PoolStats:
    """Per-position statistics of one model's pool (arrays for vector reads).

    The core writes the arrays; strategies read them through read-only views
    (``*_ro``), whose slices stay read-only at no cost."""

    _ARRAYS = (
        ("table_mean", np.nan),
        ("table_std", np.nan),
        ("on_mean", 0.0),
        ("on_std", 0.0),
        ("on_var", 0.0),  # on_std squared (what a strategy reading the spread squares)
        ("cold", True),
    )

    table_mean: FloatArray
    table_std: FloatArray
    on_mean: FloatArray
    on_std: FloatArray
    on_var: FloatArray
    cold: NDArray[np.bool_]
    table_mean_ro: FloatArray
    table_std_ro: FloatArray
    on_mean_ro: FloatArray
    on_std_ro: FloatArray
    on_var_ro: FloatArray

    def __init__(self, cap: int, half_life: float | None = None):
        self.half_life = half_life
        for name, fill in self._ARRAYS:
            setattr(self, name, np.full(cap, fill))
        self._refresh_views()
        # per-position accumulators, read only by learn()
        self.welford: list[Welford | DecayingStats] = [self._acc() for _ in range(cap)]
        # the oracle's predictions (mean, std: read-only) and the (pool size, distribution) they are for
        self.oracle: tuple[int, Distribution, FloatArray, FloatArray] | None = None
        # ``cold``: positions with fewer than min_samples observations, whose
        # online prediction is the model-level fallback (applied when read)
        self.n_cold = 0
        self.stale: set[int] = set()  # positions whose on_mean/on_std lag their accumulator

    def refresh(self) -> None:
        """Write the learned mean and spread of the stale positions into the arrays (learning
        only marks them: a mode that never reads the online predictions never pays for it)."""
        for p in self.stale:
            w = self.welford[p]
            self.on_mean[p] = w.mean
            self.on_std[p] = s = w.std
            self.on_var[p] = s * s  # the float numpy's on_std * on_std gives
        self.stale.clear()

    def _acc(self) -> Welford | DecayingStats:
        return Welford() if self.half_life is None else DecayingStats(self.half_life)

    def _refresh_views(self) -> None:
        self.table_mean_ro = readonly(self.table_mean)
        self.table_std_ro = readonly(self.table_std)
        self.on_mean_ro = readonly(self.on_mean)
        self.on_std_ro = readonly(self.on_std)
        self.on_var_ro = readonly(self.on_var)
        self._on_n: tuple[int, FloatArray, FloatArray, FloatArray] = (
            0,
            self.on_mean_ro[:0],
            self.on_std_ro[:0],
            self.on_var_ro[:0],
        )

    def online(self, n: int) -> tuple[FloatArray, FloatArray]:
        """The online predictions (mean, std) of the first ``n`` positions, read-only views
        kept for that ``n`` (their values change in place)."""
        kept = self._on_n
        if kept[0] != n:
            kept = self._on_n = (n, self.on_mean_ro[:n], self.on_std_ro[:n], self.on_var_ro[:n])
        return kept[1], kept[2]

    def kept_square(self, std: FloatArray) -> FloatArray | None:
        """``std * std``, kept, if ``std`` is the view :meth:`online` handed out last (read-only,
        current while that view is), else ``None``."""
        kept = self._on_n
        return kept[3] if std is kept[2] else None

    def ensure(self, cap: int) -> None:
        if cap <= len(self.welford):
            return
        self.welford.extend(self._acc() for _ in range(cap - len(self.welford)))
        for name, fill in self._ARRAYS:
            old = getattr(self, name)
            new = np.full(cap, fill, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)
        self._refresh_views()
