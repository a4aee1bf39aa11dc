"""Task-instance dialects: how the scheduler talks to each kind of instance (docs/api.md, "Dialects").

Two dialects, named after the endpoints that tell them apart:

* ``enqueue``: ``GET /status`` + ``POST /queue/enqueue``: the reference instance, the
  OpenAI backend, and the SwarmPilot instances of the seed's era (which assign the task id
  themselves and answer with it);
* ``submit``: ``GET /info`` + ``POST /queue/submit {model_name, task_input, metadata, task_id}``:
  later SwarmPilot instances.

An adapter (:class:`EnqueueDialect`, :class:`SubmitDialect`) turns the service's five
questions (status, enqueue, one result, all results, cancel) into that dialect's calls on the
shared :class:`~scheduler.live.client.TaskInstanceClient`, and answers in the shapes the service
uses: :class:`~scheduler.protocol.InstanceStatus` and :class:`Outcome`.  ``enqueue`` returns
the id the instance answered with; the service keeps it (:class:`RemoteIds`) when it differs
from its own and uses it for everything it exchanges with that instance afterwards.

Only the ``enqueue`` dialect carries a callback secret (``callback_token``).  An instance whose
dialect has none, or that assigns its own ids (so it does not follow this protocol's
``callback_token`` either), has its completions accepted only from its registered address, and
is polled with ``GET /results`` (:func:`scheduler.live.polling.poll_results`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, Field, ValidationError

from ..protocol import InstanceStatus
from .client import InstanceError, TaskInstanceClient

#: the names ``/ti/register`` accepts in its optional ``protocol`` field
PROTOCOLS = ("enqueue", "submit")


class Outcome(NamedTuple):
    """One task as an instance reports it (``GET /results/{id}`` or an item of ``GET /results``),
    under the instance's own id."""

    task_id: str
    status: str  # queued | running | completed | failed
    result: Any = None
    error: str | None = None
    execution_time: float | None = None  # ms


_STATUS_WORDS = {
    "completed": "completed",
    "complete": "completed",
    "success": "completed",
    "succeeded": "completed",
    "done": "completed",
    "finished": "completed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "failed",
    "canceled": "failed",
    "running": "running",
    "processing": "running",
    "queued": "queued",
    "pending": "queued",
    "waiting": "queued",
}


class _ResultItem(BaseModel):
    """A result as any dialect's instance may word it: only ``task_id`` and ``status`` are needed."""

    task_id: str = Field(min_length=1)
    status: str
    result: Any = None
    error: str | None = None
    execution_time: float | None = None

    def outcome(self) -> Outcome | None:
        status = _STATUS_WORDS.get(self.status.lower())
        if status is None:
            return None
        error = self.error if status == "failed" else None
        if status == "failed" and not error:
            error = f"the instance reports status {self.status!r}"
        return Outcome(self.task_id, status, self.result, error, self.execution_time)


def parse_results(body: Any) -> list[Outcome]:
    """The items of a ``GET /results`` answer: a list of results, or ``{"results": [...]}``, or
    ``{"results": {task_id: result}}``.  Items that cannot be read are skipped."""
    items: Any = body.get("results", []) if isinstance(body, dict) else body
    if isinstance(items, dict):
        items = [{"task_id": k, **v} for k, v in items.items() if isinstance(v, dict)]
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        try:
            o = _ResultItem.model_validate(item).outcome()
        except ValidationError:
            continue
        if o is not None:
            out.append(o)
    return out


