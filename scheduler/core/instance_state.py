"""One task instance as the core sees it, and the wait estimate it reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .distributions import normal_quantile

if TYPE_CHECKING:
    from .queues import Pool


class InstanceState:
    """One task instance as the core sees it.  ``pos`` indexes its pool's arrays."""

    __slots__ = (
        "instance_id",
        "model",
        "replicas",
        "speed",
        "name",
        "pool",
        "pos",
        "running",
        "pending",
        "free_slots",
        "active",
        "healthy",
        "meta",
        "pend_mean",
        "pend_var",
        "run_var",
    )

    def __init__(
        self,
        instance_id: str,
        model: str,
        replicas: int,
        speed: float,
        name: str,
        pool: Pool,
        pos: int,
        meta: dict[str, Any],
    ):
        self.instance_id: str = instance_id
        self.model: str = model
        self.replicas: int = replicas
        self.speed: float = speed
        self.name: str = name
        self.pool: Pool = pool
        self.pos: int = pos
        self.running: dict[str, tuple[int, float, float]] = {}  # task_id -> (slot, variance, mean)
        self.pending: dict[str, tuple[float, float]] = {}  # task_id -> (mean, variance), FIFO order
        self.free_slots: list[int] = list(range(replicas - 1, -1, -1))
        # Python-side sums, mirrored into the pool's arrays (writes only, no array reads)
        self.pend_mean = 0.0
        self.pend_var = 0.0
        self.run_var = 0.0
        self.active = True  # False once removed: takes no new tasks, drains the old
        self.healthy = True
        self.meta: dict[str, Any] = meta

    @property
    def in_flight(self) -> int:
        return len(self.running) + len(self.pending)

    @property
    def available(self) -> bool:
        return self.active and self.healthy

    def __repr__(self) -> str:
        return (
            f"InstanceState({self.instance_id!r}, model={self.model!r}, "
            f"replicas={self.replicas}, running={len(self.running)}, pending={len(self.pending)})"
        )


@dataclass(frozen=True)
class WaitEstimate:
    """The wait a new task would see on one instance (ms)."""

    mean_ms: float
    std_ms: float

    def quantile(self, p: float) -> float:
        if self.std_ms == 0:
            return self.mean_ms
        return max(0.0, self.mean_ms + normal_quantile(p) * self.std_ms)
