"""A scenario's trace: a trace file (read by :mod:`sim.trace_files`, whose docstring lists the
formats) cut to a window, sped up, its rows mapped to the scenario's models; the options of
``workload.arrival: {process: trace, ...}`` validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scheduler import SpecError

from .trace_files import FORMATS, TRACE_OPTIONS, RawTrace, detect_format, read_raw

__all__ = [
    "FORMATS",
    "TRACE_OPTIONS",
    "RawTrace",
    "Trace",
    "apply_window",
    "detect_format",
    "load_trace",
    "map_models",
    "read_raw",
]


# -- options and model mapping ---------------------------------------------------------------
def apply_window(
    raw: RawTrace, speedup: float, start_s: float, duration_s: float | None, max_tasks: int | None
) -> RawTrace:
    """The rows of the window, arrival ms from the window's start divided by ``speedup``."""
    t = raw.arrival_ms
    keep = t >= start_s * 1000.0
    if duration_s is not None:
        keep &= t < (start_s + duration_s) * 1000.0
    idx = np.flatnonzero(keep)
    if max_tasks is not None:
        idx = idx[:max_tasks]
    if idx.size == len(raw) and speedup == 1.0:
        return raw
    return RawTrace(
        raw.format,
        (t[idx] - start_s * 1000.0) / speedup,
        raw.service_ms[idx] if raw.service_ms is not None else None,
        {k: v[idx] for k, v in raw.tokens.items()},
        raw.source[idx] if raw.source is not None else None,
        raw.sources,
    )


def map_models(raw: RawTrace, spec: Any, models: Mapping, rng_seed: int, where: str) -> np.ndarray:
    """Scenario-model codes (int32, index into ``models``) of every row.

    ``spec`` is ``None`` (the trace's model column when it names scenario models,
    else the only scenario model), a model name, a mapping from the trace's
    model names, or ``{mix: {model: probability}}`` drawn with the scenario's seed.
    """
    names = list(models)
    code = {m: k for k, m in enumerate(names)}
    n = len(raw)
    if isinstance(spec, str):
        if spec not in code:
            raise SpecError(where, spec, f"a declared model; models: {', '.join(names)}")
        return np.full(n, code[spec], dtype=np.int32)
    if isinstance(spec, Mapping) and set(spec) == {"mix"}:
        return _mix_codes(spec["mix"], names, n, rng_seed, f"{where}.mix")
    mapping: dict[str, str] = {}
    if spec is not None:
        if not isinstance(spec, Mapping) or not spec:
            raise SpecError(
                where, spec, "a model name, a mapping {trace model: model} or {mix: {model: probability}}"
            )
        for k, v in spec.items():
            if v not in code:
                raise SpecError(f"{where}.{k}", v, f"a declared model; models: {', '.join(names)}")
        mapping = {str(k): str(v) for k, v in spec.items()}
    if raw.source is None:
        if mapping:
            raise SpecError(
                where, spec, f"a model name or {{mix: ...}}: a {raw.format} trace has no model column"
            )
        if len(names) == 1:
            return np.zeros(n, dtype=np.int32)
        raise SpecError(
            where,
            None,
            f"which model the rows become (a {raw.format} trace has no model column): one of {', '.join(names)} or {{mix: {{model: probability}}}}",
        )
    per_source = []
    for s in raw.sources:
        target = mapping.get(s, s if s in code else (names[0] if len(names) == 1 and not mapping else None))
        if target is None:
            raise SpecError(
                where if mapping else "workload.arrival.file",
                f"trace model {s!r}",
                f"models declared under models ({', '.join(names)}), or a mapping in "
                "workload.arrival.models from each trace model to one of them",
            )
        per_source.append(code[target])
    table = np.array(per_source, dtype=np.int32)
    return table[raw.source] if n else np.zeros(0, dtype=np.int32)


