"""The task-instance protocol (docs/api.md): what the scheduler service and the
reference task instance share, so that neither imports the other.

* :mod:`.models`: the pydantic bodies of the protocol;
* :mod:`.fastlane`: :class:`FastLane`, the per-task endpoints served ahead of FastAPI's routing;
* :mod:`.jsonhttp`: :func:`json_client`, the lean JSON client both sides call each other with
  on the hot path (aiohttp directly);
* :mod:`.transport`: :func:`pooled_transport`, httpx over aiohttp's pool, for other clients;
* :mod:`.server`: :func:`run`, serving either side's app under uvicorn with
  the ``scheduler.*`` loggers wired to uvicorn's.
"""

from .fastlane import LEAN_APP, Answer, FastLane, parse_body
from .jsonhttp import HttpFailure, Reply, json_client
from .models import (
    CancelRequest,
    CancelResponse,
    CompletionNotification,
    CompletionResponse,
    EnqueueRequest,
    EnqueueResponse,
    InstanceStatus,
    JobStatus,
    PredictResponse,
    QueueStatusResponse,
    ResultResponse,
    ResultsResponse,
    RunsResponse,
    TaskMetrics,
)
from .server import log_config, run
from .transport import KEEPALIVE_EXPIRY_S, pooled_transport

__all__ = [
    "LEAN_APP",
    "KEEPALIVE_EXPIRY_S",
    "Answer",
    "FastLane",
    "parse_body",
    "HttpFailure",
    "Reply",
    "json_client",
    "CancelRequest",
    "CancelResponse",
    "CompletionNotification",
    "TaskMetrics",
    "CompletionResponse",
    "EnqueueRequest",
    "EnqueueResponse",
    "InstanceStatus",
    "JobStatus",
    "PredictResponse",
    "QueueStatusResponse",
    "ResultResponse",
    "ResultsResponse",
    "RunsResponse",
    "log_config",
    "pooled_transport",
    "run",
]
