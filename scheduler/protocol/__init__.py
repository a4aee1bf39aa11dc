"""The task-instance protocol (docs/api.md): what the scheduler service and the
reference task instance share, so that neither imports the other.

* :mod:`.models`: the pydantic bodies of the protocol;
* :mod:`.transport`: :func:`pooled_transport`, the pooled HTTP transport
  both sides' clients use;
* :mod:`.server`: :func:`run`, serving either side's app under uvicorn with
  the ``scheduler.*`` loggers wired to uvicorn's.
"""

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
    "KEEPALIVE_EXPIRY_S",
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
