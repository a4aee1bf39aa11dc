"""Execution-time predictor.

Modes (docs/scenarios.md):

* ``oracle``: knows each model's true service-time distribution; on an
  instance of speed ``s`` predicts ``size / s``;
* ``online``: learns per instance from completed tasks only, falling back from
  the instance (once it has ``min_samples`` observations) to the model (sizes
  normalised by the instances' speed hints) to a configured prior;
* ``lookup_table``: a table of mean and standard deviation per model and,
  optionally, per instance name;
* ``clairvoyant``: knows each task's exact size (``size_ms`` at submit);
* ``regression``: fits execution time on task-metadata features per instance
  (:mod:`scheduler.core.regression`), falling back to ``online``.

Each mode also knows what it can of the service-time *shape*
(:meth:`Predictor.shape`), which the queue estimates use for the residual life
of running tasks: the oracle's distribution, a lookup entry's ``dist``/``cv``,
the family the online statistics fitted once a model has enough completions
(for ``online`` and ``regression``);
without one (and with ``residual=False``) a running task counts down.

The online statistics learn in every mode, so switching back to ``online``
finds them warm.  (The live API calls ``online`` ``default``; it translates
the name at its boundary, the core knows only ``online``.)

Every array :meth:`Predictor.predict` returns is read-only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .arrays import frozen
from .distributions import Distribution, from_spec
from .errors import SpecError, UnknownPredictModeError
from .lookup import parse_lookup_table
from .pool_stats import PoolStats, Prediction
from .regression import DEFAULT_FORGETTING, RegressionModel
from .shapes import ShapeBook
from .stats import Welford
from .validate import check_integer, check_number

if TYPE_CHECKING:
    from .instance_state import InstanceState
    from .queues import Pool

PREDICT_MODES = ("online", "oracle", "lookup_table", "clairvoyant", "regression")

FloatArray = NDArray[np.float64]


class Predictor:
    """Predicts execution times per candidate instance, vectorised over a pool."""

    def __init__(
        self,
        mode: str = "online",
        *,
        prior_mean_ms: float = 100.0,
        prior_std_ms: float = 100.0,
        min_samples: int = 3,
        oracle: Mapping[str, Distribution | Mapping[str, Any]] | None = None,
        lookup_table: Mapping[str, Any] | None = None,
        clip_sigmas: float | None = None,
        half_life: float | None = None,
        features: list[str] | None = None,
        forgetting: float = DEFAULT_FORGETTING,
        residual: bool = True,
        fixed_mode: bool = False,
    ):
        """``clip_sigmas``: once an instance has ``min_samples`` observations, a new one is clipped
        to its mean +- ``clip_sigmas`` spreads (the spread is the standard deviation, at least a
        tenth of the mean), so one outlier (or forged completion) moves the estimate a bounded
        step.  ``half_life``: observations lose half their weight every ``half_life`` newer ones,
        so the estimate follows change and forgets old outliers.  ``None`` (the default, as in the
        simulator): plain running mean and standard deviation.  ``fixed_mode``: the mode never
        changes (:meth:`set_mode` refuses another), so the modes that read nothing learned
        (``oracle``, ``clairvoyant``) learn nothing: the simulator's predictor, whose mode is the
        scenario's for the whole run."""
        self.clip_sigmas = None if clip_sigmas is None else check_number("clip_sigmas", clip_sigmas, low=0.0)
        self.half_life = None if half_life is None else check_number("half_life", half_life, low=0.0)
        if self.clip_sigmas == 0 or self.half_life == 0:
            raise SpecError("clip_sigmas/half_life", 0, "a number > 0, or None to turn it off")
        self.prior_mean_ms = check_number("prior_mean_ms", prior_mean_ms, low=0.0)
        self.prior_std_ms = check_number("prior_std_ms", prior_std_ms, low=0.0)
        self.min_samples = check_integer("min_samples", min_samples, low=1)
        self.oracle: dict[str, Distribution] = {
            m: from_spec(d, f"oracle.{m}") for m, d in (oracle or {}).items()
        }
        self.table: dict[str, Any] = parse_lookup_table(lookup_table) if lookup_table else {}
        self._raw_table = dict(lookup_table) if lookup_table else None
        self._stats: dict[str, PoolStats] = {}
        self._model_stats: dict[str, Welford] = {}
        self._pools: dict[str, Pool] = {}
        self.regression = RegressionModel(features, forgetting)
        self.shapes = ShapeBook()
        self.residual = bool(residual)  # False: the countdown for every running task
        self.mode = "online"
        self.fixed_mode = False
        self.set_mode(mode)
        self.fixed_mode = bool(fixed_mode)
        # nothing reads what is learned, and nothing can make it read later: skip learning
        self._learns_nothing = self.fixed_mode and self.mode in ("oracle", "clairvoyant")

    # -- configuration ---------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if self.fixed_mode and mode != self.mode:
            raise SpecError("mode", mode, f"{self.mode!r}: this predictor's mode is fixed")
        if mode not in PREDICT_MODES:
            raise UnknownPredictModeError(mode, list(PREDICT_MODES))
        if mode == "lookup_table" and not self.table:
            raise SpecError("lookup_table", None, "a lookup table before mode 'lookup_table' can be used")
        self.mode = mode
        for model in self._pools:
            self._push_shape(model)

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this predictor (JSON-friendly); not
        ``fixed_mode``, which changes no prediction (and a replay may switch modes)."""
        return {
            "mode": self.mode,
            "prior_mean_ms": self.prior_mean_ms,
            "prior_std_ms": self.prior_std_ms,
            "min_samples": self.min_samples,
            "oracle": {m: d.to_spec() for m, d in self.oracle.items()},
            "lookup_table": self._raw_table,
            "clip_sigmas": self.clip_sigmas,
            "half_life": self.half_life,
            **self.regression.config(),
            "residual": self.residual,
        }

    def set_lookup_table(self, table: Mapping[str, Any]) -> None:
        self.table = parse_lookup_table(table)
        self._raw_table = dict(table)
        for model, pool in self._pools.items():
            for inst in pool.instances:
                self._fill_table(model, inst)
            self._push_shape(model)

    # -- pool bookkeeping ------------------------------------------------------
    def attach(self, pool: Pool, inst: InstanceState) -> None:
        stats = self._stats.get(pool.model)
        if stats is None:
            stats = self._stats[pool.model] = PoolStats(pool.capacity, self.half_life)
            self._pools[pool.model] = pool
        stats.ensure(pool.capacity)
        self._fill_table(pool.model, inst)
        self.regression.attach(pool, inst)
        stats.cold[inst.pos] = True
        stats.n_cold += 1
        self._push_shape(pool.model)

    # -- service-time shapes (residual life) -----------------------------------------
    def shape(self, model: str) -> Distribution | None:
        """The model's service-time shape (any scale) in the current mode, or ``None``
        where only the countdown is known: the oracle's distribution, the lookup table
        entry's ``dist``/``cv``, the online fit once enough tasks completed; none for
        ``clairvoyant``, whose sizes are exact."""
        if not self.residual:
            return None
        if self.mode == "oracle":
            return self.oracle.get(model)
        if self.mode == "lookup_table":
            entry = self.table.get(model)
            return entry.get("shape") if entry is not None else self.shapes.fitted.get(model)
        if self.mode in ("online", "regression"):
            return self.shapes.fitted.get(model)
        return None

    def _push_shape(self, model: str) -> None:
        pool = self._pools.get(model)
        if pool is not None:
            pool.set_residual(self.shapes.table(self.shape(model)))

    def _fill_table(self, model: str, inst: InstanceState) -> None:
        stats = self._stats[model]
        entry = self.table.get(model)
        if entry is None:
            stats.table_mean[inst.pos] = stats.table_std[inst.pos] = np.nan
            return
        per = entry["instances"].get(inst.name) or entry["instances"].get(inst.instance_id)
        if per is not None:
            stats.table_mean[inst.pos], stats.table_std[inst.pos] = per
        else:
            stats.table_mean[inst.pos] = entry["mean_ms"] / inst.speed
            stats.table_std[inst.pos] = entry["std_ms"] / inst.speed

    # -- predictions -----------------------------------------------------------
    def _model_fallback(self, model: str) -> tuple[float, float]:
        ms = self._model_stats.get(model)
        if ms is not None and ms.n >= self.min_samples:
            return ms.mean, ms.std
        return self.prior_mean_ms, self.prior_std_ms

    def predict(
        self,
        pool: Pool,
        idx: NDArray[np.intp] | None,
        size_ms: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Expected execution time and its standard deviation at each selected position
        (read-only arrays)."""
        mode = self.mode
        if mode == "oracle":
            cached = self._stats[pool.model].oracle
            if cached is not None and cached[0] == pool.n and cached[1] is self.oracle.get(pool.model):
                if idx is None:
                    return cached[2], cached[3]
                return frozen(cached[2][idx]), frozen(cached[3][idx])
            return self._oracle_arrays(pool, idx)
        if mode == "online":
            stats = self._stats[pool.model]
            if stats.stale:
                stats.refresh()
            if stats.n_cold == 0:  # every instance warm: a slice of the kept predictions
                if idx is None:
                    return stats.online(pool.n)
                return frozen(stats.on_mean[idx]), frozen(stats.on_std[idx])
        n = pool.n
        inv_speed = pool.inv_speed[:n] if idx is None else pool.inv_speed[idx]
        if mode == "clairvoyant":
            if size_ms is None:
                raise SpecError("size_ms", None, "the task's true size for the clairvoyant predictor")
            return frozen(size_ms * inv_speed), frozen(np.zeros_like(inv_speed))
        stats = self._stats[pool.model]
        if mode == "lookup_table":
            tm = stats.table_mean_ro[:n] if idx is None else frozen(stats.table_mean[idx])
            ts = stats.table_std_ro[:n] if idx is None else frozen(stats.table_std[idx])
            if not np.isnan(tm).any():
                return tm, ts
            # models absent from the table fall back to what was learned online
            om, os_ = self._online(pool, stats, idx, inv_speed)
            bad = np.isnan(tm)
            return frozen(np.where(bad, om, tm)), frozen(np.where(bad, os_, ts))
        if mode == "regression":
            om, os_ = self._online(pool, stats, idx, inv_speed)
            x = self.regression.vector(metadata)
            if x is None:  # the task lacks the features: online
                return om, os_
            rm, rs = self.regression.predict(pool, idx, x, inv_speed, om, os_)
            return frozen(rm), frozen(rs)
        return self._online(pool, stats, idx, inv_speed)

    def squared(self, pool: Pool, std: FloatArray) -> FloatArray:
        """``std * std`` for a spread :meth:`predict` just gave for ``pool``: the online mode's
        kept squares (read-only, the same floats) when ``std`` is its kept view, else computed."""
        stats = self._stats.get(pool.model)
        kept = stats.kept_square(std) if stats is not None else None
        if kept is not None:
            return kept
        out: FloatArray = std * std
        return out

    def _online(
        self, pool: Pool, stats: PoolStats, idx: NDArray[np.intp] | None, inv_speed: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        # kept current by learn(): once every instance is warm, reading is a slice
        if stats.stale:
            stats.refresh()
        if idx is None:
            mean, std = stats.online(pool.n)
        else:
            mean, std = frozen(stats.on_mean[idx]), frozen(stats.on_std[idx])
        if stats.n_cold == 0:
            return mean, std
        cold = stats.cold[: pool.n] if idx is None else stats.cold[idx]
        fb_mean, fb_std = self._model_fallback(pool.model)
        return (
            frozen(np.where(cold, fb_mean * inv_speed, mean)),
            frozen(np.where(cold, fb_std * inv_speed, std)),
        )

    def _oracle_dist(self, model: str) -> Distribution:
        dist = self.oracle.get(model)
        if dist is None:
            raise SpecError(f"oracle.{model}", None, "the model's service-time distribution")
        return dist

    def _oracle_arrays(self, pool: Pool, idx: NDArray[np.intp] | None) -> tuple[FloatArray, FloatArray]:
        """True mean and standard deviation over each instance's speed, built and kept for the
        pool's size (``predict`` reads the kept arrays while they are current)."""
        dist = self._oracle_dist(pool.model)
        inv = pool.inv_speed[: pool.n]
        mean, std = frozen(dist.mean_ms * inv), frozen(dist.std_ms * inv)
        self._stats[pool.model].oracle = (pool.n, dist, mean, std)
        if idx is None:
            return mean, std
        return frozen(mean[idx]), frozen(std[idx])

    def predict_one(
        self, pool: Pool, pos: int, size_ms: float | None = None, metadata: Mapping[str, Any] | None = None
    ) -> tuple[float, float]:
        """Scalar form of :meth:`predict` for one position (no array work)."""
        mode = self.mode
        if mode == "online" or mode == "lookup_table" and math.isnan(self._stats[pool.model].table_mean[pos]):
            stats = self._stats[pool.model]
            if stats.stale:
                stats.refresh()
            if stats.n_cold and stats.cold[pos]:
                fb_mean, fb_std = self._model_fallback(pool.model)
                inv_speed = pool.inv_speed.item(pos)
                return fb_mean * inv_speed, fb_std * inv_speed
            return stats.on_mean.item(pos), stats.on_std.item(pos)
        if mode == "lookup_table":
            stats = self._stats[pool.model]
            return stats.table_mean.item(pos), stats.table_std.item(pos)
        if mode == "oracle":
            dist = self._oracle_dist(pool.model)
            inv_speed = pool.inv_speed.item(pos)
            return dist.mean_ms * inv_speed, dist.std_ms * inv_speed
        m, s = self.predict(pool, np.array([pos]), size_ms, metadata)
        return float(m[0]), float(s[0])

    def prediction(
        self,
        pool: Pool,
        inst: InstanceState,
        size_ms: float | None = None,
        mean: float | None = None,
        std: float | None = None,
    ) -> Prediction:
        """A :class:`Prediction` for one instance (with the full distribution where known)."""
        if mean is None or std is None:
            m, s = self.predict(pool, np.array([inst.pos]), size_ms)
            mean, std = float(m[0]), float(s[0])
        dist = None
        if self.mode == "oracle":
            dist = self.oracle[pool.model].scaled(1.0 / inst.speed)
        elif (shape := self.shape(pool.model)) is not None and mean > 0:
            dist = shape.scaled(mean / shape.mean_ms)  # the shape at this prediction's mean
        return Prediction(float(mean), float(std), dist)

    # -- learning --------------------------------------------------------------
    def learn(
        self, pool: Pool, inst: InstanceState, execution_ms: float, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Learn one observed execution time (ms) of a task on ``inst`` (with its metadata)."""
        if self._learns_nothing:
            return
        x = float(execution_ms)
        if not (0.0 <= x < math.inf):  # also false for nan
            return
        model = pool.model
        if metadata:
            self.regression.learn(pool, inst, metadata, x)
        stats = self._stats[model]
        p = inst.pos
        w = stats.welford[p]
        if self.clip_sigmas is not None and w.n >= self.min_samples:
            reach = self.clip_sigmas * max(w.std, 0.1 * w.mean)
            x = min(max(x, w.mean - reach), w.mean + reach)
        w.add(x)
        ms = self._model_stats.get(model)
        if ms is None:
            ms = self._model_stats[model] = Welford()
        y = x * inst.speed  # sizes normalised to speed 1
        ms.add(y)
        if self.shapes.observe(model, y, ms) and self.mode != "oracle":
            self._push_shape(model)
        if w.n >= self.min_samples:
            stats.stale.add(p)  # on_mean and on_std are written when next read
            if stats.n_cold and stats.cold[p]:
                stats.cold[p] = False
                stats.n_cold -= 1

    def observations(self, model: str) -> int:
        ms = self._model_stats.get(model)
        return ms.n if ms else 0
