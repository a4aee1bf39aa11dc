"""uvicorn's HTTP/1.1 protocol with the connection limits it lacks.

uvicorn closes a kept-alive connection that stays idle after a response
(``timeout_keep_alive``) and answers 503 above ``limit_concurrency``, but a
socket that never sends a complete request head (idle from the start, or a
slowloris trickling headers) is kept for ever, and every such socket holds a
file descriptor.  The guarded protocol (:func:`guarded`) adds:

* a **header timeout**: a connection with no request in progress, on which no
  new request started within ``header_timeout_s``, is closed;
* a **connection cap**: above ``max_connections`` open connections, a new one is
  closed at once, so descriptors never run out (the OS queue holds the rest);
* a **head cap**: a request line and headers above :data:`MAX_HEAD_BYTES` are refused
  with 400 (h11 has this as ``h11_max_incomplete_event_size``; httptools has none);
* **one write per response**: uvicorn writes a response's head and its body with two calls
  to the socket (two system calls, which on loopback cost more than most of the request's
  Python); the head is held until the body comes (:class:`CoalescingWrites`);
* **quiet floods**: uvicorn writes one warning per request refused above the
  concurrency limit; a flood of them (the probe's log grew by 106 MB in 25 s)
  now writes one line per ``WARN_EVERY_S`` with the count of those held back
  (:class:`FloodFilter`).

It extends uvicorn's httptools protocol (the C parser of ``uvicorn[standard]``) when httptools is
installed, else its pure-Python h11 protocol.  Both servers run with it
(:func:`scheduler.protocol.run`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    BASE: type[asyncio.Protocol] = HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools
    BASE = H11Protocol

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 4096
MAX_HEAD_BYTES = 64 * 1024  # a request line and headers larger than this are refused (400)
WARN_EVERY_S = 10.0
#: set in a request's scope (to True) when its whole body had arrived before the app was called
#: (httptools only): the app's first ``receive()`` then cannot wait, so it needs no timer
BODY_COMPLETE = "infersched.body_complete"


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools answers 400 and closes the connection."""


class FloodFilter(logging.Filter):
    """Lets one line of a warning uvicorn repeats per request through every ``every_s``,
    with the count of those held back since the last one."""

    FLOODS = frozenset({"Exceeded concurrency limit."})

    def __init__(self, every_s: float = WARN_EVERY_S):
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str) or msg not in self.FLOODS:
            return True
        now = time.monotonic()
        if now - self._last.get(msg, float("-inf")) < self.every_s:
            self._held[msg] = self._held.get(msg, 0) + 1
            return False
        self._last[msg] = now
        held = self._held.pop(msg, 0)
        if held:
            record.msg = f"{msg} ({held} more since the last such line)"
        return True


class CoalescingWrites:
    """A connection's transport, with a response head held until the body is written, so that both
    leave in one system call; whatever is held is written by the next turn of the loop at the latest
    (a response without a body), and before the transport closes."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's
        return getattr(self._transport, name)


def quiet_floods(logger: logging.Logger) -> None:
    """Give ``logger`` (uvicorn's ``uvicorn.error``) a :class:`FloodFilter`, once."""
    if not any(isinstance(f, FloodFilter) for f in logger.filters):
        logger.addFilter(FloodFilter())


class GuardedProtocol(BASE):  # type: ignore[valid-type,misc]  # BASE is one of uvicorn's two protocols
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    _last_warning_s: float = float("-inf")

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.transport = CoalescingWrites(transport, self.loop)
        self._seen_cycle: Any = None
        self._guard_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            now = self.loop.time()
            if now - GuardedProtocol._last_warning_s >= WARN_EVERY_S:  # a flood writes one line, not many
                GuardedProtocol._last_warning_s = now
                self.logger.warning(
                    "connections closed on arrival: %d open, the cap is %d",
                    len(self.connections),
                    self.max_connections,
                )
            transport.close()
            return
        self._guard_timer = self.loop.call_later(self.header_timeout_s, self._check_idle)

    def _check_idle(self) -> None:
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if busy or cycle is not self._seen_cycle:  # a request is running, or one started since the last look
            self._seen_cycle = cycle
            self._guard_timer = self.loop.call_later(self.header_timeout_s, self._check_idle)
            return
        self._guard_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # httptools' parser callbacks (h11 never calls these): count the head, refuse it above the cap
    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if not self.cycle.response_complete:
            self.scope[BODY_COMPLETE] = True

    def _count_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"request head above {MAX_HEAD_BYTES} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_guard_timer", None) is not None:
            self._guard_timer.cancel()  # type: ignore[union-attr]
            self._guard_timer = None
        super().connection_lost(exc)


def guarded(header_timeout_s: float, max_connections: int) -> type[GuardedProtocol]:
    """A protocol class with these limits (a subclass: uvicorn takes a class, not an instance);
    uvicorn's per-request concurrency warning is quieted (:func:`quiet_floods`)."""
    quiet_floods(logging.getLogger("uvicorn.error"))
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )
