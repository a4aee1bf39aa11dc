"""The endpoints every task passes through, served from the raw body ahead of FastAPI's routing.

A task costs the scheduler two requests (``/queue/submit``, ``/notify/task_complete``) and its
instance one (``/queue/enqueue``).  Under FastAPI each request walks Starlette's middleware stack,
the router, dependency solving, body parsing and response-model serialization: on this project's
machine about 45-60 µs of CPU per request before the endpoint runs, against about 3 µs for the
same body parsed with pydantic's ``model_validate_json`` and answered with orjson from plain ASGI.

:class:`FastLane` is an ASGI middleware holding a few ``(method, path)`` handlers.  A request to
one of them is answered here; everything else goes on to the app.  The app's outer middlewares
(tokens, body limits, the JSON 500 of unexpected errors) still run before it.  The FastAPI routes
of those paths stay declared (they document the endpoints in ``/openapi.json`` and serve the app
when it runs without the lane); both call the same function, so an endpoint is written once.

A body that does not validate is 422 with FastAPI's shape (``{"detail": [{"type", "loc": ["body",
...], "msg"}]}``), never echoing the input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from .jsonhttp import encode

M = TypeVar("M", bound=BaseModel)


class Answer(NamedTuple):
    """An endpoint's answer: status code, a JSON-able body, extra headers."""

    status_code: int
    body: Any
    headers: Mapping[str, str] | None = None


class BadBody(Exception):
    """The body did not validate: a 422 with ``detail``."""

    def __init__(self, detail: list[dict[str, Any]]):
        self.detail = detail
        super().__init__(f"{len(detail)} validation error(s)")


def parse_body(model: type[M], body: bytes) -> M:
    """``body`` read as ``model`` (:class:`BadBody` when it does not validate)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise BadBody(
            [
                {"type": err["type"], "loc": ["body", *err["loc"]], "msg": err["msg"]}
                for err in e.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None


#: ``FastAPI(**LEAN_APP)``: FastAPI's native OpenTelemetry off (FastAPI 0.165 and later; older ones
#: keep unknown options in ``app.extra``).  With it on, every request looks up the global tracer,
#: meter and logger providers (and the environment) to learn that none is configured: about 5 us of
#: CPU per request, a tenth of what a fast-lane request costs.  This project exports Prometheus
#: metrics (``GET /metrics``), not OpenTelemetry.
LEAN_APP: dict[str, Any] = {"telemetry": {"tracing": False, "metrics": False, "logs": False}}

#: a request's whole body, when a middleware before the lane read it: set in the scope under this
#: key, the lane takes it from there instead of receiving it again
BODY = "infersched.body"

#: a handler: the app (for its ``state``), the request's scope and its whole body -> the answer
Handler = Callable[[Any, Scope, bytes], Awaitable[Answer]]


class FastLane:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler]):
        self.app, self.routes = app, dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        body = scope.get(BODY)  # read (and checked) by a middleware before this one
        if body is None:
            chunks = []
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body", False):
                    break
            body = b"".join(chunks)
        try:
            answer = await handler(scope["app"], scope, body)
        except BadBody as e:
            answer = Answer(422, {"detail": e.detail})
        await send_answer(send, answer)


async def send_answer(send: Send, answer: Answer) -> None:
    data = encode(answer.body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if answer.headers:
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (``name`` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None
