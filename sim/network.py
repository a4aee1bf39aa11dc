"""The dispatch path: a scenario's ``network`` key, parsed and drawn.

``network: {dispatch_ms: <dist>, notify_ms: <dist>}`` gives two delays per task,
each a service-time-style distribution (docs/scenarios.md):

- ``dispatch_ms``: from the scheduler's decision until the instance has the task
  (live: the ``/queue/enqueue`` hop); the simulated instance queues the task only
  then;
- ``notify_ms``: from the end of execution until the scheduler hears of it
  (live: the ``/notify/task_complete`` callback); the core's ``complete`` is called
  only then, so its queue estimates are as stale as live ones.

Both default to zero.  A delay that is identically zero is no delay at all: the
engine then takes exactly the path it takes without ``network`` (same events in
the same order), so every result without delays stays bit for bit the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler import Distribution, SpecError, from_spec

NETWORK_KEYS = ("dispatch_ms", "notify_ms")
ZERO = {"dist": "deterministic", "value_ms": 0.0}


@dataclass(frozen=True)
class Network:
    """The two delay distributions; ``None`` where the delay is identically zero."""

    dispatch: Distribution | None = None
    notify: Distribution | None = None

    @property
    def is_zero(self) -> bool:
        return self.dispatch is None and self.notify is None

    def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Per-task delays (ms) of ``n`` tasks: ``{"dispatch_ms": ..., "notify_ms": ...}``, only the
        non-zero ones.  Dispatch is drawn first, then notify, from the one stream."""
        out = {}
        for key, dist in (("dispatch_ms", self.dispatch), ("notify_ms", self.notify)):
            if dist is not None:
                out[key] = np.asarray(dist.sample(rng, n), dtype=float)
        return out


def parse_network(value: Any) -> dict | None:
    """The normalised ``network`` spec (both keys, zero filled in), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(
            "network", value, "a mapping {dispatch_ms: <distribution>, notify_ms: <distribution>}"
        )
    unknown = [k for k in value if k not in NETWORK_KEYS]
    if unknown:
        raise SpecError(
            f"network.{unknown[0]}", value[unknown[0]], "one of the keys " + ", ".join(NETWORK_KEYS)
        )
    out = {}
    for key in NETWORK_KEYS:
        spec = value.get(key, ZERO)
        if not isinstance(spec, Mapping):
            raise SpecError(
                f"network.{key}", spec, "a distribution such as {dist: lognormal, mean_ms: 1.5, cv: 0.5}"
            )
        dist = from_spec(spec, field=f"network.{key}")
        out[key] = dist.to_spec()
    return out


def network_of(spec: Mapping | None) -> Network:
    """The :class:`Network` of a normalised ``network`` spec (None: no delays)."""
    if spec is None:
        return Network()
    dists = [from_spec(spec[key], field=f"network.{key}") for key in NETWORK_KEYS]
    return Network(*(None if _is_zero(d) else d for d in dists))


def _is_zero(dist: Distribution) -> bool:
    return dist.mean_ms == 0.0 and dist.std_ms == 0.0
