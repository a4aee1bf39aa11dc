"""Running statistics: the one Welford accumulator of the project."""

from __future__ import annotations

import math


class Welford:
    """Count, mean and variance of a stream of numbers, updated in O(1) per value
    (Welford's algorithm: numerically stable, no stored values)."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the running mean

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def var(self) -> float:
        """Sample variance (``n - 1`` in the denominator); 0 below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def __repr__(self) -> str:
        return f"Welford(n={self.n}, mean={self.mean:.6g}, std={self.std:.6g})"
