"""Live mode: the scheduler as a FastAPI service driving real task instances over HTTP.

Imported on demand (``import scheduler`` does not load it).  Start it with
``python -m scheduler serve``; build it in code with
``create_app(LiveConfig(...))``.  :class:`LocalCluster` starts reference task
instances and a scheduler as subprocesses on loopback, for examples, tests
and benchmarks.
"""

from .app import create_app
from .client import InstanceError, TaskInstanceClient, pooled_transport
from .clock import WallClock
from .config import OPTIONS, InstanceAddress, LiveConfig, load_instances, load_lookup_table
from .launcher import (
    LocalCluster,
    ServerProcess,
    free_port,
    start_instance,
    start_scheduler,
    wait_for_tasks,
)
from .service import LIVE_PREDICT_MODES, LiveScheduler, Refused, SubmitRefused

__all__ = [
    "LIVE_PREDICT_MODES",
    "OPTIONS",
    "InstanceAddress",
    "InstanceError",
    "LiveConfig",
    "LiveScheduler",
    "LocalCluster",
    "Refused",
    "ServerProcess",
    "SubmitRefused",
    "TaskInstanceClient",
    "WallClock",
    "create_app",
    "free_port",
    "load_instances",
    "load_lookup_table",
    "pooled_transport",
    "start_instance",
    "start_scheduler",
    "wait_for_tasks",
]
