"""Fit a scenario distribution to measured times, with its goodness of fit.

:func:`fit_distribution` tries the parametric families a scenario accepts
(lognormal by maximum likelihood, gamma and exponential by their moments, and
deterministic), scores each with the Kolmogorov-Smirnov statistic ``D`` (the
largest gap between the data's CDF and the fitted one) and keeps the best; when
even the best is off by more than ``ks_max`` it gives the empirical
distribution of the data instead (its quantiles, ``empirical_points`` of them).
:func:`fit_tokens` fits the token-sized model ``(base + a*input + b*output) *
noise`` by least squares and the noise's spread from the ratios.

``D`` is computed on the fitted distribution's quantile grid (every 0.1%), from
its ``quantile`` method, so it works for every family alike; it is within 0.001
of the exact statistic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler import Distribution, from_spec

FAMILIES = ("lognormal", "gamma", "exponential", "deterministic")
KS_MAX = 0.05
EMPIRICAL_POINTS = 200
_GRID = (np.arange(999) + 1.0) / 1000.0


@dataclass(frozen=True)
class Fit:
    """A fitted distribution: its scenario ``spec``, the KS statistic of that fit, the number of
    values, their mean and coefficient of variation, and every family's KS statistic."""

    spec: dict
    ks: float
    n: int
    mean_ms: float
    cv: float
    candidates: dict[str, float] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return str(self.spec["dist"])

    def describe(self) -> str:
        """``lognormal mean 80.3 ms cv 0.61 (KS 0.012, n 5,400)``; an empirical fit names its best rival."""
        s = self.spec
        if s["dist"] in ("lognormal", "gamma"):
            head = f"{s['dist']} mean {s['mean_ms']:.3g} ms cv {s['cv']:.2f}"
        elif s["dist"] == "exponential":
            head = f"exponential mean {s['mean_ms']:.3g} ms"
        elif s["dist"] == "deterministic":
            head = f"deterministic {s['value_ms']:.3g} ms"
        elif s["dist"] == "tokens":
            head = (
                f"tokens base {s['base_ms']:.3g} ms + {s['per_input_token_ms']:.3g}/input + "
                f"{s['per_output_token_ms']:.3g}/output token, cv {s['cv']:.2f}"
            )
        else:
            best = min(self.candidates, key=self.candidates.__getitem__) if self.candidates else "none"
            head = (
                f"empirical ({len(s['values_ms'])} quantiles; mean {self.mean_ms:.3g} ms cv {self.cv:.2f}; "
                f"best parametric {best} KS {self.candidates.get(best, math.nan):.3f})"
            )
        return f"{head} (KS {self.ks:.3f}, n {self.n:,})"


