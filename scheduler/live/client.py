"""The scheduler's client for the task-instance protocol (docs/api.md).

One pooled JSON client serves every instance (:func:`scheduler.protocol.json_client`: aiohttp's
connection pool, used directly, which keeps connections to each instance alive; tests give an
httpx transport instead); every call has a timeout, so a dead or
slow instance costs at most ``timeout_s`` and never blocks the event loop.
Failures come out as :class:`InstanceError`, whose ``unreachable`` flag tells
a transport failure (connection refused, timeout: the instance may be down)
from an answer the scheduler could not use (an HTTP error or a malformed body).
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ..protocol import CancelResponse, EnqueueResponse, InstanceStatus, ResultResponse
from ..protocol.jsonhttp import HttpFailure, Reply, json_client

M = TypeVar("M", bound=BaseModel)


class InstanceError(Exception):
    """A call to a task instance failed."""

    def __init__(self, url: str, message: str, *, unreachable: bool, timed_out: bool = False):
        self.url, self.unreachable, self.timed_out = url, unreachable, timed_out
        super().__init__(f"{url}: {message}")


class TaskInstanceClient:
    """Async calls to task instances, on one pooled HTTP client."""

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        max_connections: int = 200,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.timeout_s = timeout_s
        self._http = json_client(timeout_s, max_connections, transport)

    async def call(self, method: str, url: str, body: Any = None, timeout_s: float | None = None) -> Reply:
        """One request; transport failures come out as :class:`InstanceError` (``unreachable``)."""
        try:
            return await self._http.request(method, url, body, timeout_s=timeout_s)
        except HttpFailure as e:  # refused, reset, or no answer within the timeout
            raise InstanceError(
                url, f"unreachable ({e.why})", unreachable=True, timed_out=e.timed_out
            ) from None
        except ValueError as e:  # a host that makes no URL (e.g. "[::1")
            raise InstanceError(url, str(e), unreachable=False) from None

    @staticmethod
    def parse(resp: Reply, model: type[M]) -> M:
        """A 200 answer read as ``model``; anything else is an :class:`InstanceError`."""
        url = resp.url
        _check_ok(resp)
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            raise InstanceError(
                url, f"invalid {model.__name__} answer at {where} ({err['type']})", unreachable=False
            ) from None

    @staticmethod
    def json(resp: Reply) -> Any:
        """A 200 answer's JSON body; anything else is an :class:`InstanceError`."""
        _check_ok(resp)
        try:
            return resp.json()
        except ValueError:
            raise InstanceError(
                resp.url, "answered with a body that is not JSON", unreachable=False
            ) from None

    async def status(self, base_url: str) -> InstanceStatus:
        """``GET /status``."""
        return self.parse(await self.call("GET", f"{base_url}/status"), InstanceStatus)

    async def enqueue(
        self,
        base_url: str,
        task_id: str,
        input_data: Any,
        metadata: dict,
        callback_url: str | None,
        *,
        callback_token: str | None = None,
        timeout_s: float | None = None,
        now_s: float | None = None,
    ) -> EnqueueResponse:
        """``POST /queue/enqueue``: hand a task to the instance (with its callback secret, if any;
        ``timeout_s``: shorter than the client's)."""
        body = {
            "task_id": task_id,
            "input_data": input_data,
            "metadata": metadata,
            "callback_url": callback_url,
        }
        if callback_token is not None:
            body["callback_token"] = callback_token
        if now_s is not None:  # the instance must not queue it once this delivery has timed out here
            body["expires_at"] = now_s + (self.timeout_s if timeout_s is None else timeout_s)
        resp = await self.call("POST", f"{base_url}/queue/enqueue", body, timeout_s)
        return self.parse(resp, EnqueueResponse)

    async def result(self, base_url: str, task_id: str) -> ResultResponse | None:
        """``GET /results/{task_id}``; ``None`` if the instance does not know the task."""
        resp = await self.call("GET", f"{base_url}/results/{quote(task_id, safe='')}")
        if resp.status_code == 404:
            return None
        return self.parse(resp, ResultResponse)

    async def cancel(self, base_url: str, task_id: str) -> bool:
        """``POST /queue/cancel``: ask the instance to drop a task sent elsewhere.  True if it did."""
        resp = await self.call("POST", f"{base_url}/queue/cancel", {"task_id": task_id})
        return self.parse(resp, CancelResponse).cancelled

    async def aclose(self) -> None:
        await self._http.aclose()


def _check_ok(resp: Reply) -> None:
    if resp.status_code != 200:
        # the answer's text is not repeated: the caller chose this host, it must not read other services
        raise InstanceError(resp.url, f"answered HTTP {resp.status_code}", unreachable=False)
