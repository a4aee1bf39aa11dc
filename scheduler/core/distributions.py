"""Service-time distributions, all in milliseconds.

Every distribution samples from an injected ``numpy.random.Generator`` and
knows its mean, standard deviation and quantiles.  ``from_spec`` builds one
from the dict form used by scenario files (``{dist: lognormal, mean_ms: 120,
cv: 0.8}``) and raises :class:`SpecError` naming the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SpecError
from .validate import check_number

_STD_NORMAL = NormalDist()

Sample = Any  # one value (a float) when ``size`` is None, else an array of ``size`` values


def _check_p(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {p!r}")
    return p


class Distribution:
    """Base class: a non-negative service-time distribution in ms."""

    name: str = ""
    if TYPE_CHECKING:  # every subclass provides them, as a field or a property

        @property
        def mean_ms(self) -> float: ...

        @property
        def std_ms(self) -> float: ...

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:  # pragma: no cover
        raise NotImplementedError

    def quantile(self, p: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def scaled(self, factor: float) -> Distribution:
        """The distribution of ``X * factor`` (e.g. a task size on slower hardware)."""
        return Scaled(self, factor)

    def to_spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Exponential(Distribution):
    mean_ms: float
    name = "exponential"

    @property
    def std_ms(self) -> float:
        return self.mean_ms

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        return rng.exponential(self.mean_ms, size)

    def quantile(self, p: float) -> float:
        return -self.mean_ms * math.log1p(-_check_p(p))

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "mean_ms": self.mean_ms}


@dataclass(frozen=True)
class Deterministic(Distribution):
    value_ms: float
    name = "deterministic"

    @property
    def mean_ms(self) -> float:
        return self.value_ms

    @property
    def std_ms(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        if size is None:
            return self.value_ms
        return np.full(size, self.value_ms, dtype=float)

    def quantile(self, p: float) -> float:
        _check_p(p)
        return self.value_ms

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "value_ms": self.value_ms}


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Parameterised by its own mean and coefficient of variation."""

    mean_ms: float
    cv: float
    name = "lognormal"

    @property
    def _sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv**2))

    @property
    def _mu(self) -> float:
        return math.log(self.mean_ms) - 0.5 * self._sigma**2

    @property
    def std_ms(self) -> float:
        return self.mean_ms * self.cv

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        if self.cv == 0:
            return Deterministic(self.mean_ms).sample(rng, size)
        return rng.lognormal(self._mu, self._sigma, size)

    def quantile(self, p: float) -> float:
        return math.exp(self._mu + self._sigma * _STD_NORMAL.inv_cdf(_check_p(p)))

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "mean_ms": self.mean_ms, "cv": self.cv}


def gamma_p_logq(k: float, x: float) -> tuple[float, float]:
    """Regularised incomplete gamma: ``P(k, x)`` and ``log Q(k, x)`` (``Q = 1 - P``), by the
    series below ``k + 1`` and Lentz's continued fraction above (where ``Q`` may underflow,
    hence its logarithm)."""
    if x <= 0:
        return 0.0, 0.0
    log_pre = k * math.log(x) - x - math.lgamma(k)
    if x < k + 1.0:
        term = total = 1.0 / k
        a = k
        for _ in range(1000):
            a += 1.0
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        p = min(1.0, total * math.exp(log_pre))
        return p, math.log1p(-p) if p < 1.0 else -math.inf
    tiny = 1e-300
    b = x + 1.0 - k
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - k)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return max(0.0, 1.0 - math.exp(log_pre) * h), log_pre + math.log(h)


def _gamma_cdf(k: float, x: float) -> float:
    return gamma_p_logq(k, x)[0]


@dataclass(frozen=True)
class Gamma(Distribution):
    """Parameterised by its own mean and coefficient of variation."""

    mean_ms: float
    cv: float
    name = "gamma"

    @property
    def shape(self) -> float:
        return 1.0 / self.cv**2

    @property
    def scale(self) -> float:
        return self.mean_ms * self.cv**2

    @property
    def std_ms(self) -> float:
        return self.mean_ms * self.cv

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        if self.cv == 0:
            return Deterministic(self.mean_ms).sample(rng, size)
        return rng.gamma(self.shape, self.scale, size)

    def quantile(self, p: float) -> float:
        _check_p(p)
        if self.cv == 0:
            return self.mean_ms
        k = self.shape
        # bracket then bisect on the CDF (monotone)
        lo, hi = 0.0, max(self.mean_ms, 1e-12)
        while _gamma_cdf(k, hi / self.scale) < p:
            hi *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if _gamma_cdf(k, mid / self.scale) < p:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-12 * hi:
                break
        return 0.5 * (lo + hi)

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "mean_ms": self.mean_ms, "cv": self.cv}


@dataclass(frozen=True)
class Uniform(Distribution):
    low_ms: float
    high_ms: float
    name = "uniform"

    @property
    def mean_ms(self) -> float:
        return 0.5 * (self.low_ms + self.high_ms)

    @property
    def std_ms(self) -> float:
        return (self.high_ms - self.low_ms) / math.sqrt(12.0)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        return rng.uniform(self.low_ms, self.high_ms, size)

    def quantile(self, p: float) -> float:
        return self.low_ms + _check_p(p) * (self.high_ms - self.low_ms)

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "low_ms": self.low_ms, "high_ms": self.high_ms}


