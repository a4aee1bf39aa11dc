"""Feature-aware execution-time prediction: recursive least squares per instance.

The ``regression`` predictor mode fits, for every instance, execution time as
an affine function of configured task-metadata features (default
``input_tokens``; output tokens are not known when a task is submitted, so
they are not a default feature):

    execution_ms ~ theta_0 + theta_1 * feature_1 + ...

by recursive least squares with a forgetting factor ``lambda`` (an
observation ``k`` completions old weighs ``lambda**k``, so the fit follows
drift).  Each instance's fit is used once it has seen ``min_samples``
completions that carried the features; before that the model-level fit (on
sizes normalised to speed 1, so instances of different speeds pool their
observations) scaled by the instance's speed; before that, or for a task
without the features, the ``online`` prediction.  The error estimate is the
exponentially weighted root mean square of the a-priori residuals (each
observation's error against the fit before it learned from it, counted from
the ``min_samples``-th observation on, when the fit is in use).

Numpy only, no clock, no randomness: :class:`RegressionModel` is driven by
the :class:`~scheduler.core.predictor.Predictor`, which feeds it the
metadata the scheduler carries with each task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import SpecError

DEFAULT_FEATURES: tuple[str, ...] = ("input_tokens",)
DEFAULT_FORGETTING = 0.999
# initial parameter covariance: a vague prior (theta starts at 0 with this variance)
PRIOR_VARIANCE = 1e6
# the covariance is rescaled when its trace passes this (no excitation under forgetting)
MAX_TRACE = 1e12


def check_features(features: Any, field: str = "features") -> tuple[str, ...]:
    """Feature names: a non-empty list of distinct metadata keys."""
    if isinstance(features, str):
        features = [features]
    if (
        not isinstance(features, Sequence)
        or not features
        or not all(isinstance(f, str) and f for f in features)
        or len(set(features)) != len(features)
    ):
        raise SpecError(field, features, "a non-empty list of distinct metadata keys such as [input_tokens]")
    return tuple(features)


def check_forgetting(value: Any, field: str = "forgetting") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and 0.9 <= float(value) <= 1.0):
        raise SpecError(field, value, "a forgetting factor in [0.9, 1] (1: no forgetting)")
    return float(value)


class _Fit:
    """Recursive least squares over ``d`` coefficients, for a pool's positions (row per position)."""

    def __init__(self, cap: int, d: int):
        self.d = d
        self.theta = np.zeros((cap, d))
        self.cov = np.tile(np.eye(d) * PRIOR_VARIANCE, (cap, 1, 1))
        self.count = np.zeros(cap)
        self.res2 = np.zeros(cap)  # weighted mean of squared a-priori residuals
        self.weight = np.zeros(cap)  # sum of the weights behind res2

    def ensure(self, cap: int) -> None:
        old = self.count.size
        if cap <= old:
            return
        grow = cap - old
        self.theta = np.vstack([self.theta, np.zeros((grow, self.d))])
        self.cov = np.concatenate([self.cov, np.tile(np.eye(self.d) * PRIOR_VARIANCE, (grow, 1, 1))])
        for name in ("count", "res2", "weight"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(grow)]))

    def reset(self, p: int) -> None:
        self.theta[p] = 0.0
        self.cov[p] = np.eye(self.d) * PRIOR_VARIANCE
        self.count[p] = self.res2[p] = self.weight[p] = 0.0

    def update(self, p: int, x: np.ndarray, y: float, lam: float, warm: float) -> None:
        """Learn ``y`` at features ``x``; the residual statistics count only once the fit has
        ``warm`` samples (the errors of the predictions it would have been used for)."""
        theta, cov = self.theta[p], self.cov[p]
        px = cov @ x
        gain = px / (lam + float(x @ px))
        err = y - float(x @ theta)
        theta += gain * err
        cov -= np.outer(gain, px)
        cov /= lam
        cov += cov.T  # keep it symmetric against rounding
        cov *= 0.5
        if float(np.trace(cov)) > MAX_TRACE:
            cov *= MAX_TRACE / float(np.trace(cov))
        if self.count[p] >= warm:
            self.weight[p] = lam * self.weight[p] + 1.0
            self.res2[p] += (err * err - self.res2[p]) / self.weight[p]
        self.count[p] += 1.0


class RegressionModel:
    """Per-instance and per-model RLS fits of execution time on task features."""

    def __init__(
        self,
        features: Sequence[str] | None = None,
        forgetting: float = DEFAULT_FORGETTING,
        min_samples: int = 10,
    ):
        self.features = check_features(list(features) if features is not None else list(DEFAULT_FEATURES))
        self.forgetting = check_forgetting(forgetting)
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
            raise SpecError("min_samples", min_samples, "an integer >= 1")
        self.min_samples = min_samples
        self._fits: dict[str, _Fit] = {}  # per model: one row per pool position
        self._model_fits: dict[str, _Fit] = {}  # per model: one row, sizes at speed 1

    def config(self) -> dict[str, Any]:
        return {"features": list(self.features), "forgetting": self.forgetting}

    def vector(self, metadata: Mapping[str, Any] | None) -> np.ndarray | None:
        """``[1, feature...]`` from a task's metadata; ``None`` when a feature is missing or not a number."""
        if not metadata:
            return None
        out = [1.0]
        for f in self.features:
            v = metadata.get(f)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                return None
            x = float(v)
            if not math.isfinite(x):
                return None
            out.append(x)
        return np.array(out)

    def attach(self, pool: Any, inst: Any) -> None:
        """A new instance at ``inst.pos``: its own fit starts empty."""
        d = len(self.features) + 1
        fit = self._fits.get(pool.model)
        if fit is None:
            fit = self._fits[pool.model] = _Fit(pool.capacity, d)
            self._model_fits[pool.model] = _Fit(1, d)
        fit.ensure(pool.capacity)
        fit.reset(inst.pos)

    def predict(
        self,
        pool: Any,
        idx: np.ndarray | None,
        x: np.ndarray,
        inv_speed: np.ndarray,
        fallback_mean: np.ndarray,
        fallback_std: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions at the selected positions for feature vector ``x``; positions without
        a warm fit get the model-level fit, else ``fallback_*`` (the online prediction)."""
        fit = self._fits[pool.model]
        sel = slice(0, pool.n) if idx is None else idx
        mean = np.maximum(fit.theta[sel] @ x, 0.0)
        std = np.sqrt(fit.res2[sel])
        warm = fit.count[sel] >= self.min_samples
        if warm.all():
            return mean, std
        mf = self._model_fits[pool.model]
        if mf.count[0] >= self.min_samples:
            m_mean = max(float(mf.theta[0] @ x), 0.0) * inv_speed
            m_std = math.sqrt(float(mf.res2[0])) * inv_speed
        else:
            m_mean, m_std = fallback_mean, fallback_std
        return np.where(warm, mean, m_mean), np.where(warm, std, m_std)

    def learn(self, pool: Any, inst: Any, metadata: Mapping[str, Any] | None, execution_ms: float) -> None:
        x = self.vector(metadata)
        if x is None:
            return
        lam = self.forgetting
        warm = self.min_samples
        self._fits[pool.model].update(inst.pos, x, execution_ms, lam, warm)
        self._model_fits[pool.model].update(0, x, execution_ms * inst.speed, lam, warm)

    def samples(self, model: str) -> int:
        """Completions with features the model-level fit has learned from."""
        mf = self._model_fits.get(model)
        return int(mf.count[0]) if mf is not None else 0
