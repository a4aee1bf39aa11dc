"""Strategies by name.  Adding one: a file in this folder and one line below."""

from __future__ import annotations

from typing import Any

from ..errors import UnknownStrategyError
from .base import Strategy
from .least_requests import LeastRequests
from .min_quantile import MinQuantile
from .power_of_two import PowerOfTwo
from .probabilistic import Probabilistic
from .random_choice import Random
from .round_robin import RoundRobin
from .shortest_queue import ShortestQueue
from .weighted import Weighted

STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy], name: str | None = None) -> type[Strategy]:
    """Register a strategy class under ``name`` (default ``cls.name``).  Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"{cls!r} is not a Strategy subclass")
    key = name or cls.name
    if not key or not isinstance(key, str):
        raise ValueError(f"strategy class {cls.__name__} needs a non-empty string name")
    STRATEGIES[key] = cls
    return cls


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


def make_strategy(name: str, **params: Any) -> Strategy:
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownStrategyError(name, strategy_names())
    try:
        return cls(**params)
    except TypeError as e:
        from ..errors import SpecError

        raise SpecError(f"strategy_params ({name})", params, f"parameters of {cls.__name__}: {e}") from None


register_strategy(ShortestQueue)
register_strategy(RoundRobin)
register_strategy(Weighted)
register_strategy(Probabilistic)
register_strategy(Random)
register_strategy(PowerOfTwo)
register_strategy(LeastRequests)
register_strategy(MinQuantile)
