"""The residual-life side of the queue estimates (a part of :class:`~.queues.Pool`).

A running task's remaining time is read from its model's :class:`ResidualTable` at
the task's age over its predicted mean.  With one replica per instance the wait's
mean and variance are computed apart (a strategy reading only the mean pays for the
mean), from table rows kept until the next event; a flat table (memoryless service)
needs no per-decision work at all: the estimate is kept current per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .arrays import frozen, readonly
from .residual import ResidualTable

if TYPE_CHECKING:
    from .instance_state import InstanceState

FloatArray = NDArray[np.float64]
Index = NDArray[np.intp] | None  # a selection of positions; None: all of them


class Views:
    """What the residual-life estimate reads of every position, as views kept between events
    (their arrays change in place), with scratch arrays for its intermediate steps.

    With several replicas, ``scale`` is the (position, slot, 2) pairs of ``scale2`` and ``add``
    is None.  With one replica per instance, ``scale`` and ``add`` are the (2, position) planes
    (mean, variance) of what scales the table's g and h and what is added after, and the
    wait's planes of every position are kept in ``out`` (handed out read-only as ``cols``).
    With two replicas each, ``two`` holds what :meth:`ResidualWait._two_pass` reads and
    writes (see :class:`TwoViews`), and ``cols`` the wait's planes it keeps."""

    __slots__ = ("start", "kscale", "scale", "add", "now", "age", "row", "out", "cols", "two")

    def __init__(
        self,
        start: FloatArray,
        kscale: FloatArray,
        scale: FloatArray,
        add: FloatArray | None,
        two: TwoViews | None = None,
    ):
        self.start, self.kscale, self.scale, self.add = start, kscale, scale, add
        # the clock as a 0-d array: numpy combines it with an array faster than a Python float
        self.now: FloatArray = np.zeros(())
        self.age = np.empty(start.shape)  # now - start
        self.row: NDArray[np.intp] = np.empty(start.shape, dtype=np.intp)  # the table row read
        self.out = np.empty(scale.shape if add is not None else 0)
        ro = readonly(self.out)
        self.cols = (ro[0], ro[1]) if add is not None else (ro, ro)
        self.two = two
        if two is not None:
            self.cols = two.cols


class TwoViews:
    """Two replicas per instance, every position: views of the planes (mean, variance) of
    ``scale2`` by slot, of the pending work, ``inv_c`` and ``n_pending``, and scratch arrays:
    the table rows' scaled (g, h) by slot and the wait's (mean, variance) planes, kept."""

    __slots__ = (
        "planes",
        "pend_mean",
        "pend_var_c2",
        "inv_c",
        "n_pending",
        "gh",
        "g0",
        "g1",
        "h0",
        "h1",
        "wait",
        "min_resid",
        "idle",
        "cols",
    )

    def __init__(
        self,
        planes: FloatArray,
        pend: FloatArray,
        inv_c: FloatArray,
        n_pending: FloatArray,
    ):
        self.planes, self.pend_mean, self.pend_var_c2 = planes, pend[0], pend[1]
        self.inv_c, self.n_pending = inv_c, n_pending
        n = inv_c.shape[0]
        self.gh = np.empty((2, n, 2))  # (g then h plane, position, slot)
        self.g0, self.g1, self.h0, self.h1 = (
            self.gh[0, :, 0],
            self.gh[0, :, 1],
            self.gh[1, :, 0],
            self.gh[1, :, 1],
        )
        self.wait = np.empty((2, n))
        self.min_resid = np.empty(n)
        self.idle: NDArray[np.bool_] = np.empty(n, dtype=bool)  # no task waiting there
        ro = readonly(self.wait)
        self.cols = (ro[0], ro[1])


