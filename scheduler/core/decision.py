"""What the facade hands out about a decision, and the checks around a strategy's choice."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .instance_state import InstanceState
    from .queues import Pool


@dataclass(slots=True)
class Decision:
    """Where a task went and what the core expected there."""

    task_id: str
    model: str
    instance_id: str
    strategy: str
    now_ms: float
    predicted_ms: float
    predicted_error_ms: float
    candidates: int
    wait_ms: float | None = None  # expected wait there, when the strategy looked at it


@dataclass(frozen=True)
class QueueInfo:
    model: str
    instance_id: str
    name: str
    replicas: int
    speed: float
    running: int
    pending: int
    wait_mean_ms: float
    wait_std_ms: float
    active: bool
    healthy: bool


def excluding(
    instances: Mapping[str, InstanceState], pool: Pool, idx: NDArray[np.intp] | None, exclude: tuple[str, ...]
) -> NDArray[np.intp]:
    """The candidate positions ``idx`` of ``pool`` (``None``: all) less those of the
    instances in ``exclude``."""
    drop = {instances[e].pos for e in exclude if e in instances and instances[e].pool is pool}
    base = np.arange(pool.n) if idx is None else idx
    return np.array([p for p in base if p not in drop], dtype=np.intp)


def checked_choice(strategy: str, i: Any, n: int) -> int:
    """A strategy's choice as a position in ``range(n)`` (a numpy integer is accepted)."""
    try:
        i = operator.index(i)
        if not 0 <= i < n:
            raise IndexError
    except (TypeError, IndexError):
        raise RuntimeError(f"strategy {strategy!r} chose {i!r}, expected 0 <= i < {n}") from None
    return int(i)


def queue_info(
    pools: Iterable[Pool], now: float, model: str | None, include_removed: bool
) -> list[QueueInfo]:
    """Per instance of ``pools`` (of ``model`` only, if given; removed ones only with
    ``include_removed``): its queue and the wait a new task would see there at ``now``."""
    out = []
    for pool in pools:
        if model is not None and pool.model != model or pool.n == 0:
            continue
        mean, var = pool.wait(now)
        for inst in pool.instances:
            if not inst.active and not include_removed:
                continue
            out.append(
                QueueInfo(
                    pool.model,
                    inst.instance_id,
                    inst.name,
                    inst.replicas,
                    inst.speed,
                    len(inst.running),
                    len(inst.pending),
                    float(mean[inst.pos]),
                    float(math.sqrt(max(var[inst.pos], 0.0))),
                    inst.active,
                    inst.healthy,
                )
            )
    return out
