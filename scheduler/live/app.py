"""The scheduler's FastAPI app (docs/api.md), built by :func:`create_app`.

The endpoints are the routers of :mod:`scheduler.live.routes`; they only
translate HTTP to :class:`LiveScheduler` calls and back, reaching the service
as ``app.state.service``.  The service starts and stops with the app's
lifespan.  Error convention (docs/api.md): management endpoints answer 200 with
``status: "error"`` when they refuse, ``/queue/submit`` answers 503 or 409,
``/task/query`` 404, a malformed body 422 (:mod:`scheduler.live.errors`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from .. import __version__
from ..protocol.fastlane import LEAN_APP, FastLane
from .auth import ADMIN_PATHS, AUTH_RESPONSES, CLIENT_PATHS, TokenGuard
from .config import LiveConfig
from .errors import install_error_handlers
from .limits import BodyGuard
from .routes import fast_routes, routers
from .service import LiveScheduler


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: LiveScheduler = app.state.service
    await service.start()
    try:
        yield
    finally:
        await service.stop()


def create_app(service: LiveScheduler | LiveConfig | None = None) -> FastAPI:
    """A FastAPI app serving ``service`` (or a new one built from a loaded config)."""
    if service is None or isinstance(service, LiveConfig):
        service = LiveScheduler(service)
    app = FastAPI(
        title="infersched scheduler",
        version=__version__,
        lifespan=_lifespan,
        description="Schedules model-inference tasks onto registered task instances (docs/api.md).",
        **LEAN_APP,
    )
    app.state.service = service
    install_error_handlers(app)
    for router in routers():
        _document_refusals(router.routes)
        app.include_router(router)
    config = service.config
    # innermost, directly inside BodyGuard: it reads the body BodyGuard checked from the scope, so
    # nothing that rewrites a body may sit between the two
    app.add_middleware(FastLane, routes=fast_routes())
    app.add_middleware(BodyGuard, max_body_bytes=config.max_body_bytes)  # runs after the token check
    if config.api_token is not None or config.admin_token is not None:  # without tokens it passes all
        app.add_middleware(TokenGuard, api_token=config.api_token, admin_token=config.admin_token)
    return app


def _document_refusals(routes: list) -> None:
    """Put what the middlewares answer into the OpenAPI document of each route."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        extra: dict[int | str, dict] = {}
        if route.path in ADMIN_PATHS:
            extra.update(AUTH_RESPONSES)
        elif route.path in CLIENT_PATHS:
            extra[401] = AUTH_RESPONSES[401]
        if (route.methods or set()) & {"POST", "PUT", "PATCH"}:
            extra[408] = {"description": "the request body did not arrive in time"}
            extra[413] = {"description": "request body larger than --max-body-bytes"}
        extra[503] = {
            "description": "the server is at its concurrency limit (or, on /queue/submit, no instance)"
        }
        route.responses = {**extra, **route.responses}
