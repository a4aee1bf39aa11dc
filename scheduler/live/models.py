"""Request and response bodies of the scheduler API (docs/api.md), as pydantic models.

The task-instance protocol's bodies (what the scheduler sends to instances,
and their completion callbacks) are in :mod:`scheduler.protocol`.
Durations are milliseconds, timestamps epoch seconds, as in docs/api.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["success", "error"]
TaskStatus = Literal["queued", "scheduled", "completed", "failed"]


class HealthResponse(BaseModel):
    status: Literal["healthy"] = "healthy"
    service: str = "scheduler"
    version: str


class StatusMessage(BaseModel):
    status: Status
    message: str


class SetStrategyRequest(BaseModel):
    name: str = Field(description="strategy name, e.g. shortest_queue, round_robin, weighted, probabilistic")
    params: dict[str, Any] = Field(
        default_factory=dict, description='optional strategy parameters, e.g. {"d": 2} for power_of_two'
    )


class PredictModeRequest(BaseModel):
    mode: str = Field(
        description="default (online learning), lookup_table, or regression (fits execution time on "
        "the tasks' metadata, input_tokens by default)"
    )


class RegisterRequest(BaseModel):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535, strict=True, description="an integer (not a string or boolean)")
    model_name: str | None = Field(
        default=None, min_length=1, description="defaults to the model_type the instance reports"
    )
    speed: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="optional speed hint for the predictor "
        "(execution time = size / speed, as in a scenario); default 1",
    )
    protocol: Literal["enqueue", "submit"] | None = Field(
        default=None,
        description="the instance's dialect: enqueue (GET /status + POST /queue/enqueue) or submit "
        "(GET /info + POST /queue/submit); detected when left out",
    )


class RegisterResponse(BaseModel):
    status: Status
    message: str
    ti_uuid: str
    protocol: str = Field(default="", description="the dialect the instance was registered with")


class RemoveRequest(BaseModel):
    ti_uuid: str


class RemoveResponse(BaseModel):
    status: Status
    message: str
    ti_uuid: str


class SubmitRequest(BaseModel):
    model_name: str = Field(min_length=1)
    task_input: Any = Field(description="passed to the instance as input_data")
    metadata: dict[str, Any] = Field(default_factory=dict, description="what the predictor may use")
    task_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="optional; must not be in use"
    )


class SubmitResponse(BaseModel):
    status: Literal["success"] = "success"
    task_id: str
    scheduled_ti: str


MAX_BATCH = 1000


class SubmitBatchRequest(BaseModel):
    tasks: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} tasks, each a /queue/submit body; each is checked on its own",
    )


class SubmitBatchItem(BaseModel):
    status: Status
    status_code: int = Field(description="what /queue/submit would have answered for this task alone")
    task_id: str | None = Field(default=None, description="when accepted (or recorded as failed: 503)")
    scheduled_ti: str | None = Field(default=None, description="when accepted")
    detail: Any = Field(default=None, description="why not accepted (a 422 detail list for a bad task)")


class SubmitBatchResponse(BaseModel):
    status: Literal["success"] = "success"
    accepted: int = Field(description="tasks answered 200")
    results: list[SubmitBatchItem] = Field(description="one per task, in the order sent")


class QueueInfoItem(BaseModel):
    model_name: str
    ti_uuid: str
    waiting_time_expect: float = Field(description="expected wait of a new task there (ms)")
    waiting_time_error: float = Field(description="standard deviation of that wait (ms)")


class QueueInfoResponse(BaseModel):
    status: Status
    queues: list[QueueInfoItem]


class TaskQueryResponse(BaseModel):
    task_id: str
    task_status: TaskStatus
    scheduled_ti: str = Field(description="ti_uuid of the instance; empty if never scheduled")
    submit_time: float = Field(description="epoch seconds")
    result: Any = Field(
        description='the instance\'s result when completed, {"error": ...} when failed, else null'
    )
    metrics: dict[str, int] | None = Field(
        default=None,
        description="token counts the instance reported with the completion "
        "({input_tokens, output_tokens}); null if none",
    )


class TaskDetail(TaskQueryResponse):
    """Beyond the original spec: a task as the scheduler recorded it, with its own timings and prediction, so that
    a load driver builds its tables from the scheduler's and the instances' clocks."""

    completion_time: float | None = Field(description="epoch seconds when the end was recorded; null before")
    execution_time_ms: float | None = Field(description="execution time the instance measured (ms)")
    predicted_ms: float | None = Field(description="predicted execution time at dispatch (ms)")
    predicted_error_ms: float | None = Field(description="standard deviation of that prediction (ms)")
    instance_name: str | None = Field(description="the instance_id the instance reported in /status")


class TaskDetailsRequest(BaseModel):
    task_ids: list[str] = Field(min_length=1, max_length=1000, description="1 to 1000 task ids")


class TaskDetailsResponse(BaseModel):
    tasks: list[TaskDetail] = Field(description="the known tasks, in the order asked")
    unknown: list[str] = Field(
        description="ids the scheduler does not know (never submitted, or dropped "
        "from its history: max_history)"
    )


class StatsResponse(BaseModel):
    """Beyond the original spec: counts and recent timings from the tracker, for operators and benchmarks."""

    status: Literal["success"] = "success"
    strategy: str
    predict_mode: str
    counts: dict[str, int]
    instances: int
    total_ms: dict[str, float] | None
    wait_ms: dict[str, float] | None
    execution_ms: dict[str, float] | None
