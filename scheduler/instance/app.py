"""The reference task instance's FastAPI app (task-instance protocol of API.md)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .. import __version__
from ..live.models import EnqueueRequest, EnqueueResponse, InstanceStatus, PredictResponse, ResultResponse
from .runtime import InstanceRuntime


def create_instance_app(runtime: InstanceRuntime) -> FastAPI:
    """An app serving ``runtime``; its workers start and stop with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"infersched task instance ({runtime.model})", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime

    @app.get("/status", response_model=InstanceStatus)
    async def status():
        return runtime.status()

    @app.post("/queue/enqueue", response_model=EnqueueResponse)
    async def enqueue(req: EnqueueRequest):
        job = runtime.enqueue(req.task_id, req.input_data, req.metadata, req.callback_url)
        return EnqueueResponse(
            task_id=job.task_id, queue_size=runtime.queue_size, enqueue_time=job.enqueue_time
        )

    @app.post("/queue/predict", response_model=PredictResponse)
    async def predict():
        expected, error, size = runtime.predict()
        return PredictResponse(expected_ms=expected, error_ms=error, queue_size=size)

    @app.get(
        "/results/{task_id}", response_model=ResultResponse, responses={404: {"description": "unknown task"}}
    )
    async def result(task_id: str):
        job = runtime.get(task_id)
        if job is None:
            return JSONResponse(
                status_code=404,
                content={
                    "detail": f"task {task_id!r} unknown here: never enqueued, or older than the last "
                    f"{runtime.history} results kept"
                },
            )
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

    return app
