"""How a handler reaches the service: ``app.state.service``, as a FastAPI dependency.

A handler declares a parameter ``service: Service`` and receives the
:class:`~scheduler.live.LiveScheduler` that :func:`~scheduler.live.create_app`
attached to the app; tests can swap it through ``app.dependency_overrides[get_service]``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..service import LiveScheduler


async def get_service(request: Request) -> LiveScheduler:
    """The service of the app serving ``request`` (async: FastAPI runs it on the event loop)."""
    service: LiveScheduler = request.app.state.service
    return service


Service = Annotated[LiveScheduler, Depends(get_service)]
