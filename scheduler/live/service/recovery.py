"""Recovery: a scheduler started on an existing state store comes back as it was.

:func:`recover` runs once, in :meth:`LiveScheduler.start`, before the service
takes requests (docs/operations.md, "Recovery"):

1. the settings (strategy and its parameters, predict mode) are applied;
2. the instances are put back into the core under their old ``ti_uuid``,
   unhealthy, and probed (``GET /status``): one that answers takes tasks again,
   one that does not stays registered but unhealthy until it does;
3. every task is put back into the core (:meth:`Scheduler.restore`): an ended
   one answers ``/task/query`` again, a scheduled one counts in its instance's
   queue estimate again, so the estimates are rebuilt from what is in flight;
4. queued tasks are dispatched; scheduled tasks are reconciled with their
   instance (``GET /results/{task_id}``) by the watchdog's check, which runs
   at once for each: completed or failed there is recorded as such, still
   queued or running is left to finish, unknown or unreachable is dispatched
   again elsewhere (the old instance told to drop it) or failed with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...core import FAILED, QUEUED, SCHEDULED, NoInstanceError, SpecError, UnknownStrategyError
from ..auth import new_callback_secret
from ..store import StoredState
from .rows import task_record
from .state import InFlight, InstanceEntry, SubmitRefused

if TYPE_CHECKING:  # the service calls recover(self): a module-level import would be a cycle
    from .live import LiveScheduler

log = logging.getLogger("scheduler.live")


def _apply_settings(service: LiveScheduler, settings: dict[str, Any]) -> None:
    strategy = settings.get("strategy")
    if isinstance(strategy, dict) and strategy.get("name"):
        try:
            service.core.set_strategy(strategy["name"], **(strategy.get("params") or {}))
            log.info("restored strategy %s %s", strategy["name"], service.core.strategy.params())
        except (UnknownStrategyError, SpecError) as e:
            log.error(
                "the stored strategy %r cannot be restored (%s); keeping %s",
                strategy,
                e,
                service.core.strategy_name,
            )
    mode = settings.get("predict_mode")
    if isinstance(mode, str) and mode != service.core.predict_mode:
        try:
            service.set_predict_mode(mode)
        except Exception as e:  # noqa: BLE001 - Refused: keep the configured mode
            log.error("the stored predict mode %r cannot be restored (%s)", mode, e)


def _restore_instances(service: LiveScheduler, state: StoredState) -> None:
    busy = {t.instance_id for t in state.tasks if t.status == SCHEDULED}
    for si in state.instances:
        if not si.active and si.ti_uuid not in busy:
            continue  # removed and idle: nothing refers to it any more
        service.core.add_instance(
            si.model,
            instance_id=si.ti_uuid,
            replicas=si.replicas,
            speed=si.speed,
            name=si.reported_id,
            meta={"base_url": si.base_url},
        )
        token = si.callback_token
        if service.callback_secrets and token is None:  # tokens newly enabled: a fresh secret
            token = new_callback_secret()
        entry = InstanceEntry(
            si.ti_uuid,
            si.base_url,
            si.model,
            si.reported_id,
            callback_token=token,
            protocol=si.protocol,
            own_ids=si.own_ids,
        )
        entry.last_error = "not probed yet since the scheduler restarted"
        service._entries[si.ti_uuid] = entry
        service._by_reported[si.reported_id] = si.ti_uuid
        service.core.set_healthy(si.ti_uuid, False)  # until its probe answers
        if not si.active:
            service.core.remove_instance(si.ti_uuid)


def _restore_tasks(service: LiveScheduler, state: StoredState) -> list[str]:
    """Put every stored task back into the core; returns the ids of the queued ones."""
    queued = []
    for t in sorted(state.tasks, key=lambda t: (t.end_ms is not None, t.end_ms or t.submit_ms)):
        rec = task_record(t)
        if rec.status == SCHEDULED and not service.core.has_instance(
            rec.instance_id or "", active_only=False
        ):
            rec.status, rec.instance_id = QUEUED, None  # its instance is gone from the store: dispatch anew
        service.core.restore(rec)
        if t.remote_id is not None and rec.status == SCHEDULED and rec.instance_id is not None:
            service._remote_ids.bind(t.task_id, rec.instance_id, t.remote_id)
        if t.body_hash is not None:
            service._answers[t.task_id] = (t.body_hash, t.answer_ti)
        if rec.status in (QUEUED, SCHEDULED):
            service._inflight[t.task_id] = InFlight(t.task_input, dict(t.metadata), 0.0)  # due at once
            service.metrics.resume(t.task_id, t.model, t.submit_ms)
        if rec.status == QUEUED:
            queued.append(t.task_id)
    return queued


async def _dispatch_queued(service: LiveScheduler, task_id: str) -> None:
    try:
        d = service.core.dispatch_queued(task_id)
    except NoInstanceError as e:
        service._inflight.pop(task_id, None)
        service._failed_by_core(task_id)
        log.warning("restored task %s failed: %s", task_id, e)
        return
    service._persist(task_id)
    try:
        await service._deliver(task_id, d.instance_id, [], [])
    except SubmitRefused:
        pass  # failed with the reason, already logged


async def recover(service: LiveScheduler, state: StoredState) -> None:
    """Bring back ``state`` (see the module docstring).  Does nothing for an empty store."""
    if not (state.tasks or state.instances or state.settings):
        return
    _apply_settings(service, state.settings)
    _restore_instances(service, state)
    queued = _restore_tasks(service, state)
    entries = [e for e in service._entries.values()]
    await asyncio.gather(*(service._check_one_health(e) for e in entries))
    healthy = sum(service.core.instance(e.ti_uuid).healthy for e in entries)
    counts = service.core.tracker.counts()
    log.info(
        "restored from the state store: %d instance(s) (%d answer), %d task(s) scheduled, %d queued, "
        "%d ended; reconciling the scheduled ones with their instances",
        len(entries),
        healthy,
        counts[SCHEDULED],
        counts[QUEUED],
        counts["completed"] + counts[FAILED],
    )
    await service.check_overdue()  # every restored scheduled task is due: GET /results on its instance
    for tid in queued:
        await _dispatch_queued(service, tid)
    await service.store.flush()
