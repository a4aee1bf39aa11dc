"""``POST /queue/submit_batch``: up to :data:`~scheduler.live.models.MAX_BATCH` tasks in one
request, for clients that submit in bulk (docs/api.md).

Each task is answered as ``/queue/submit`` would answer it alone (:func:`.submitting.submit_one`:
tokens, ``--max-pending``, idempotent ``task_id``, the state store, 503 and 409 all apply per
task), in the order sent; a task that is not a valid submit body gets its own 422 and the others
go on.  Tasks are decided in order (each decision sees the ones before it) and delivered
concurrently; the answer comes once every task is answered, so every accepted task is on disk.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from ...protocol.fastlane import Answer
from ..models import SubmitBatchItem, SubmitBatchRequest, SubmitBatchResponse, SubmitRequest
from .deps import service_of
from .submitting import submit_one

DELIVERIES_AT_ONCE = 64  # tasks of one batch on their way to instances at the same time


def _invalid(index: int, e: ValidationError) -> Answer:
    detail = [
        {"type": err["type"], "loc": ["body", "tasks", index, *err["loc"]], "msg": err["msg"]}
        for err in e.errors(include_url=False, include_input=False, include_context=False)
    ]
    return Answer(422, {"detail": detail})


async def submit_batch(req: SubmitBatchRequest, request: Request) -> SubmitBatchResponse:
    service = service_of(request)
    limit = asyncio.Semaphore(DELIVERIES_AT_ONCE)

    async def one(index: int, body: dict[str, Any]) -> Answer:
        try:
            task = SubmitRequest.model_validate(body)
        except ValidationError as e:
            return _invalid(index, e)
        async with limit:  # FIFO: the tasks are decided in the order sent
            return await submit_one(service, task)

    answers = await asyncio.gather(*(one(i, body) for i, body in enumerate(req.tasks)))
    results = [
        SubmitBatchItem(
            status="success" if a.status_code == 200 else "error",
            status_code=a.status_code,
            task_id=a.body.get("task_id"),
            scheduled_ti=a.body.get("scheduled_ti"),
            detail=a.body.get("detail"),
        )
        for a in answers
    ]
    return SubmitBatchResponse(accepted=sum(a.status_code == 200 for a in answers), results=results)


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route(
        "/queue/submit_batch",
        submit_batch,
        methods=["POST"],
        response_model=SubmitBatchResponse,
        response_model_exclude_none=True,
        description="Submit up to 1,000 tasks; each is answered as /queue/submit would answer it, in order.",
    )
    return r
