"""Tasks: ``POST /queue/submit``, ``GET /queue/info``, ``GET /task/query``, and
``POST /task/details`` (beyond the original spec: many tasks at once with the scheduler's
own timings and predictions, for the live load driver ``python -m sim drive``).

``/queue/submit`` answers 503 when no instance can take the task and 409 when
a client-supplied ``task_id`` was already used with a different body (the same
body again gets the original answer: idempotent retry); ``/task/query`` answers 404
for an unknown task."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ...core import COMPLETED, FAILED, TaskRecord
from ..models import (
    QueueInfoItem,
    QueueInfoResponse,
    SubmitRequest,
    SubmitResponse,
    TaskDetail,
    TaskDetailsRequest,
    TaskDetailsResponse,
    TaskQueryResponse,
    TaskStatus,
)
from .deps import service_of
from .submitting import submit_one


async def submit(req: SubmitRequest, request: Request) -> SubmitResponse | JSONResponse:
    """Served by the fast lane (:func:`.submitting.fast_submit`) in the app; both call :func:`submit_one`."""
    answer = await submit_one(service_of(request), req)
    if answer.status_code == 200:
        return SubmitResponse(task_id=answer.body["task_id"], scheduled_ti=answer.body["scheduled_ti"])
    return JSONResponse(status_code=answer.status_code, content=answer.body, headers=answer.headers)


async def queue_info(
    request: Request, model_name: str | None = Query(default=None, description="only this model")
) -> QueueInfoResponse:
    service = service_of(request)
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


async def task_query(
    request: Request, task_id: str = Query(min_length=1)
) -> TaskQueryResponse | JSONResponse:
    service = service_of(request)
    rec = service.task(task_id)
    if rec is None:
        return JSONResponse(status_code=404, content={"detail": f"task {task_id!r} not found"})
    extra = {} if rec.metrics is None else {"metrics": rec.metrics}  # the spec's five fields otherwise
    return TaskQueryResponse(
        task_id=rec.task_id,
        task_status=cast(TaskStatus, rec.status),  # the tracker's statuses are the API's
        scheduled_ti=rec.instance_id or "",
        submit_time=rec.submit_ms / 1000.0,
        result=_result(rec),
        **extra,
    )


async def task_details(req: TaskDetailsRequest, request: Request) -> TaskDetailsResponse:
    service = service_of(request)
    found, unknown = [], []
    for tid in req.task_ids:
        rec = service.task(tid)
        if rec is None:
            unknown.append(tid)
            continue
        found.append(
            TaskDetail(
                task_id=rec.task_id,
                task_status=cast(TaskStatus, rec.status),  # the tracker's statuses are the API's
                scheduled_ti=rec.instance_id or "",
                submit_time=rec.submit_ms / 1000.0,
                result=_result(rec),
                metrics=rec.metrics,
                completion_time=None if rec.end_ms is None else rec.end_ms / 1000.0,
                execution_time_ms=rec.execution_ms,
                predicted_ms=rec.predicted_ms,
                predicted_error_ms=rec.predicted_error_ms,
                instance_name=service.instance_name(rec.instance_id),
            )
        )
    return TaskDetailsResponse(tasks=found, unknown=unknown)


def _result(rec: TaskRecord) -> Any:
    """What ``result`` shows: the instance's result when completed, ``{"error": ...}`` when failed, else None."""
    return rec.result if rec.status == COMPLETED else {"error": rec.error} if rec.status == FAILED else None


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route(
        "/queue/submit",
        submit,
        methods=["POST"],
        response_model=SubmitResponse,
        responses={
            503: {"description": "no instance can take the task"},
            409: {"description": "task_id already used with a different body"},
            429: {"description": "too many tasks pending (--max-pending); see Retry-After"},
        },
    )
    r.add_api_route("/queue/info", queue_info, methods=["GET"], response_model=QueueInfoResponse)
    r.add_api_route(
        "/task/query",
        task_query,
        methods=["GET"],
        response_model=TaskQueryResponse,
        response_model_exclude_unset=True,  # metrics only when reported
        responses={404: {"description": "unknown task"}},
    )
    r.add_api_route("/task/details", task_details, methods=["POST"], response_model=TaskDetailsResponse)
    return r
