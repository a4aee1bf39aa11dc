"""Strategies by name.  Adding one: a file in this folder and one line below.

Registration is scoped when asked: inside ``with strategies_scope():`` a test
or a script may register strategies freely, and on exit the registry is what
it was before (names added are gone, names replaced are restored).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..errors import SpecError, UnknownStrategyError
from .base import Strategy
from .least_requests import LeastRequests
from .min_quantile import MinQuantile
from .power_of_two import PowerOfTwo
from .probabilistic import Probabilistic
from .random_choice import Random
from .round_robin import RoundRobin
from .shortest_queue import ShortestQueue
from .weighted import Weighted

S = TypeVar("S", bound=type[Strategy])

BUILTIN: tuple[type[Strategy], ...] = (
    ShortestQueue,
    RoundRobin,
    Weighted,
    Probabilistic,
    Random,
    PowerOfTwo,
    LeastRequests,
    MinQuantile,
)

# The registry: name -> class.  Read it through strategy_names() and make_strategy();
# change it through register_strategy(), scoped by strategies_scope().
STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in BUILTIN}


def register_strategy(cls: S, name: str | None = None) -> S:
    """Register a strategy class under ``name`` (default ``cls.name``).  Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"{cls!r} is not a Strategy subclass")
    key = name or cls.name
    if not key or not isinstance(key, str):
        raise ValueError(f"strategy class {cls.__name__} needs a non-empty string name")
    STRATEGIES[key] = cls
    return cls


@contextmanager
def strategies_scope() -> Iterator[dict[str, type[Strategy]]]:
    """Registrations made inside the ``with`` block are undone when it ends.

    Yields the registry (the same dict :func:`make_strategy` reads)."""
    saved = dict(STRATEGIES)
    try:
        yield STRATEGIES
    finally:
        STRATEGIES.clear()
        STRATEGIES.update(saved)


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


def make_strategy(name: str, **params: Any) -> Strategy:
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownStrategyError(name, strategy_names())
    try:
        return cls(**params)
    except TypeError as e:
        raise SpecError(f"strategy_params ({name})", params, f"parameters of {cls.__name__}: {e}") from None
