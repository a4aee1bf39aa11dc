"""uvicorn's HTTP/1.1 protocol with the two connection limits it lacks.

uvicorn closes a kept-alive connection that stays idle after a response
(``timeout_keep_alive``) and answers 503 above ``limit_concurrency``, but a
socket that never sends a complete request head (idle from the start, or a
slowloris trickling headers) is kept for ever, and every such socket holds a
file descriptor.  :class:`GuardedH11Protocol` adds:

* a **header timeout**: a connection with no request in progress, on which no
  new request started within ``header_timeout_s``, is closed;
* a **connection cap**: above ``max_connections`` open connections, a new one is
  closed at once, so descriptors never run out (the OS queue holds the rest).

Both servers run with it (:func:`scheduler.protocol.run`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 4096
WARN_EVERY_S = 10.0


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    _last_warning_s: float = float("-inf")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._seen_cycle: Any = None
        self._guard_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            now = self.loop.time()
            if now - GuardedH11Protocol._last_warning_s >= WARN_EVERY_S:  # a flood writes one line, not many
                GuardedH11Protocol._last_warning_s = now
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

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_guard_timer", None) is not None:
            self._guard_timer.cancel()  # type: ignore[union-attr]
            self._guard_timer = None
        super().connection_lost(exc)


def guarded(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A protocol class with these limits (a subclass: uvicorn takes a class, not an instance)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )
