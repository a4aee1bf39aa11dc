"""Run an ASGI app under uvicorn with uvicorn's own logging, extended to our loggers.

Both servers (``python -m scheduler serve`` and ``python -m scheduler.instance``)
run through :func:`run`, so ``scheduler.*`` log records go to uvicorn's
handler and format.  uvicorn picks uvloop and httptools when they are
installed (``uvicorn[standard]``), else asyncio and h11.
"""

from __future__ import annotations

import copy
import gc
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


#: the cyclic collector's thresholds in a server (Python's default: 700, 10, 10)
GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a server: what exists at start-up (modules, the
    app) is frozen out of every collection (:func:`gc.freeze`), and the youngest generation is
    collected every 10,000 allocations instead of 700.  A request's objects (its coroutines,
    futures, bodies) live for a few milliseconds: at 700 they were scanned, promoted and scanned
    again while the request still ran, and the promotions brought on full collections of the
    whole heap; with the larger threshold most are freed by reference counting before any scan.
    Measured with benchmarks/bench_live.py's set-up: about 50 us less CPU per task in the scheduler,
    about 40 in the null router.  Cyclic garbage lives a little longer (at most ~10,000 objects)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(app: ASGIApp, *, host: str, port: int, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully (the app's lifespan ends).

    Connections are bounded (:mod:`scheduler.protocol.guard`): idle and half-sent requests time out,
    requests above the concurrency limit answer 503, connections above the cap are closed."""
    limit_concurrency, max_connections = connection_limits()
    tune_gc()
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
