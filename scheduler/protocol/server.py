"""Run an ASGI app under uvicorn with uvicorn's own logging, extended to our loggers.

Both servers (``python -m scheduler serve`` and ``python -m scheduler.instance``)
run through :func:`run`, so ``scheduler.*`` log records go to uvicorn's
handler and format.  uvicorn picks uvloop and httptools when they are
installed (``uvicorn[standard]``), else asyncio and h11.
"""

from __future__ import annotations

import copy
import resource
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from ..core import SpecError
from .guard import HEADER_TIMEOUT_S, MAX_CONNECTIONS, MAX_HEAD_BYTES, guarded


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with a ``scheduler`` logger at ``level``
    (:class:`SpecError` for an unknown level)."""
    if level.lower() not in LOG_LEVELS:
        raise SpecError("log_level", level, "one of " + ", ".join(LOG_LEVELS))
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["scheduler"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg


def connection_limits() -> tuple[int, int]:
    """``(limit_concurrency, max_connections)`` that leave file descriptors to spare: at most half of
    the process' descriptor limit are client connections, and above half of those requests get 503."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else min(MAX_CONNECTIONS, soft // 2)
    budget = max(budget, 64)
    return budget // 2, budget


def run(app: ASGIApp, *, host: str, port: int, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully (the app's lifespan ends).

    Connections are bounded (:mod:`scheduler.protocol.guard`): idle and half-sent requests time out,
    requests above the concurrency limit answer 503, connections above the cap are closed."""
    limit_concurrency, max_connections = connection_limits()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level),
        log_level=log_level.lower(),
        access_log=access_log,
        http=guarded(HEADER_TIMEOUT_S, max_connections),
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,  # under h11; the guard caps it under httptools
        timeout_graceful_shutdown=10,
    )