def ks_statistic(values: Sequence[float] | np.ndarray, dist: Distribution) -> float:
    """Kolmogorov-Smirnov ``D`` of ``values`` against ``dist`` on the 0.1% quantile grid."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0:
        return math.nan
    q = np.array([dist.quantile(float(p)) for p in _GRID])
    right = np.searchsorted(x, q, side="right") / n
    left = np.searchsorted(x, q, side="left") / n
    return float(max(np.abs(right - _GRID).max(), np.abs(left - _GRID).max()))


def _candidate(family: str, x: np.ndarray) -> dict | None:
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    if family == "deterministic":
        return {"dist": "deterministic", "value_ms": float(np.median(x))}
    if mean <= 0:
        return None
    if family == "exponential":
        return {"dist": "exponential", "mean_ms": mean}
    if family == "gamma":
        return {"dist": "gamma", "mean_ms": mean, "cv": std / mean} if std > 0 else None
    if family == "lognormal":
        if (x <= 0).any():
            return None
        logs = np.log(x)
        mu, sigma = float(logs.mean()), float(logs.std())
        if sigma <= 0:
            return None
        return {
            "dist": "lognormal",
            "mean_ms": math.exp(mu + 0.5 * sigma**2),
            "cv": math.sqrt(math.expm1(sigma**2)),
        }
    raise ValueError(f"unknown family {family!r}; accepted: {', '.join(FAMILIES)}")


def fit_distribution(
    values: Sequence[float] | np.ndarray,
    *,
    families: Sequence[str] = FAMILIES,
    ks_max: float = KS_MAX,
    empirical_points: int = EMPIRICAL_POINTS,
) -> Fit:
    """The best-fitting family by KS statistic, or the empirical distribution when the best one's
    statistic exceeds ``ks_max`` (``ks_max=inf``: always parametric)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(f"fit_distribution: {x.size} finite values; at least 2 are needed")
    x = np.maximum(x, 0.0)  # clock differences a hair below zero are zero
    mean = float(x.mean())
    cv = float(x.std(ddof=1) / mean) if mean > 0 else 0.0
    scores: dict[str, float] = {}
    specs: dict[str, dict] = {}
    for family in families:
        spec = _candidate(family, x)
        if spec is not None:
            specs[family] = _rounded(spec)
            scores[family] = ks_statistic(x, from_spec(specs[family]))
    best = min(scores, key=scores.__getitem__)
    if scores[best] <= ks_max:
        return Fit(specs[best], scores[best], int(x.size), mean, cv, scores)
    k = min(empirical_points, x.size)
    points = np.quantile(x, (np.arange(k) + 0.5) / k)
    spec = {"dist": "empirical", "values_ms": [round(float(v), 4) for v in points]}
    return Fit(spec, ks_statistic(x, from_spec(spec)), int(x.size), mean, cv, scores)


def fit_tokens(
    values: np.ndarray, input_tokens: np.ndarray, output_tokens: np.ndarray
) -> tuple[Fit, np.ndarray]:
    """A token-sized model ``{dist: tokens, base_ms, per_input_token_ms, per_output_token_ms, cv}``
    fitted to speed-1 times and their tasks' token counts; also each task's fitted mean.

    The affine part is a least-squares fit with coefficients kept >= 0 (a negative one is dropped
    and the rest refitted); ``cv`` is that of a mean-one lognormal noise with the spread of
    ``log(value / fitted mean)``; the KS statistic is the ratios' against that noise."""
    x = np.asarray(values, dtype=float)
    cols = [np.ones_like(x), np.asarray(input_tokens, float), np.asarray(output_tokens, float)]
    keep = [0, 1, 2]
    coef = np.zeros(3)
    while True:
        a = np.column_stack([cols[j] for j in keep])
        sol, *_ = np.linalg.lstsq(a, x, rcond=None)
        if (sol >= 0).all() or len(keep) == 1:
            coef[keep] = np.maximum(sol, 0.0)
            break
        keep = [j for j, c in zip(keep, sol) if c >= 0] or [0]
    fitted = coef[0] + coef[1] * cols[1] + coef[2] * cols[2]
    ok = (fitted > 0) & (x > 0)
    ratio = x[ok] / fitted[ok]
    sigma = float(np.log(ratio).std()) if ratio.size > 1 else 0.0
    cv = math.sqrt(math.expm1(sigma**2))
    spec = _rounded(
        {
            "dist": "tokens",
            "base_ms": float(coef[0]),
            "per_input_token_ms": float(coef[1]),
            "per_output_token_ms": float(coef[2]),
            "cv": cv,
        }
    )
    noise = from_spec({"dist": "lognormal", "mean_ms": 1.0, "cv": spec["cv"]}) if spec["cv"] > 0 else None
    ks = ks_statistic(ratio, noise) if noise is not None else math.nan
    mean = float(x.mean())
    return Fit(spec, ks, int(x.size), mean, float(x.std(ddof=1) / mean) if mean > 0 else 0.0), fitted


def _rounded(spec: dict) -> dict:
    """Six significant digits: a readable YAML file, far below any measurement's precision."""
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in spec.items()}
