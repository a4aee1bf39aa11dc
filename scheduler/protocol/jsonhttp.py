"""JSON over HTTP/1.1 between the scheduler and its instances, on the hot path of every task.

Both sides make one call per task (the scheduler's ``POST /queue/enqueue``, the instance's
completion callback), so what a call costs is what a task costs.  :func:`json_client` gives:

* :class:`LeanClient`: aiohttp's client and connection pool used directly.  Measured on loopback
  (benchmarks/bench_live.py's machine, uvloop, one small JSON POST per call), httpx's client over
  the same aiohttp pool (:func:`~scheduler.protocol.transport.pooled_transport`) spent about 365 µs
  of CPU per call and aiohttp alone about 125 µs: httpx' request and response models, URL and
  header handling were two thirds of the cost;
* :class:`HttpxClient` when a caller gives an ``httpx`` transport (tests play instances with
  ``httpx.MockTransport``): the same interface over ``httpx.AsyncClient``.

Both answer a :class:`Reply` and raise :class:`HttpFailure` when no answer came (refused, reset,
timed out, a malformed answer), saying which in words ("refused", "no answer within the timeout").
Bodies are encoded with orjson (a fallback to :mod:`json` for what orjson refuses, such as
integers beyond 64 bits).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

import aiohttp
import httpx
import orjson

from .transport import KEEPALIVE_EXPIRY_S

JSON_HEADERS = {"Content-Type": "application/json"}


class Reply(NamedTuple):
    status_code: int
    content: bytes
    url: str

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class HttpFailure(Exception):
    """No usable answer came: ``refused`` (nothing listens), ``timed_out``, or another transport error."""

    def __init__(self, why: str, *, timed_out: bool = False, refused: bool = False):
        self.why, self.timed_out, self.refused = why, timed_out, refused
        super().__init__(why)


def encode(body: Any) -> bytes:
    """``body`` as JSON bytes (orjson; :mod:`json` for what orjson refuses)."""
    try:
        return orjson.dumps(body)
    except TypeError:  # e.g. an integer beyond 64 bits, which a JSON client may send
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _json_body(body: Any, headers: dict[str, str] | None) -> tuple[bytes | None, dict[str, str] | None]:
    """The request's bytes and headers: JSON content type added when there is a body."""
    if body is None:
        return None, headers
    return encode(body), JSON_HEADERS if headers is None else {**JSON_HEADERS, **headers}


class JsonHttp(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Reply: ...

    async def aclose(self) -> None: ...


def _failure(e: BaseException, timeout_s: float) -> HttpFailure:
    chain: list[BaseException] = []
    cause: BaseException | None = e
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(e).lower()
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "refused" in text or "errno 111" in text:
        return HttpFailure("connection refused: nothing listens there", refused=True)
    if isinstance(e, httpx.TimeoutException) or any(isinstance(c, TimeoutError) for c in chain):
        return HttpFailure(f"no answer within the timeout of {timeout_s:g} s", timed_out=True)
    return HttpFailure(f"{type(e).__name__}: {e}")


class LeanClient:
    """aiohttp's pooled client, used directly (its session is opened on the first call, in the loop)."""

    def __init__(self, timeout_s: float = 5.0, max_connections: int = 200, connect_timeout_s: float = 2.0):
        self.timeout_s, self.max_connections = timeout_s, max_connections
        self.connect_timeout_s = min(timeout_s, connect_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, keepalive_timeout=KEEPALIVE_EXPIRY_S, force_close=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        return self._session

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        t = self._timeouts.get(timeout_s)
        if t is None:
            t = self._timeouts[timeout_s] = aiohttp.ClientTimeout(
                total=timeout_s, connect=min(timeout_s, self.connect_timeout_s)
            )
        return t

    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        session = self._session or self._open()
        limit = self.timeout_s if timeout_s is None else timeout_s
        data, headers = _json_body(body, headers)
        for attempt in (1, 2):
            try:
                async with session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self._timeout(limit),
                    allow_redirects=False,  # the scheduler connects to the address it checked, nowhere else
                ) as resp:
                    return Reply(resp.status, await resp.read(), url)
            except aiohttp.ServerDisconnectedError as e:
                # a kept-alive connection the server had closed: sent once more (every write of the
                # task-instance protocol is idempotent by task_id), as HTTP clients usually do
                if attempt == 2:
                    raise _failure(e, limit) from None
            except (aiohttp.InvalidURL, ValueError) as e:
                raise ValueError(f"not a usable address ({type(e).__name__}: {e})") from None
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                raise _failure(e, limit) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxClient:
    """The same interface over ``httpx.AsyncClient`` and a given transport (tests' MockTransport)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout_s: float = 5.0):
        self.transport, self.timeout_s = transport, timeout_s
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)), transport=transport
        )

    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        content, headers = _json_body(body, headers)
        try:
            resp = await self._http.request(method, url, content=content, headers=headers, timeout=timeout)
        except httpx.TransportError as e:
            raise _failure(e, self.timeout_s if timeout_s is None else timeout_s) from None
        except (httpx.InvalidURL, ValueError) as e:
            raise ValueError(f"not a usable address ({type(e).__name__}: {e})") from None
        return Reply(resp.status_code, resp.content, url)

    async def aclose(self) -> None:
        await self._http.aclose()


def json_client(
    timeout_s: float = 5.0, max_connections: int = 200, transport: httpx.AsyncBaseTransport | None = None
) -> JsonHttp:
    """:class:`LeanClient`, or :class:`HttpxClient` over ``transport`` when one is given."""
    if transport is not None:
        return HttpxClient(transport, timeout_s)
    return LeanClient(timeout_s, max_connections)