class Dialect:
    """What the service asks of an instance, in one dialect.  See the module docstring."""

    name: ClassVar[str]
    endpoints: ClassVar[str]
    callback_secret: ClassVar[bool]

    def __init__(self, client: TaskInstanceClient):
        self.client = client

    async def status(self, base_url: str) -> InstanceStatus:
        raise NotImplementedError

    async def enqueue(
        self,
        base_url: str,
        task_id: str,
        model: str,
        input_data: Any,
        metadata: dict,
        callback_url: str | None,
        *,
        callback_token: str | None = None,
        timeout_s: float | None = None,
        now_s: float | None = None,
    ) -> str:
        """Deliver a task; returns the id the instance knows it by."""
        raise NotImplementedError

    async def result(self, base_url: str, remote_id: str) -> Outcome | None:
        """The task ``remote_id`` as the instance reports it; ``None`` if it does not know it."""
        resp = await self.client.call("GET", f"{base_url}/results/{quote(remote_id, safe='')}")
        if resp.status_code == 404:
            return None
        found = parse_results([self.client.json(resp)])
        if not found:
            raise InstanceError(resp.url, "invalid result answer", unreachable=False)
        return found[0]

    async def results(self, base_url: str) -> list[Outcome]:
        """``GET /results``: every task the instance still knows, under its own ids."""
        resp = await self.client.call("GET", f"{base_url}/results")
        if resp.status_code == 404:
            return []
        return parse_results(self.client.json(resp))

    async def cancel(self, base_url: str, remote_id: str) -> bool:
        return await self.client.cancel(base_url, remote_id)


class EnqueueDialect(Dialect):
    name = "enqueue"
    endpoints = "GET /status + POST /queue/enqueue"
    callback_secret = True

    async def status(self, base_url: str) -> InstanceStatus:
        return await self.client.status(base_url)

    async def enqueue(
        self,
        base_url: str,
        task_id: str,
        model: str,
        input_data: Any,
        metadata: dict,
        callback_url: str | None,
        *,
        callback_token: str | None = None,
        timeout_s: float | None = None,
        now_s: float | None = None,
    ) -> str:
        answer = await self.client.enqueue(
            base_url,
            task_id,
            input_data,
            metadata,
            callback_url,
            callback_token=callback_token,
            timeout_s=timeout_s,
            now_s=now_s,
        )
        return answer.task_id or task_id


class _Deployed(BaseModel):
    model_name: str = Field(min_length=1)
    replicas: int = Field(default=1, ge=0)


class _QueueLength(BaseModel):
    length_of_queue: int = Field(default=0, ge=0)


class InfoAnswer(BaseModel):
    """``GET /info`` of a ``submit``-dialect instance (the fields the scheduler reads)."""

    instance_id: str | None = Field(default=None, min_length=1)
    deployed_model: _Deployed
    queue_info: _QueueLength = Field(default_factory=_QueueLength)
    instance_status: str = "running"


_DOWN_WORDS = ("error", "failed", "unhealthy", "stopped", "down")


class SubmitDialect(Dialect):
    name = "submit"
    endpoints = "GET /info + POST /queue/submit"
    callback_secret = False

    async def status(self, base_url: str) -> InstanceStatus:
        info = self.client.parse(await self.client.call("GET", f"{base_url}/info"), InfoAnswer)
        queue = info.queue_info.length_of_queue
        word = info.instance_status.lower()
        return InstanceStatus(
            # without an instance_id of its own, the instance is named by its address
            instance_id=info.instance_id or urlsplit(base_url).netloc,
            model_type=info.deployed_model.model_name,
            replicas_running=info.deployed_model.replicas,
            queue_size=queue,
            status="error" if word in _DOWN_WORDS else "running" if queue else "idle",
        )

    async def enqueue(
        self,
        base_url: str,
        task_id: str,
        model: str,
        input_data: Any,
        metadata: dict,
        callback_url: str | None,
        *,
        callback_token: str | None = None,
        timeout_s: float | None = None,
        now_s: float | None = None,
    ) -> str:
        body = {
            "model_name": model,
            "task_input": input_data,
            "metadata": metadata,
            "task_id": task_id,
            "callback_url": callback_url,
        }
        resp = await self.client.call("POST", f"{base_url}/queue/submit", body, timeout_s)
        answer = self.client.json(resp)
        url = resp.url
        if not isinstance(answer, dict):
            raise InstanceError(url, "invalid submit answer (not a JSON object)", unreachable=False)
        if answer.get("success") is False or answer.get("status") == "error":
            raise InstanceError(url, "the instance refused the task", unreachable=False)
        remote = answer.get("task_id")
        return remote if isinstance(remote, str) and remote else task_id

    async def result(self, base_url: str, remote_id: str) -> Outcome | None:
        """``GET /results/{id}``, else the task's item in ``GET /results`` (an instance may serve only that)."""
        found = await super().result(base_url, remote_id)
        if found is not None:
            return found
        return next((o for o in await self.results(base_url) if o.task_id == remote_id), None)


