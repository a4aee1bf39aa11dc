"""Execution-time predictor.

Modes (SCENARIO.md):

* ``oracle``: knows each model's true service-time distribution; on an
  instance of speed ``s`` predicts ``size / s``;
* ``online``: learns per instance from completed tasks only, falling back from
  the instance (once it has ``min_samples`` observations) to the model (sizes
  normalised by the instances' speed hints) to a configured prior;
* ``lookup_table``: a table of mean and standard deviation per model and,
  optionally, per instance name;
* ``clairvoyant``: knows each task's exact size (``size_ms`` at submit).

The online statistics learn in every mode, so switching back to ``online``
finds them warm.  ``default`` is accepted as a synonym of ``online`` (the live
API's name).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .distributions import Distribution, LogNormal, from_spec
from .errors import SpecError, UnknownPredictModeError

PREDICT_MODES = ("online", "oracle", "lookup_table", "clairvoyant")
MODE_ALIASES = {"default": "online"}


@dataclass(frozen=True)
class Prediction:
    """Predicted execution time of one task on one instance (ms)."""

    expected_ms: float
    error_ms: float  # standard deviation
    dist: Distribution | None = None  # the full distribution where the mode knows it

    def quantile(self, p: float) -> float:
        if self.dist is not None:
            return float(self.dist.quantile(p))
        if self.error_ms <= 0 or self.expected_ms <= 0:
            return self.expected_ms
        # moment-matched lognormal: positive and right-skewed, like service times
        return LogNormal(self.expected_ms, self.error_ms / self.expected_ms).quantile(p)

    def quantiles(self, ps=(0.5, 0.9, 0.95, 0.99)) -> dict[float, float]:
        return {p: self.quantile(p) for p in ps}


class _Welford:
    __slots__ = ("n", "mean", "m2")

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class _PoolStats:
    """Per-position online statistics of one model's pool (arrays for vector reads)."""

    _ARRAYS = (
        ("table_mean", np.nan),
        ("table_std", np.nan),
        ("on_mean", 0.0),
        ("on_std", 0.0),
        ("cold", True),
    )

    def __init__(self, cap: int):
        for name, fill in self._ARRAYS:
            setattr(self, name, np.full(cap, fill))
        # Welford accumulators, read only by learn(): plain lists are faster than arrays here
        self.count: list[float] = [0.0] * cap
        self.mean: list[float] = [0.0] * cap
        self.m2: list[float] = [0.0] * cap
        self.oracle_key = None  # (pool size, distribution) the cached oracle arrays were built for
        self.oracle_mean = self.oracle_std = None
        # ``cold``: positions with fewer than min_samples observations, whose
        # online prediction is the model-level fallback (applied when read)
        self.n_cold = 0

    def ensure(self, cap: int) -> None:
        if cap <= len(self.count):
            return
        for lst in (self.count, self.mean, self.m2):
            lst.extend([0.0] * (cap - len(lst)))
        for name, fill in self._ARRAYS:
            old = getattr(self, name)
            new = np.full(cap, fill, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)


def parse_lookup_table(table: Mapping[str, Any], field: str = "lookup_table") -> dict:
    """Validate ``{model: {mean_ms, std_ms, instances: {name: {mean_ms, std_ms}}}}``."""
    if not isinstance(table, Mapping) or not table:
        raise SpecError(field, table, "a mapping of model name to {mean_ms, std_ms}")
    out = {}
    for model, entry in table.items():
        where = f"{field}.{model}"
        if not isinstance(entry, Mapping):
            raise SpecError(where, entry, "a mapping with mean_ms and std_ms")
        out[str(model)] = {"instances": {}}
        for key in ("mean_ms", "std_ms"):
            if key in entry:
                out[str(model)][key] = _nonneg(entry[key], f"{where}.{key}")
        if "mean_ms" not in out[str(model)]:
            raise SpecError(f"{where}.mean_ms", None, "a number > 0")
        out[str(model)].setdefault("std_ms", 0.0)
        for name, ientry in (entry.get("instances") or {}).items():
            iwhere = f"{where}.instances.{name}"
            if not isinstance(ientry, Mapping) or "mean_ms" not in ientry:
                raise SpecError(iwhere, ientry, "a mapping with mean_ms and std_ms")
            out[str(model)]["instances"][str(name)] = (
                _nonneg(ientry["mean_ms"], f"{iwhere}.mean_ms"),
                _nonneg(ientry.get("std_ms", 0.0), f"{iwhere}.std_ms"),
            )
        unknown = set(entry) - {"mean_ms", "std_ms", "instances"}
        if unknown:
            k = sorted(unknown)[0]
            raise SpecError(f"{where}.{k}", entry[k], "only mean_ms, std_ms and instances")
    return out


