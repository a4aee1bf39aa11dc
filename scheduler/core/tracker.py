"""TaskTracker: the record of every task, its state and its timings.

States: ``queued -> scheduled -> completed | failed``.  ``queued -> failed``
covers a task no instance could take; ``scheduled -> queued`` covers a task
taken back from an instance to be dispatched again.  Any other transition is
refused with :class:`InvalidTransitionError`.

Timestamps are the injected clock's milliseconds (simulation ms in the
simulator, epoch ms in live mode).  Queries return copies.  At most
``max_history`` finished tasks are kept, the oldest dropped first; timing
statistics cover the last ``window`` finished tasks.

No locks: both shells drive the core from one thread (the simulator's event
loop, the live service's asyncio loop), so the tracker is not thread-safe
and a caller that shares it across threads must serialise its calls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import DuplicateTaskError, InvalidTransitionError, UnknownTaskError

QUEUED, SCHEDULED, COMPLETED, FAILED = "queued", "scheduled", "completed", "failed"
STATES = (QUEUED, SCHEDULED, COMPLETED, FAILED)
_ALLOWED = {
    QUEUED: {SCHEDULED, FAILED},
    SCHEDULED: {COMPLETED, FAILED, QUEUED},
    COMPLETED: set(),
    FAILED: set(),
}


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    model: str
    status: str = QUEUED
    instance_id: str | None = None
    submit_ms: float = 0.0
    schedule_ms: float | None = None
    end_ms: float | None = None
    predicted_ms: float | None = None
    predicted_error_ms: float | None = None
    execution_ms: float | None = None
    result: Any = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    metrics: dict[str, int] | None = None  # token counts the instance reported at completion

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED)

    @property
    def total_ms(self) -> float | None:
        return None if self.end_ms is None else self.end_ms - self.submit_ms

    @property
    def wait_ms(self) -> float | None:
        """Total time less execution time: queueing plus transport."""
        if self.end_ms is None or self.execution_ms is None:
            return None
        return max(0.0, self.end_ms - self.submit_ms - self.execution_ms)

    def copy(self) -> TaskRecord:
        return replace(
            self, metadata=dict(self.metadata), metrics=None if self.metrics is None else dict(self.metrics)
        )


class TaskTracker:
    def __init__(
        self,
        max_history: int = 100_000,
        window: int = 1000,
        *,
        max_bytes: int | None = None,
        sizeof: Callable[[TaskRecord], int] | None = None,
    ):
        """``max_bytes`` (with ``sizeof``, the shell's measure of a finished record) bounds the
        retained history in bytes as well: the oldest finished tasks go first."""
        if max_bytes is not None and (max_bytes < 1 or sizeof is None):
            raise ValueError(f"max_bytes must be >= 1 and come with sizeof, got {max_bytes}")
        self.max_bytes, self._sizeof = max_bytes, sizeof
        self._sizes: deque[int] = deque()
        self.history_bytes = 0
        if max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.max_history = max_history
        self.window = window
        self._tasks: dict[str, TaskRecord] = {}
        self.ids = self._tasks.keys()  # the recorded task ids, a live read-only view
        self._finished: deque[str] = deque()
        self._counts = dict.fromkeys(STATES, 0)
        self._recent: deque[tuple[float, float, float]] = deque(maxlen=window)  # total, wait, exec
        self._dropped = 0

    # -- writes ----------------------------------------------------------------
    def add(
        self, task_id: str, model: str, now_ms: float, metadata: dict[str, Any] | None = None
    ) -> TaskRecord:
        if task_id in self._tasks:
            raise DuplicateTaskError(task_id)
        rec = TaskRecord(
            task_id, model, QUEUED, submit_ms=now_ms, metadata=dict(metadata) if metadata else {}
        )
        self._tasks[task_id] = rec
        self._counts[QUEUED] += 1
        return rec

    def add_scheduled(
        self,
        task_id: str,
        model: str,
        now_ms: float,
        metadata: dict[str, Any] | None,
        instance_id: str,
        predicted_ms: float | None = None,
        predicted_error_ms: float | None = None,
    ) -> TaskRecord:
        """``add`` then ``schedule`` at the same instant (the submit fast path)."""
        if task_id in self._tasks:
            raise DuplicateTaskError(task_id)
        rec = TaskRecord(  # every field by position: a third cheaper than by keyword
            task_id,
            model,
            SCHEDULED,
            instance_id,
            now_ms,
            now_ms,
            None,
            predicted_ms,
            predicted_error_ms,
            None,
            None,
            None,
            dict(metadata) if metadata else {},
            1,
        )
        self._tasks[task_id] = rec
        self._counts[SCHEDULED] += 1
        return rec

    def restore(self, rec: TaskRecord) -> TaskRecord:
        """Put back a record kept elsewhere (a live scheduler's state store), as it was."""
        if rec.task_id in self._tasks:
            raise DuplicateTaskError(rec.task_id)
        if rec.status not in STATES:
            raise ValueError(f"status must be one of {', '.join(STATES)}, got {rec.status!r}")
        rec = rec.copy()
        self._tasks[rec.task_id] = rec
        self._counts[rec.status] += 1
        if rec.finished:
            self._finish(rec)
        return rec

    def _move(self, rec: TaskRecord, target: str) -> None:
        if target not in _ALLOWED[rec.status]:
            raise InvalidTransitionError(rec.task_id, rec.status, target)
        self._counts[rec.status] -= 1
        self._counts[target] += 1
        rec.status = target

    def _get(self, task_id: str) -> TaskRecord:
        rec = self._tasks.get(task_id)
        if rec is None:
            raise UnknownTaskError(task_id)
        return rec

    def schedule(
        self,
        task_id: str,
        instance_id: str,
        now_ms: float,
        predicted_ms: float | None = None,
        predicted_error_ms: float | None = None,
    ) -> TaskRecord:
        rec = self._get(task_id)
        self._move(rec, SCHEDULED)
        rec.instance_id = instance_id
        rec.schedule_ms = now_ms
        rec.predicted_ms = predicted_ms
        rec.predicted_error_ms = predicted_error_ms
        rec.attempts += 1
        return rec

    def requeue(self, task_id: str) -> TaskRecord:
        """A scheduled task is taken back (its instance refused it or stopped answering)."""
        rec = self._get(task_id)
        self._move(rec, QUEUED)
        return rec

    def complete(
        self,
        task_id: str,
        now_ms: float,
        execution_ms: float | None,
        result: Any = None,
        metrics: dict[str, int] | None = None,
    ) -> TaskRecord:
        rec = self._tasks.get(task_id)
        if rec is None:
            raise UnknownTaskError(task_id)
        if rec.status != SCHEDULED:  # the one state a task completes from
            raise InvalidTransitionError(task_id, rec.status, COMPLETED)
        counts = self._counts
        counts[SCHEDULED] -= 1
        counts[COMPLETED] += 1
        rec.status = COMPLETED
        rec.end_ms = now_ms
        rec.execution_ms = execution_ms
        rec.result = result
        rec.metrics = None if metrics is None else dict(metrics)
        self._finish(rec)
        return rec

    def fail(self, task_id: str, now_ms: float, reason: str, execution_ms: float | None = None) -> TaskRecord:
        rec = self._get(task_id)
        self._move(rec, FAILED)
        rec.end_ms = now_ms
        rec.error = str(reason)
        rec.execution_ms = execution_ms
        self._finish(rec)
        return rec

    def _finish(self, rec: TaskRecord) -> None:
        execution, end = rec.execution_ms, rec.end_ms
        if execution is not None and end is not None:
            total = end - rec.submit_ms
            wait = total - execution
            self._recent.append((total, wait if wait > 0.0 else 0.0, execution))
        finished = self._finished
        finished.append(rec.task_id)
        if self._sizeof is None:  # bounded by count only
            if len(finished) > self.max_history:
                old = self._tasks.pop(finished.popleft())
                self._counts[old.status] -= 1
                self._dropped += 1
            return
        size = self._sizeof(rec)
        self._sizes.append(size)
        self.history_bytes += size
        while len(finished) > self.max_history or (
            self.max_bytes is not None and self.history_bytes > self.max_bytes and len(finished) > 1
        ):
            old = self._tasks.pop(finished.popleft())
            self.history_bytes -= self._sizes.popleft()
            self._counts[old.status] -= 1
            self._dropped += 1

    # -- reads (copies) --------------------------------------------------------
    def get(self, task_id: str) -> TaskRecord | None:
        rec = self._tasks.get(task_id)
        return rec.copy() if rec else None

    def peek(self, task_id: str) -> TaskRecord | None:
        """The tracker's own record (no copy): for a caller that only reads it, at once."""
        return self._tasks.get(task_id)

    def by_status(self, status: str) -> list[TaskRecord]:
        if status not in STATES:
            raise ValueError(f"status must be one of {', '.join(STATES)}, got {status!r}")
        return [r.copy() for r in self._tasks.values() if r.status == status]

    def by_instance(self, instance_id: str, statuses: Iterable[str] | None = None) -> list[TaskRecord]:
        wanted = set(statuses) if statuses is not None else None
        return [
            r.copy()
            for r in self._tasks.values()
            if r.instance_id == instance_id and (wanted is None or r.status in wanted)
        ]

    def __len__(self) -> int:
        return len(self._tasks)

    def known(self, task_id: str) -> bool:
        """Whether ``task_id`` is recorded."""
        return task_id in self._tasks

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._tasks

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def stats(self, percentiles: Sequence[float] = (50, 95, 99)) -> dict[str, Any]:
        """Counts by state and, over the last ``window`` finished tasks, the mean and
        percentiles of total, wait and execution time (ms)."""
        recent = np.array(self._recent, dtype=float).reshape(-1, 3)
        out: dict[str, Any] = {
            "counts": dict(self._counts),
            "window": len(recent),
            "dropped_from_history": self._dropped,
        }
        for col, name in enumerate(("total_ms", "wait_ms", "execution_ms")):
            if len(recent) == 0:
                out[name] = None
                continue
            v = recent[:, col]
            row = {"mean": float(v.mean())}
            for p, q in zip(percentiles, np.percentile(v, percentiles)):
                row[f"p{p:g}"] = float(q)
            out[name] = row
        return out
