"""Polling: an instance without a callback secret (docs/api.md, "Dialects") is asked for its
``GET /results`` every ``poll_interval_s`` while it has tasks, so that a completion it could not
deliver, or that was refused, still ends the task.  One call per instance and round; only the
tasks scheduled on that instance are read from the answer."""

from __future__ import annotations

import asyncio
import logging

from ..client import InstanceError
from .state import InstanceEntry
from .watchdog import Watchdog

log = logging.getLogger("scheduler.live")

POLL_CONCURRENCY = 16  # instances polled at once


class Polling(Watchdog):
    """``GET /results`` of instances whose completions are not authenticated by a secret."""

    async def poll_results(self) -> None:
        """One round over the address-checked instances that have tasks in flight."""
        due = [
            e
            for e in self._entries.values()
            if e.address_checked and any(t not in self._delivering for t in self.core.tasks_on(e.ti_uuid))
        ]
        if not due:
            return
        limit = asyncio.Semaphore(POLL_CONCURRENCY)

        async def one(entry: InstanceEntry) -> None:
            async with limit:
                await self._poll_one(entry)

        await asyncio.gather(*(one(e) for e in due))

    async def _poll_one(self, entry: InstanceEntry) -> None:
        try:
            outcomes = await self._dialect(entry).results(entry.base_url)
        except InstanceError as e:  # the health check and the watchdog deal with an instance that is down
            log.info("polling %s (%s) for results failed: %s", entry.ti_uuid, entry.base_url, e)
            return
        for o in outcomes:
            if o.status not in ("completed", "failed"):
                continue
            tid = self._remote_ids.local(entry.ti_uuid, o.task_id)
            if tid in self._delivering or self._scheduled_on(tid, entry.ti_uuid) is None:
                continue
            log.info("task %s: %s as read from %s's GET /results", tid, o.status, entry.ti_uuid)
            if o.status == "completed":
                self._complete(tid, o.execution_time, o.result)
            else:
                self._fail(
                    tid, f"instance {entry.reported_id!r} reported an error: {o.error}", o.execution_time
                )
