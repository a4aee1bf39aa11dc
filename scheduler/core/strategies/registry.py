"""Strategies by name.  Adding one: a file in this folder and one line below.

Registration is scoped when asked: inside ``with strategies_scope():`` a test
or a script may register strategies freely, and on exit the registry is what
it was before (names added are gone, names replaced are restored).
"""

from __future__ import annotations

import inspect
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


def strategy_params(cls: type[Strategy]) -> list[tuple[str, Any, str]]:
    """``(name, default, meaning)`` of each parameter a strategy class accepts.

    Names and defaults come from ``__init__``'s signature (``inspect.Parameter.empty``:
    required); meanings from the class's ``param_help`` (empty when it has none)."""
    out: list[tuple[str, Any, str]] = []
    if cls.__init__ is object.__init__:  # no __init__ of its own: no parameters
        return out
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append((p.name, p.default, cls.param_help.get(p.name, "")))
    return out


def params_text(cls: type[Strategy]) -> str:
    """What a strategy accepts, for error messages: ``w (default 1.0): weight of ...; ...``."""
    described = []
    for name, default, meaning in strategy_params(cls):
        head = name + (" (required)" if default is inspect.Parameter.empty else f" (default {default!r})")
        described.append(f"{head}: {meaning}" if meaning else head)
    return "; ".join(described) if described else "no parameters"


def make_strategy(name: str, **params: Any) -> Strategy:
    """A new instance of the strategy registered as ``name``, built with ``params``.

    An unknown name raises :class:`UnknownStrategyError` listing the valid ones; a
    parameter the strategy does not take, or a missing required one, raises
    :class:`SpecError` listing the parameters it accepts and what they mean."""
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownStrategyError(name, strategy_names())
    sig = inspect.signature(cls.__init__).parameters.values()
    if cls.__init__ is object.__init__ or not any(p.kind == p.VAR_KEYWORD for p in sig):
        accepted = {n for n, _, _ in strategy_params(cls)}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise SpecError(unknown[0], params[unknown[0]], f"a parameter of {name}: {params_text(cls)}")
    try:
        return cls(**params)
    except TypeError as e:  # e.g. a required parameter left out
        raise SpecError("params", params, f"the parameters of {name}: {params_text(cls)} ({e})") from None
