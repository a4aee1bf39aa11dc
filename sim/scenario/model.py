"""The :class:`Scenario` object: a validated scenario, loaded from YAML or a dict, changed by
dotted-path overrides; :func:`load_scenario` and :func:`resize`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scheduler import Distribution, SpecError
from scheduler.core.tokens import TokenService

from .. import network as _network
from ..traces import Trace
from .checks import read_yaml
from .overrides import apply_overrides
from .specs import InstanceSpec, StrategySpec
from .validate import validate


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario.  Equality compares the normalised dict only."""

    spec: dict
    base_dir: Path
    distributions: dict[str, Distribution]
    instances: tuple[InstanceSpec, ...]
    strategies: tuple[StrategySpec, ...]
    lookup_table: dict | None
    trace: Trace | None
    token_models: dict[str, TokenService] = field(default_factory=dict)
    token_dists: dict[str, Distribution] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    class_of: np.ndarray | None = None  # class code per [trace model, model] (see sim.slo)

    # convenient reads of the normalised dict
    name = property(lambda self: self.spec["name"])
    seed = property(lambda self: self.spec["seed"])
    replications = property(lambda self: self.spec["replications"])
    tasks = property(lambda self: self.spec["tasks"])
    duration_s = property(lambda self: self.spec["duration_s"])
    warmup_tasks = property(lambda self: self.spec["warmup_tasks"])
    slo_ms = property(lambda self: self.spec["slo_ms"])
    slo = property(lambda self: self.spec["slo"])
    classes = property(lambda self: self.spec["classes"])
    predictor = property(lambda self: self.spec["predictor"])
    arrival = property(lambda self: self.spec["workload"]["arrival"])
    mix = property(lambda self: self.spec["workload"]["mix"])
    network = property(lambda self: _network.network_of(self.spec.get("network")))

    @property
    def has_classes(self) -> bool:
        """Whether results carry a ``class`` column: classes or per-class SLOs are declared,
        or a public-format trace is replayed."""
        return bool(self.spec["classes"] or self.spec["slo"]) or (
            self.trace is not None and self.trace.format != "csv"
        )

    @property
    def model_names(self) -> list[str]:
        return list(self.spec["models"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and self.spec == other.spec

    def __repr__(self) -> str:
        return (
            f"Scenario({self.name!r}, {len(self.instances)} instances, "
            f"strategies={[s.label for s in self.strategies]}, replications={self.replications})"
        )

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: str | Path | None = None, default_name: str = "scenario"
    ) -> Scenario:
        """Validate ``data``; relative file paths resolve against ``base_dir`` (default: cwd)."""
        return cls(**validate(data, Path(base_dir or ".").resolve(), default_name))

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read and validate a YAML scenario file."""
        p = Path(path)
        data = read_yaml(p, "scenario", "YAML file")
        return cls.from_dict(data if data is not None else {}, p.resolve().parent, p.stem)

    # -- changes -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The normalised dict (a deep copy); ``from_dict`` of it gives an equal scenario."""
        return copy.deepcopy(self.spec)

    def with_changes(self, overrides: Mapping[str, Any]) -> Scenario:
        """A new, re-validated scenario with dotted-path overrides applied (see :func:`apply_overrides`)."""
        return Scenario.from_dict(apply_overrides(self.spec, overrides), self.base_dir)

    def replace(self, **changes: Any) -> Scenario:
        """Keyword form of :meth:`with_changes`: ``s.replace(**{"workload.arrival.rate_per_s": 80})``."""
        return self.with_changes(changes)


def load_scenario(source: str | Path | Mapping | Scenario, base_dir: str | Path | None = None) -> Scenario:
    """A :class:`Scenario` from a YAML path, a dict or a scenario (returned as is)."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return Scenario.from_dict(source, base_dir)
    return Scenario.load(source)


def resize(
    scn: Scenario, tasks: int | None = None, warmup_tasks: int | None = None
) -> tuple[Scenario, str | None]:
    """``scn`` with ``tasks`` arrivals and ``warmup_tasks`` warm-up (each ``None``: keep), and a note.

    ``tasks`` replaces ``duration_s``.  Given ``tasks`` alone, the warm-up is
    kept unless it would leave fewer than half the tasks measured; then it
    shrinks to the scenario's own warm-up fraction of the new count (10% when
    the scenario counts by duration), and the note says so.  An explicit
    ``warmup_tasks`` is taken as given (and must be below the tasks).
    """
    for where, value in (("--tasks", tasks), ("--warmup-tasks", warmup_tasks)):
        low = 1 if where == "--tasks" else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise SpecError(where, value, f"an integer >= {low}")
    changes: dict[str, Any] = {}
    note = None
    if tasks is not None:
        changes["tasks"], changes["duration_s"] = tasks, None
    if warmup_tasks is not None:
        changes["warmup_tasks"] = warmup_tasks
        limit = tasks if tasks is not None else scn.tasks
        if limit is not None and warmup_tasks >= limit:
            raise SpecError("--warmup-tasks", warmup_tasks, f"an integer below the number of tasks ({limit})")
    elif tasks is not None and scn.warmup_tasks > tasks // 2:
        fraction = scn.warmup_tasks / scn.tasks if scn.tasks else 0.1
        changes["warmup_tasks"] = min(int(tasks * fraction), tasks // 2)
        note = (
            f"warm-up cut to {changes['warmup_tasks']} of {tasks} tasks (the scenario's "
            f"{scn.warmup_tasks} would leave too few); --warmup-tasks sets it"
        )
    return (scn.with_changes(changes) if changes else scn), note
