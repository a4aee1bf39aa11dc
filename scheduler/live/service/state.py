"""What the live service holds: its configuration, the core, the instances it knows beyond the
core's view, the tasks in flight; the answers it gives; writing tasks and instances to the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ...core import Scheduler, SpecError, TaskRecord
from ...decision_log import DecisionLog
from ..allowlist import Allowlist, Resolver
from ..client import TaskInstanceClient
from ..config import LiveConfig
from ..dialects import Dialect, Dialects, RemoteIds, has_callback_secret
from ..metrics import LiveMetrics
from ..store import StateStore, StoredInstance, open_store
from .build import build_core
from .rows import stored_task


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
    protocol: str = "enqueue"  # its dialect (scheduler.live.dialects)
    own_ids: bool = False  # it answered a delivery with an id of its own
    overdue: int = 0  # tasks failed here past task_hard_limit_s that it may still hold

    @property
    def address_checked(self) -> bool:
        """No callback secret (its dialect has none, or it assigns its own ids and so does not
        follow this protocol): completions only from its registered address, and it is polled."""
        return self.own_ids or not has_callback_secret(self.protocol)


@dataclass(slots=True)
class InFlight:
    """A task accepted and not yet ended: its input (to deliver it again elsewhere)."""

    task_input: Any
    metadata: dict
    check_ms: float  # when the watchdog next looks at the task (epoch ms)


class ServiceState:
    """The live service's state and its persistence; :class:`~scheduler.live.LiveScheduler`
    adds registration, dispatch, completions and the watchdog on top (one module each)."""

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
        #: per task, the id its instance answered with when not the scheduler's own
        self._remote_ids = RemoteIds()
        self.allowlist = Allowlist(self.config.allow_instance_hosts, resolver)
        #: each instance gets a callback secret when either token is set (docs/api.md, "Completion callbacks")
        self.callback_secrets = bool(self.config.api_token or self.config.admin_token)
        #: told by the service what happens to each task (the core's events are the decision log's)
        self.metrics = LiveMetrics(self._metrics_view)
        self.callback_url = self.config.callback_url
        self._entries: dict[
            str, InstanceEntry
        ] = {}  # ti_uuid -> entry (removed ones kept for late completions)
        self._by_reported: dict[str, str] = {}  # reported instance_id -> latest ti_uuid
        self._inflight: dict[str, InFlight] = {}
        self._delivering: set[str] = set()
        self._loops: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()  # best-effort cancels
        self.duplicates = 0  # late completions from an instance a task was taken from
        #: where tasks, instances and settings are kept across restarts (``--state-db``)
        self.store: StateStore = store or open_store(
            self.config.state_db,
            max_history=self.config.max_history,
            max_bytes=self.config.max_history_bytes,
        )
        self._answers: dict[str, tuple[str, str | None]] = {}  # client task_id -> (body hash, answered ti)
        self._submitting: dict[str, asyncio.Future[None]] = {}  # client task_ids being submitted now
        self._restored = False

    def _persist(self, task_id: str, *, answer_ti: str | None = None) -> None:
        """Write what changed in the task's record to the state store (batched; see
        :meth:`StateStore.flush`)."""
        rec = self.core.peek(task_id)
        if rec is not None:
            self._persist_record(rec, answer_ti=answer_ti)

    def _persist_record(
        self,
        rec: TaskRecord,
        task_input: Any = None,
        body_hash: str | None = None,
        answer_ti: str | None = None,
        new: bool = False,
    ) -> None:
        """:meth:`_persist` of a record at hand (the core's own, as it returns one: no copy made)."""
        row = stored_task(rec, task_input, body_hash, answer_ti, self._remote_ids.stored(rec.task_id))
        if new:
            self.store.put_task(row)
        else:
            self.store.update_task(row)

    @property
    def client(self) -> TaskInstanceClient:
        """The client every call to an instance goes through (each dialect's adapter uses it)."""
        return self._client

    @client.setter
    def client(self, client: TaskInstanceClient) -> None:
        self._client = client
        self.dialects = Dialects(client)

    def _dialect(self, entry: InstanceEntry) -> Dialect:
        return self.dialects[entry.protocol]

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
                e.protocol,
                e.own_ids,
            )
        )

    @property
    def _timeout_ms(self) -> float:
        return self.config.task_timeout_s * 1000.0

    @property
    def pending(self) -> int:
        """Tasks accepted and not yet ended (``--max-pending`` bounds it)."""
        return len(self._inflight)

    def _metrics_view(self) -> tuple[int, list[tuple[str, str, float, bool]]]:
        return self.pending, [
            (q.model, q.instance_id, q.wait_mean_ms, self.core.instance(q.instance_id).healthy)
            for q in self.core.queue_info()
        ]
