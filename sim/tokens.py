"""Token-sized tasks in the simulator: token-count distributions and per-model token services.

``workload.tokens: {input: <dist>, output: <dist>}`` draws each task's token
counts when no trace carries them.  A token distribution is a service-time
distribution in counts instead of ms: ``lognormal {mean, cv}``, ``gamma
{mean, cv}``, ``exponential {mean}``, ``deterministic {value}``, ``uniform
{low, high}``, ``empirical {values}``; draws are rounded to whole tokens
(at least 1 input token, at least 0 output tokens).

A model with ``service_time: {dist: tokens, ...}``
(:class:`scheduler.core.tokens.TokenService`) takes its size from the task's
tokens; the oracle predictor is given the size's mean and standard deviation
over the scenario's token population (:meth:`TokenService.marginal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import Distribution, SpecError, from_spec
from scheduler.core.tokens import TokenService

TOKEN_KINDS = ("input", "output")
# token-distribution keys -> the ms-distribution keys they stand for
_RENAME = {"mean": "mean_ms", "value": "value_ms", "low": "low_ms", "high": "high_ms", "values": "values_ms"}
_BACK = {v: k for k, v in _RENAME.items()}
TOKEN_DIST_KEYS = tuple(_RENAME)
_MIN = {"input": 1, "output": 0}


def parse_token_dist(value: Any, where: str) -> tuple[dict, Distribution]:
    """A token-count distribution from ``{dist: lognormal, mean: 800, cv: 1.0}`` (and the like)."""
    if not isinstance(value, Mapping):
        raise SpecError(where, value, "a distribution such as {dist: lognormal, mean: 800, cv: 1.0}")
    for k in value:
        if k in _BACK:  # mean_ms and friends: a token count has no unit
            raise SpecError(f"{where}.{k}", value[k], f"{_BACK[k]} (token counts, not ms)")
    spec = {_RENAME.get(str(k), str(k)): v for k, v in value.items()}
    try:
        dist = from_spec(spec, field=where)
    except SpecError as e:
        name = e.field.rsplit(".", 1)
        if len(name) == 2 and name[1] in _BACK:
            accepted = e.accepted.replace("_ms", "")
            raise SpecError(f"{name[0]}.{_BACK[name[1]]}", e.value, accepted) from None
        raise SpecError(e.field, e.value, e.accepted.replace("_ms", "")) from None
    return dict(value), dist


def parse_tokens(value: Any) -> tuple[dict, dict[str, Distribution]]:
    """``workload.tokens``: the input and output token distributions."""
    where = "workload.tokens"
    if not isinstance(value, Mapping) or set(value) != set(TOKEN_KINDS):
        raise SpecError(where, value, "a mapping {input: <distribution>, output: <distribution>}")
    spec, dists = {}, {}
    for kind in TOKEN_KINDS:
        spec[kind], dists[kind] = parse_token_dist(value[kind], f"{where}.{kind}")
    return spec, dists


def draw_tokens(
    dists: Mapping[str, Distribution], n: int, seeds: np.random.SeedSequence
) -> dict[str, np.ndarray]:
    """``input_tokens`` and ``output_tokens`` of ``n`` tasks, one independent stream each."""
    out = {}
    for k, (kind, seq) in enumerate(zip(TOKEN_KINDS, seeds.spawn(len(TOKEN_KINDS)))):
        del k
        raw = np.asarray(dists[kind].sample(np.random.default_rng(seq), n), dtype=float)
        out[f"{kind}_tokens"] = np.maximum(np.round(raw), _MIN[kind])
    return out


def token_moments(
    dists: Mapping[str, Distribution] | None, tokens: Mapping[str, np.ndarray] | None
) -> tuple[float, float, float, float] | None:
    """Mean and variance of input and output tokens, from a trace's counts or the distributions."""
    if tokens:
        ti = tokens.get("input_tokens", np.zeros(1))
        to = tokens.get("output_tokens", np.zeros(1))
        return float(ti.mean()), float(ti.var()), float(to.mean()), float(to.var())
    if dists:
        di, do = dists["input"], dists["output"]
        return di.mean_ms, di.std_ms**2, do.mean_ms, do.std_ms**2
    return None


def marginals(
    services: Mapping[str, TokenService], moments: tuple[float, float, float, float] | None
) -> dict[str, Distribution]:
    """What the oracle knows of each token model: the size's mean and spread over the population."""
    if not services:
        return {}
    if moments is None:
        name = next(iter(services))
        raise SpecError(
            "workload.tokens",
            None,
            f"token counts for models.{name}.service_time (dist tokens): workload.tokens "
            "{input: <dist>, output: <dist>} or a trace that carries them",
        )
    return {m: s.marginal(*moments) for m, s in services.items()}
