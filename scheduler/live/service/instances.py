"""Instances: registration (``/status`` probed, refused with the reason), removal, and the
health checks that take an instance out of dispatch and back in."""

from __future__ import annotations

import asyncio
import logging
import uuid

from ...core import SpecError
from ..allowlist import HostRefused
from ..auth import new_callback_secret
from ..client import InstanceError
from ..config import base_url
from ..limits import loggable
from .state import InstanceEntry, Refused, ServiceState

log = logging.getLogger("scheduler.live")


class Instances(ServiceState):
    """Registration, removal and health of the task instances."""

    async def register(
        self,
        host: str,
        port: int,
        model_name: str | None = None,
        *,
        speed: float | None = None,
        protocol: str | None = None,
    ) -> str:
        """Ask the instance for its status (in its dialect: ``protocol``, else detected), then add it
        to the core.  Returns its ti_uuid; :meth:`protocol_of` tells the dialect found.

        ``speed`` is an optional hint for the predictor (a scenario's instance speed: execution
        time = size / speed); the instance's own behaviour does not depend on it."""
        try:
            address = await self.allowlist.pin(host, port)  # checked before any connection
        except HostRefused as e:
            raise Refused(str(e)) from None
        url = base_url(address, port)
        try:
            dialect, st = await self.dialects.detect(url, protocol)
        except (InstanceError, ValueError) as e:
            raise Refused(f"cannot register {url}: {e}") from None
        if st.status == "error":
            raise Refused(f"cannot register {url}: the instance reports status 'error'")
        if model_name is not None and model_name != st.model_type:
            raise Refused(f"cannot register {url}: it serves model {st.model_type!r}, not {model_name!r}")
        if st.replicas_running < 1:
            raise Refused(
                f"cannot register {url}: it reports replicas_running={st.replicas_running}, expected >= 1"
            )
        for other in self._entries.values():  # checked after the await: no other registration interleaves
            if self.core.has_instance(other.ti_uuid) and (
                other.base_url == url or other.reported_id == st.instance_id
            ):
                raise Refused(
                    f"cannot register {url}: instance {other.reported_id!r} at {other.base_url} is already "
                    f"registered as {other.ti_uuid}"
                )
        ti = str(uuid.uuid4())
        try:
            self.core.add_instance(
                st.model_type,
                instance_id=ti,
                replicas=st.replicas_running,
                speed=1.0 if speed is None else speed,
                name=st.instance_id,
                meta={"base_url": url},
            )
        except SpecError as e:
            raise Refused(f"cannot register {url}: {e}") from None
        secret = new_callback_secret() if self.callback_secrets else None
        self._entries[ti] = InstanceEntry(
            ti, url, st.model_type, st.instance_id, callback_token=secret, protocol=dialect.name
        )
        self._by_reported[st.instance_id] = ti
        self._persist_instance(ti)
        log.info(
            "registered %s (instance %s, model %s, %d replicas, protocol %s) as %s",
            url,
            loggable(st.instance_id),
            loggable(st.model_type),
            st.replicas_running,
            dialect.name,
            ti,
        )
        return ti

    def protocol_of(self, ti_uuid: str) -> str:
        """The dialect instance ``ti_uuid`` was registered with (docs/api.md, "Dialects")."""
        return self._entries[ti_uuid].protocol

    def instance_name(self, ti_uuid: str | None) -> str | None:
        """The instance_id an instance reported at registration (``None`` if unknown)."""
        entry = self._entries.get(ti_uuid) if ti_uuid else None
        return entry.reported_id if entry is not None else None

    def remove(self, ti_uuid: str) -> int:
        """Stop sending tasks to an instance; its tasks finish and are recorded.  Returns how many remain."""
        try:
            key = str(uuid.UUID(ti_uuid))
        except (ValueError, TypeError, AttributeError):
            raise Refused(
                f"invalid ti_uuid {ti_uuid!r}: expected a UUID such as 123e4567-e89b-12d3-a456-426614174000"
            ) from None
        if key not in self._entries:
            raise Refused(f"unknown ti_uuid {ti_uuid!r}: no instance is registered under it")
        if not self.core.has_instance(key):
            raise Refused(f"instance {ti_uuid} was already removed")
        left = self.core.remove_instance(key)
        self._persist_instance(key)
        log.info(
            "removed %s (%s); %d task(s) still there will finish", key, self._entries[key].base_url, left
        )
        return left

    def _available(self, model: str, exclude: list[str]) -> bool:
        return any(
            ti not in exclude and self.core.instance(ti).healthy for ti in self.core.instance_ids(model)
        )

    def _set_unhealthy(self, entry: InstanceEntry, why: str) -> None:
        entry.last_error = why
        if self.core.instance(entry.ti_uuid).healthy:
            self.core.set_healthy(entry.ti_uuid, False)
            log.warning(
                "instance %s (%s) is unhealthy and gets no new tasks: %s", entry.ti_uuid, entry.base_url, why
            )
            for tid in self.core.tasks_on(entry.ti_uuid):  # due now: the watchdog sends them elsewhere
                job = self._inflight.get(tid)
                if job is not None:
                    job.check_ms = 0.0

    def _cancel_elsewhere(self, entry: InstanceEntry, task_id: str) -> None:
        """Best effort: tell an instance to drop a task that is being sent elsewhere."""

        async def cancel() -> None:
            try:
                remote = self._remote_ids.remote(task_id, entry.ti_uuid)
                if await self._dialect(entry).cancel(entry.base_url, remote):
                    log.info("task %s: dropped by %s before it started", task_id, entry.ti_uuid)
            except InstanceError as e:
                log.info("task %s: could not ask %s to drop it: %s", task_id, entry.ti_uuid, e)

        t = asyncio.create_task(cancel())
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    def _set_healthy(self, entry: InstanceEntry) -> None:
        entry.failures = 0
        if not self.core.instance(entry.ti_uuid).healthy:
            self.core.set_healthy(entry.ti_uuid, True)
            log.info("instance %s (%s) answers again and takes tasks", entry.ti_uuid, entry.base_url)

    async def check_health(self) -> None:
        """One round of ``GET /status`` on every instance that is active or still has tasks."""
        watched = [
            e
            for e in self._entries.values()
            if self.core.has_instance(e.ti_uuid) or self.core.tasks_on(e.ti_uuid)
        ]
        await asyncio.gather(*(self._check_one_health(e) for e in watched))

    async def _check_one_health(self, entry: InstanceEntry) -> None:
        try:
            st = await self._dialect(entry).status(entry.base_url)
            why = "it reports status 'error'" if st.status == "error" else None
        except InstanceError as e:
            why = str(e)
        if why is None:
            held = self._held(entry, st.queue_size)
            if held is None:
                self._set_healthy(entry)
            else:
                self._set_unhealthy(entry, held)
            return
        entry.failures += 1
        entry.last_error = why
        if entry.failures >= self.config.unhealthy_after:
            self._set_unhealthy(entry, f"{entry.failures} failed health checks; last: {why}")

    def _held(self, entry: InstanceEntry, reported: int) -> str | None:
        """After a hard-limit failure the instance's own ``queue_size`` is trusted over the core's
        estimate (which let the failed task go): why it takes no new tasks, or None.

        It holds ``reported - in flight here`` tasks the core no longer counts; once they fill its
        replicas it gets nothing until they are gone, and once none is left it is trusted as before."""
        if not entry.overdue:
            return None
        inst = self.core.instance(entry.ti_uuid)
        extra = reported - inst.in_flight
        if extra <= 0:
            entry.overdue = 0
            return None
        if extra < inst.replicas:
            return None
        return (
            f"it reports queue_size {reported} but only {inst.in_flight} task(s) of ours are there: "
            f"tasks failed past task_hard_limit_s still hold its {inst.replicas} replica(s)"
        )
