"""Bodies of the task-instance protocol (docs/api.md), as pydantic models.

The scheduler calls an instance's ``GET /status``, ``POST /queue/enqueue``,
``POST /queue/predict`` and ``GET /results/{task_id}``; the instance answers
with these bodies and reports each finished task with a
:class:`CompletionNotification` to ``POST /notify/task_complete``.  Durations
are milliseconds, timestamps epoch seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class InstanceStatus(BaseModel):
    instance_id: str = Field(min_length=1)
    model_type: str = Field(min_length=1)
    replicas_running: int = Field(ge=0)
    queue_size: int = Field(ge=0)
    status: Literal["running", "idle", "error"]


class EnqueueRequest(BaseModel):
    task_id: str | None = Field(
        default=None,
        min_length=1,
        description="the scheduler's id for the task; without it (a seed-era client) the instance "
        "assigns one and answers with it",
    )
    input_data: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback_url: str | None = None
    callback_token: str | None = Field(
        default=None,
        description="the scheduler's secret for this instance: sent back as "
        "'Authorization: Bearer <callback_token>' on the completion callback",
    )
    expires_at: float | None = Field(
        default=None,
        description="epoch seconds: the scheduler gives up on this delivery then (and sends the task "
        "elsewhere), so an instance that reads the request later must not queue it",
    )


class EnqueueResponse(BaseModel):
    task_id: str
    queue_size: int
    enqueue_time: float = Field(description="epoch seconds")


class QueueStatusResponse(BaseModel):
    """``GET /queue/status``: the instance's backlog as the seed-era client reads it."""

    queue_size: int
    model_type: str
    expected_ms: float
    error_ms: float


class CancelRequest(BaseModel):
    task_id: str = Field(min_length=1)


class CancelResponse(BaseModel):
    task_id: str
    cancelled: bool = Field(description="dropped before it started")
    status: str | None = Field(description="the task's status here (None: unknown here)")


class RunsResponse(BaseModel):
    """What a reference instance started (``GET /runs``): task_id -> times started."""

    instance_id: str
    runs: dict[str, int]


class PredictResponse(BaseModel):
    expected_ms: float
    error_ms: float
    queue_size: int


JobStatus = Literal["queued", "running", "completed", "failed"]


class ResultResponse(BaseModel):
    task_id: str
    status: JobStatus
    result: Any = None
    error: str | None = None
    enqueue_time: float = Field(description="epoch seconds")
    completion_time: float | None = Field(default=None, description="epoch seconds")
    wait_time: float | None = Field(default=None, description="ms from enqueue to start")
    execution_time: float | None = Field(default=None, description="ms")
    total_time: float | None = Field(default=None, description="ms from enqueue to completion")


class ResultsResponse(BaseModel):
    """``GET /results``: every task the instance still knows, under its own ids."""

    instance_id: str
    results: list[ResultResponse]


class TaskMetrics(BaseModel):
    """Token counts of a finished task, as the instance measured them (e.g. an OpenAI answer's ``usage``)."""

    input_tokens: int | None = Field(default=None, ge=0, strict=True)
    output_tokens: int | None = Field(default=None, ge=0, strict=True)

    def counts(self) -> dict[str, int] | None:
        out = self.model_dump(exclude_none=True)
        return out or None


class CompletionNotification(BaseModel):
    task_id: str
    instance_id: str
    execution_time: float = Field(
        ge=0,
        allow_inf_nan=False,
        strict=True,
        description="measured execution time (ms); a number, not a boolean",
    )
    result: Any = None
    error: str | None = None
    metrics: TaskMetrics | None = Field(default=None, description="the task's token counts, if measured")


class CompletionResponse(BaseModel):
    status: Literal["success", "warning"]
    message: str
    total_time_ms: float | None = None
