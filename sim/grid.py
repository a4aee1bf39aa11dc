"""A sweep's grid: the points (the cartesian product of the values), the scenario of each
point, and the offered load (the special key ``load``); see :mod:`sim.sweep`."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .scenario import load_scenario

LOAD_KEY = "load"


# -- offered load -------------------------------------------------------------------


def _mean_rate_per_s(arrival: Mapping[str, Any]) -> float:
    process = arrival.get("process", "poisson")
    if process in ("poisson", "deterministic"):
        return float(arrival["rate_per_s"])
    if process == "bursty":
        # Markov-modulated Poisson process with the same mean dwell in every
        # state and the next state uniform among the others (sim.engine): each
        # state is occupied equally often, so the mean rate is the rates' mean
        rates = [float(r) for r in arrival["rates_per_s"]]
        return sum(rates) / len(rates)
    raise ValueError(
        f"workload.arrival.process {process!r}: the offered load is defined for "
        f"poisson, deterministic and bursty arrivals (a trace is replayed as recorded)"
    )


def _scale_rate(arrival: dict, factor: float) -> None:
    process = arrival.get("process", "poisson")
    if process in ("poisson", "deterministic"):
        arrival["rate_per_s"] = float(arrival["rate_per_s"]) * factor
    elif process == "bursty":
        arrival["rates_per_s"] = [float(r) * factor for r in arrival["rates_per_s"]]
    else:
        _mean_rate_per_s(arrival)  # raises the explanatory error


def model_loads(scenario: Any) -> dict[str, float]:
    """Offered load of each model's pool of instances (dimensionless).

    ``scenario``: a :class:`sim.Scenario`, a scenario dict or a YAML path.
    For model m: rho_m = lambda * mix_m * E[S_m] / capacity_m, where lambda is
    the mean arrival rate (per ms), mix_m the model's share of arrivals, E[S_m]
    the mean of its service-time distribution (ms; a task's size at speed 1)
    and capacity_m the sum of ``replicas * speed`` over its instances.
    Models with a zero share are left out.
    """
    scn = load_scenario(scenario)
    if scn.trace is not None:
        _mean_rate_per_s(scn.arrival)  # raises: a trace has no offered load to set
    lam_per_ms = _mean_rate_per_s(scn.arrival) / 1000.0
    capacity: dict[str, float] = {}
    for inst in scn.instances:
        capacity[inst.model] = capacity.get(inst.model, 0.0) + inst.replicas * inst.speed
    return {
        m: lam_per_ms * share * scn.distributions[m].mean_ms / capacity[m]
        for m, share in scn.mix.items()
        if share > 0
    }


def offered_load(scenario: Any) -> float:
    """The scenario's offered load: the largest per-model load (:func:`model_loads`).

    With one model this is lambda * E[S] / total capacity, capacity = sum of
    replicas * speed over all instances.  With several models it is the load
    of the busiest model's pool, since each model's tasks can only use that
    model's instances; when the instances are provisioned in proportion to the
    mix's work (lambda * mix_m * E[S_m]) every model has this same load, and it
    equals the work-weighted total lambda * sum_m mix_m E[S_m] / total capacity.
    A load >= 1 means the busiest pool cannot keep up: its queue grows with
    every arrival.
    """
    return max(model_loads(scenario).values())


def set_offered_load(scenario: Any, load: float) -> dict:
    """A scenario dict like ``scenario`` with the arrival rate(s) scaled so that
    :func:`offered_load` equals ``load`` (the mix, and a bursty process's
    shape, are kept)."""
    if isinstance(load, bool) or not isinstance(load, (int, float)) or not (load > 0 and math.isfinite(load)):
        raise ValueError(f"load: expected a number > 0 (the offered load, e.g. 0.9), got {load!r}")
    scn = load_scenario(scenario)
    current = offered_load(scn)
    out = scn.to_dict()
    _scale_rate(out["workload"]["arrival"], float(load) / current)
    return out


# -- grid -------------------------------------------------------------------------


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` as a list of {key: value} dicts (first key varies slowest)."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            "grid: expected a non-empty mapping of dotted path to a list of values, "
            "e.g. {'workload.arrival.rate_per_s': [40, 60]}"
        )
    keys = list(grid)
    values = []
    for k in keys:
        if not isinstance(k, str) or not k:
            raise ValueError(f"grid: keys must be dotted paths (strings), got {k!r}")
        v = grid[k]
        if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Sequence) or len(v) == 0:
            raise ValueError(f"grid.{k}: expected a non-empty list of values, got {v!r}")
        values.append(list(v))
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def grid_label(value: Any) -> Any:
    """A hashable, readable cell for a grid value: scalars as they are, anything else as JSON text."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:
        return str(value)


def point_scenario(base, point: Mapping[str, Any]):
    """The validated scenario of one grid point (overrides first, then ``load``)."""
    overrides = {k: v for k, v in point.items() if k != LOAD_KEY}
    scn = base.with_changes(overrides) if overrides else base
    if LOAD_KEY in point:
        scn = type(base).from_dict(set_offered_load(scn, point[LOAD_KEY]), scn.base_dir)
    return scn
