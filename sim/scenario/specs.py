"""The value objects a scenario is made of: one strategy to run, one simulated instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StrategySpec:
    """One strategy to run: a registered name and its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name shown in results: ``weighted(w=2)`` when parameters are given."""
        if not self.params:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"

    def to_dict(self) -> dict:
        return {"name": self.name, "params": dict(self.params)}


@dataclass(frozen=True)
class InstanceSpec:
    """One simulated task instance (one entry of the expanded ``instances`` list)."""

    instance_id: str
    model: str
    replicas: int
    speed: float
