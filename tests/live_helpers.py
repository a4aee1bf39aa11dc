"""Helpers for live-mode tests: in-process uvicorn servers and polling with deadlines.

Subprocess servers come from :mod:`scheduler.live.launcher` (``LocalCluster``);
these helpers run an ASGI app in a thread of the test process instead, for
tests that look inside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import uvicorn

from scheduler.live import free_port

T = TypeVar("T")


class ServerThread:
    """``with ServerThread(app) as url:`` serves ``app`` on 127.0.0.1 until the block ends."""

    def __init__(self, app, port: int | None = None, **config):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, **config
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 30, "server start")
        if not self.server.started:
            raise RuntimeError(f"uvicorn did not start on port {self.port}")
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_for(check: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