def _mix_codes(mix: Any, names: list[str], n: int, seed: int, where: str) -> np.ndarray:
    if not isinstance(mix, Mapping) or not mix:
        raise SpecError(where, mix, "a mapping of model name to probability")
    probs = np.zeros(len(names))
    for m, p in mix.items():
        if m not in names:
            raise SpecError(f"{where}.{m}", p, f"a declared model; models: {', '.join(names)}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 0:
            raise SpecError(f"{where}.{m}", p, "a probability >= 0")
        probs[names.index(m)] = float(p)
    if abs(probs.sum() - 1.0) > 1e-6:
        raise SpecError(where, dict(mix), f"probabilities summing to 1; sum is {probs.sum():g}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x7ACE,)))
    return rng.choice(len(names), size=n, p=probs / probs.sum()).astype(np.int32)


# -- the scenario's trace ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Trace:
    """A trace ready to replay: arrivals (ms), scenario models, sizes if recorded, token counts,
    and the trace's own model names (``source``) where it has a model column."""

    arrival_ms: np.ndarray
    model_code: np.ndarray  # int32 index into ``models``
    models: tuple[str, ...]
    service_ms: np.ndarray | None
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    source: np.ndarray | None = None  # int32 index into ``sources``
    sources: tuple[str, ...] = ()
    format: str = "csv"

    @property
    def model(self) -> np.ndarray:
        """Model name of every row (an object array referring to the few name strings)."""
        return np.array(self.models, dtype=object)[self.model_code]

    def __len__(self) -> int:
        return int(self.arrival_ms.size)


def _opt_num(arrival: Mapping, key: str, default: Any, *, positive: bool) -> Any:
    if key not in arrival or arrival[key] is None:
        return default
    v = arrival[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    if not ok or (v <= 0 if positive else v < 0):
        raise SpecError(f"workload.arrival.{key}", v, "a number > 0" if positive else "a number >= 0")
    return float(v)


def load_trace(arrival: Mapping, path: Path, models: Mapping, seed: int) -> tuple[dict, Trace]:
    """Validate a trace arrival's options, read its file and map its rows to scenario models.

    Returns the normalised options (``format`` resolved, defaults filled in) and the trace.
    """
    where = "workload.arrival"
    fmt = arrival.get("format", "auto")
    if fmt not in ("auto",) + FORMATS:
        raise SpecError(f"{where}.format", fmt, "one of auto, " + ", ".join(FORMATS))
    keep_failed = arrival.get("keep_failed", False)
    if not isinstance(keep_failed, bool):
        raise SpecError(f"{where}.keep_failed", keep_failed, "true or false")
    speedup = _opt_num(arrival, "speedup", 1.0, positive=True)
    start_s = _opt_num(arrival, "start_s", 0.0, positive=False)
    duration_s = _opt_num(arrival, "duration_s", None, positive=True)
    max_tasks = arrival.get("max_tasks")
    if max_tasks is not None and (
        isinstance(max_tasks, bool) or not isinstance(max_tasks, (int, np.integer)) or max_tasks < 1
    ):
        raise SpecError(f"{where}.max_tasks", max_tasks, "an integer >= 1")
    full = read_raw(path, fmt, keep_failed=keep_failed, where=f"{where}.file")
    raw = apply_window(full, speedup, start_s, duration_s, None if max_tasks is None else int(max_tasks))
    if len(raw) == 0:
        span = float(full.arrival_ms[-1]) / 1000.0
        raise SpecError(
            f"{where}.start_s", start_s, f"a window holding at least one row (the trace spans {span:.3f} s)"
        )
    codes = map_models(raw, arrival.get("models"), models, seed, f"{where}.models")
    out = {
        "format": raw.format,
        "speedup": speedup,
        "start_s": start_s,
        "duration_s": duration_s,
        "max_tasks": None if max_tasks is None else int(max_tasks),
        "models": _plain_models(arrival.get("models")),
        "keep_failed": keep_failed,
    }
    trace = Trace(
        raw.arrival_ms, codes, tuple(models), raw.service_ms, raw.tokens, raw.source, raw.sources, raw.format
    )
    return out, trace


def _plain_models(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        return {str(k): _plain_models(v) for k, v in spec.items()}
    return spec
