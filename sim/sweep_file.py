"""Sweep files: what ``python -m sim sweep SWEEP.yaml`` runs.

.. code-block:: yaml

    scenario: ../scenarios/demo.yaml   # a scenario file, or an inline scenario mapping
    grid:                              # dotted scenario fields, `load`, `strategies`, `predictor.mode`
      load: [0.5, 0.7, 0.9]
      strategies: [[shortest_queue], [power_of_two]]
    replications: 5                    # per point (default: the scenario's)
    tasks: 20000                       # arrivals per replication (default: the scenario's)
    keep: summary                      # or `tasks`: per-task rows of every run too

A relative ``scenario`` path is looked up next to the sweep file first, then
in the current folder; an inline scenario's own relative paths (traces,
lookup tables) resolve next to the sweep file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler import SpecError

from .grid import grid_points
from .scenario import Scenario
from .scenario.checks import read_yaml
from .sweep_units import KEEP

__all__ = ["SweepSpec", "load_sweep"]

KEYS = ("scenario", "grid", "replications", "tasks", "keep")


@dataclass
class SweepSpec:
    """A parsed sweep file: ``scenario`` is a validated :class:`sim.Scenario`."""

    scenario: Any
    grid: dict[str, list]
    replications: int | None
    tasks: int | None
    keep: str
    path: Path


def _positive_int(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(field, value, "an integer >= 1")
    return value


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (every grid point is validated later, by :func:`sim.sweep`)."""
    p = Path(path)
    data = read_yaml(p, "sweep", "YAML sweep file")
    if not isinstance(data, Mapping):
        raise SpecError("sweep", data, f"a mapping with keys {', '.join(KEYS)}")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise SpecError(f"sweep.{unknown[0]}", data[unknown[0]], f"one of the keys {', '.join(KEYS)}")
    here = p.resolve().parent
    source = data.get("scenario")
    if isinstance(source, Mapping):
        scenario = Scenario.from_dict(source, here, p.stem)
    elif isinstance(source, str) and source:
        candidates = [here / source, Path.cwd() / source]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise SpecError(
                "sweep.scenario",
                source,
                f"a scenario file (looked for {candidates[0]} and {candidates[1]}) or an inline mapping",
            )
        scenario = Scenario.load(found)
    else:
        raise SpecError("sweep.scenario", source, "a scenario file path or an inline scenario mapping")
    grid = data.get("grid")
    try:
        grid_points(grid)  # type: ignore[arg-type]
    except ValueError as e:
        raise SpecError("sweep.grid", grid, f"a valid grid ({e})") from None
    keep = data.get("keep", "summary")
    if keep not in KEEP:
        raise SpecError("sweep.keep", keep, " or ".join(KEEP))
    return SweepSpec(
        scenario=scenario,
        grid={k: list(v) for k, v in grid.items()},  # type: ignore[union-attr]
        replications=_positive_int("sweep.replications", data.get("replications")),
        tasks=_positive_int("sweep.tasks", data.get("tasks")),
        keep=keep,
        path=p,
    )
