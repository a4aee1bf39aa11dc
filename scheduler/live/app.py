"""The scheduler's FastAPI app (API.md), built by :func:`create_app`.

Routes only translate HTTP to :class:`LiveScheduler` calls and back; the
service starts and stops with the app's lifespan.  Error convention (API.md):
management endpoints answer 200 with ``status: "error"`` when they refuse,
``/queue/submit`` answers 503 when no instance can take the task and 409 when
a client-supplied ``task_id`` is already in use, ``/task/query`` answers 404
for an unknown task, a malformed body is FastAPI's 422.  Anything else that
goes wrong is a bug: logged with its traceback and answered as a JSON 500.

Beyond API.md, ``POST /task/details`` answers about many tasks at once with
the scheduler's own timings and predictions (for the live load driver,
``python -m sim drive``).
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..core import COMPLETED, FAILED, DuplicateTaskError
from .config import LiveConfig
from .models import (
    CompletionNotification,
    CompletionResponse,
    HealthResponse,
    PredictModeRequest,
    QueueInfoItem,
    QueueInfoResponse,
    RegisterRequest,
    RegisterResponse,
    RemoveRequest,
    RemoveResponse,
    SetStrategyRequest,
    StatsResponse,
    StatusMessage,
    SubmitRequest,
    SubmitResponse,
    TaskDetail,
    TaskDetailsRequest,
    TaskDetailsResponse,
    TaskQueryResponse,
)
from .service import LiveScheduler, Refused, SubmitRefused

log = logging.getLogger("scheduler.live")


def create_app(service: LiveScheduler | LiveConfig | None = None) -> FastAPI:
    """A FastAPI app serving ``service`` (or a new one built from a config)."""
    if service is None or isinstance(service, LiveConfig):
        service = LiveScheduler(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="infersched scheduler",
        version=__version__,
        lifespan=lifespan,
        description="Schedules model-inference tasks onto registered task instances (API.md).",
    )
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, except that an offending value JSON cannot carry (Infinity, NaN)
        is shown as text instead of turning the answer into a 500."""
        detail = []
        for err in exc.errors():
            err = dict(err)
            for key in ("input", "ctx"):
                if key in err and not _json_safe(err[key]):
                    err[key] = repr(err[key])
            detail.append(err)
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            status_code=500,
            content={"detail": f"internal error ({type(exc).__name__}); the scheduler log has the details"},
        )

    @app.get("/health", response_model=HealthResponse)
    async def health():
        return HealthResponse(version=__version__)

    @app.post("/scheduler/set", response_model=StatusMessage)
    async def set_strategy(req: SetStrategyRequest):
        try:
            service.set_strategy(req.name, req.params)
        except Refused as e:
            return StatusMessage(status="error", message=str(e))
        return StatusMessage(status="success", message="OK")

    @app.post("/scheduler/predict_mode", response_model=StatusMessage)
    async def set_predict_mode(req: PredictModeRequest):
        try:
            service.set_predict_mode(req.mode)
        except Refused as e:
            return StatusMessage(status="error", message=str(e))
        return StatusMessage(status="success", message="OK")

    @app.get("/scheduler/stats", response_model=StatsResponse)
    async def stats():
        s = service.core.tracker.stats()
        return StatsResponse(
            strategy=service.core.strategy_name,
            predict_mode=service.predict_mode,
            counts=s["counts"],
            instances=len(service.core.instance_ids()),
            total_ms=s["total_ms"],
            wait_ms=s["wait_ms"],
            execution_ms=s["execution_ms"],
        )

    @app.post("/ti/register", response_model=RegisterResponse)
    async def register(req: RegisterRequest):
        try:
            ti = await service.register(req.host, req.port, req.model_name, speed=req.speed)
        except Refused as e:
            return RegisterResponse(status="error", message=str(e), ti_uuid="")
        return RegisterResponse(status="success", message="TaskInstance registered", ti_uuid=ti)

    @app.post("/ti/remove", response_model=RemoveResponse)
    async def remove(req: RemoveRequest):
        try:
            left = service.remove(req.ti_uuid)
        except Refused as e:
            return RemoveResponse(status="error", message=str(e), ti_uuid=req.ti_uuid)
        return RemoveResponse(
            status="success",
            ti_uuid=req.ti_uuid,
            message=f"TaskInstance removed; its {left} task(s) in flight will finish and be recorded",
        )

    @app.post(
        "/queue/submit",
        response_model=SubmitResponse,
        responses={
            503: {"description": "no instance can take the task"},
            409: {"description": "task_id already in use"},
        },
    )
    async def submit(req: SubmitRequest):
        try:
            task_id, ti = await service.submit(req.model_name, req.task_input, req.metadata, req.task_id)
        except SubmitRefused as e:
            body = {"detail": str(e)}
            if e.task_id is not None:
                body["task_id"] = e.task_id
            return JSONResponse(status_code=503, content=body)
        except DuplicateTaskError as e:
            return JSONResponse(status_code=409, content={"detail": f"{e}; omit task_id to get a fresh one"})
        return SubmitResponse(task_id=task_id, scheduled_ti=ti)

    @app.get("/queue/info", response_model=QueueInfoResponse)
    async def queue_info(model_name: str | None = Query(default=None, description="only this model")):
        return QueueInfoResponse(
            status="success",
            queues=[
                QueueInfoItem(
                    model_name=q.model,
                    ti_uuid=q.instance_id,
                    waiting_time_expect=q.wait_mean_ms,
                    waiting_time_error=q.wait_std_ms,
                )
                for q in service.queue_info(model_name)
            ],
        )

    @app.get(
        "/task/query", response_model=TaskQueryResponse, responses={404: {"description": "unknown task"}}
    )
    async def task_query(task_id: str = Query(min_length=1)):
        rec = service.task(task_id)
        if rec is None:
            return JSONResponse(status_code=404, content={"detail": f"task {task_id!r} not found"})
        return TaskQueryResponse(
            task_id=rec.task_id,
            task_status=rec.status,
            scheduled_ti=rec.instance_id or "",
            submit_time=rec.submit_ms / 1000.0,
            result=_result(rec),
        )

    @app.post("/task/details", response_model=TaskDetailsResponse)
    async def task_details(req: TaskDetailsRequest):
        found, unknown = [], []
        for tid in req.task_ids:
            rec = service.task(tid)
            if rec is None:
                unknown.append(tid)
                continue
            found.append(
                TaskDetail(
                    task_id=rec.task_id,
                    task_status=rec.status,
                    scheduled_ti=rec.instance_id or "",
                    submit_time=rec.submit_ms / 1000.0,
                    result=_result(rec),
                    completion_time=None if rec.end_ms is None else rec.end_ms / 1000.0,
                    execution_time_ms=rec.execution_ms,
                    predicted_ms=rec.predicted_ms,
                    predicted_error_ms=rec.predicted_error_ms,
                    instance_name=service.instance_name(rec.instance_id),
                )
            )
        return TaskDetailsResponse(tasks=found, unknown=unknown)

    @app.post("/notify/task_complete", response_model=CompletionResponse, response_model_exclude_none=True)
    async def task_complete(note: CompletionNotification):
        ack = service.notify(note.task_id, note.instance_id, note.execution_time, note.result, note.error)
        if ack.status == "warning":
            log.warning("completion notification ignored: %s", ack.message)
        return CompletionResponse(status=ack.status, message=ack.message, total_time_ms=ack.total_time_ms)

    return app


def _result(rec):
    """What ``result`` shows: the instance's result when completed, ``{"error": ...}`` when failed, else None."""
    return rec.result if rec.status == COMPLETED else {"error": rec.error} if rec.status == FAILED else None


def _json_safe(value) -> bool:
    try:
        json.dumps(jsonable_encoder(value), allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False
