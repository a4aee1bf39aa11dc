"""A reference task instance, so that live mode runs end to end on one machine.

``python -m scheduler.instance --model NAME --port 8100 --replicas 2
--service-time '{dist: lognormal, mean_ms: 50, cv: 0.5}'`` serves the
task-instance protocol of docs/api.md: a FIFO queue over ``replicas`` workers that
reports each completion to the task's callback URL.
"""

from .app import create_instance_app
from .runtime import InstanceRuntime, Job
from .work import MODEL_KINDS, MatmulWork, SleepWork, TaskInputError

__all__ = [
    "MODEL_KINDS",
    "InstanceRuntime",
    "Job",
    "MatmulWork",
    "SleepWork",
    "TaskInputError",
    "create_instance_app",
]
