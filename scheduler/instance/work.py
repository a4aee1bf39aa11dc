"""What a reference task instance does with one task: its "model".

* :class:`SleepWork` (``--model-kind sleep``, the default) sleeps for the
  task's size divided by ``speed``: the size is ``task_input["size_ms"]`` when
  the task carries one (the live driver passes the simulator's own draw, so
  both worlds serve the same tasks), else it is drawn from a distribution of
  :func:`scheduler.from_spec` (the simulator's distribution code) with a
  seeded ``numpy`` Generator, or, for ``{dist: tokens, ...}``, from the
  simulator's token service model applied to the task's metadata
  (``input_tokens``, ``output_tokens``);
* :class:`MatmulWork` (``--model-kind matmul``) does real CPU work whose time
  grows with the input: ``repeat`` products of random ``n x n`` matrices for
  ``task_input = {"n": 256, "repeat": 1}``, in a worker thread so that the
  event loop keeps answering.

A bad task input raises :class:`TaskInputError`; the task then fails with that
message (it does not stop the instance).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import Distribution, SpecError
from ..core.tokens import TokenService


class TaskInputError(ValueError):
    """The task's input is not what the model accepts."""


class SleepWork:
    kind = "sleep"

    def __init__(self, dist: Distribution | TokenService, rng: np.random.Generator, speed: float = 1.0):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.dist, self.rng, self.speed = dist, rng, float(speed)

    @property
    def prior_ms(self) -> tuple[float, float]:
        """Mean and standard deviation of the execution time, known in advance (for a token
        service: of a task without tokens, its ``base_ms``)."""
        if isinstance(self.dist, TokenService):
            return self.dist.base_ms / self.speed, self.dist.base_ms * self.dist.cv / self.speed
        return self.dist.mean_ms / self.speed, self.dist.std_ms / self.speed

    async def run(self, task_input: Any, metadata: Mapping[str, Any] | None = None) -> dict:
        size = task_input.get("size_ms") if isinstance(task_input, Mapping) else None
        dist = self.dist
        if size is None and isinstance(dist, TokenService):
            try:  # the simulator's token service model, from the task's metadata
                size = dist.sample_one(self.rng, metadata)
            except SpecError as e:
                raise TaskInputError(str(e)) from None
        elif size is None and isinstance(dist, Distribution):
            size = float(dist.sample(self.rng))
        elif isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 <= size < math.inf:
            raise TaskInputError(f"task_input.size_ms: got {size!r}, expected a number of ms >= 0")
        service_ms = float(size) / self.speed
        await sleep_at_least(service_ms / 1000.0)
        return {"service_ms": service_ms}


async def sleep_at_least(seconds: float) -> None:
    """Sleep ``seconds`` or a little more, never less, by ``time.perf_counter``.

    A loop's timers count from the loop's own clock, which uvloop (libuv) reads once per
    iteration: a sleep started late in an iteration can end up to that long early.  The
    remainder, if any, is slept again."""
    end = time.perf_counter() + seconds
    await asyncio.sleep(seconds)
    while (left := end - time.perf_counter()) > 0:
        await asyncio.sleep(left)


def _matmul(n: int, repeat: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) / np.sqrt(n)  # scaled so that repeated products stay O(1)
    c = rng.standard_normal((n, n))
    for _ in range(repeat):
        c = a @ c
    return {"n": n, "repeat": repeat, "mean_abs": float(np.abs(c).mean())}


class MatmulWork:
    kind = "matmul"
    prior_ms = None  # unknown until measured

    def __init__(self, rng: np.random.Generator, max_n: int = 2048, max_repeat: int = 100):
        self.rng, self.max_n, self.max_repeat = rng, int(max_n), int(max_repeat)

    def _int(self, task_input: Mapping, key: str, default: int, high: int) -> int:
        v = task_input.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high:
            raise TaskInputError(f"task_input.{key}: got {v!r}, expected an integer in 1..{high}")
        return v

    async def run(self, task_input: Any, metadata: Mapping[str, Any] | None = None) -> dict:
        if not isinstance(task_input, Mapping):
            raise TaskInputError(f'task_input: got {task_input!r}, expected a mapping such as {{"n": 256}}')
        n = self._int(task_input, "n", 256, self.max_n)
        repeat = self._int(task_input, "repeat", 1, self.max_repeat)
        seed = int(self.rng.integers(2**63))  # drawn here: the Generator is not shared with the thread
        return await asyncio.to_thread(_matmul, n, repeat, seed)


MODEL_KINDS = ("sleep", "matmul")
