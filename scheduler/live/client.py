"""The scheduler's client for the task-instance protocol (API.md).

One ``httpx.AsyncClient`` serves every instance.  Its transport
(:func:`pooled_transport`) runs on aiohttp's connection pool, which keeps
connections to each instance alive; every call has a timeout, so a dead or
slow instance costs at most ``timeout_s`` and never blocks the event loop.
Failures come out as :class:`InstanceError`, whose ``unreachable`` flag tells
a transport failure (connection refused, timeout: the instance may be down)
from an answer the scheduler could not use (an HTTP error or a malformed body).
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from aiohttp import ClientError, ServerDisconnectedError
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ValidationError

from .models import EnqueueResponse, InstanceStatus, ResultResponse

M = TypeVar("M", bound=BaseModel)


# idle connections are dropped before uvicorn's own keep-alive timeout (5 s) closes them
KEEPALIVE_EXPIRY_S = 2.0


class _Guarded(httpx.AsyncBaseTransport):
    """Two things the aiohttp transport leaves to its caller:

    * a request that went out on a kept-alive connection the server had already
      closed (no byte of answer) is sent once more, as HTTP clients usually do;
      every write of the task-instance protocol is idempotent by task_id;
    * an aiohttp error it does not translate (a malformed answer) becomes
      ``httpx.RemoteProtocolError``, so callers see httpx's errors only.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in (1, 2):
            try:
                return await self._inner.handle_async_request(request)
            except httpx.TransportError as e:
                if attempt == 2 or not isinstance(e.__cause__, ServerDisconnectedError):
                    raise
            except ClientError as e:
                raise httpx.RemoteProtocolError(f"{type(e).__name__}: {e}", request=request) from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._inner.aclose()


def pooled_transport(max_connections: int = 200) -> httpx.AsyncBaseTransport:
    """The transport every live HTTP client here uses: httpx's API over aiohttp's pool.

    On loopback httpx's default transport spends about 1 ms of CPU per request,
    several times what the scheduler spends deciding, which capped live
    throughput well below the target; aiohttp's C-accelerated client does the
    same job in a fraction of that (benchmarks/bench_live.py)."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return _Guarded(AiohttpTransport(limits=limits))


class InstanceError(Exception):
    """A call to a task instance failed."""

    def __init__(self, url: str, message: str, *, unreachable: bool):
        self.url, self.unreachable = url, unreachable
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
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            transport=transport or pooled_transport(max_connections),
        )

    async def _call(self, method: str, url: str, body: Any = None) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=body)
        except httpx.TransportError as e:  # refused, reset, or no answer within the timeout
            raise InstanceError(
                url, f"unreachable ({type(e).__name__}: {e}; timeout {self.timeout_s:g} s)", unreachable=True
            ) from None
        except (httpx.InvalidURL, ValueError) as e:  # a host that makes no URL (e.g. "[::1")
            raise InstanceError(
                url, f"not a usable address ({type(e).__name__}: {e})", unreachable=False
            ) from None

    @staticmethod
    def _parse(resp: httpx.Response, model: type[M]) -> M:
        url = str(resp.request.url)
        if resp.status_code != 200:
            raise InstanceError(
                url, f"answered HTTP {resp.status_code}: {resp.text[:200]}", unreachable=False
            )
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            raise InstanceError(
                url, f"invalid {model.__name__} answer: {where}: {err['msg']}", unreachable=False
            ) from None

    async def status(self, base_url: str) -> InstanceStatus:
        """``GET /status``."""
        return self._parse(await self._call("GET", f"{base_url}/status"), InstanceStatus)

    async def enqueue(
        self, base_url: str, task_id: str, input_data: Any, metadata: dict, callback_url: str | None
    ) -> EnqueueResponse:
        """``POST /queue/enqueue``: hand a task to the instance."""
        body = {
            "task_id": task_id,
            "input_data": input_data,
            "metadata": metadata,
            "callback_url": callback_url,
        }
        return self._parse(await self._call("POST", f"{base_url}/queue/enqueue", body), EnqueueResponse)

    async def result(self, base_url: str, task_id: str) -> ResultResponse | None:
        """``GET /results/{task_id}``; ``None`` if the instance does not know the task."""
        resp = await self._call("GET", f"{base_url}/results/{quote(task_id, safe='')}")
        if resp.status_code == 404:
            return None
        return self._parse(resp, ResultResponse)

    async def aclose(self) -> None:
        await self._http.aclose()
