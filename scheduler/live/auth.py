"""Bearer tokens of the scheduler API (docs/api.md, "Tokens" and "Completion callbacks").

:class:`TokenGuard` is an ASGI middleware: with ``--api-token`` set, the client
endpoints (:data:`CLIENT_PATHS`) need it or the admin token; with
``--admin-token`` set, the management endpoints (:data:`ADMIN_PATHS`) need it.
Once any token is set the management endpoints are never open: with only an
api token they take that one.  A missing or wrong token is 401, a client token
on a management endpoint 403, both ``{"status": "error", "message"}``.
``/health`` is always open; ``/notify/task_complete`` is checked by the service
against the per-instance callback secret (:func:`new_callback_secret`).
Every comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import json
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

CLIENT_PATHS = frozenset(
    {
        "/queue/submit",
        "/queue/submit_batch",
        "/queue/info",
        "/task/query",
        "/task/details",
        "/scheduler/stats",
        "/metrics",
    }
)
ADMIN_PATHS = frozenset({"/ti/register", "/ti/remove", "/scheduler/set", "/scheduler/predict_mode"})

#: the 401/403 answers, for the OpenAPI document of guarded routes
AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"description": "missing or wrong bearer token"},
    403: {"description": "the client token does not open a management endpoint"},
}


def same(given: str | None, expected: str | None) -> bool:
    """``given == expected`` in constant time; never true when either is missing."""
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def new_callback_secret() -> str:
    """A fresh random secret for one instance's completion callbacks."""
    return secrets.token_urlsafe(32)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class TokenGuard:
    """Refuses requests to guarded paths without the right bearer token."""

    def __init__(self, app: ASGIApp, api_token: str | None, admin_token: str | None):
        self.app, self.api_token, self.admin_token = app, api_token, admin_token

    def decide(self, path: str, token: str | None) -> tuple[int, str] | None:
        """``None`` if allowed, else the status and message of the refusal."""
        if path in ADMIN_PATHS:
            needed = self.admin_token or self.api_token
            if needed is None or same(token, needed):
                return None
            if self.admin_token is not None and same(token, self.api_token):
                return 403, f"{path} is a management endpoint: it needs the admin token, not the api token"
            return 401, f"{path} needs the admin token as 'Authorization: Bearer <token>'"
        if path in CLIENT_PATHS and self.api_token is not None:
            if same(token, self.api_token) or same(token, self.admin_token):
                return None
            return 401, f"{path} needs the api token (or the admin token) as 'Authorization: Bearer <token>'"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (self.api_token is not None or self.admin_token is not None):
            refusal = self.decide(scope["path"], bearer(_header(scope, b"authorization")))
            if refusal is not None:
                status, message = refusal
                await send_json(send, status, {"status": "error", "message": message}, bearer_challenge=True)
                return
        await self.app(scope, receive, send)


async def send_json(
    send: Send,
    status: int,
    body: dict,
    *,
    bearer_challenge: bool = False,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with a JSON body straight from a middleware."""
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if bearer_challenge and status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
