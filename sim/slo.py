"""Task classes and per-class latency targets (SLOs).

A task's class comes from, in order: ``classes[trace model]`` (the trace's own
model column, e.g. BurstGPT's ``Model``), ``classes[model]`` (the scenario
model), the trace model name, the scenario model name.  ``slo: {class:
{latency_ms: X}}`` sets a target per class; ``slo_ms`` is the target of every
class without its own.  A class with no target is left out of attainment
(never counted as meeting it) and out of goodput.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scheduler import SpecError

SLO_KEYS = ("latency_ms",)


def parse_classes(value: Any, names: Sequence[str]) -> dict[str, str]:
    """``classes``: scenario or trace model name -> class name."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError("classes", value, "a mapping of model name to class name")
    out = {}
    for k, v in value.items():
        if str(k) not in names:
            raise SpecError(f"classes.{k}", v, f"a model of the scenario or the trace: {', '.join(names)}")
        if not isinstance(v, str) or not v:
            raise SpecError(f"classes.{k}", v, "a non-empty class name")
        out[str(k)] = v
    return out


def parse_slo(value: Any, known: Sequence[str]) -> dict[str, dict]:
    """``slo``: class name -> ``{latency_ms}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError("slo", value, "a mapping of class name to {latency_ms: X}")
    out = {}
    for cls, entry in value.items():
        where = f"slo.{cls}"
        if cls not in known:
            raise SpecError(where, entry, f"a task class; classes: {', '.join(known)}")
        if not isinstance(entry, Mapping) or set(entry) != set(SLO_KEYS):
            raise SpecError(where, entry, "a mapping {latency_ms: X}")
        v = entry["latency_ms"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise SpecError(f"{where}.latency_ms", v, "a number > 0")
        out[str(cls)] = {"latency_ms": float(v)}
    return out


def class_table(
    classes: Mapping[str, str], models: Sequence[str], sources: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and the class code of each model (``table[model]``) or, when a trace has
    a model column, of each (trace model, model) pair (``table[source, model]``)."""
    names: dict[str, int] = {}
    if not sources:
        table = np.array([names.setdefault(classes.get(m, m), len(names)) for m in models], dtype=np.int32)
        return tuple(names), table.reshape(1, -1)
    pair = np.empty((len(sources), len(models)), dtype=np.int32)
    for s_i, s in enumerate(sources):
        for m_i, m in enumerate(models):
            cls = classes.get(s) or classes.get(m) or s
            pair[s_i, m_i] = names.setdefault(cls, len(names))
    return tuple(names), pair


def targets(class_names: Sequence[str], slo: Mapping[str, Mapping], slo_ms: float | None) -> np.ndarray:
    """Latency target per class code (NaN: no target)."""
    default = math.nan if slo_ms is None else float(slo_ms)
    return np.array([slo[c]["latency_ms"] if c in slo else default for c in class_names], dtype=float)
