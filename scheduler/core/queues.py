"""Time-aware queue estimates.

The core keeps its own model of every instance's FIFO, fed only by the events
both shells report (a task is assigned, a task ends).  An instance with ``c``
replicas runs its first ``c`` tasks; a task that arrives when every replica is
busy waits in FIFO order; when a task ends, the next waiting task starts on the
freed replica *at that moment*.  Each running task thus has a start time and a
predicted end time, so the wait a new task would see depends on the clock:

* a replica is free and nobody waits: the wait is 0;
* every replica is busy and nobody waits: the shortest predicted residual
  ``max(end - now, 0)`` among the running tasks;
* tasks wait: the work ahead divided by the replicas,
  ``(sum of residuals + sum of pending predictions) / c``.  For one replica
  this is the exact expected wait given the predictions.

The variance of the wait adds the variances of the predictions of the tasks
ahead (divided by ``c**2``).  Quantiles use a normal approximation.

State is kept in numpy arrays per model (a :class:`Pool`), so that a strategy
looks at all candidates of a model with a handful of vector operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .distributions import normal_quantile

_NEG_INF = -np.inf

FloatArray = NDArray[np.float64]
Index = NDArray[np.intp] | None  # a selection of positions; None: all of them


def _readonly(a: FloatArray) -> FloatArray:
    """A read-only view of ``a`` (``a`` itself stays writable)."""
    v = a.view()
    v.setflags(write=False)
    return v


def _freeze(a: FloatArray) -> FloatArray:
    """Mark a fresh array read-only and return it."""
    a.setflags(write=False)
    return a


class InstanceState:
    """One task instance as the core sees it.  ``pos`` indexes its pool's arrays."""

    __slots__ = (
        "instance_id",
        "model",
        "replicas",
        "speed",
        "name",
        "pool",
        "pos",
        "running",
        "pending",
        "free_slots",
        "active",
        "healthy",
        "meta",
        "pend_mean",
        "pend_var",
        "run_var",
    )

    def __init__(
        self,
        instance_id: str,
        model: str,
        replicas: int,
        speed: float,
        name: str,
        pool: Pool,
        pos: int,
        meta: dict[str, Any],
    ):
        self.instance_id: str = instance_id
        self.model: str = model
        self.replicas: int = replicas
        self.speed: float = speed
        self.name: str = name
        self.pool: Pool = pool
        self.pos: int = pos
        self.running: dict[str, tuple[int, float]] = {}  # task_id -> (slot, variance)
        self.pending: dict[str, tuple[float, float]] = {}  # task_id -> (mean, variance), FIFO order
        self.free_slots: list[int] = list(range(replicas - 1, -1, -1))
        # Python-side sums, mirrored into the pool's arrays (writes only, no array reads)
        self.pend_mean = 0.0
        self.pend_var = 0.0
        self.run_var = 0.0
        self.active = True  # False once removed: takes no new tasks, drains the old
        self.healthy = True
        self.meta: dict[str, Any] = meta

    @property
    def in_flight(self) -> int:
        return len(self.running) + len(self.pending)

    @property
    def available(self) -> bool:
        return self.active and self.healthy

    def __repr__(self) -> str:
        return (
            f"InstanceState({self.instance_id!r}, model={self.model!r}, "
            f"replicas={self.replicas}, running={len(self.running)}, pending={len(self.pending)})"
        )


@dataclass(frozen=True)
class WaitEstimate:
    """The wait a new task would see on one instance (ms)."""

    mean_ms: float
    std_ms: float

    def quantile(self, p: float) -> float:
        if self.std_ms == 0:
            return self.mean_ms
        return max(0.0, self.mean_ms + normal_quantile(p) * self.std_ms)


