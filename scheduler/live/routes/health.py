"""``GET /health`` and ``POST /notify/task_complete`` (instances report finished tasks)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ... import __version__
from ...protocol import CompletionNotification, CompletionResponse
from ..auth import bearer
from ..limits import loggable
from ..models import HealthResponse
from .deps import service_of

log = logging.getLogger("scheduler.live")


async def health() -> HealthResponse:
    return HealthResponse(version=__version__)


async def task_complete(note: CompletionNotification, request: Request) -> CompletionResponse | JSONResponse:
    service = service_of(request)
    token = bearer(request.headers.get("authorization"))
    ack = service.notify(
        note.task_id,
        note.instance_id,
        note.execution_time,
        note.result,
        note.error,
        token=token,
        metrics=note.metrics.counts() if note.metrics is not None else None,
        peer=request.client.host if request.client is not None else None,
    )
    if ack.status == "warning":
        log.warning("completion notification ignored: %s", loggable(ack.message))
    if ack.unauthorized:
        return JSONResponse(status_code=401, content={"status": "warning", "message": ack.message})
    return CompletionResponse(status=ack.status, message=ack.message, total_time_ms=ack.total_time_ms)


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
