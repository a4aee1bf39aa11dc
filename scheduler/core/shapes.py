"""What the predictor knows of each model's service-time *shape*, for residual life.

A shape is a distribution of mean 1: a running task predicted at ``mu`` ms is
taken to follow the shape scaled by ``mu``.  Where it comes from depends on the
predict mode (:meth:`scheduler.core.predictor.Predictor.shape`): the oracle's
true distribution, a lookup table entry's ``dist``/``cv``, or a family the
online statistics fitted (:func:`~scheduler.core.residual.fit_shape`).  This
module keeps the online fits and the tabulated residual lives, built once per
shape and shared by every pool.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

from .distributions import Distribution
from .residual import ResidualTable, countdown_suffices, fit_shape
from .stats import Welford

SHAPE_MIN_SAMPLES = 64  # completions of a model before the online predictor fits a shape
SHAPE_REFIT_EVERY = 512  # and how often it fits again after that


class ShapeBook:
    """Online shape fits per model, and residual tables per shape (cached)."""

    def __init__(self) -> None:
        self._logs: dict[str, Welford] = {}  # log of speed-normalised execution times
        self._unlogged: dict[str, list[float]] = {}  # sizes observed since the last fold into _logs
        self.fitted: dict[str, Distribution] = {}
        self._tables: dict[Hashable, ResidualTable] = {}
        self._kept: list[Distribution] = []  # distributions whose tables are keyed by id

    def observe(self, model: str, size: float, stats: Welford) -> bool:
        """Learn one speed-normalised execution time; ``stats`` are the model's (already
        updated).  True when the fitted shape changed."""
        if size > 0:  # kept, and folded into the log statistics only when a fit reads them
            unlogged = self._unlogged.get(model)
            if unlogged is None:
                unlogged = self._unlogged[model] = []
            unlogged.append(size)
        n = stats.n
        if n < SHAPE_MIN_SAMPLES or (n != SHAPE_MIN_SAMPLES and n % SHAPE_REFIT_EVERY):
            return False
        unlogged = self._unlogged.pop(model, [])
        logs = self._logs.get(model)
        if logs is None:
            if not unlogged:
                return False
            logs = self._logs[model] = Welford()
        logs.extend(map(math.log, unlogged))  # in order: the sums of adding each one as it came
        if logs.n < SHAPE_MIN_SAMPLES // 2:
            return False
        shape = fit_shape(stats.mean, logs.mean, logs.var)
        if shape == self.fitted.get(model):
            return False
        if shape is None:
            del self.fitted[model]
        else:
            self.fitted[model] = shape
        return True

    def table(self, dist: Distribution | None) -> ResidualTable | None:
        """The residual table of ``dist`` (its mean and scale do not matter), or ``None``
        where the countdown is exact (no spread) or there is no shape."""
        if dist is None or countdown_suffices(dist) or not dist.mean_ms > 0:
            return None
        key: Hashable
        try:
            key = ("dist", dist)
            hash(key)
        except TypeError:  # an empirical sample: one table per object (kept alive with it)
            key = ("id", id(dist))
            if key not in self._tables:
                self._kept.append(dist)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = ResidualTable(dist)
        return table