class Pool:
    """The instances of one model, with their queue state as arrays."""

    # per position (made by _alloc)
    replicas: FloatArray
    inv_speed: FloatArray
    n_running: FloatArray
    n_pending: FloatArray
    pend_mean: FloatArray
    wait_var_: FloatArray
    inv_c: FloatArray
    available: NDArray[np.bool_]
    ends: FloatArray  # (position, replica slot): predicted end time of the running task, -inf if free
    pad: FloatArray  # 0 for the slots an instance has, inf for those it lacks

    def __init__(self, model: str, capacity: int = 8):
        self.model = model
        self.instances: list[InstanceState] = []
        self.n = 0
        self._cols = 1
        self._alloc(max(capacity, 1))
        self._homogeneous = True
        self._all_available = True
        self._avail_idx: np.ndarray | None = None
        self.has_available = False

    # -- storage ---------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        def grow(name: str, fill: float | bool, dtype: type = float) -> None:
            new: NDArray[Any] = np.full(cap, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: self.n] = old[: self.n]
            setattr(self, name, new)

        grow("replicas", 1.0)
        grow("inv_speed", 1.0)
        grow("n_running", 0.0)
        grow("n_pending", 0.0)
        grow("pend_mean", 0.0)
        grow("wait_var_", 0.0)  # variance of the wait, kept current on every event (no time dependence)
        grow("inv_c", 1.0)
        grow("available", False, bool)
        ends = np.full((cap, self._cols), _NEG_INF, order="F")
        pad = np.zeros((cap, self._cols), order="F")
        if getattr(self, "ends", None) is not None:
            ends[: self.n] = self.ends[: self.n]
            pad[: self.n] = self.pad[: self.n]
        self.ends, self.pad = ends, pad
        self.capacity = cap
        self._refresh_views()

    def _refresh_views(self) -> None:
        """Read-only views of the arrays strategies may see (slices of them stay read-only)."""
        self.replicas_ro = _readonly(self.replicas)
        self.wait_var_ro = _readonly(self.wait_var_)

    def _widen(self, cols: int) -> None:
        extra = cols - self._cols
        self.ends = np.asfortranarray(np.hstack([self.ends, np.full((self.capacity, extra), _NEG_INF)]))
        self.pad = np.asfortranarray(np.hstack([self.pad, np.full((self.capacity, extra), np.inf)]))
        self._cols = cols
        self._homogeneous = False

    def add(self, inst: InstanceState) -> None:
        if self.n == self.capacity:
            self._alloc(self.capacity * 2)
        if inst.replicas > self._cols:
            if self.n == 0:
                self._cols = inst.replicas
                self.ends = np.full((self.capacity, self._cols), _NEG_INF, order="F")
                self.pad = np.zeros((self.capacity, self._cols), order="F")
            else:
                self._widen(inst.replicas)
        pos = self.n
        inst.pos = pos
        self.instances.append(inst)
        self.replicas[pos] = inst.replicas
        self.inv_c[pos] = 1.0 / inst.replicas
        self.inv_speed[pos] = 1.0 / inst.speed
        self.pad[pos, : inst.replicas] = 0.0
        self.pad[pos, inst.replicas :] = np.inf
        if inst.replicas < self._cols:
            self._homogeneous = False
        self.n += 1
        self.refresh_availability()

    def refresh_availability(self) -> None:
        for inst in self.instances:
            self.available[inst.pos] = inst.available
        avail = self.available[: self.n]
        self._all_available = bool(avail.all())
        self._avail_idx = None if self._all_available else np.flatnonzero(avail)
        self.has_available = self.n > 0 and (self._all_available or bool(avail.any()))

    def candidates(self) -> Index:
        """Positions of the available instances; ``None`` means all ``n`` of them."""
        return self._avail_idx

    # -- events ----------------------------------------------------------------
    def assign(self, inst: InstanceState, task_id: str, mean: float, var: float, now: float) -> None:
        pos = inst.pos
        if inst.free_slots:
            slot = inst.free_slots.pop()
            inst.running[task_id] = (slot, var)
            self.ends[pos, slot] = now + mean
            self.n_running[pos] = len(inst.running)
            inst.run_var += var
        else:
            inst.pending[task_id] = (mean, var)
            self.n_pending[pos] = len(inst.pending)
            inst.pend_mean += mean
            inst.pend_var += var
            self.pend_mean[pos] = inst.pend_mean
        self._sync_var(inst)

    def release(self, inst: InstanceState, task_id: str, now: float) -> bool:
        """The task left the instance (completed, failed or withdrawn).  False if unknown."""
        pos = inst.pos
        entry = inst.running.pop(task_id, None)
        if entry is not None:
            slot, var = entry
            inst.run_var = inst.run_var - var if inst.running else 0.0
            if inst.pending:
                # the next task in FIFO order starts now on the freed replica
                next_id = next(iter(inst.pending))
                mean, nvar = inst.pending.pop(next_id)
                self._drop_pending(inst, mean, nvar)
                inst.running[next_id] = (slot, nvar)
                self.ends[pos, slot] = now + mean
                inst.run_var += nvar
            else:
                self.ends[pos, slot] = _NEG_INF
                inst.free_slots.append(slot)
                self.n_running[pos] = len(inst.running)
            self._sync_var(inst)
            return True
        pend = inst.pending.pop(task_id, None)
        if pend is not None:
            self._drop_pending(inst, *pend)
            self._sync_var(inst)
            return True
        return False

    def _drop_pending(self, inst: InstanceState, mean: float, var: float) -> None:
        pos = inst.pos
        self.n_pending[pos] = len(inst.pending)
        if inst.pending:
            inst.pend_mean -= mean
            inst.pend_var -= var
        else:  # reset exactly: no drift of float sums once the queue is empty
            inst.pend_mean = inst.pend_var = 0.0
        self.pend_mean[pos] = inst.pend_mean

    def _sync_var(self, inst: InstanceState) -> None:
        """Variance of the wait: the prediction variances of the tasks ahead over c^2,
        zero while a replica is free."""
        c = inst.replicas
        busy = len(inst.running) >= c
        self.wait_var_[inst.pos] = (inst.run_var + inst.pend_var) / (c * c) if busy else 0.0

    # -- estimates -------------------------------------------------------------
    def _sel(self, arr: FloatArray, idx: Index) -> FloatArray:
        return arr[: self.n] if idx is None else arr[idx]

    def wait_mean(self, now: float, idx: Index = None) -> FloatArray:
        """Expected wait (ms) a new task would see, per position (``idx``: a selection, ``None``: all)."""
        sel = self._sel
        if self._cols == 1:  # one replica each: residual of the running task plus the work pending
            resid = sel(self.ends[:, 0], idx) - now
            np.maximum(resid, 0.0, out=resid)
            resid += sel(self.pend_mean, idx)
            return resid
        if self._cols <= 4 and self._homogeneous:
            # few replicas: column by column is cheaper than 2-D reductions
            work = sel(self.ends[:, 0], idx) - now
            np.maximum(work, 0.0, out=work)
            r = sel(self.ends[:, 1], idx) - now
            np.maximum(r, 0.0, out=r)
            min_resid = np.minimum(work, r)
            work += r
            for k in range(2, self._cols):
                r = sel(self.ends[:, k], idx) - now
                np.maximum(r, 0.0, out=r)
                np.minimum(min_resid, r, out=min_resid)
                work += r
        else:
            resid = sel(self.ends, idx) - now
            np.maximum(resid, 0.0, out=resid)
            min_resid = resid.min(axis=1) if self._homogeneous else (resid + sel(self.pad, idx)).min(axis=1)
            work = resid.sum(axis=1)
        work += sel(self.pend_mean, idx)
        work *= sel(self.inv_c, idx)
        return np.where(sel(self.n_pending, idx) > 0, work, min_resid)

    def wait_var(self, idx: Index = None) -> FloatArray:
        """Variance of that wait (ms^2): the prediction variances of the tasks ahead, over c^2
        (zero while a replica is free).  Read-only."""
        if idx is None:
            return self.wait_var_ro[: self.n]
        return _freeze(self.wait_var_[idx])

    def replicas_at(self, idx: Index = None) -> FloatArray:
        """Replicas per position, read-only."""
        if idx is None:
            return self.replicas_ro[: self.n]
        return _freeze(self.replicas[idx])

    def wait(self, now: float, idx: Index = None) -> tuple[FloatArray, FloatArray]:
        return self.wait_mean(now, idx), self.wait_var(idx)

    def wait_one(self, inst: InstanceState, now: float) -> WaitEstimate:
        mean, var = self.wait(now, np.array([inst.pos]))
        return WaitEstimate(float(mean[0]), float(np.sqrt(max(var[0], 0.0))))
