"""What the state store keeps (its rows), the interface of a store, and the memory-only store."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

ENDED = ("completed", "failed")
#: about what an ended task takes, in bytes: ids and timings, plus its result, metadata and error
ROW_OVERHEAD_BYTES = 200


@dataclass(slots=True)  # two are built per task: slots make that and their reads cheaper
class StoredTask:
    """One task as the store keeps it: the core's record plus what the shell needs."""

    task_id: str
    model: str
    status: str
    instance_id: str | None
    submit_ms: float
    schedule_ms: float | None = None
    end_ms: float | None = None
    predicted_ms: float | None = None
    predicted_error_ms: float | None = None
    execution_ms: float | None = None
    result: Any = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    task_input: Any = None  # kept while the task has not ended
    body_hash: str | None = None  # of a client-supplied task_id's submit body (idempotent retry)
    answer_ti: str | None = None  # the instance its submit was answered with
    remote_id: str | None = None  # the id its instance answered with, when not the scheduler's own


@dataclass
class StoredInstance:
    ti_uuid: str
    base_url: str
    model: str
    reported_id: str
    replicas: int
    speed: float = 1.0
    active: bool = True
    callback_token: str | None = None  # its completion-callback secret (when tokens are set)
    protocol: str = "enqueue"  # its dialect (scheduler.live.dialects)
    own_ids: bool = False  # it answered an enqueue with an id of its own


@dataclass
class StoredState:
    tasks: list[StoredTask]
    instances: list[StoredInstance]
    settings: dict[str, Any]


class StateStore(Protocol):
    """Where the live scheduler keeps what must survive a restart."""

    #: a short description for the log (``memory only``, ``sqlite FILE``)
    description: str

    def load(self) -> StoredState: ...

    def put_task(self, task: StoredTask) -> None:
        """A task's first row (with its input)."""
        ...

    def update_task(self, task: StoredTask) -> None:
        """A later state of a task put before: what changes after submit (its model, submit time,
        metadata and input are not written again; the input is dropped once it ended)."""
        ...

    def put_instance(self, inst: StoredInstance) -> None: ...

    def put_setting(self, key: str, value: Any) -> None: ...

    def flush(self) -> Awaitable[None]:
        """Done when everything put before this call is durable."""
        ...

    def flush_task(self, task_id: str) -> Awaitable[None]:
        """Done when every row of ``task_id`` put before this call is durable (and every instance
        and setting put before it): :meth:`flush`, without waiting when a commit already wrote them."""
        ...

    def close(self) -> None: ...


async def _done() -> None:
    return None


class MemoryStore:
    """Nothing is written: a restart forgets everything (``--state-db none``)."""

    description = "memory only (--state-db none): a restart forgets every task, instance and setting"

    def load(self) -> StoredState:
        return StoredState([], [], {})

    def put_task(self, task: StoredTask) -> None:
        pass

    def update_task(self, task: StoredTask) -> None:
        pass

    def put_instance(self, inst: StoredInstance) -> None:
        pass

    def put_setting(self, key: str, value: Any) -> None:
        pass

    def flush(self) -> Awaitable[None]:
        return _done()

    def flush_task(self, task_id: str) -> Awaitable[None]:
        return _done()

    def close(self) -> None:
        pass
