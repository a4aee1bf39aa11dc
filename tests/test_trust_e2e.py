"""Trust rules against real servers on 127.0.0.1: tokens and callback secrets with the
reference instance, and the connection limits of :mod:`scheduler.protocol.guard`."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest
from live_helpers import ServerThread, wait_for

from scheduler.live import LocalCluster, wait_for_tasks
from scheduler.protocol.guard import MAX_HEAD_BYTES, FloodFilter, guarded

pytestmark = pytest.mark.e2e

API, ADMIN = "e2e-api-token", "e2e-admin-token"


def test_reference_instance_returns_its_callback_secret_and_tasks_complete(tmp_path):
    instances = [{"model": "demo", "service_time": {"dist": "exponential", "mean_ms": 5}} for _ in range(2)]
    with LocalCluster(instances, scheduler={"api_token": API, "admin_token": ADMIN}, log_dir=tmp_path) as c:
        with httpx.Client(base_url=c.url, timeout=10) as http:
            assert (
                http.post("/queue/submit", json={"model_name": "demo", "task_input": {}}).status_code == 401
            )
            ids = []
            for i in range(20):
                r = http.post(
                    "/queue/submit", json={"model_name": "demo", "task_input": {"i": i}}, headers=c.headers()
                )
                assert r.status_code == 200, r.text
                ids.append(r.json()["task_id"])
            done = wait_for_tasks(http, ids, timeout_s=60, token=API)
            assert {t["task_status"] for t in done.values()} == {"completed"}
            stats = http.get("/scheduler/stats", headers=c.headers()).json()
        log = c.scheduler.log_tail(200)
    assert stats["counts"]["completed"] == 20
    assert "completion notification ignored" not in log  # every callback carried the right secret


def _ok(_scope=None):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _closed(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_slowloris_connections_are_closed():
    """Probe finding: idle and slowloris sockets were never closed (21,000 exhausted descriptors)."""
    with ServerThread(_ok(), http=guarded(0.5, 100), timeout_keep_alive=1) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = socket.create_connection(("127.0.0.1", port))
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        t0 = time.monotonic()
        for _ in range(10):  # a trickle of header bytes does not keep the connection alive
            slow.sendall(b"X-a: b\r\n")
            time.sleep(0.05)
        assert _closed(idle, 5.0) and _closed(slow, 5.0)
        assert time.monotonic() - t0 < 5.0
        assert httpx.get(url, timeout=5).status_code == 200  # the server still serves
        idle.close()
        slow.close()


def test_concurrency_limit_answers_503_and_the_cap_closes_connections_before_descriptors_run_out():
    """Many idle sockets: above ``limit_concurrency`` a request gets 503 (not a hang), above
    the connection cap new sockets are closed at once, and once they go the server serves again."""
    with ServerThread(_ok(), http=guarded(30.0, 40), limit_concurrency=20) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        try:
            wait_for(lambda: httpx.get(url, timeout=5).status_code == 503, 10, "503 above the limit")
            socks += [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
            wait_for(
                lambda: sum(_closed(s, 0.01) for s in socks[40:]) >= 15, 10, "sockets over the cap closed"
            )
            assert not any(_closed(s, 0.01) for s in socks[:30])  # those within the cap stay
        finally:
            for s in socks:
                s.close()
        wait_for(
            lambda: httpx.get(url, timeout=5).status_code == 200, 10, "service back after the sockets closed"
        )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_flood_of_refused_requests_writes_few_log_lines():
    """Probe finding: with descriptors exhausted the log grew by 106 MB in 25 s, one warning per
    request refused above the concurrency limit; now one line per 10 s, with the count held back."""
    uv = logging.getLogger("uvicorn.error")
    for f in [f for f in uv.filters if isinstance(f, FloodFilter)]:
        uv.removeFilter(f)  # a fresh one (guarded() installs it): earlier tests' warnings do not count
    with ServerThread(_ok(), http=guarded(30.0, 400), limit_concurrency=5) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        seen = _Collect()
        logging.getLogger("uvicorn.error").addHandler(seen)  # uvicorn's loggers do not reach the root
        try:
            with httpx.Client(timeout=5) as http:
                codes = [http.get(url).status_code for _ in range(200)]
        finally:
            logging.getLogger("uvicorn.error").removeHandler(seen)
            for s in socks:
                s.close()
    assert codes.count(503) == 200
    flood = [line for line in seen.lines if "concurrency limit" in line]
    assert 1 <= len(flood) <= 2, flood


def test_a_request_head_above_the_cap_is_refused():
    """A head of headers larger than MAX_HEAD_BYTES is refused (400) and its connection closed,
    whichever HTTP parser uvicorn runs (h11 has its own limit, httptools none)."""
    with ServerThread(_ok(), http=guarded(30.0, 100)) as url:
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(10)
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            for _ in range(MAX_HEAD_BYTES // 1000 + 2):
                sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
            answer = sock.recv(200)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        finally:
            sock.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
        assert httpx.get(url, timeout=5).status_code == 200
