"""Running statistics: the one Welford accumulator of the project."""

from __future__ import annotations

import math
from collections.abc import Iterable


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

    def extend(self, xs: Iterable[float]) -> None:
        """:meth:`add` each value in turn (the same operations, so the same result), in one call."""
        n, mean, m2 = self.n, self.mean, self.m2
        for x in xs:
            n += 1
            d = x - mean
            mean += d / n
            m2 += d * (x - mean)
        self.n, self.mean, self.m2 = n, mean, m2

    @property
    def var(self) -> float:
        """Sample variance (``n - 1`` in the denominator); 0 below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        n = self.n  # :attr:`var` written out: read on every online prediction
        return math.sqrt(self.m2 / (n - 1) if n > 1 else 0.0)

    def __repr__(self) -> str:
        return f"Welford(n={self.n}, mean={self.mean:.6g}, std={self.std:.6g})"


class DecayingStats:
    """Mean and variance of a stream in which older values count less: each new value halves
    the weight of those ``half_life`` values before it (exponentially weighted, West's update).
    ``n`` counts the values seen, as :class:`Welford`'s does."""

    __slots__ = ("n", "mean", "_s", "_w", "_keep")

    def __init__(self, half_life: float) -> None:
        self.n = 0
        self.mean = 0.0
        self._s = 0.0  # weighted sum of squared deviations
        self._w = 0.0  # total weight
        self._keep = 0.5 ** (1.0 / half_life)

    def add(self, x: float) -> None:
        self.n += 1
        self._w = self._w * self._keep + 1.0
        self._s *= self._keep
        d = x - self.mean
        self.mean += d / self._w
        self._s += d * (x - self.mean)

    @property
    def var(self) -> float:
        return self._s / self._w if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.var)
