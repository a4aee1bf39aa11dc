"""The instances a :class:`~.scheduler.Scheduler` knows: joining, leaving, health, lookups
(a part of the scheduler facade)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from .errors import SpecError, UnknownInstanceError
from .instance_state import InstanceState
from .predictor import Predictor
from .queues import Pool
from .validate import check_integer, check_number


def _check_model(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise SpecError("model", model, "a non-empty string")
    return model


class InstanceRegistry:
    """The scheduler's instances, per model in a :class:`~.queues.Pool` (the queue estimates)."""

    predictor: Predictor
    _pools: dict[str, Pool]
    _instances: dict[str, InstanceState]
    _instance_counter: itertools.count[int]
    _emit: Callable[[dict[str, Any]], None]

    def add_instance(
        self,
        model: str,
        *,
        instance_id: str | None = None,
        replicas: int = 1,
        speed: float = 1.0,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        model = _check_model(model)
        replicas = check_integer("replicas", replicas, low=1)
        speed = check_number("speed", speed, low=0.0, low_open=True)
        if instance_id is None:
            instance_id = f"{model}-{next(self._instance_counter)}"
            while instance_id in self._instances:
                instance_id = f"{model}-{next(self._instance_counter)}"
        elif instance_id in self._instances:
            raise SpecError("instance_id", instance_id, "an id not already registered")
        pool = self._pools.get(model)
        if pool is None:
            pool = self._pools[model] = Pool(model)
        inst = InstanceState(
            instance_id, model, replicas, float(speed), name or instance_id, pool, -1, dict(meta or {})
        )
        pool.add(inst)
        self.predictor.attach(pool, inst)
        self._instances[instance_id] = inst
        self._emit(
            {
                "event": "add_instance",
                "instance_id": instance_id,
                "model": model,
                "replicas": replicas,
                "speed": float(speed),
                "name": inst.name,
            }
        )
        return instance_id

    def _instance(self, instance_id: str) -> InstanceState:
        inst = self._instances.get(instance_id)
        if inst is None:
            raise UnknownInstanceError(instance_id)
        return inst

    def remove_instance(self, instance_id: str) -> int:
        """Stop sending tasks to an instance.  Its tasks still complete and are
        recorded.  Returns how many tasks it still has."""
        inst = self._instance(instance_id)
        if not inst.active:
            raise UnknownInstanceError(instance_id)
        inst.active = False
        inst.pool.refresh_availability()
        self._emit({"event": "remove_instance", "instance_id": instance_id})
        return inst.in_flight

    def set_healthy(self, instance_id: str, healthy: bool) -> None:
        """An unhealthy instance gets no new tasks until it is healthy again."""
        inst = self._instance(instance_id)
        if inst.healthy != bool(healthy):
            inst.healthy = bool(healthy)
            inst.pool.refresh_availability()
            self._emit({"event": "set_healthy", "instance_id": instance_id, "healthy": bool(healthy)})

    def has_instance(self, instance_id: str, *, active_only: bool = True) -> bool:
        inst = self._instances.get(instance_id)
        return inst is not None and (inst.active or not active_only)

    def instance(self, instance_id: str) -> InstanceState:
        return self._instance(instance_id)

    def instance_ids(self, model: str | None = None, *, active_only: bool = True) -> list[str]:
        return [
            i.instance_id
            for i in self._instances.values()
            if (model is None or i.model == model) and (i.active or not active_only)
        ]

    def models(self) -> list[str]:
        return sorted(m for m, p in self._pools.items() if any(i.active for i in p.instances))
