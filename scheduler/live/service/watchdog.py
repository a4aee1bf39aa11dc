"""The watchdog: a task scheduled for ``task_timeout_s`` is checked with its instance; a lost
completion is recovered, a task still running is given more time (up to ``task_hard_limit_s``),
and one whose instance is gone or has forgotten it is dispatched again or failed."""

from __future__ import annotations

import asyncio
import logging

from ...core import SCHEDULED, TaskRecord
from ..client import InstanceError
from .dispatch import Dispatch
from .state import SubmitRefused

log = logging.getLogger("scheduler.live")


class Watchdog(Dispatch):
    """Overdue tasks checked with their instance."""

    async def check_overdue(self) -> None:
        """Look at every task whose check time has come (see the module docstring)."""
        now = self.core.clock.now_ms()
        due = [
            tid for tid, job in self._inflight.items() if job.check_ms <= now and tid not in self._delivering
        ]
        if not due:
            return
        limit = asyncio.Semaphore(32)

        async def one(tid: str) -> None:
            async with limit:
                await self._check_task(tid)

        await asyncio.gather(*(one(tid) for tid in due))

    def _scheduled_on(self, task_id: str, ti: str | None = None) -> TaskRecord | None:
        rec = self.core.task(task_id)
        if rec is None or rec.status != SCHEDULED:
            self._inflight.pop(task_id, None)
            return None
        return rec if ti is None or rec.instance_id == ti else None

    async def _check_task(self, task_id: str) -> None:
        rec = self._scheduled_on(task_id)
        if rec is None or task_id in self._delivering:
            return
        assert rec.instance_id is not None and rec.schedule_ms is not None, "a scheduled task has both"
        entry = self._entries[rec.instance_id]
        if not self.core.instance(entry.ti_uuid).healthy:
            why = f"instance {entry.ti_uuid} is unhealthy ({entry.last_error})"
        else:
            try:
                remote = self._remote_ids.remote(task_id, entry.ti_uuid)
                res = await self._dialect(entry).result(entry.base_url, remote)
            except InstanceError as e:
                if e.unreachable:
                    self._set_unhealthy(entry, str(e))
                why = f"instance {entry.ti_uuid} did not answer about the task: {e}"
            else:
                if self._scheduled_on(task_id, entry.ti_uuid) is None:  # it ended while we asked
                    return
                if res is None:
                    why = f"instance {entry.ti_uuid} does not know the task (restarted, or its history dropped it)"
                elif res.status == "completed":
                    log.warning(
                        "task %s: completion recovered from %s (notification lost)", task_id, entry.ti_uuid
                    )
                    self._complete(task_id, res.execution_time, res.result)
                    return
                elif res.status == "failed":
                    self._fail(
                        task_id,
                        f"instance {entry.reported_id!r} reported an error: {res.error}",
                        res.execution_time,
                    )
                    return
                else:
                    now = self.core.clock.now_ms()
                    age_s = (now - rec.schedule_ms) / 1000.0
                    if age_s >= self.config.task_hard_limit_s:
                        entry.overdue += 1  # it still holds the task: trust its queue_size from now on
                        self._fail(
                            task_id,
                            f"still {res.status} on instance {entry.ti_uuid} {age_s:.0f} s after "
                            f"dispatch (task_hard_limit_s={self.config.task_hard_limit_s:g})",
                        )
                    elif task_id in self._inflight:
                        self._inflight[task_id].check_ms = now + self._timeout_ms
                    return
        if self._scheduled_on(task_id, entry.ti_uuid) is None or task_id in self._delivering:
            return
        log.warning("task %s: dispatching again, %s", task_id, why)
        self._cancel_elsewhere(entry, task_id)
        tried, errors = [entry.ti_uuid], [why]
        try:
            ti = self._take_back(task_id, rec.model, tried, errors)
            await self._deliver(task_id, ti, tried, errors)
        except SubmitRefused:
            pass  # failed with the reason, already logged
