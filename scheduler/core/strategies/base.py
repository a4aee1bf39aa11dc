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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from ..predictor import Predictor
    from ..queues import Pool

FloatArray = NDArray[np.float64]


class Candidates:
    """The instances a task may go to, with vectors aligned by position.

    Every array it hands out is read-only (a read-only view of the core's
    state, or a fresh array marked read-only): a strategy that tries to write
    ``view.exec_mean[0] += 1`` gets a ``ValueError`` instead of corrupting the
    predictor or the queue estimates.  Copy (``arr.copy()``) to modify.
    """

    __slots__ = (
        "model",
        "n",
        "now_ms",
        "size_ms",
        "metadata",
        "_pool",
        "_idx",
        "_predictor",
        "_wait",
        "_wait_var",
        "_exec",
        "_ids",
    )

    def __init__(
        self,
        pool: Pool,
        idx: NDArray[np.intp] | None,
        predictor: Predictor,
        now_ms: float,
        size_ms: float | None,
        metadata: Mapping[str, Any] | None = None,
    ):
        self.model: str = pool.model
        self._pool = pool
        self._idx = idx  # None: every instance of the pool
        self.n: int = pool.n if idx is None else int(idx.size)
        self._predictor = predictor
        self.now_ms = now_ms
        self.size_ms = size_ms
        self.metadata = metadata  # the task's metadata (features of the regression predictor)
        self._wait: FloatArray | None = None
        self._wait_var: FloatArray | None = None
        self._exec: tuple[FloatArray, FloatArray] | None = None
        self._ids: list[str] | None = None

    def position(self, i: int) -> int:
        """Pool position of candidate ``i``."""
        return i if self._idx is None else int(self._idx[i])

    def instance_id(self, i: int) -> str:
        """Instance id of candidate ``i``."""
        return self._pool.instances[self.position(i)].instance_id

    @property
    def instance_ids(self) -> list[str]:
        if self._ids is None:
            insts = self._pool.instances
            self._ids = [insts[self.position(i)].instance_id for i in range(self.n)]
        return list(self._ids)

    def _execs(self) -> tuple[FloatArray, FloatArray]:
        if self._exec is None:
            self._exec = self._predictor.predict(self._pool, self._idx, self.size_ms, self.metadata)
        return self._exec

    @property
    def wait_mean(self) -> FloatArray:
        """Expected wait (ms) before this task would start, per candidate."""
        if self._wait is None:
            self._wait = self._pool.wait_mean(self.now_ms, self._idx)  # read-only
        return self._wait

    @property
    def wait_var(self) -> FloatArray:
        """Variance (ms^2) of that wait, per candidate."""
        if self._wait_var is None:
            self._wait_var = self._pool.wait_var(self.now_ms, self._idx)
        return self._wait_var

    @property
    def exec_mean(self) -> FloatArray:
        """Predicted execution time (ms) of this task, per candidate."""
        return self._execs()[0]

    @property
    def exec_std(self) -> FloatArray:
        return self._execs()[1]

    @property
    def completion_mean(self) -> FloatArray:
        """Expected wait plus predicted execution time (ms)."""
        w = self._wait
        if w is None:  # wait_mean, without the property's call
            w = self._wait = self._pool.wait_mean(self.now_ms, self._idx)
        e = self._exec or self._execs()
        out: FloatArray = w + e[0]
        return out

    @property
    def completion_std(self) -> FloatArray:
        es = (self._exec or self._execs())[1]
        wv = self._wait_var
        if wv is None:  # wait_var, without the property's call
            wv = self._wait_var = self._pool.wait_var(self.now_ms, self._idx)
        out: FloatArray = np.add(wv, self._predictor.squared(self._pool, es))  # wait_var + es * es
        return np.sqrt(out, out)

    def completion_plus(self, k: FloatArray | float) -> FloatArray:
        """``completion_mean + k * completion_std``, per candidate (one new array, computed in it)."""
        out = self.completion_std  # a new array, written in place below
        np.multiply(k, out, out)
        return np.add(self.completion_mean, out, out)

    @property
    def in_flight(self) -> FloatArray:
        """Tasks assigned and not yet ended (running plus waiting), per candidate."""
        p = self._pool
        out: FloatArray
        if self._idx is None:
            out = p.n_running[: p.n] + p.n_pending[: p.n]
        else:
            out = p.n_running[self._idx] + p.n_pending[self._idx]
        return out

    @property
    def replicas(self) -> FloatArray:
        return self._pool.replicas_at(self._idx)

    # -- what the facade records about the chosen candidate ------------------------
    def chosen(self, i: int) -> tuple[float, float, float | None]:
        """What the facade records of candidate ``i``: the predicted execution mean and standard
        deviation (ms) of this task there (the values the strategy saw if it looked, else
        computed), and the expected wait there if the strategy looked at waits, else ``None``."""
        wait = self._wait.item(i) if self._wait is not None else None
        if self._exec is not None:
            return self._exec[0].item(i), self._exec[1].item(i), wait
        pos = i if self._idx is None else int(self._idx[i])
        mean, std = self._predictor.predict_one(self._pool, pos, self.size_ms, self.metadata)
        return mean, std, wait


def argmin_random(values: np.ndarray, rng: np.random.Generator, rtol: float = 1e-9) -> int:
    """Index of the least value; among ties (within ``rtol``) one drawn at random."""
    i = int(values.argmin())
    best = values.item(i)  # a Python float: scalar arithmetic on numpy floats is slow
    thr = best + abs(best) * rtol
    if thr == thr:  # not nan (nan takes the general path below)
        # a tie needs another value within rtol: the least of the others decides, read with
        # the least masked by +inf for a moment (cheaper than comparing every value with thr)
        try:
            values[i] = math.inf
        except (ValueError, TypeError, OverflowError):  # read-only, or not floats: compare
            pass
        else:
            second = values.item(values.argmin())
            values[i] = best
            if second > thr:
                return i
    near = values <= thr
    if np.count_nonzero(near) == 1:  # counting is cheaper than listing the ties
        return i
    ties = near.nonzero()[0]
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

    Parameters are keyword arguments of ``__init__``; ``params()`` reports them
    and ``param_help`` says what each means and accepts (shown when a parameter
    is wrong or unknown, and by ``python -m sim strategies``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    param_help: ClassVar[dict[str, str]] = {}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:  # pragma: no cover
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
