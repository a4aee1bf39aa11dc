"""Clocks.  The core never reads the wall clock: time comes in through a clock
object with a ``now_ms()`` method, injected by the shell (SimPy's ``env.now``
in the simulator, the wall clock in live mode, a :class:`ManualClock` in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> float: ...


class ManualClock:
    """A clock that moves only when told to: for unit tests and replays."""

    def __init__(self, start_ms: float = 0.0):
        self._now = float(start_ms)

    def now_ms(self) -> float:
        return self._now

    def advance(self, delta_ms: float) -> float:
        if delta_ms < 0:
            raise ValueError(f"delta_ms must be >= 0, got {delta_ms}")
        self._now += delta_ms
        return self._now

    def set(self, now_ms: float) -> None:
        self._now = float(now_ms)


class FunctionClock:
    """Wraps a zero-argument callable returning milliseconds (e.g. ``lambda: env.now``)."""

    __slots__ = ("now_ms",)

    def __init__(self, fn: Callable[[], float]):
        self.now_ms = fn
