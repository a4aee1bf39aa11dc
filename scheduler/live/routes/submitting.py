"""One submit, answered as ``POST /queue/submit`` answers it: shared by ``/queue/submit`` and
``/queue/submit_batch`` (each task of a batch gets exactly the answer it would get alone).

:func:`submit_one` returns the status code and body, never raises for a refusal: 200 with
``{"status": "success", "task_id", "scheduled_ti"}``; 429 above ``--max-pending`` (with
``Retry-After``); 503 when no instance can take the task (``task_id`` when one was recorded);
409 for a client ``task_id`` already used with a different body.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from ...core import DuplicateTaskError
from ...protocol.fastlane import Answer, parse_body
from ..models import SubmitRequest
from ..service import LiveScheduler, SubmitRefused

RETRY_AFTER_S = 1


def too_many(service: LiveScheduler) -> Answer | None:
    """The 429 answer when ``--max-pending`` tasks are pending, else None."""
    if service.pending < service.config.max_pending:
        return None
    return Answer(
        429,
        {
            "detail": f"{service.pending} tasks are pending, the limit is "
            f"{service.config.max_pending} (--max-pending); retry later"
        },
        {"Retry-After": str(RETRY_AFTER_S)},
    )


async def submit_one(service: LiveScheduler, req: SubmitRequest) -> Answer:
    refusal = too_many(service)
    if refusal is not None:
        return refusal
    try:
        task_id, ti = await service.submit(req.model_name, req.task_input, req.metadata, req.task_id)
    except SubmitRefused as e:
        body: dict[str, Any] = {"detail": str(e)}
        if e.task_id is not None:
            body["task_id"] = e.task_id
        return Answer(503, body)
    except DuplicateTaskError as e:
        return Answer(
            409,
            {
                "detail": f"{e} with a different body; a retry with the same body gets the original "
                "answer, or omit task_id to get a fresh one"
            },
        )
    return Answer(200, {"status": "success", "task_id": task_id, "scheduled_ti": ti})


async def fast_submit(app: Any, scope: Scope, body: bytes) -> Answer:
    """``POST /queue/submit`` in the fast lane (:mod:`scheduler.protocol.fastlane`)."""
    return await submit_one(app.state.service, parse_body(SubmitRequest, body))
