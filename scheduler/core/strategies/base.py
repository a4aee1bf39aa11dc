"""What a strategy sees and the base class it extends.

A strategy is one small class with one decision method,
``choose(view, rng) -> int``: given the candidates of one task (the available
instances of its model) it returns the position of its choice in ``view``.
Everything it may look at is on :class:`Candidates`, computed lazily so that a
strategy pays only for what it reads.  Randomness comes only from the injected
``rng``; ties are broken with it, never by list order or id.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np


class Candidates:
    """The instances a task may go to, with vectors aligned by position."""

    __slots__ = (
        "model",
        "n",
        "now_ms",
        "size_ms",
        "_pool",
        "_idx",
        "_predictor",
        "_wait",
        "_wait_var",
        "_exec",
        "_ids",
    )

    def __init__(self, pool, idx, predictor, now_ms: float, size_ms: float | None):
        self.model: str = pool.model
        self._pool = pool
        self._idx = idx  # None: every instance of the pool
        self.n: int = pool.n if idx is None else int(idx.size)
        self._predictor = predictor
        self.now_ms = now_ms
        self.size_ms = size_ms
        self._wait = None
        self._wait_var = None
        self._exec = None
        self._ids = None

    def position(self, i: int) -> int:
        """Pool position of candidate ``i`` (internal)."""
        return i if self._idx is None else int(self._idx[i])

    @property
    def instance_ids(self) -> list[str]:
        if self._ids is None:
            insts = self._pool.instances
            self._ids = [insts[self.position(i)].instance_id for i in range(self.n)]
        return self._ids

    def _execs(self):
        if self._exec is None:
            self._exec = self._predictor.predict(self._pool, self._idx, self.size_ms)
        return self._exec

    @property
    def wait_mean(self) -> np.ndarray:
        """Expected wait (ms) before this task would start, per candidate."""
        if self._wait is None:
            self._wait = self._pool.wait_mean(self.now_ms, self._idx)
        return self._wait

    @property
    def wait_var(self) -> np.ndarray:
        if self._wait_var is None:
            self._wait_var = self._pool.wait_var(self._idx)
        return self._wait_var

    @property
    def exec_mean(self) -> np.ndarray:
        """Predicted execution time (ms) of this task, per candidate."""
        return self._execs()[0]

    @property
    def exec_std(self) -> np.ndarray:
        return self._execs()[1]

    @property
    def completion_mean(self) -> np.ndarray:
        """Expected wait plus predicted execution time (ms)."""
        return self.wait_mean + self.exec_mean

    @property
    def completion_std(self) -> np.ndarray:
        es = self.exec_std
        return np.sqrt(self.wait_var + es * es)

    @property
    def in_flight(self) -> np.ndarray:
        """Tasks assigned and not yet ended (running plus waiting), per candidate."""
        p = self._pool
        if self._idx is None:
            return p.n_running[: p.n] + p.n_pending[: p.n]
        return p.n_running[self._idx] + p.n_pending[self._idx]

    @property
    def replicas(self) -> np.ndarray:
        p = self._pool
        return p.replicas[: p.n] if self._idx is None else p.replicas[self._idx]


def argmin_random(values: np.ndarray, rng: np.random.Generator, rtol: float = 1e-9) -> int:
    """Index of the least value; among ties (within ``rtol``) one drawn at random."""
    i = int(values.argmin())
    best = values.item(i)  # a Python float: scalar arithmetic on numpy floats is slow
    ties = (values <= best + abs(best) * rtol).nonzero()[0]
    if len(ties) == 1:
        return i
    return int(ties[pick(rng, len(ties))])


def pick(rng: np.random.Generator, n: int) -> int:
    """A uniform index in ``range(n)`` from the injected generator.

    ``rng.random()`` costs a fraction of ``rng.integers()`` per call, and the
    decision path calls it on every tie."""
    return min(int(rng.random() * n), n - 1)


def argmax_random(values: np.ndarray, rng: np.random.Generator, rtol: float = 1e-9) -> int:
    return argmin_random(-values, rng, rtol)


class Strategy:
    """Base class.  Subclasses set ``name`` and implement :meth:`choose`.

    Parameters are keyword arguments of ``__init__``; ``params()`` reports them.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:  # pragma: no cover
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_number(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    """Validate a strategy parameter, naming it and the accepted range."""
    from ..errors import SpecError

    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        if integer:
            ok_type = ok_type and float(value).is_integer()
        finite = ok_type and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        ok_type = finite = False
    lo_ok = ok_type and (value > low if low_open else value >= low)
    hi_ok = ok_type and (value < high if high_open else value <= high)
    if not (ok_type and lo_ok and hi_ok and finite):
        lo = ("(" if low_open else "[") + f"{low:g}"
        hi = f"{high:g}" + (")" if high_open else "]")
        kind = "an integer" if integer else "a number"
        raise SpecError(name, value, f"{kind} in {lo}, {hi}")
    return int(value) if integer else float(value)
