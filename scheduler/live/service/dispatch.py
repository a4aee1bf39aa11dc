"""Dispatch: submit a task (idempotent by client task_id), deliver it to the chosen instance,
and on failure take it back and try another, or fail it with the reasons."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ...core import SCHEDULED, DuplicateTaskError, NoInstanceError
from ..client import InstanceError
from .completion import Completions
from .instances import Instances
from .rows import body_digest, submitted_task
from .state import InFlight, InstanceEntry, SubmitRefused

log = logging.getLogger("scheduler.live")


class Dispatch(Instances, Completions):
    """Submission, delivery with retries elsewhere, failover."""

    async def submit(
        self, model: str, task_input: Any, metadata: dict | None = None, task_id: str | None = None
    ) -> tuple[str, str]:
        """Schedule and deliver a task.  Returns ``(task_id, ti_uuid)``.

        Raises :class:`SubmitRefused` if no instance can take it (the task is
        then recorded as failed), and the core's ``DuplicateTaskError`` for a
        ``task_id`` already in use.
        """
        metadata = metadata or {}
        if task_id is None:
            return await self._submit_new(model, task_input, metadata, None, None)
        digest = body_digest(model, task_input, metadata)
        if task_id in self._submitting or self.core.tracker.known(task_id):
            return await self._resubmit(task_id, digest)
        self._submitting[task_id] = asyncio.get_running_loop().create_future()
        try:
            return await self._submit_new(model, task_input, metadata, task_id, digest)
        finally:
            self._submitting.pop(task_id).set_result(None)

    async def _submit_new(
        self, model: str, task_input: Any, metadata: dict, task_id: str | None, digest: str | None
    ) -> tuple[str, str]:
        t0 = time.perf_counter()
        try:
            d = self.core.submit(model, task_input, metadata, task_id=task_id)
        except NoInstanceError as e:
            if e.task_id is not None:
                refused = self.core.peek(e.task_id)
                if refused is not None:  # counted as submitted, and failed
                    self.metrics.submitted(e.task_id, model, refused.submit_ms)
                    self.metrics.ended(e.task_id, False, refused.end_ms or refused.submit_ms)
                    self._persist_record(refused, body_hash=digest, new=True)
                self._remember(e.task_id, digest, None)
                await self.store.flush()
            raise SubmitRefused(str(e), e.task_id) from None
        self.metrics.decided(time.perf_counter() - t0)
        self.metrics.submitted(d.task_id, model, d.now_ms)
        self._inflight[d.task_id] = InFlight(task_input, metadata, d.now_ms + self._timeout_ms)
        self.store.put_task(
            submitted_task(d, metadata, task_input, digest)
        )  # before delivery: a crash keeps it
        try:
            # another instance can take it if the core had more than one candidate
            ti = await self._deliver(d.task_id, d.instance_id, [], [], d.candidates > 1)
        except SubmitRefused:
            self._remember(d.task_id, digest, None)
            await self.store.flush()
            raise
        self._remember(d.task_id, digest, ti)
        if digest is not None:  # the answer is kept for a retry with the client's task_id
            self._persist(d.task_id, answer_ti=ti)
        await self.store.flush_task(d.task_id)  # the task is on disk before its client hears success
        return d.task_id, ti

    async def _resubmit(self, task_id: str, digest: str) -> tuple[str, str]:
        """A submit retried with a task_id already used: the original answer if the body is the same."""
        pending = self._submitting.get(task_id)
        if pending is not None:
            await asyncio.shield(pending)
        prior = self._answers.get(task_id)
        if prior is None or prior[0] != digest:
            raise DuplicateTaskError(task_id)
        if prior[1] is None:
            rec = self.core.task(task_id)
            raise SubmitRefused(
                rec.error if rec and rec.error else "no instance could take the task", task_id
            )
        return task_id, prior[1]

    def _remember(self, task_id: str, digest: str | None, ti: str | None) -> None:
        if digest is None:
            return
        self._answers[task_id] = (digest, ti)
        if len(self._answers) > 2 * self.config.max_history + 1000:  # forget what the tracker forgot
            known = self.core.tracker.known
            self._answers = {k: v for k, v in self._answers.items() if known(k)}

    async def _deliver(
        self, task_id: str, ti: str, tried: list[str], errors: list[str], others: bool | None = None
    ) -> str:
        """POST the task to ``ti``; on failure take it back and try another instance.  ``others``:
        whether another instance could take it (looked up when not given)."""
        job = self._inflight[task_id]
        self._delivering.add(task_id)
        try:
            while True:
                entry = self._entries[ti]
                # a hung instance must not hold the client for the whole timeout when another can take it
                quick = (
                    others
                    if others is not None
                    else self._available(self.core.instance(ti).model, [*tried, ti])
                )
                others = None
                try:
                    remote = await self._dialect(entry).enqueue(
                        entry.base_url,
                        task_id,
                        entry.model,
                        job.task_input,
                        job.metadata,
                        self.callback_url,
                        callback_token=entry.callback_token,
                        timeout_s=min(self.config.enqueue_timeout_s, self.config.request_timeout_s)
                        if quick
                        else None,
                        now_s=time.time(),
                    )
                    job.check_ms = self.core.clock.now_ms() + self._timeout_ms
                    self._bind_remote(entry, task_id, remote)
                    return ti
                except InstanceError as e:
                    log.warning("delivering %s to %s failed: %s", task_id, ti, e)
                    errors.append(f"{ti}: {e}")
                    if e.unreachable:
                        # a short delivery timeout says "slow", not "down": the health check decides
                        if not (quick and e.timed_out):
                            self._set_unhealthy(entry, str(e))
                        self._cancel_elsewhere(entry, task_id)  # it may have arrived after all
                tried.append(ti)
                rec = self.core.peek(task_id)
                if rec is None or rec.status != SCHEDULED:
                    # it ended meanwhile: the instance took it and reported back, only its answer was lost
                    return ti
                ti = self._take_back(task_id, rec.model, tried, errors)
        finally:
            self._delivering.discard(task_id)

    def _bind_remote(self, entry: InstanceEntry, task_id: str, remote: str) -> None:
        """Keep the id the instance answered with (docs/api.md, "Ids"); an instance that assigns
        its own ids is from then on address-checked and polled, like one without callback secrets."""
        had = self._remote_ids.stored(task_id) is not None
        if not had and remote == task_id:  # the usual case: nothing bound before, nothing to bind
            return
        self._remote_ids.bind(task_id, entry.ti_uuid, remote)
        if remote != task_id and not entry.own_ids:
            entry.own_ids = True
            self._persist_instance(entry.ti_uuid)
            log.info(
                "instance %s (%s) assigns its own task ids: completions from its address only, "
                "and GET /results polled",
                entry.ti_uuid,
                entry.base_url,
            )
        if had or remote != task_id:
            self._persist(task_id)

    def _take_back(self, task_id: str, model: str, tried: list[str], errors: list[str]) -> str:
        """Move a scheduled task to another instance, or fail it with the reasons."""
        why = "; ".join(errors)
        if len(tried) >= self.config.max_attempts:
            self._fail(task_id, f"could not deliver to {len(tried)} instance(s) of model {model!r}: {why}")
        elif not self._available(model, tried):
            self._fail(task_id, f"no other healthy instance of model {model!r} can take it: {why}")
        else:
            t0 = time.perf_counter()
            self.metrics.retried(task_id)
            try:
                ti = self.core.retry(task_id, exclude=tried).instance_id
                self.metrics.decided(time.perf_counter() - t0)
                self._persist(task_id)
                return ti
            except NoInstanceError as e:  # the core failed the task; keep our books in step
                self._inflight.pop(task_id, None)
                self._failed_by_core(task_id)
                raise SubmitRefused(f"{e}; {why}", task_id) from None
        failed = self.core.task(task_id)
        assert failed is not None and failed.error is not None, "_fail recorded the task as failed"
        raise SubmitRefused(failed.error, task_id)