class Empirical(Distribution):
    """Resamples recorded values (with replacement)."""

    name = "empirical"

    def __init__(self, values_ms: Sequence[float]):
        values = np.asarray(values_ms, dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise SpecError("values_ms", values_ms, "a non-empty list of numbers")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise SpecError("values_ms", "(list)", "finite numbers >= 0")
        self.values = np.sort(values)
        self._mean = float(self.values.mean())
        self._std = float(self.values.std())

    @property
    def mean_ms(self) -> float:
        return self._mean

    @property
    def std_ms(self) -> float:
        return self._std

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        idx = rng.integers(0, self.values.size, size)
        return self.values[idx] if size is not None else float(self.values[idx])

    def quantile(self, p: float) -> float:
        # the inverse of the resampling distribution's CDF (no interpolation between atoms)
        return float(np.quantile(self.values, _check_p(p), method="inverted_cdf"))

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, "values_ms": self.values.tolist()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Empirical) and np.array_equal(self.values, other.values)

    def __repr__(self) -> str:
        return f"Empirical(n={self.values.size}, mean_ms={self._mean:.3g})"


@dataclass(frozen=True)
class Scaled(Distribution):
    base: Distribution
    factor: float
    name = "scaled"

    @property
    def mean_ms(self) -> float:
        return self.base.mean_ms * self.factor

    @property
    def std_ms(self) -> float:
        return self.base.std_ms * self.factor

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Sample:
        return self.base.sample(rng, size) * self.factor

    def quantile(self, p: float) -> float:
        return self.base.quantile(p) * self.factor

    def to_spec(self) -> dict[str, Any]:
        raise TypeError("a scaled distribution has no scenario form")


DISTRIBUTIONS = ("exponential", "deterministic", "lognormal", "gamma", "uniform", "empirical")

_FIELDS = {
    "exponential": {"mean_ms"},
    "deterministic": {"value_ms"},
    "lognormal": {"mean_ms", "cv"},
    "gamma": {"mean_ms", "cv"},
    "uniform": {"low_ms", "high_ms"},
    "empirical": {"values_ms"},
}


def from_spec(spec: Mapping[str, Any] | Distribution, field: str = "service_time") -> Distribution:
    """Build a distribution from its scenario dict.

    ``field`` is the dotted path used in error messages.  The ``{file: ...}``
    form of ``empirical`` is resolved by the shell that reads files (the
    scenario loader), never here: the core does no I/O.
    """
    if isinstance(spec, Distribution):
        return spec
    if not isinstance(spec, Mapping):
        raise SpecError(field, spec, "a mapping such as {dist: exponential, mean_ms: 10}")
    kind = spec.get("dist")
    if kind not in _FIELDS:
        raise SpecError(f"{field}.dist", kind, "one of " + ", ".join(DISTRIBUTIONS))
    extra = set(spec) - _FIELDS[kind] - {"dist"}
    if extra:
        raise SpecError(
            f"{field}.{sorted(extra)[0]}",
            spec[sorted(extra)[0]],
            f"only {sorted(_FIELDS[kind])} for {kind}",
        )
    missing = _FIELDS[kind] - set(spec)
    if missing:
        raise SpecError(f"{field}.{sorted(missing)[0]}", None, f"a value (required for {kind})")

    def num(name: str, allow_zero: bool = False) -> float:
        return check_number(
            f"{field}.{name}", spec[name], low=0.0, low_open=not allow_zero, suffix=f"for {kind}"
        )

    if kind == "exponential":
        return Exponential(num("mean_ms"))
    if kind == "deterministic":
        return Deterministic(num("value_ms", allow_zero=True))
    if kind == "lognormal":
        return LogNormal(num("mean_ms"), num("cv", allow_zero=True))
    if kind == "gamma":
        return Gamma(num("mean_ms"), num("cv", allow_zero=True))
    if kind == "uniform":
        low, high = num("low_ms", allow_zero=True), num("high_ms", allow_zero=True)
        if high < low:
            raise SpecError(f"{field}.high_ms", spec["high_ms"], f"a number >= low_ms ({low})")
        return Uniform(low, high)
    values = spec["values_ms"]
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise SpecError(f"{field}.values_ms", values, "a non-empty list of numbers")
    try:
        return Empirical([float(v) for v in values])
    except (TypeError, ValueError):
        raise SpecError(f"{field}.values_ms", "(list)", "a non-empty list of numbers >= 0") from None
    except SpecError as e:
        raise SpecError(f"{field}.{e.field}", e.value, e.accepted) from None


def normal_quantile(p: float) -> float:
    """The standard normal quantile z_p (stdlib, no scipy)."""
    return _STD_NORMAL.inv_cdf(_check_p(p))


def distribution_fields() -> dict[str, tuple[str, ...]]:
    """Each distribution's parameters besides ``dist``: the table :func:`from_spec` checks against."""
    return {kind: tuple(sorted(names)) for kind, names in _FIELDS.items()}
