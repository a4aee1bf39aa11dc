"""Request hygiene before a handler runs (docs/api.md, "Limits"): :class:`BodyGuard`.

An ASGI middleware that reads a request body itself, chunk by chunk:

* a ``Content-Length`` above ``max_body_bytes`` is 413 before a byte is read,
  and a body that grows past it (chunked, or lying about its length) is 413
  as soon as it does: never read whole;
* a body that stalls (shorter than its ``Content-Length``, or trickled in) is
  408 after ``body_timeout_s`` without a chunk;
* a JSON body that is not UTF-8, holds ``NaN``/``Infinity`` or nests deeper than
  ``max_depth`` is 422 with FastAPI's ``detail`` list, before it reaches pydantic.

Then the app gets the body as one message.  Connection counts and idle sockets
are uvicorn's (``limit_concurrency``, keep-alive timeout: :func:`scheduler.protocol.run`).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..protocol.fastlane import BODY
from ..protocol.guard import BODY_COMPLETE
from .auth import send_json

BODY_TIMEOUT_S = 10.0
MAX_DEPTH = 64
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _walk(value: Any, limit: int) -> tuple[str, list[Any]] | None:
    """The first problem in a parsed JSON value: a non-finite number or nesting deeper than
    ``limit``, with its location (``["body", key, index, ...]``), else None."""
    stack: list[tuple[Any, list[Any]]] = [(value, ["body"])]
    while stack:
        v, loc = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return f"{v} is not a JSON number; send finite numbers only", loc
        if isinstance(v, dict):
            items: Any = v.items()
        elif isinstance(v, list):
            items = enumerate(v)
        else:
            continue
        if len(loc) > limit:
            return f"JSON nested deeper than {limit} levels", loc[:3]
        stack.extend((x, [*loc, k]) for k, x in items if isinstance(x, (dict, list, float)))
    return None


def check_json(body: bytes, max_depth: int = MAX_DEPTH) -> tuple[str, list[Any]] | None:
    """Why ``body`` is not acceptable JSON for this API and where, or None (syntax errors are FastAPI's).

    Cheap byte scans first: the tree is walked only if the body could hold NaN/Infinity
    or nest deeper than ``max_depth``."""
    if not body.isascii():  # ASCII is UTF-8: only other bytes need decoding to be checked
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return f"the body is not valid UTF-8 (byte {e.start})", ["body"]
    suspicious = b"NaN" in body or b"Infinity" in body
    if not suspicious and body.count(b"[") + body.count(b"{") <= max_depth:
        return None
    try:
        value = json.loads(body.decode("utf-8"))
    except RecursionError:
        return f"JSON nested deeper than {max_depth} levels", ["body"]
    except ValueError:
        return None
    return _walk(value, max_depth)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}


def loggable(text: object, limit: int = 500) -> str:
    """``text`` safe for one log line: control characters escaped (no forged lines), at most ``limit`` chars."""
    s = str(text)
    if len(s) > limit:
        s = s[:limit] + f"... ({len(s) - limit} more characters)"
    return s.translate(_CONTROL)


def _length_and_json(scope: Scope) -> tuple[int | None, bool]:
    """The first ``Content-Length`` (None: none, or not a number) and whether the first
    ``Content-Type`` says JSON (no content type: FastAPI parses the body as JSON too), in one
    pass over the headers."""
    length: int | None = None
    is_json: bool | None = None
    seen_length = False
    for key, value in scope.get("headers", ()):
        if key == b"content-length" and not seen_length:
            seen_length = True
            try:
                length = int(value)
            except ValueError:
                pass
        elif key == b"content-type" and is_json is None:
            is_json = b"json" in value.lower()
    return length, is_json is not False


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        *,
        body_timeout_s: float = BODY_TIMEOUT_S,
        max_depth: int = MAX_DEPTH,
    ):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.body_timeout_s, self.max_depth = body_timeout_s, max_depth

    def _too_large(self) -> dict:
        return {
            "status": "error",
            "message": f"request body larger than {self.max_body_bytes} bytes (--max-body-bytes)",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        length, is_json = _length_and_json(scope)
        if length is not None and length > self.max_body_bytes:
            await send_json(send, 413, self._too_large(), extra_headers=[(b"connection", b"close")])
            return
        if scope.get(BODY_COMPLETE):  # the server had the whole body before this ran: no wait, no timer
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            first = msg.get("body", b"")
            if msg.get("more_body", False):  # not expected; the rest as any body
                body = await self._read(receive, send, [first])
            elif len(first) > self.max_body_bytes:
                await send_json(send, 413, self._too_large(), extra_headers=[(b"connection", b"close")])
                return
            else:
                body = first
        else:
            body = await self._read(receive, send, [])
        if body is None:
            return
        if body and is_json:
            problem = check_json(body, self.max_depth)
            if problem is not None:
                why, loc = problem
                detail = [{"type": "json_invalid", "loc": loc, "msg": why, "input": None}]
                await send_json(send, 422, {"detail": detail})
                return
        scope[BODY] = body  # the fast lane takes it from here
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, send: Send, chunks: list[bytes]) -> bytes | None:
        """The rest of the body after ``chunks``, under the stall timer; None once answered (413, 408)."""
        total = sum(map(len, chunks))
        loop = asyncio.get_running_loop()
        try:
            # one timer per request, moved on with each chunk (asyncio.wait_for made a task per chunk)
            async with asyncio.timeout(self.body_timeout_s) as stall:
                while total <= self.max_body_bytes:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return None
                    chunk = msg.get("body", b"")
                    total += len(chunk)
                    chunks.append(chunk)
                    if not msg.get("more_body", False):
                        break
                    stall.reschedule(loop.time() + self.body_timeout_s)
        except TimeoutError:
            late = {"status": "error", "message": f"request body incomplete after {self.body_timeout_s:g} s"}
            await send_json(send, 408, late, extra_headers=[(b"connection", b"close")])
            return None
        if total > self.max_body_bytes:
            await send_json(send, 413, self._too_large(), extra_headers=[(b"connection", b"close")])
            return None
        return b"".join(chunks)
