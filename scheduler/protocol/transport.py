"""A pooled httpx transport: httpx's API over aiohttp's connection pool.

It keeps connections to each peer alive; clients that want httpx's API use it (the live load
driver of ``sim drive``).  The per-task calls between the scheduler and its instances go through
the leaner :mod:`scheduler.protocol.jsonhttp` instead.
"""

from __future__ import annotations

import httpx
from aiohttp import ClientError, ServerDisconnectedError
from httpx_aiohttp import AiohttpTransport

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
