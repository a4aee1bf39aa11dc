"""Live mode: the scheduler as a FastAPI service driving real task instances over HTTP.

Imported on demand (``import scheduler`` does not load it).  Start it with
``python -m scheduler serve``; build it in code with
``create_app(load_config(LiveConfig(...)))``.  :class:`LocalCluster` starts reference task
instances and a scheduler as subprocesses on loopback, for examples, tests
and benchmarks.
"""

from ..protocol import pooled_transport
from .app import create_app
from .client import InstanceError, TaskInstanceClient
from .clock import WallClock
from .config import OPTIONS, InstanceAddress, LiveConfig
from .launcher import (
    LocalCluster,
    ServerProcess,
    auth_headers,
    free_port,
    start_instance,
    start_scheduler,
    wait_for_tasks,
)
from .loading import load_config, load_instances, load_lookup_table
from .modes import LIVE_MODES, LIVE_PREDICT_MODES, mode_from_api, mode_to_api
from .service import LiveScheduler, Refused, SubmitRefused

__all__ = [
    "LIVE_MODES",
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
    "auth_headers",
    "create_app",
    "free_port",
    "load_config",
    "load_instances",
    "load_lookup_table",
    "mode_from_api",
    "mode_to_api",
    "pooled_transport",
    "start_instance",
    "start_scheduler",
    "wait_for_tasks",
]
