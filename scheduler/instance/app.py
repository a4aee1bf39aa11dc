"""The reference task instance's FastAPI app (task-instance protocol of docs/api.md).

Handlers are module-level and reach the :class:`InstanceRuntime` as
``request.app.state.runtime`` (:func:`runtime_of`); the runtime's workers
start and stop with the app's lifespan.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import Scope

from .. import __version__
from ..protocol import (
    CancelRequest,
    CancelResponse,
    EnqueueRequest,
    EnqueueResponse,
    InstanceStatus,
    PredictResponse,
    QueueStatusResponse,
    ResultResponse,
    ResultsResponse,
    RunsResponse,
)
from ..protocol.fastlane import Answer, FastLane, parse_body
from .runtime import InstanceRuntime, Job
from .work import TaskInputError


def runtime_of(request: Request) -> InstanceRuntime:
    """The runtime of the app serving ``request``."""
    runtime: InstanceRuntime = request.app.state.runtime
    return runtime


async def status(request: Request) -> InstanceStatus:
    runtime = runtime_of(request)
    return InstanceStatus(**runtime.status())


def enqueue_one(runtime: InstanceRuntime, req: EnqueueRequest) -> Answer:
    """Queue a task under the scheduler's ``task_id``, or (a seed-era client sends none) under an id
    the instance assigns; the answer names the id the task is known by here."""
    if req.expires_at is not None and time.time() > req.expires_at:
        # read too late (the instance was stopped or starved): the scheduler has sent it elsewhere
        return Answer(
            409, {"detail": f"delivery of task {req.task_id!r} expired before it was read; not queued"}
        )
    try:
        runtime.check(req.input_data)
    except TaskInputError as e:
        return Answer(422, {"detail": str(e)})
    job = runtime.enqueue(
        req.task_id, req.input_data, req.metadata, req.callback_url, callback_token=req.callback_token
    )
    return Answer(
        200, {"task_id": job.task_id, "queue_size": runtime.queue_size, "enqueue_time": job.enqueue_time}
    )


async def enqueue(req: EnqueueRequest, request: Request) -> JSONResponse:
    """Served by the fast lane (:func:`fast_enqueue`) in the app; both call :func:`enqueue_one`."""
    answer = enqueue_one(runtime_of(request), req)
    return JSONResponse(status_code=answer.status_code, content=answer.body)


async def fast_enqueue(app: Any, scope: Scope, body: bytes) -> Answer:
    """``POST /queue/enqueue`` in the fast lane (:mod:`scheduler.protocol.fastlane`)."""
    return enqueue_one(app.state.runtime, parse_body(EnqueueRequest, body))


async def cancel(req: CancelRequest, request: Request) -> CancelResponse:
    """Drop a task that has not started (the scheduler sent it elsewhere); a running one runs on."""
    dropped, status = runtime_of(request).cancel(req.task_id)
    return CancelResponse(task_id=req.task_id, cancelled=dropped, status=status)


async def runs(request: Request) -> RunsResponse:
    runtime = runtime_of(request)
    return RunsResponse(instance_id=runtime.instance_id, runs=dict(runtime.runs))


async def predict(request: Request) -> PredictResponse:
    expected, error, size = runtime_of(request).predict()
    return PredictResponse(expected_ms=expected, error_ms=error, queue_size=size)


async def queue_status(request: Request) -> QueueStatusResponse:
    """The seed-era client's view of the backlog: its size, the model, and the expected wait."""
    runtime = runtime_of(request)
    expected, error, size = runtime.predict()
    return QueueStatusResponse(
        queue_size=size, model_type=runtime.model, expected_ms=expected, error_ms=error
    )


async def results(request: Request) -> ResultsResponse:
    """Every task still known here (unfinished ones, and the last ``history`` finished), oldest first."""
    runtime = runtime_of(request)
    return ResultsResponse(instance_id=runtime.instance_id, results=[_result_of(j) for j in runtime.jobs()])


async def result(task_id: str, request: Request) -> ResultResponse | JSONResponse:
    runtime = runtime_of(request)
    job = runtime.get(task_id)
    if job is None:
        return JSONResponse(
            status_code=404,
            content={
                "detail": f"task {task_id!r} unknown here: never enqueued, or older than the last "
                f"{runtime.history} results kept"
            },
        )
    return _result_of(job)


def _result_of(job: Job) -> ResultResponse:
    wait_ms = None if job.start_time is None else (job.start_time - job.enqueue_time) * 1000.0
    total_ms = None if job.completion_time is None else (job.completion_time - job.enqueue_time) * 1000.0
    return ResultResponse(
        task_id=job.task_id,
        status=job.status,
        result=job.result,
        error=job.error,
        enqueue_time=job.enqueue_time,
        completion_time=job.completion_time,
        wait_time=wait_ms,
        execution_time=job.execution_ms,
        total_time=total_ms,
    )


def router() -> APIRouter:
    """A fresh router with the task-instance protocol's endpoints."""
    r = APIRouter()
    r.add_api_route("/status", status, methods=["GET"], response_model=InstanceStatus)
    r.add_api_route(
        "/queue/enqueue",
        enqueue,
        methods=["POST"],
        response_model=EnqueueResponse,
        responses={
            409: {"description": "the delivery expired (expires_at) before it was read"},
            422: {"description": "input_data is not what this instance's model accepts"},
        },
    )
    r.add_api_route("/queue/predict", predict, methods=["POST"], response_model=PredictResponse)
    r.add_api_route("/queue/status", queue_status, methods=["GET"], response_model=QueueStatusResponse)
    r.add_api_route("/results", results, methods=["GET"], response_model=ResultsResponse)
    r.add_api_route("/queue/cancel", cancel, methods=["POST"], response_model=CancelResponse)
    r.add_api_route("/runs", runs, methods=["GET"], response_model=RunsResponse)
    r.add_api_route(
        "/results/{task_id}",
        result,
        methods=["GET"],
        response_model=ResultResponse,
        responses={404: {"description": "unknown task"}},
    )
    return r


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: InstanceRuntime = app.state.runtime
    await runtime.start()
    try:
        yield
    finally:
        await runtime.stop()


def create_instance_app(runtime: InstanceRuntime) -> FastAPI:
    """An app serving ``runtime``; its workers start and stop with the app's lifespan."""
    app = FastAPI(
        title=f"infersched task instance ({runtime.model})", version=__version__, lifespan=_lifespan
    )
    app.state.runtime = runtime
    app.include_router(router())
    app.add_middleware(FastLane, routes={("POST", "/queue/enqueue"): fast_enqueue})
    return app