def _nonneg(v, field) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SpecError(field, v, "a number >= 0") from None
    if not math.isfinite(x) or x < 0:
        raise SpecError(field, v, "a number >= 0")
    return x


class Predictor:
    """Predicts execution times per candidate instance, vectorised over a pool."""

    def __init__(
        self,
        mode: str = "online",
        *,
        prior_mean_ms: float = 100.0,
        prior_std_ms: float = 100.0,
        min_samples: int = 3,
        oracle: Mapping[str, Distribution | Mapping] | None = None,
        lookup_table: Mapping[str, Any] | None = None,
    ):
        self.prior_mean_ms = _nonneg(prior_mean_ms, "prior_mean_ms")
        self.prior_std_ms = _nonneg(prior_std_ms, "prior_std_ms")
        if int(min_samples) < 1:
            raise SpecError("min_samples", min_samples, "an integer >= 1")
        self.min_samples = int(min_samples)
        self.oracle: dict[str, Distribution] = {
            m: from_spec(d, f"oracle.{m}") for m, d in (oracle or {}).items()
        }
        self.table: dict = parse_lookup_table(lookup_table) if lookup_table else {}
        self._raw_table = dict(lookup_table) if lookup_table else None
        self._stats: dict[str, _PoolStats] = {}
        self._model_stats: dict[str, _Welford] = {}
        self._pools: dict[str, Any] = {}
        self.mode = "online"
        self.set_mode(mode)

    # -- configuration ---------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        mode = MODE_ALIASES.get(mode, mode)
        if mode not in PREDICT_MODES:
            raise UnknownPredictModeError(mode, list(PREDICT_MODES) + list(MODE_ALIASES))
        if mode == "lookup_table" and not self.table:
            raise SpecError("lookup_table", None, "a lookup table before mode 'lookup_table' can be used")
        self.mode = mode

    def config(self) -> dict:
        """The constructor arguments that rebuild this predictor (JSON-friendly)."""
        return {
            "mode": self.mode,
            "prior_mean_ms": self.prior_mean_ms,
            "prior_std_ms": self.prior_std_ms,
            "min_samples": self.min_samples,
            "oracle": {m: d.to_spec() for m, d in self.oracle.items()},
            "lookup_table": self._raw_table,
        }

    def set_lookup_table(self, table: Mapping[str, Any]) -> None:
        self.table = parse_lookup_table(table)
        self._raw_table = dict(table)
        for model, pool in self._pools.items():
            for inst in pool.instances:
                self._fill_table(model, inst)

    def set_oracle(self, model: str, dist: Distribution | Mapping) -> None:
        self.oracle[model] = from_spec(dist, f"oracle.{model}")

    # -- pool bookkeeping ------------------------------------------------------
    def attach(self, pool, inst) -> None:
        stats = self._stats.get(pool.model)
        if stats is None:
            stats = self._stats[pool.model] = _PoolStats(pool.capacity)
            self._pools[pool.model] = pool
        stats.ensure(pool.capacity)
        self._fill_table(pool.model, inst)
        stats.cold[inst.pos] = True
        stats.n_cold += 1

    def _fill_table(self, model: str, inst) -> None:
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
        self, pool, idx: np.ndarray | None, size_ms: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected execution time and its standard deviation at each selected position."""
        mode = self.mode
        if mode == "online":
            stats = self._stats[pool.model]
            if stats.n_cold == 0:  # every instance warm: a slice of the kept predictions
                if idx is None:
                    return stats.on_mean[: pool.n], stats.on_std[: pool.n]
                return stats.on_mean[idx], stats.on_std[idx]
        n = pool.n
        inv_speed = pool.inv_speed[:n] if idx is None else pool.inv_speed[idx]
        if mode == "clairvoyant":
            if size_ms is None:
                raise SpecError("size_ms", None, "the task's true size for the clairvoyant predictor")
            return size_ms * inv_speed, np.zeros_like(inv_speed)
        if mode == "oracle":
            return self._oracle_arrays(pool, idx)
        stats = self._stats[pool.model]
        if mode == "lookup_table":
            tm = stats.table_mean[:n] if idx is None else stats.table_mean[idx]
            ts = stats.table_std[:n] if idx is None else stats.table_std[idx]
            if not np.isnan(tm).any():
                return tm, ts
            # models absent from the table fall back to what was learned online
            om, os_ = self._online(pool, stats, idx, inv_speed)
            bad = np.isnan(tm)
            return np.where(bad, om, tm), np.where(bad, os_, ts)
        return self._online(pool, stats, idx, inv_speed)

    def _online(self, pool, stats, idx, inv_speed):
        # kept current by learn(): once every instance is warm, reading is a slice
        if idx is None:
            mean, std = stats.on_mean[: pool.n], stats.on_std[: pool.n]
        else:
            mean, std = stats.on_mean[idx], stats.on_std[idx]
        if stats.n_cold == 0:
            return mean, std
        cold = stats.cold[: pool.n] if idx is None else stats.cold[idx]
        fb_mean, fb_std = self._model_fallback(pool.model)
        return np.where(cold, fb_mean * inv_speed, mean), np.where(cold, fb_std * inv_speed, std)

    def _oracle_dist(self, model: str) -> Distribution:
        dist = self.oracle.get(model)
        if dist is None:
            raise SpecError(f"oracle.{model}", None, "the model's service-time distribution")
        return dist

    def _oracle_arrays(self, pool, idx):
        """True mean and standard deviation over each instance's speed, cached per pool size."""
        dist = self._oracle_dist(pool.model)
        stats = self._stats[pool.model]
        key = stats.oracle_key
        if key is None or key[0] != pool.n or key[1] is not dist:
            inv = pool.inv_speed[: pool.n]
            stats.oracle_mean, stats.oracle_std, stats.oracle_key = (
                dist.mean_ms * inv,
                dist.std_ms * inv,
                (pool.n, dist),
            )
        if idx is None:
            return stats.oracle_mean, stats.oracle_std
        return stats.oracle_mean[idx], stats.oracle_std[idx]

    def predict_one(self, pool, pos: int, size_ms: float | None = None) -> tuple[float, float]:
        """Scalar form of :meth:`predict` for one position (no array work)."""
        inv_speed = float(pool.inv_speed[pos])
        mode = self.mode
        if mode == "online" or mode == "lookup_table" and math.isnan(self._stats[pool.model].table_mean[pos]):
            stats = self._stats[pool.model]
            if stats.cold[pos]:
                fb_mean, fb_std = self._model_fallback(pool.model)
                return fb_mean * inv_speed, fb_std * inv_speed
            return float(stats.on_mean[pos]), float(stats.on_std[pos])
        if mode == "lookup_table":
            stats = self._stats[pool.model]
            return float(stats.table_mean[pos]), float(stats.table_std[pos])
        if mode == "oracle":
            dist = self._oracle_dist(pool.model)
            return dist.mean_ms * inv_speed, dist.std_ms * inv_speed
        m, s = self.predict(pool, np.array([pos]), size_ms)
        return float(m[0]), float(s[0])

    def prediction(self, pool, inst, size_ms: float | None = None, mean=None, std=None) -> Prediction:
        """A :class:`Prediction` for one instance (with the full distribution where known)."""
        if mean is None:
            m, s = self.predict(pool, np.array([inst.pos]), size_ms)
            mean, std = float(m[0]), float(s[0])
        dist = None
        if self.mode == "oracle":
            dist = self.oracle[pool.model].scaled(1.0 / inst.speed)
        return Prediction(float(mean), float(std), dist)

    # -- learning --------------------------------------------------------------
    def learn(self, pool, inst, execution_ms: float) -> None:
        """Learn one observed execution time (ms) of a task on ``inst``."""
        x = float(execution_ms)
        if not math.isfinite(x) or x < 0:
            return
        stats = self._stats[pool.model]
        p = inst.pos
        c = stats.count[p] + 1.0
        mean = stats.mean[p]
        d = x - mean
        mean += d / c
        m2 = stats.m2[p] + d * (x - mean)
        stats.count[p], stats.mean[p], stats.m2[p] = c, mean, m2
        ms = self._model_stats.get(pool.model)
        if ms is None:
            ms = self._model_stats[pool.model] = _Welford()
        # Welford update, inlined (this runs once per completed task): sizes normalised to speed 1
        y = x * inst.speed
        ms.n += 1
        dy = y - ms.mean
        ms.mean += dy / ms.n
        ms.m2 += dy * (y - ms.mean)
        if c >= self.min_samples:
            stats.on_mean[p] = mean
            stats.on_std[p] = math.sqrt(m2 / (c - 1.0)) if c > 1 else 0.0
            if stats.cold[p]:
                stats.cold[p] = False
                stats.n_cold -= 1

    def observations(self, model: str) -> int:
        ms = self._model_stats.get(model)
        return ms.n if ms else 0
