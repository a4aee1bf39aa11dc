"""Lookup tables: mean and standard deviation per model (and per instance name), and
optionally the service-time shape (``dist``, ``cv``) for residual life."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .distributions import Distribution, Exponential, Gamma, LogNormal
from .errors import SpecError
from .validate import check_number


def parse_lookup_table(table: Mapping[str, Any], field: str = "lookup_table") -> dict[str, Any]:
    """Validate ``{model: {mean_ms, std_ms, dist, cv, instances: {name: {mean_ms, std_ms}}}}``
    (``dist`` and ``cv``, optional, name the service-time shape for residual life)."""
    if not isinstance(table, Mapping) or not table:
        raise SpecError(field, table, "a mapping of model name to {mean_ms, std_ms}")
    out: dict[str, Any] = {}
    for model, entry in table.items():
        where = f"{field}.{model}"
        if not isinstance(entry, Mapping):
            raise SpecError(where, entry, "a mapping with mean_ms and std_ms")
        out[str(model)] = {"instances": {}}
        for key in ("mean_ms", "std_ms"):
            if key in entry:
                out[str(model)][key] = check_number(f"{where}.{key}", entry[key], low=0.0)
        if "mean_ms" not in out[str(model)]:
            raise SpecError(f"{where}.mean_ms", None, "a number > 0")
        out[str(model)].setdefault("std_ms", 0.0)
        for name, ientry in (entry.get("instances") or {}).items():
            iwhere = f"{where}.instances.{name}"
            if not isinstance(ientry, Mapping) or "mean_ms" not in ientry:
                raise SpecError(iwhere, ientry, "a mapping with mean_ms and std_ms")
            out[str(model)]["instances"][str(name)] = (
                check_number(f"{iwhere}.mean_ms", ientry["mean_ms"], low=0.0),
                check_number(f"{iwhere}.std_ms", ientry.get("std_ms", 0.0), low=0.0),
            )
        unknown = set(entry) - {"mean_ms", "std_ms", "instances", "dist", "cv"}
        if unknown:
            k = sorted(unknown)[0]
            raise SpecError(f"{where}.{k}", entry[k], "only mean_ms, std_ms, dist, cv and instances")
        out[str(model)]["shape"] = lookup_shape({**entry, **out[str(model)]}, where)
    return out


LOOKUP_FAMILIES = ("deterministic", "exponential", "lognormal", "gamma")


def lookup_shape(entry: Mapping[str, Any], where: str) -> Distribution | None:
    """The unit-mean shape of a lookup table entry's optional ``dist`` (and ``cv``,
    else ``std_ms / mean_ms``), or ``None`` without one (the countdown)."""
    kind = entry.get("dist")
    if kind is None:
        if "cv" in entry:
            raise SpecError(f"{where}.cv", entry["cv"], "a cv only together with dist")
        return None
    if kind not in LOOKUP_FAMILIES:
        raise SpecError(f"{where}.dist", kind, "one of " + ", ".join(LOOKUP_FAMILIES))
    if kind == "deterministic":
        return None  # no spread: the countdown is exact
    if kind == "exponential":
        return Exponential(1.0)
    if "cv" in entry:
        cv = check_number(f"{where}.cv", entry["cv"], low=0.0)
    else:
        mean, std = float(entry["mean_ms"]), float(entry.get("std_ms", 0.0))
        cv = std / mean if mean > 0 else 0.0
    if cv == 0:
        return None
    return LogNormal(1.0, cv) if kind == "lognormal" else Gamma(1.0, cv)
