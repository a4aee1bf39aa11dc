"""Run an ASGI app under uvicorn with uvicorn's own logging, extended to our loggers.

Both servers (``python -m scheduler serve`` and ``python -m scheduler.instance``)
run through :func:`run`, so ``scheduler.*`` log records go to uvicorn's
handler and format.  uvicorn picks uvloop and httptools when they are
installed (``uvicorn[standard]``), else asyncio and h11.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from ..core import SpecError


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with a ``scheduler`` logger at ``level``
    (:class:`SpecError` for an unknown level)."""
    if level.lower() not in LOG_LEVELS:
        raise SpecError("log_level", level, "one of " + ", ".join(LOG_LEVELS))
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["scheduler"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg


def run(app: ASGIApp, *, host: str, port: int, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully (the app's lifespan ends)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level),
        log_level=log_level.lower(),
        access_log=access_log,
    )
