"""``GET /health`` and ``POST /notify/task_complete`` (instances report finished tasks)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import Scope

from ... import __version__
from ...protocol import CompletionNotification, CompletionResponse
from ...protocol.fastlane import Answer, header, parse_body
from ..auth import bearer
from ..limits import loggable
from ..models import HealthResponse
from ..service import LiveScheduler
from .deps import service_of

log = logging.getLogger("scheduler.live")


async def health() -> HealthResponse:
    return HealthResponse(version=__version__)


def complete_one(service: LiveScheduler, note: CompletionNotification, scope: Scope) -> Answer:
    """An instance reports an ended task: the answer of ``/notify/task_complete``."""
    client = scope.get("client")
    ack = service.notify(
        note.task_id,
        note.instance_id,
        note.execution_time,
        note.result,
        note.error,
        # read only when checked (the service compares it only with callback secrets on)
        token=bearer(header(scope, b"authorization")) if service.callback_secrets else None,
        metrics=note.metrics.counts() if note.metrics is not None else None,
        peer=client[0] if client else None,
    )
    if ack.status == "warning":
        log.warning("completion notification ignored: %s", loggable(ack.message))
    if ack.unauthorized:
        return Answer(401, {"status": "warning", "message": ack.message})
    body: dict[str, Any] = {"status": ack.status, "message": ack.message}
    if ack.total_time_ms is not None:
        body["total_time_ms"] = ack.total_time_ms
    return Answer(200, body)


async def task_complete(note: CompletionNotification, request: Request) -> JSONResponse:
    """Served by the fast lane (:func:`fast_complete`) in the app; both call :func:`complete_one`."""
    answer = complete_one(service_of(request), note, request.scope)
    return JSONResponse(status_code=answer.status_code, content=answer.body)


async def fast_complete(app: Any, scope: Scope, body: bytes) -> Answer:
    """``POST /notify/task_complete`` in the fast lane (:mod:`scheduler.protocol.fastlane`)."""
    return complete_one(app.state.service, parse_body(CompletionNotification, body), scope)


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/health", health, methods=["GET"], response_model=HealthResponse)
    r.add_api_route(
        "/notify/task_complete",
        task_complete,
        methods=["POST"],
        response_model=CompletionResponse,
        response_model_exclude_none=True,
        responses={401: {"description": "no or wrong callback token, or not the task's instance"}},
    )
    return r
