"""LiveScheduler: the core Scheduler driven by HTTP events and real instances.

The service owns a configured core :class:`~scheduler.Scheduler` (wall clock,
``task-<32 hex digits>`` ids), one :class:`TaskInstanceClient`, and the little
state the core cannot hold: where each instance listens, which ``instance_id``
it reported, and the input of every task in flight (so that a task can be
delivered again elsewhere).  Everything is async and runs on one event loop;
nothing blocks.

No task is lost:

* delivery: the core chooses, the service POSTs ``/queue/enqueue``; if that
  fails the core takes the task back (``Scheduler.retry``) and chooses among
  the other instances, at most ``max_attempts`` times; when nowhere is left
  the task is failed with the reasons and the caller gets :class:`SubmitRefused`;
* health: a background loop polls ``GET /status`` of every instance; an
  instance that fails ``unhealthy_after`` checks in a row (or refuses a
  connection during delivery) gets no new tasks until it answers again;
* watchdog: a task scheduled for ``task_timeout_s`` is checked with its
  instance (``GET /results/{task_id}``): a lost completion is recovered, a task
  still queued or running on a live instance is given more time (up to
  ``task_hard_limit_s``), and a task whose instance is unhealthy, unreachable
  or has forgotten it is dispatched again elsewhere, or failed with the reason.

One module per job, each adding its methods to the one service class:
``state`` (what the service holds, and writing it to the store) <- ``instances``
(registration, health) and ``completion`` (tasks ending) <- ``dispatch`` (submit,
delivery, failover) <- ``watchdog`` <- ``polling`` (``GET /results`` of instances without
callback secrets, docs/api.md "Dialects") <- ``live`` (:class:`LiveScheduler`: lifecycle,
settings, queries); ``build`` makes the core, ``recovery`` brings a stored state back,
``rows`` converts task records to the store's rows.
"""

from .build import build_core, record_bytes
from .live import LiveScheduler
from .state import Ack, InFlight, InstanceEntry, Refused, SubmitRefused

__all__ = [
    "Ack",
    "InFlight",
    "InstanceEntry",
    "LiveScheduler",
    "Refused",
    "SubmitRefused",
    "build_core",
    "record_bytes",
]