_DIALECTS: dict[str, type[Dialect]] = {d.name: d for d in (EnqueueDialect, SubmitDialect)}


def has_callback_secret(protocol: str) -> bool:
    """Whether the dialect carries a callback secret (``callback_token``)."""
    return _DIALECTS[protocol].callback_secret


class Dialects:
    """One adapter of each dialect on the service's client."""

    def __init__(self, client: TaskInstanceClient):
        self._by_name = {name: cls(client) for name, cls in _DIALECTS.items()}

    def __getitem__(self, name: str) -> Dialect:
        return self._by_name[name]

    async def detect(self, base_url: str, protocol: str | None = None) -> tuple[Dialect, InstanceStatus]:
        """The instance's dialect (``protocol`` if given) and its status.  Tries ``GET /status``,
        then ``GET /info`` when the first is not served; raises :class:`InstanceError` with both
        reasons when neither answers usefully, and at once when the instance is unreachable."""
        if protocol is not None:
            if protocol not in self._by_name:
                raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
            d = self._by_name[protocol]
            return d, await d.status(base_url)
        reasons = []
        for name in PROTOCOLS:
            d = self._by_name[name]
            try:
                return d, await d.status(base_url)
            except InstanceError as e:
                if e.unreachable:
                    raise
                reasons.append(f"{d.endpoints}: {e}")
        raise InstanceError(
            base_url, "speaks no known dialect (" + "; ".join(reasons) + ")", unreachable=False
        )


class RemoteIds:
    """Per task, the id its instance answered with when it differs from the scheduler's own.

    ``remote(task_id, ti)`` is what to send to instance ``ti`` about the task; ``local(ti, rid)``
    turns an id an instance used back into the scheduler's.  A binding ends when the task moves
    to another instance or ends (:meth:`drop`); the last ``retired`` ended bindings are still
    turned back by :meth:`local`, so that a late completion is known as a duplicate or as a task
    already recorded, not as an unknown task."""

    def __init__(self, retired: int = 10_000) -> None:
        self._remote: dict[str, tuple[str, str]] = {}  # task_id -> (ti_uuid, instance's id)
        self._local: dict[tuple[str, str], str] = {}  # (ti_uuid, instance's id) -> task_id
        self._retired: OrderedDict[tuple[str, str], str] = OrderedDict()  # ended bindings, oldest first
        self._keep_retired = retired

    def __len__(self) -> int:
        return len(self._remote)

    def bind(self, task_id: str, ti: str, remote_id: str) -> None:
        self.drop(task_id)
        if remote_id != task_id:
            self._remote[task_id] = (ti, remote_id)
            self._local[(ti, remote_id)] = task_id

    def drop(self, task_id: str) -> None:
        old = self._remote.pop(task_id, None)
        if old is not None:
            self._local.pop(old, None)
            self._retired[old] = task_id
            while len(self._retired) > self._keep_retired:
                self._retired.popitem(last=False)

    def remote(self, task_id: str, ti: str | None) -> str:
        got = self._remote.get(task_id)
        return got[1] if got is not None and got[0] == ti else task_id

    def stored(self, task_id: str) -> str | None:
        """The instance's id of the task, for the state store (``None``: the same as ours)."""
        got = self._remote.get(task_id)
        return got[1] if got is not None else None

    def local(self, ti: str, remote_id: str) -> str:
        key = (ti, remote_id)
        return self._local.get(key) or self._retired.get(key, remote_id)


def host_of(base_url: str) -> str:
    """The address part of an instance's base URL (``::1`` for ``http://[::1]:8100``)."""
    return urlsplit(base_url).hostname or ""
