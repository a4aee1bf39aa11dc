"""How a handler reaches the service: ``request.app.state.service``.

A handler takes the ``request: Request`` parameter and calls :func:`service_of`
to get the :class:`~scheduler.live.LiveScheduler` that
:func:`~scheduler.live.create_app` attached to the app.  (A FastAPI
``Depends`` would do the same at about 30 us more CPU per request.)
"""

from __future__ import annotations

from fastapi import Request

from ..service import LiveScheduler


def service_of(request: Request) -> LiveScheduler:
    """The service of the app serving ``request``."""
    service: LiveScheduler = request.app.state.service
    return service
