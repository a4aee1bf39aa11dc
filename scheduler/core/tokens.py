"""Token-sized service times: a model whose task size depends on the task.

``{dist: tokens, base_ms, per_input_token_ms, per_output_token_ms, cv}``: a
task with ``i`` input and ``o`` output tokens takes

    (base_ms + per_input_token_ms * i + per_output_token_ms * o) * noise

on a speed-1 instance, where ``noise`` is a mean-one lognormal of the given
coefficient of variation (``cv: 0`` makes it deterministic).  So the mean of
a task's size given its tokens is the affine part, and its standard deviation
is ``cv`` times that.  The simulator and the reference instance both draw
sizes with :meth:`TokenService.sample`, so a trace replayed in either world
sees the same task sizes for the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .distributions import LogNormal
from .errors import SpecError

TOKEN_FIELDS = ("base_ms", "per_input_token_ms", "per_output_token_ms", "cv")
TOKEN_METADATA = ("input_tokens", "output_tokens", "images")


def _number(field: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (math.isfinite(v) and v >= 0):
        raise SpecError(field, value, "a number >= 0 for dist tokens")
    return v


@dataclass(frozen=True)
class TokenService:
    """Service time affine in the task's tokens, times a mean-one lognormal noise of ``cv``."""

    base_ms: float = 0.0
    per_input_token_ms: float = 0.0
    per_output_token_ms: float = 0.0
    cv: float = 0.0
    name = "tokens"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], field: str = "service_time") -> TokenService:
        """Build from ``{dist: tokens, ...}``; unknown or bad fields raise :class:`SpecError`."""
        if not isinstance(spec, Mapping) or spec.get("dist") != "tokens":
            raise SpecError(field, spec, "a mapping {dist: tokens, base_ms, per_input_token_ms, ...}")
        for key in spec:
            if key != "dist" and key not in TOKEN_FIELDS:
                raise SpecError(f"{field}.{key}", spec[key], f"only {', '.join(TOKEN_FIELDS)} for tokens")
        values = {k: _number(f"{field}.{k}", spec[k]) for k in TOKEN_FIELDS if k in spec}
        out = cls(**values)
        if out.base_ms == out.per_input_token_ms == out.per_output_token_ms == 0:
            raise SpecError(
                field, dict(spec), "at least one of base_ms, per_input_token_ms, per_output_token_ms > 0"
            )
        return out

    def to_spec(self) -> dict[str, Any]:
        return {"dist": self.name, **{k: getattr(self, k) for k in TOKEN_FIELDS}}

    def mean_ms(self, input_tokens: Any, output_tokens: Any) -> Any:
        """The affine part: the expected size of a task with these tokens (arrays broadcast)."""
        return (
            self.base_ms
            + self.per_input_token_ms * np.asarray(input_tokens, dtype=float)
            + self.per_output_token_ms * np.asarray(output_tokens, dtype=float)
        )

    def noise(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Mean-one multiplicative noise of coefficient of variation ``cv``."""
        if self.cv == 0:
            return 1.0 if size is None else np.ones(size)
        sigma = math.sqrt(math.log1p(self.cv**2))
        return rng.lognormal(-0.5 * sigma * sigma, sigma, size)

    def sample(self, rng: np.random.Generator, input_tokens: Any, output_tokens: Any) -> np.ndarray:
        """One size (ms, speed 1) per task: the affine part times an independent noise draw."""
        mean = np.atleast_1d(self.mean_ms(input_tokens, output_tokens))
        out: np.ndarray = mean * self.noise(rng, mean.size)
        return out

    def sample_one(self, rng: np.random.Generator, metadata: Mapping[str, Any] | None) -> float:
        """One size from a task's metadata (missing token counts count as 0)."""
        meta = metadata or {}
        i, o = token_count(meta, "input_tokens"), token_count(meta, "output_tokens")
        return float(self.mean_ms(i, o)) * float(self.noise(rng))

    def marginal(
        self, input_mean: float, input_var: float, output_mean: float, output_var: float
    ) -> LogNormal:
        """A lognormal with the mean and standard deviation of the size over a token population
        (input and output counts independent): what the oracle predictor knows of the model."""
        a, c = self.per_input_token_ms, self.per_output_token_ms
        m = self.base_ms + a * input_mean + c * output_mean
        var_affine = a * a * input_var + c * c * output_var
        second = (var_affine + m * m) * (1.0 + self.cv**2)
        std = math.sqrt(max(second - m * m, 0.0))
        return LogNormal(m, std / m if m > 0 else 0.0)


def token_count(metadata: Mapping[str, Any], key: str) -> float:
    """A token count from task metadata: a number >= 0, 0 when absent."""
    v = metadata.get(key, 0)
    if v is None:
        return 0.0
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    x = float(v) if ok else math.nan
    if not (math.isfinite(x) and x >= 0):
        raise SpecError(f"metadata.{key}", v, "a number of tokens >= 0")
    return x
