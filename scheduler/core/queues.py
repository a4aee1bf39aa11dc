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

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .arrays import frozen, readonly
from .instance_state import InstanceState, WaitEstimate
from .residual import ResidualTable
from .residual_wait import ResidualWait, Views

_NEG_INF = -np.inf

FloatArray = NDArray[np.float64]
Index = NDArray[np.intp] | None  # a selection of positions; None: all of them


class Pool(ResidualWait):
    """The instances of one model, with their queue state as arrays."""

    #: up to this many instances (of up to four replicas each), the countdown wait's mean is
    #: computed on Python floats: the same operations in the same order as on the arrays,
    #: bit-identical, without two dozen numpy calls on tiny arrays (measured at four replicas
    #: each: 3.6 against 10.7 us at 4 instances, 8.9 against 12.3 at 16)
    FEW: ClassVar[int] = 16

    # per position (made by _alloc)
    replicas: FloatArray
    inv_speed: FloatArray
    n_running: FloatArray
    n_pending: FloatArray
    pend_mean: FloatArray
    wait_var_: FloatArray
    inv_c: FloatArray
    available: NDArray[np.bool_]
    pend_var_c2: FloatArray  # variance of the waiting tasks' predictions over c^2
    wait2: FloatArray  # (position, 2): the flat case's wait mean and variance (see _update_flat)
    wait2_ro: FloatArray
    add2: FloatArray  # (position, 2): pend_mean and pend_var_c2 side by side (a view of _add)
    _add: FloatArray  # (2, position): pend_mean, then pend_var_c2
    # per (position, replica slot), Fortran order: one column per slot
    ends: FloatArray  # predicted end time of the running task, -inf if free
    start: FloatArray  # start time of the running task (any finite value if free)
    kscale: FloatArray  # table cells per ms of age: inv_du / mean (0 if free)
    pad: FloatArray  # 0 for the slots an instance has, inf for those it lacks
    # (position, slot, 2): what scales a running task's residual (mean, variance); views:
    scale2: FloatArray
    _scale: FloatArray  # (2, position, slot): smu, then svs
    smu: FloatArray  # predicted mean of the running task, 0 if free
    svs: FloatArray  # mean^2 / c^2 while every replica is busy, else 0

    _SLOTS = (("ends", _NEG_INF), ("start", 0.0), ("kscale", 0.0))

    def __init__(self, model: str, capacity: int = 8):
        self.model = model
        self.instances: list[InstanceState] = []
        self.n = 0
        self._cols = 1
        self._alloc(max(capacity, 1))
        self._homogeneous = True
        self._all_available = True
        # positions of the available instances, kept by refresh_availability; None: all n of them
        self.candidates: Index = None
        self.has_available = False
        self.res: ResidualTable | None = None  # residual life of the model's shape; None: countdown
        self._inv_du = 1.0  # the table's, folded into kscale
        self._kcache: tuple[float, Index, FloatArray] | None = None
        self._rows_at: float | None = None  # when the kept views' table rows were computed
        self._views: Views | None = None  # of every position (made by _all_views)
        self._flat: tuple[float, float] | None = None  # (g, h) of a flat table, one replica each
        self._kept: tuple[FloatArray, FloatArray] | None = None  # see ResidualWait._one_pass
        self._var_due = False  # see ResidualWait._two_var

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
        grow("wait_var_", 0.0)  # variance of the wait, kept current on every event (no time dependence)
        grow("inv_c", 1.0)
        grow("available", False, bool)
        for name, fill in self._SLOTS + (("pad", 0.0),):
            new2 = np.full((cap, self._cols), fill, order="F")
            old2 = getattr(self, name, None)
            if old2 is not None:
                new2[: self.n] = old2[: self.n]
            setattr(self, name, new2)
        add, scale, wait = np.zeros((2, cap)), np.zeros((2, cap, self._cols)), np.zeros((2, cap))
        if getattr(self, "_add", None) is not None:
            add[:, : self.n], scale[:, : self.n] = self._add[:, : self.n], self._scale[:, : self.n]
            wait[:, : self.n] = self.wait2[: self.n].T
        self.wait2 = wait.T
        self.wait2_ro = readonly(self.wait2)
        self._pairs(add, scale)
        self.capacity = cap
        self._refresh_views()

    def _pairs(self, add: FloatArray, scale: FloatArray) -> None:
        """Paired arrays, so that one operation serves the wait's mean and its variance: stored
        mean plane then variance plane (``add``: (2, position), ``scale``: (2, position, slot)),
        so that each is contiguous; ``add2`` and ``scale2`` are views with the pair last."""
        self._add, self.pend_mean, self.pend_var_c2, self.add2 = add, add[0], add[1], add.T
        self._scale, self.smu, self.svs = scale, scale[0], scale[1]
        self.scale2 = scale.transpose(1, 2, 0)

    def _refresh_views(self) -> None:
        """Read-only views of the arrays strategies may see (slices of them stay read-only)."""
        self.replicas_ro = readonly(self.replicas)
        self.wait_var_ro = readonly(self.wait_var_)

    def _widen(self, cols: int) -> None:
        extra = np.full((self.capacity, cols - self._cols), 0.0)
        for name, fill in self._SLOTS + (("pad", np.inf),):
            setattr(self, name, np.asfortranarray(np.hstack([getattr(self, name), extra + fill])))
        self._pairs(
            self._add, np.concatenate([self._scale, np.zeros((2, self.capacity, cols - self._cols))], 2)
        )
        self._cols = cols
        self._homogeneous = False
        self._kcache = self._rows_at = None
        self._views = None
        self._update_flat()

    def add(self, inst: InstanceState) -> None:
        if self.n == self.capacity:
            self._alloc(self.capacity * 2)
        if inst.replicas > self._cols:
            if self.n == 0:
                self._cols = inst.replicas
                for name, fill in self._SLOTS + (("pad", 0.0),):
                    setattr(self, name, np.full((self.capacity, self._cols), fill, order="F"))
                self._pairs(self._add, np.zeros((2, self.capacity, self._cols)))
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
        self._kcache = self._rows_at = None
        self._views = None
        self._update_flat()
        self.refresh_availability()

    def refresh_availability(self) -> None:
        for inst in self.instances:
            self.available[inst.pos] = inst.available
        avail = self.available[: self.n]
        self._all_available = bool(avail.all())
        self.candidates = None if self._all_available else np.flatnonzero(avail)
        self.has_available = self.n > 0 and (self._all_available or bool(avail.any()))

    # -- events ----------------------------------------------------------------
    def assign(self, inst: InstanceState, task_id: str, mean: float, var: float, now: float) -> None:
        pos = inst.pos
        if inst.free_slots:
            slot = inst.free_slots.pop()
            running = inst.running
            running[task_id] = (slot, var, mean)
            c = inst.replicas
            busy = len(running) >= c
            vs = mean * mean / (c * c) if busy else 0.0
            self._start(pos, slot, now, mean, vs)
            if busy and c > 1:  # the last replica taken: every running task's spread now counts
                self.svs[pos, :c] = self.smu[pos, :c] ** 2 / (c * c)
            self.n_running[pos] = len(running)
            inst.run_var += var
            if self._flat is not None:
                self._flat_wait(inst, mean, vs)
        else:
            inst.pending[task_id] = (mean, var)
            self.n_pending[pos] = len(inst.pending)
            inst.pend_mean += mean
            inst.pend_var += var
            self.pend_mean[pos] = inst.pend_mean
            self.pend_var_c2[pos] = inst.pend_var / (inst.replicas * inst.replicas)
            if self._flat is not None:
                self._flat_running(inst)
        self._kcache = self._rows_at = None  # the estimates kept per instant are stale now
        if self.res is None:
            self._sync_var(inst)

    def release(self, inst: InstanceState, task_id: str, now: float) -> bool:
        """The task left the instance (completed, failed or withdrawn).  False if unknown."""
        pos = inst.pos
        entry = inst.running.pop(task_id, None)
        if entry is not None:
            slot, var, _ = entry
            inst.run_var = inst.run_var - var if inst.running else 0.0
            if inst.pending:
                # the next task in FIFO order starts now on the freed replica
                next_id = next(iter(inst.pending))
                mean, nvar = inst.pending.pop(next_id)
                self._drop_pending(inst, mean, nvar)
                inst.running[next_id] = (slot, nvar, mean)
                c = inst.replicas
                vs = mean * mean / (c * c)  # still busy
                self._start(pos, slot, now, mean, vs)
                inst.run_var += nvar
                if self._flat is not None:
                    self._flat_wait(inst, mean, vs)
            else:
                if self.res is None:
                    self.ends[pos, slot] = _NEG_INF
                self.smu[pos, slot] = self.kscale[pos, slot] = 0.0
                if inst.replicas > 1 and len(inst.running) == inst.replicas - 1:
                    self.svs[pos, :] = 0.0  # a replica is free: the wait is 0, and so its spread
                else:
                    self.svs[pos, slot] = 0.0
                inst.free_slots.append(slot)
                self.n_running[pos] = len(inst.running)
                if self._flat is not None:
                    self._flat_wait(inst, 0.0, 0.0)
        else:
            pend = inst.pending.pop(task_id, None)
            if pend is None:
                return False
            self._drop_pending(inst, *pend)
            if self._flat is not None:
                self._flat_running(inst)
        self._kcache = self._rows_at = None  # the estimates kept per instant are stale now
        if self.res is None:
            self._sync_var(inst)
        return True

    def _drop_pending(self, inst: InstanceState, mean: float, var: float) -> None:
        pos = inst.pos
        self.n_pending[pos] = len(inst.pending)
        if inst.pending:
            inst.pend_mean -= mean
            inst.pend_var -= var
        else:  # reset exactly: no drift of float sums once the queue is empty
            inst.pend_mean = inst.pend_var = 0.0
        self.pend_mean[pos] = inst.pend_mean
        self.pend_var_c2[pos] = inst.pend_var / (inst.replicas * inst.replicas)

    def _start(self, pos: int, slot: int, now: float, mean: float, var_scale: float) -> None:
        """A task of predicted ``mean`` starts on a replica at ``now``."""
        if self.res is None:  # the countdown's end; rebuilt from start and mean when it returns
            self.ends[pos, slot] = now + mean
        self.start[pos, slot] = now
        self.smu[pos, slot] = mean
        self.kscale[pos, slot] = self._inv_du / mean if mean > 1e-9 else 0.0
        self.svs[pos, slot] = var_scale

    def set_residual(self, table: ResidualTable | None) -> None:
        """Use ``table`` (the model's service-time shape) for running tasks' residuals,
        or the countdown ``max(end - now, 0)`` with ``None``."""
        if table is self.res:
            return
        inv_du = table.inv_du if table is not None else 1.0
        if inv_du != self._inv_du:
            self.kscale *= inv_du / self._inv_du
            self._inv_du = inv_du
        was = self.res
        self.res = table
        self._kcache = self._rows_at = None
        if table is None and was is not None:
            self._countdown_again()
        self._update_flat()

    def _sync_var(self, inst: InstanceState) -> None:
        """The countdown's variance of the wait of ``inst``: the prediction variances of the
        tasks ahead over c^2, zero while a replica is free (kept while there is no table)."""
        c = inst.replicas
        busy = len(inst.running) >= c
        self.wait_var_[inst.pos] = (inst.run_var + inst.pend_var) / (c * c) if busy else 0.0

    def _countdown_again(self) -> None:
        """The table is gone: the countdown's ends and variances, not kept while it was there,
        rebuilt as the events would have written them (end = start + mean)."""
        for inst in self.instances:
            pos = inst.pos
            self.ends[pos, :] = _NEG_INF
            for slot, _, mean in inst.running.values():
                self.ends[pos, slot] = self.start.item(pos, slot) + mean
            self._sync_var(inst)

    # -- estimates -------------------------------------------------------------
    def wait_mean(self, now: float, idx: Index = None) -> FloatArray:
        """Expected wait (ms) a new task would see, per position (``idx``: a selection, ``None``: all).
        Read-only (it may be a view of kept state, current until the next event or instant)."""
        kept = self._kept
        if kept is not None and idx is None:
            if self._rows_at != now:
                self._one_pass(now)
            return kept[0]
        res = self.res
        if res is not None:
            if self._cols == 1:  # the wait's mean is the first column (pending work included)
                return frozen(self._residuals(now, idx, res)[:, 0])
            return frozen(self._wait_mean_residual(now, idx, res))
        sel = self._sel
        if self._cols == 1:  # one replica each: residual of the running task plus the work pending
            resid = sel(self.ends[:, 0], idx) - now
            np.maximum(resid, 0.0, out=resid)
            resid += sel(self.pend_mean, idx)
            return frozen(resid)
        if self._cols <= 4 and self._homogeneous:
            if self.n <= self.FEW:
                return self._wait_mean_few(now, idx)
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
        return frozen(np.where(sel(self.n_pending, idx) > 0, work, min_resid))

    def _wait_mean_few(self, now: float, idx: Index) -> FloatArray:
        """:meth:`wait_mean`'s column-by-column countdown for a few instances, on Python floats:
        the same IEEE operations in the same order (``r < 0.0`` for ``np.maximum(r, 0.0)`` and
        ``a <= b or a != a`` for ``np.minimum(a, b)``, NaN propagating as numpy's does), so the
        result is bit-identical (tests/test_queues.py), without the two dozen numpy calls on tiny
        arrays: 10.7 against 3.6 us at four instances of four replicas, a quarter of the core's
        submit + complete in the live scheduler."""
        n = self.n
        ends = self.ends[:n].tolist()
        pend, inv_c = self.pend_mean[:n].tolist(), self.inv_c[:n].tolist()
        waiting = self.n_pending[:n].tolist()
        out = []
        for p in range(n) if idx is None else idx.tolist():
            row = ends[p]
            work = row[0] - now
            if work < 0.0:  # np.maximum(work, 0.0): -0.0 and NaN kept
                work = 0.0
            least = work
            for end in row[1:]:
                r = end - now
                if r < 0.0:
                    r = 0.0
                if not (least <= r or least != least):  # np.minimum(least, r)
                    least = r
                work += r
            out.append((work + pend[p]) * inv_c[p] if waiting[p] > 0 else least)
        return frozen(np.array(out, dtype=np.float64))

    def wait_var(self, now: float, idx: Index = None) -> FloatArray:
        """Variance of that wait (ms^2): the variances of the tasks ahead (residual variances
        of the running ones, prediction variances of the waiting ones), over c^2; zero while
        a replica is free.  Read-only."""
        kept = self._kept
        if kept is not None and idx is None:
            if self._rows_at != now:
                self._one_pass(now)
            if self._var_due:
                self._two_var()
            return kept[1]
        res = self.res
        if res is not None:
            return frozen(self._wait_var_residual(now, idx, res))
        if idx is None:
            return self.wait_var_ro[: self.n]
        return frozen(self.wait_var_[idx])

    def replicas_at(self, idx: Index = None) -> FloatArray:
        """Replicas per position, read-only."""
        if idx is None:
            return self.replicas_ro[: self.n]
        return frozen(self.replicas[idx])

    def wait(self, now: float, idx: Index = None) -> tuple[FloatArray, FloatArray]:
        return self.wait_mean(now, idx), self.wait_var(now, idx)

    def wait_one(self, inst: InstanceState, now: float) -> WaitEstimate:
        mean, var = self.wait(now, np.array([inst.pos]))
        return WaitEstimate(float(mean[0]), float(np.sqrt(max(var[0], 0.0))))
