"""The scheduler API (docs/api.md) as FastAPI routers, one module per area.

Each module has module-level handlers and a ``router()`` that builds a fresh
:class:`fastapi.APIRouter` for one app.  Handlers reach the service as
``request.app.state.service``, through :func:`~.deps.service_of`.

* :mod:`.settings`: ``/scheduler/set``, ``/scheduler/predict_mode``, ``/scheduler/stats``
* :mod:`.instances`: ``/ti/register``, ``/ti/remove``
* :mod:`.tasks`: ``/queue/submit``, ``/queue/info``, ``/task/query``, ``/task/details``
* :mod:`.batch`: ``/queue/submit_batch`` (each task answered as :mod:`.submitting` answers a submit)
* :mod:`.health`: ``/health``, ``/notify/task_complete``
* :mod:`.metrics`: ``/metrics``
"""

from __future__ import annotations

from fastapi import APIRouter

from ...protocol.fastlane import Handler
from . import batch, health, instances, metrics, settings, submitting, tasks
from .deps import service_of


def fast_routes() -> dict[tuple[str, str], Handler]:
    """The endpoints every task passes through, for the app's fast lane (:mod:`scheduler.protocol.fastlane`)."""
    return {
        ("POST", "/queue/submit"): submitting.fast_submit,
        ("POST", "/notify/task_complete"): health.fast_complete,
    }


def routers() -> list[APIRouter]:
    """A fresh router for every area of the API."""
    return [
        health.router(),
        settings.router(),
        instances.router(),
        tasks.router(),
        batch.router(),
        metrics.router(),
    ]


__all__ = ["fast_routes", "routers", "service_of"]
