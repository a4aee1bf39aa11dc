"""LiveScheduler: the core Scheduler driven by HTTP events and real instances.

The service owns a configured core :class:`~scheduler.Scheduler` (wall clock,
``task-<uuid4 hex>`` ids), one :class:`TaskInstanceClient`, and the little
state the core cannot hold: where each instance listens, which ``instance_id``
it reported, and the input of every task in flight (so that a task can be
delivered again elsewhere).  Everything is async and runs on one event loop;
nothing blocks.

No task is lost:

* delivery: the core chooses, the service POSTs ``/queue/enqueue``; if that
  fails the core takes the task back (``Scheduler.retry``) and chooses among
  the other instances, at most ``max_attempts`` times; when nowhere is left
  the task is failed with the reasons and the caller gets :class:`SubmitRefused`;
* health: a background loop polls ``GET /status`` of every instance; an
  instance that fails ``unhealthy_after`` checks in a row (or refuses a
  connection during delivery) gets no new tasks until it answers again;
* watchdog: a task scheduled for ``task_timeout_s`` is checked with its
  instance (``GET /results/{task_id}``): a lost completion is recovered, a task
  still queued or running on a live instance is given more time (up to
  ``task_hard_limit_s``), and a task whose instance is unhealthy, unreachable
  or has forgotten it is dispatched again elsewhere, or failed with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..core import (
    COMPLETED,
    FAILED,
    SCHEDULED,
    Clock,
    DuplicateTaskError,
    NoInstanceError,
    Predictor,
    QueueInfo,
    Scheduler,
    SpecError,
    TaskRecord,
    TaskTracker,
    UnknownStrategyError,
)
from ..core.scheduler import Recorder
from ..decision_log import DecisionLog
from .allowlist import Allowlist, HostRefused, Resolver
from .auth import new_callback_secret, same
from .client import InstanceError, TaskInstanceClient
from .clock import WallClock
from .config import LiveConfig, base_url
from .limits import loggable
from .metrics import LiveMetrics, chain
from .modes import LIVE_MODES, LIVE_PREDICT_MODES, mode_from_api, mode_to_api
from .recovery import body_digest, recover, stored_task
from .store import StateStore, StoredInstance, open_store

log = logging.getLogger("scheduler.live")


class Refused(Exception):
    """A management request was understood but refused (docs/api.md: status "error")."""


class SubmitRefused(Exception):
    """No instance can take the task (docs/api.md: 503).  The task, if created, is recorded as failed."""

    def __init__(self, message: str, task_id: str | None = None):
        self.task_id = task_id
        super().__init__(message)


class Ack(NamedTuple):
    """The answer to a completion notification."""

    status: Literal["success", "warning"]
    message: str
    total_time_ms: float | None = None
    unauthorized: bool = False  # answered 401: no or wrong callback secret, or not the task's instance


@dataclass
class InstanceEntry:
    """What the shell knows of a registered instance beyond the core's view."""

    ti_uuid: str
    base_url: str
    model: str
    reported_id: str  # the instance_id its /status reported; completions carry it
    failures: int = 0  # consecutive failed health checks
    last_error: str = ""
    callback_token: str | None = None  # its secret for /notify/task_complete (when tokens are set)


@dataclass
class _InFlight:
    task_input: Any
    metadata: dict
    check_ms: float  # when the watchdog next looks at the task (epoch ms)


def build_core(config: LiveConfig, clock: Clock | None = None, recorder: Recorder | None = None) -> Scheduler:
    """The core Scheduler live mode runs: wall clock (unless a test gives another),
    ``task-<uuid4 hex>`` ids, the configured strategy and predictor; ``recorder``
    (e.g. a :class:`~scheduler.DecisionLog`) receives every core event from construction on.

    ``config`` must be loaded (:func:`~scheduler.live.config.load_config`) if it names a lookup table."""
    if config.lookup_table and config.table is None:
        raise SpecError(
            "lookup_table",
            config.lookup_table,
            "a file read by scheduler.live.load_config(config) before the service is built",
        )
    core = Scheduler(
        config.strategy,
        strategy_params=config.strategy_params,
        predictor=Predictor(
            "online",
            lookup_table=config.table,
            clip_sigmas=config.learn_clip_sigmas,
            half_life=config.learn_half_life,
        ),
        clock=clock or WallClock(),
        rng=config.seed,
        tracker=TaskTracker(
            max_history=config.max_history, max_bytes=config.max_history_bytes, sizeof=record_bytes
        ),
        recorder=recorder,
        task_ids=lambda: f"task-{uuid.uuid4().hex}",
    )
    mode = mode_from_api(config.predict_mode)
    if mode not in LIVE_MODES:
        raise SpecError("predict_mode", config.predict_mode, "one of " + ", ".join(LIVE_PREDICT_MODES))
    if mode == "lookup_table" and not config.table:
        raise SpecError(
            "predict_mode",
            config.predict_mode,
            "default, or lookup_table together with a lookup table "
            "(--lookup-table FILE or SCHEDULER_LOOKUP_TABLE)",
        )
    core.set_predict_mode(mode)
    return core