class ResidualWait:
    """The residual-life estimate of a :class:`~.queues.Pool` (whose arrays it reads)."""

    n: int
    _cols: int
    _homogeneous: bool
    res: ResidualTable | None
    start: FloatArray
    kscale: FloatArray
    pad: FloatArray
    scale2: FloatArray
    add2: FloatArray
    _scale: FloatArray  # (2, position, slot): scale2's planes
    _add: FloatArray  # (2, position): add2's planes
    smu: FloatArray
    svs: FloatArray
    pend_mean: FloatArray
    pend_var_c2: FloatArray
    inv_c: FloatArray
    n_pending: FloatArray
    wait2: FloatArray  # (position, 2): the flat case's wait mean and variance (see _update_flat)
    wait2_ro: FloatArray
    _flat: tuple[float, float] | None  # (g, h) of a flat table, one replica each
    _kcache: tuple[float, Index, FloatArray] | None
    _rows_at: float | None  # when the kept views' table rows were computed
    _views: Views | None  # of every position (made by _all_views)
    # the wait's (mean, variance) of every position, read-only, kept (see _one_pass), or None
    _kept: tuple[FloatArray, FloatArray] | None
    _var_due: bool  # two replicas each: the kept variance lags the kept mean (see _two_var)

    def _sel(self, arr: FloatArray, idx: Index) -> FloatArray:
        return arr[: self.n] if idx is None else arr[idx]

    def _flat_wait(self, inst: InstanceState, mean: float, var_scale: float) -> None:
        """Under a flat table, the kept wait of ``inst`` after an event, from the predicted
        ``mean`` of its running task and that task's ``var_scale`` (both 0 if it is idle):
        the operations :meth:`_residuals` would do on the values in the arrays."""
        assert self._flat is not None
        g0, h0 = self._flat
        pos = inst.pos
        self.wait2[pos, 0] = g0 * mean + inst.pend_mean
        self.wait2[pos, 1] = h0 * var_scale + inst.pend_var / (inst.replicas * inst.replicas)

    def _flat_running(self, inst: InstanceState) -> None:
        """:meth:`_flat_wait` after a change to the queue of ``inst`` only (its one replica busy)."""
        _, _, mean = next(iter(inst.running.values()))
        c = inst.replicas
        self._flat_wait(inst, mean, mean * mean / (c * c))

    def _update_flat(self) -> None:
        """Whether the residual-life estimate is the flat case, and its kept result if so.

        A flat table (memoryless service: exponential) gives every age the same row, so
        with one replica per instance the estimate of a position changes only with its
        events: ``wait2`` holds, per position, exactly what :meth:`_residuals` would
        compute (the same operations on the same values), updated by :meth:`_flat_wait`."""
        res = self.res
        self._var_due = False
        if res is None or not res.flat or self._cols != 1:
            self._flat = None
            # one replica each (or two, alike) under a table: every position's estimate kept per instant
            kept = res is not None and (self._cols == 1 or self._cols == 2 and self._homogeneous)
            self._kept = self._all_views().cols if kept else None
            return
        g0, h0 = res.g.item(0), res.h.item(0)
        self._flat = (g0, h0)
        n = self.n
        self._kept = (self.wait2_ro[:n, 0], self.wait2_ro[:n, 1])  # every position's, read-only
        self.wait2[:n, 0] = g0 * self.smu[:n, 0] + self.pend_mean[:n]
        self.wait2[:n, 1] = h0 * self.svs[:n, 0] + self.pend_var_c2[:n]

    def _residuals(self, now: float, idx: Index, res: ResidualTable) -> FloatArray:
        """Per slot, the residual (mean, variance) pair of its running task at ``now``, from
        the table row at its age over its predicted mean (clipped to the last row), scaled
        by ``scale2``.  With one replica per instance the pending work is added too: each
        row is then the wait's (mean, variance).  Cached per instant and selection."""
        if self._flat is not None:  # kept current by _flat_wait: no work per decision
            return self.wait2_ro[: self.n] if idx is None else frozen(self.wait2[idx])
        c = self._kcache
        if c is not None and c[0] == now and c[1] is idx:
            return c[2]
        if idx is None:  # every position: the same steps on kept views, into kept scratch arrays
            v = self._views or self._all_views()
            np.subtract(now, v.start, out=v.age)
            np.multiply(v.age, v.kscale, out=v.row, casting="unsafe")  # as .astype(np.intp)
            mv = res.gh.take(v.row, axis=0, mode="clip")
            mv *= v.scale  # several replicas (one: see _one_pass)
            self._kcache = (now, idx, mv)
            return mv
        sel = self._sel
        if self._cols == 1:
            u = now - sel(self.start[:, 0], idx)
            u *= sel(self.kscale[:, 0], idx)
            mv = res.gh.take(u.astype(np.intp), axis=0, mode="clip")
            mv *= sel(self.scale2[:, 0], idx)
            mv += sel(self.add2, idx)
        else:
            u = now - sel(self.start, idx)
            u *= sel(self.kscale, idx)
            mv = res.gh.take(u.astype(np.intp), axis=0, mode="clip")
            mv *= sel(self.scale2, idx)
        self._kcache = (now, idx, mv)
        return mv

    def _one_pass(self, now: float) -> None:
        """Make ``_kept`` current at ``now``.  Under a flat table it is (the events keep it);
        with one replica per instance under another table, the wait's (mean, variance) of
        every position are what :meth:`_residuals` gives, computed in one pass into kept
        arrays (the columns of ``_kept`` are read-only views of them), until the next event
        or instant."""
        self._rows_at = now
        v, res = self._views, self.res
        if self._flat is not None or v is None or res is None:
            return
        v.now[()] = now
        np.subtract(v.now, v.start, v.age)
        np.multiply(v.age, v.kscale, v.age)
        v.row[...] = v.age  # truncated toward zero, as .astype(np.intp)
        add = v.add
        if add is None:  # two replicas each
            assert v.two is not None
            self._two_pass(v.row, v.two, res)
            return
        out = v.out
        res.hg.take(v.row, 1, out, "clip")  # the g and h planes at the rows
        np.multiply(out, v.scale, out)
        np.add(out, add, out)

    def _two_pass(self, row: NDArray[np.intp], t: TwoViews, res: ResidualTable) -> None:
        """:meth:`_one_pass` with two replicas per instance: what :meth:`_wait_mean_residual`
        and :meth:`_wait_var_residual` give for every position (the same operations on the
        same values, in the same order), into the kept planes of ``t``: the mean now, the
        variance when first read (:meth:`_two_var`)."""
        gh = t.gh
        res.hg.take(row, 1, gh, "clip")  # the g and h planes at each slot's row
        np.multiply(gh, t.planes, gh)
        mean = t.wait[0]
        np.minimum(t.g0, t.g1, out=t.min_resid)
        np.add(t.g0, t.g1, mean)
        np.add(mean, t.pend_mean, mean)
        np.multiply(mean, t.inv_c, mean)
        np.less_equal(t.n_pending, 0, t.idle)
        np.copyto(mean, t.min_resid, where=t.idle)  # a free replica: the least residual
        self._var_due = True  # the variance when read (a strategy reading only the mean pays for it)

    def _two_var(self) -> None:
        """The variance plane of :meth:`_two_pass`, from the (g, h) rows it read."""
        assert self._views is not None and self._views.two is not None
        t = self._views.two
        var = t.wait[1]
        np.add(t.h0, t.h1, var)
        np.add(var, t.pend_var_c2, var)
        self._var_due = False

    def _all_views(self) -> Views:
        """Views of every position's slots (one column with one replica each), and scratch
        arrays: kept until an instance is added or the arrays grow."""
        n = self.n
        if self._cols == 1:
            v = Views(self.start[:n, 0], self.kscale[:n, 0], self._scale[:, :n, 0], self._add[:, :n])
        else:
            two = None
            if self._cols == 2 and self._homogeneous:
                two = TwoViews(self._scale[:, :n], self._add[:, :n], self.inv_c[:n], self.n_pending[:n])
            v = Views(self.start[:n], self.kscale[:n], self.scale2[:n], None, two)
        self._views = v
        return v

    def _wait_mean_residual(self, now: float, idx: Index, res: ResidualTable) -> FloatArray:
        """As the countdown, with each running task's mean residual life at its age."""
        sel = self._sel
        mv = self._residuals(now, idx, res)
        if self._cols == 1:
            return mv[:, 0]
        r = mv[..., 0]  # free slots: 0
        if self._cols <= 4 and self._homogeneous:
            min_resid = np.minimum(r[:, 0], r[:, 1])
            work = r[:, 0] + r[:, 1]
            for k in range(2, self._cols):
                np.minimum(min_resid, r[:, k], out=min_resid)
                work += r[:, k]
        else:
            min_resid = r.min(axis=1) if self._homogeneous else (r + sel(self.pad, idx)).min(axis=1)
            work = r.sum(axis=1)
        work += sel(self.pend_mean, idx)
        work *= sel(self.inv_c, idx)
        return np.where(sel(self.n_pending, idx) > 0, work, min_resid)

    def _wait_var_residual(self, now: float, idx: Index, res: ResidualTable) -> FloatArray:
        """Residual variances of the running tasks plus the waiting tasks' prediction
        variances, over c^2; 0 while a replica is free (``svs`` is 0 then)."""
        mv = self._residuals(now, idx, res)
        if self._cols == 1:
            return mv[:, 1]
        v: FloatArray = mv[..., 1].sum(axis=1)
        v += self._sel(self.pend_var_c2, idx)
        return v
