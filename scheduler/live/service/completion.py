"""Completions: an instance reports that a task ended; the task is recorded once, from the
instance it was sent to, with the callback secret when secrets are on."""

from __future__ import annotations

import logging
from typing import Any

from ...core import COMPLETED, FAILED, TaskRecord
from ..auth import same
from ..dialects import host_of
from ..limits import loggable
from .state import Ack, ServiceState

log = logging.getLogger("scheduler.live")


class Completions(ServiceState):
    """Tasks ending: completed or failed, reported or decided here."""

    def _fail(self, task_id: str, reason: str, execution_ms: float | None = None) -> TaskRecord:
        self._inflight.pop(task_id, None)
        self._remote_ids.drop(task_id)
        log.warning("task %s failed: %s", loggable(task_id), loggable(reason))
        rec = self.core.fail(task_id, reason, execution_ms)
        self._ended(rec)
        return rec

    def _complete(
        self, task_id: str, execution_ms: float | None, result: Any, metrics: dict[str, int] | None = None
    ) -> TaskRecord:
        self._inflight.pop(task_id, None)
        self._remote_ids.drop(task_id)
        rec = self.core.complete(task_id, execution_ms, result, metrics)
        self._ended(rec)
        return rec

    def _failed_by_core(self, task_id: str) -> None:
        """The core failed a task itself (no instance left for it)."""
        rec = self.core.peek(task_id)
        if rec is not None:
            self._ended(rec)

    def _ended(self, rec: TaskRecord) -> None:
        """A task ended (completed, or failed here or by the core): the metrics and the store."""
        self.metrics.ended(rec.task_id, rec.status == COMPLETED, rec.end_ms or rec.submit_ms)
        self._persist_record(rec)

    def notify(
        self,
        task_id: str,
        instance_id: str,
        execution_ms: float,
        result: Any = None,
        error: str | None = None,
        token: str | None = None,
        metrics: dict[str, int] | None = None,
        peer: str | None = None,
    ) -> Ack:
        """An instance reports that a task ended (``/notify/task_complete``); ``token`` is
        the bearer it sent, checked against its callback secret when secrets are on; ``peer`` is
        the address it came from, checked for an instance without callback secrets (docs/api.md,
        "Dialects"), whose own task ids are turned back into the scheduler's."""
        ti = self._by_reported.get(instance_id)
        claimed = self._entries.get(ti) if ti else None
        if claimed is not None and claimed.address_checked:
            if peer != host_of(claimed.base_url):
                return Ack(
                    "warning",
                    f"a completion for instance {instance_id!r} must come from its registered address; "
                    "nothing changed",
                    unauthorized=True,
                )
            task_id = self._remote_ids.local(claimed.ti_uuid, task_id)
        elif self.callback_secrets:
            if claimed is None or not same(token, claimed.callback_token):
                return Ack("warning", "missing or wrong callback token; nothing changed", unauthorized=True)
        if instance_id not in self._by_reported:
            return Ack(
                "warning",
                f"unknown instance {instance_id!r}: no registered instance reported this "
                f"instance_id; nothing changed",
            )
        rec = self.core.peek(task_id)  # read here only: _fail and _complete return the new record
        if rec is None:
            return Ack("warning", f"unknown task {task_id!r}; nothing changed")
        entry = self._entries.get(rec.instance_id) if rec.instance_id else None
        if entry is None or entry.reported_id != instance_id:
            where = f"instance {entry.reported_id!r} ({entry.ti_uuid})" if entry else "no instance"
            self.duplicates += 1
            log.info("task %s: late completion from %s recorded as a duplicate run", task_id, instance_id)
            return Ack(
                "warning",
                f"task {task_id!r} is assigned to {where}, not to {instance_id!r}: a duplicate run "
                "(the task was sent elsewhere); nothing changed",
                unauthorized=self.callback_secrets,
            )
        if rec.status in (COMPLETED, FAILED):
            return Ack(
                "success",
                f"task {task_id!r} was already recorded as {rec.status}; nothing changed",
                rec.total_ms,
            )
        if error is not None:
            rec = self._fail(task_id, f"instance {instance_id!r} reported an error: {error}", execution_ms)
        else:
            rec = self._complete(task_id, execution_ms, result, metrics)
        return Ack("success", f"task {task_id!r} recorded as {rec.status}", rec.total_ms)