def record_bytes(rec: TaskRecord) -> int:
    """About what a finished task holds in memory: its result, metadata and error as JSON, plus ids."""
    try:
        body = json.dumps([rec.result, rec.metadata], default=str)
    except (TypeError, ValueError, RecursionError):
        body = repr((rec.result, rec.metadata))
    return 200 + len(body) + len(rec.error or "") + len(rec.task_id)


class LiveScheduler:
    """The scheduler service: registration, dispatch with retries, health checks, watchdog."""

    def __init__(
        self,
        config: LiveConfig | None = None,
        *,
        core: Scheduler | None = None,
        client: TaskInstanceClient | None = None,
        resolver: Resolver | None = None,
        store: StateStore | None = None,
    ):
        self.config = config or LiveConfig()
        #: the decision log this service opened (``--decision-log``), closed by :meth:`stop`
        self.decision_log: DecisionLog | None = None
        if core is None and self.config.decision_log:
            try:
                self.decision_log = DecisionLog(self.config.decision_log)
            except OSError as e:
                raise SpecError(
                    "decision_log",
                    self.config.decision_log,
                    f"a file path that can be written ({e.strerror})",
                ) from None
        try:
            self.core = core or build_core(self.config, recorder=self.decision_log)
        except BaseException:
            if self.decision_log is not None:
                self.decision_log.close()
            raise
        self.client = client or TaskInstanceClient(timeout_s=self.config.request_timeout_s)
        self.allowlist = Allowlist(self.config.allow_instance_hosts, resolver)
        #: each instance gets a callback secret when either token is set (docs/api.md, "Completion callbacks")
        self.callback_secrets = bool(self.config.api_token or self.config.admin_token)
        self.metrics = LiveMetrics(self._metrics_view)
        self.core.recorder = chain(self.core.recorder, self.metrics)
        self.callback_url = self.config.callback_url
        self._entries: dict[
            str, InstanceEntry
        ] = {}  # ti_uuid -> entry (removed ones kept for late completions)
        self._by_reported: dict[str, str] = {}  # reported instance_id -> latest ti_uuid
        self._inflight: dict[str, _InFlight] = {}
        self._delivering: set[str] = set()
        self._loops: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()  # best-effort cancels
        self.duplicates = 0  # late completions from an instance a task was taken from
        #: where tasks, instances and settings are kept across restarts (``--state-db``)
        self.store: StateStore = store or open_store(
            self.config.state_db, max_history=self.config.max_history
        )
        self._answers: dict[str, tuple[str, str | None]] = {}  # client task_id -> (body hash, answered ti)
        self._submitting: dict[str, asyncio.Future[None]] = {}  # client task_ids being submitted now
        self._restored = False

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Bring back what the state store kept (re-probing its instances and reconciling its
        tasks), register the configured instances, then start the health loop and the watchdog."""
        log.info("state store: %s", self.store.description)
        if not self._restored:
            self._restored = True
            await recover(self, self.store.load())
        known = {e.base_url for e in self._entries.values() if self.core.has_instance(e.ti_uuid)}
        wanted = [a for a in self.config.instances if base_url(a.host, a.port) not in known]
        results = await asyncio.gather(
            *(self.register(a.host, a.port, a.model_name) for a in wanted),
            return_exceptions=True,
        )
        for addr, res in zip(wanted, results):
            if isinstance(res, BaseException):
                log.error("startup registration of %s:%s failed: %s", addr.host, addr.port, res)
        self._loops = [
            asyncio.create_task(self._every(self.config.health_interval_s, self.check_health), name="health"),
            asyncio.create_task(
                self._every(self.config.watchdog_interval_s, self.check_overdue), name="watchdog"
            ),
        ]
        log.info(
            "scheduler ready: strategy %s, predict mode %s, %d instance(s), callbacks to %s",
            self.core.strategy_name,
            self.predict_mode,
            len(self._entries),
            self.callback_url,
        )

    async def stop(self) -> None:
        for t in self._loops + list(self._background):
            t.cancel()
        for t in self._loops + list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._loops = []
        await self.client.aclose()
        self.store.close()
        if self.decision_log is not None:
            # detach first: a completion arriving during shutdown must not write to a closed file
            self.core.recorder = None
            self.decision_log.close()
            log.info("decision log closed: %d events in %s", self.decision_log.events, self.decision_log.path)

    @staticmethod
    async def _every(interval_s: float, job) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:  # a background loop must survive a bug in one round
                log.exception("background job %s failed", job.__name__)

    # -- configuration ---------------------------------------------------------
    def set_strategy(self, name: str, params: dict | None = None) -> None:
        try:
            self.core.set_strategy(name, **(params or {}))
        except UnknownStrategyError as e:
            raise Refused(f"unknown strategy {name!r}; valid names: {', '.join(e.valid)}") from None
        except SpecError as e:
            raise Refused(f"invalid parameters for strategy {name!r}: {e}") from None
        self.store.put_setting("strategy", {"name": name, "params": dict(params or {})})
        log.info("strategy is now %s %s", name, self.core.strategy.params())

    @property
    def predict_mode(self) -> str:
        """The predictor mode as clients see it (the API's name: ``default`` for the core's ``online``)."""
        return mode_to_api(self.core.predict_mode)

    def set_predict_mode(self, mode: str) -> None:
        """Switch the core's predictor to ``mode``, one of :data:`LIVE_MODES` (the core's names)."""
        if mode not in LIVE_MODES:
            raise Refused(
                f"unknown predict mode {mode_to_api(mode)!r}; valid modes: {', '.join(LIVE_PREDICT_MODES)}"
            )
        if mode == "lookup_table" and not self.core.predictor.table:
            raise Refused(
                "predict mode 'lookup_table' needs a lookup table, and none is configured; start the "
                "scheduler with --lookup-table FILE (or SCHEDULER_LOOKUP_TABLE=FILE)"
            )
        self.core.set_predict_mode(mode)
        self.store.put_setting("predict_mode", mode)
        log.info("predict mode is now %s", mode_to_api(mode))

    # -- instances -------------------------------------------------------------
    async def register(
        self, host: str, port: int, model_name: str | None = None, *, speed: float | None = None
    ) -> str:
        """Ask the instance for its ``/status``, then add it to the core.  Returns its ti_uuid.

        ``speed`` is an optional hint for the predictor (a scenario's instance speed: execution
        time = size / speed); the instance's own behaviour does not depend on it."""
        try:
            address = await self.allowlist.pin(host, port)  # checked before any connection
        except HostRefused as e:
            raise Refused(str(e)) from None
        url = base_url(address, port)
        try:
            st = await self.client.status(url)
        except InstanceError as e:
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
        self._entries[ti] = InstanceEntry(ti, url, st.model_type, st.instance_id, callback_token=secret)
        self._by_reported[st.instance_id] = ti
        self._persist_instance(ti)
        log.info(
            "registered %s (instance %s, model %s, %d replicas) as %s",
            url,
            loggable(st.instance_id),
            loggable(st.model_type),
            st.replicas_running,
            ti,
        )
        return ti

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
                if await self.client.cancel(entry.base_url, task_id):
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
            st = await self.client.status(entry.base_url)
            why = "it reports status 'error'" if st.status == "error" else None
        except InstanceError as e:
            why = str(e)
        if why is None:
            self._set_healthy(entry)
            return
        entry.failures += 1
        entry.last_error = why
        if entry.failures >= self.config.unhealthy_after:
            self._set_unhealthy(entry, f"{entry.failures} failed health checks; last: {why}")

    # -- tasks -----------------------------------------------------------------
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
        try:
            d = self.core.submit(model, task_input, metadata, task_id=task_id)
        except NoInstanceError as e:
            if e.task_id is not None:
                self._persist(e.task_id, body_hash=digest)
                self._remember(e.task_id, digest, None)
                await self.store.flush()
            raise SubmitRefused(str(e), e.task_id) from None
        self._inflight[d.task_id] = _InFlight(task_input, metadata, d.now_ms + self._timeout_ms)
        self._persist(d.task_id, task_input=task_input, body_hash=digest)  # before delivery: a crash keeps it
        try:
            ti = await self._deliver(d.task_id, d.instance_id, [], [])
        except SubmitRefused:
            self._remember(d.task_id, digest, None)
            await self.store.flush()
            raise
        self._remember(d.task_id, digest, ti)
        self._persist(d.task_id, answer_ti=ti)
        await self.store.flush()  # the task is on disk before its client hears success
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

    def _persist(
        self,
        task_id: str,
        *,
        task_input: Any = None,
        body_hash: str | None = None,
        answer_ti: str | None = None,
    ) -> None:
        """Write the task's current record to the state store (batched; see :meth:`StateStore.flush`)."""
        rec = self.core.task(task_id)
        if rec is not None:
            self.store.put_task(stored_task(rec, task_input, body_hash, answer_ti))

    def _persist_instance(self, ti: str) -> None:
        e = self._entries[ti]
        inst = self.core.instance(ti)
        self.store.put_instance(
            StoredInstance(
                ti,
                e.base_url,
                e.model,
                e.reported_id,
                inst.replicas,
                inst.speed,
                inst.active,
                e.callback_token,
            )
        )

    @property
    def _timeout_ms(self) -> float:
        return self.config.task_timeout_s * 1000.0

    async def _deliver(self, task_id: str, ti: str, tried: list[str], errors: list[str]) -> str:
        """POST the task to ``ti``; on failure take it back and try another instance."""
        job = self._inflight[task_id]
        self._delivering.add(task_id)
        try:
            while True:
                entry = self._entries[ti]
                # a hung instance must not hold the client for the whole timeout when another can take it
                quick = self._available(self.core.instance(ti).model, [*tried, ti])
                try:
                    await self.client.enqueue(
                        entry.base_url,
                        task_id,
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
                rec = self.core.task(task_id)
                if rec is None or rec.status != SCHEDULED:
                    # it ended meanwhile: the instance took it and reported back, only its answer was lost
                    return ti
                ti = self._take_back(task_id, rec.model, tried, errors)
        finally:
            self._delivering.discard(task_id)

    def _take_back(self, task_id: str, model: str, tried: list[str], errors: list[str]) -> str:
        """Move a scheduled task to another instance, or fail it with the reasons."""
        why = "; ".join(errors)
        if len(tried) >= self.config.max_attempts:
            self._fail(task_id, f"could not deliver to {len(tried)} instance(s) of model {model!r}: {why}")
        elif not self._available(model, tried):
            self._fail(task_id, f"no other healthy instance of model {model!r} can take it: {why}")
        else:
            try:
                ti = self.core.retry(task_id, exclude=tried).instance_id
                self._persist(task_id)
                return ti
            except NoInstanceError as e:  # the core failed the task; keep our books in step
                self._inflight.pop(task_id, None)
                self._persist(task_id)
                raise SubmitRefused(f"{e}; {why}", task_id) from None
        failed = self.core.task(task_id)
        assert failed is not None and failed.error is not None, "_fail recorded the task as failed"
        raise SubmitRefused(failed.error, task_id)

    def _fail(self, task_id: str, reason: str, execution_ms: float | None = None) -> TaskRecord:
        self._inflight.pop(task_id, None)
        log.warning("task %s failed: %s", loggable(task_id), loggable(reason))
        rec = self.core.fail(task_id, reason, execution_ms)
        self._persist(task_id)
        return rec

    def _complete(
        self, task_id: str, execution_ms: float | None, result: Any, metrics: dict[str, int] | None = None
    ) -> TaskRecord:
        self._inflight.pop(task_id, None)
        rec = self.core.complete(task_id, execution_ms, result, metrics)
        self._persist(task_id)
        return rec

    def notify(
        self,
        task_id: str,
        instance_id: str,
        execution_ms: float,
        result: Any = None,
        error: str | None = None,
        token: str | None = None,
        metrics: dict[str, int] | None = None,
    ) -> Ack:
        """An instance reports that a task ended (``/notify/task_complete``); ``token`` is
        the bearer it sent, checked against its callback secret when secrets are on."""
        if self.callback_secrets:
            ti = self._by_reported.get(instance_id)
            claimed = self._entries.get(ti) if ti else None
            if claimed is None or not same(token, claimed.callback_token):
                return Ack("warning", "missing or wrong callback token; nothing changed", unauthorized=True)
        if instance_id not in self._by_reported:
            return Ack(
                "warning",
                f"unknown instance {instance_id!r}: no registered instance reported this "
                f"instance_id; nothing changed",
            )
        rec = self.core.task(task_id)
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

    # -- watchdog --------------------------------------------------------------
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
                res = await self.client.result(entry.base_url, task_id)
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

    # -- queries ---------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Tasks accepted and not yet ended (``--max-pending`` bounds it)."""
        return len(self._inflight)

    def _metrics_view(self) -> tuple[int, list[tuple[str, str, float, bool]]]:
        return self.pending, [
            (q.model, q.instance_id, q.wait_mean_ms, self.core.instance(q.instance_id).healthy)
            for q in self.core.queue_info()
        ]

    def queue_info(self, model: str | None = None) -> list[QueueInfo]:
        return self.core.queue_info(model)

    def task(self, task_id: str) -> TaskRecord | None:
        return self.core.task(task_id)
