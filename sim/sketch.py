"""A mergeable quantile sketch with a relative error bound (logarithmic buckets, as DDSketch).

Positive values fall into buckets ``(g**(i-1), g**i]`` with
``g = (1 + alpha) / (1 - alpha)``; a bucket is reported as ``2 g**i / (g + 1)``,
which is within ``alpha`` (relative) of every value in it.  So for any q,
:meth:`LogSketch.quantile` returns a value ``v`` with

    |v - x_(r)| <= alpha * x_(r),   r = floor(q * (n - 1))

where ``x_(0) <= ... <= x_(n-1)`` are the values added (``x_(r)`` is the
sample's lower q-quantile; ``numpy.percentile``'s default interpolates between
``x_(r)`` and ``x_(r+1)``).  Values at or below ``min_value`` count as 0 and are
reported as 0 (a wait of exactly zero is common); values above ``max_value``
are counted in the top bucket (the bound then does not hold for them: with the
defaults, above 10**9 ms, eleven days).  Two sketches with the same parameters
merge by adding their counts, exactly, so per-chunk, per-worker or
per-replication sketches combine in any order into the same sketch.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LogSketch", "ALPHA"]

ALPHA = 0.005  # 0.5% relative error


class LogSketch:
    """Counts of values in logarithmic buckets; :meth:`add` a numpy array, :meth:`quantile` a fraction."""

    def __init__(self, alpha: float = ALPHA, min_value: float = 1e-6, max_value: float = 1e9):
        if not (0.0 < alpha < 1.0):
            raise ValueError(f"alpha: expected a relative error in (0, 1), got {alpha!r}")
        if not (0.0 < min_value < max_value):
            raise ValueError(
                f"min_value, max_value: expected 0 < min_value < max_value, got {min_value}, {max_value}"
            )
        self.alpha, self.min_value, self.max_value = float(alpha), float(min_value), float(max_value)
        self._gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(self._gamma)
        self._offset = math.ceil(math.log(min_value) / self._log_gamma)
        top = math.ceil(math.log(max_value) / self._log_gamma)
        self.counts = np.zeros(top - self._offset + 2, dtype=np.int64)  # [0] holds the zeros
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (finite, >= 0; negatives count as 0)."""
        v = np.asarray(values, dtype=float).ravel()
        if v.size == 0:
            return
        idx = np.zeros(v.size, dtype=np.int64)
        pos = v > self.min_value
        if pos.any():
            b = np.ceil(np.log(v[pos]) / self._log_gamma).astype(np.int64) - self._offset + 1
            idx[pos] = np.clip(b, 1, self.counts.size - 1)
        self.counts += np.bincount(idx, minlength=self.counts.size)
        self.count += int(v.size)

    def merge(self, other: LogSketch) -> LogSketch:
        """Add ``other``'s counts to this sketch (same parameters required); returns self."""
        if (other.alpha, other.min_value, other.max_value) != (self.alpha, self.min_value, self.max_value):
            raise ValueError("merge: sketches must have the same alpha, min_value and max_value")
        self.counts += other.counts
        self.count += other.count
        return self

    def quantile(self, q: float) -> float:
        """The value at rank ``floor(q * (n - 1))``, within ``alpha`` (relative); NaN when empty."""
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"q: expected a fraction in [0, 1], got {q!r}")
        if self.count == 0:
            return math.nan
        rank = math.floor(q * (self.count - 1))
        i = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if i == 0:
            return 0.0
        return 2.0 * self._gamma ** (i - 1 + self._offset) / (self._gamma + 1.0)
