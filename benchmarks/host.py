"""How fast this host is, printed beside a benchmark's figures so that runs on different hosts
(or on one virtual machine at different hours: its speed moves with what its neighbours run,
which the load average does not show) can be read side by side.

Run: .venv/bin/python benchmarks/host.py
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import timeit

import numpy as np

# a child process that answers every message on one loopback connection with the same bytes
_ECHO = """
import socket, sys
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while data := conn.recv(4096):
    conn.sendall(data)
"""


def compute_reference() -> str:
    """Two small computations, best of 5: numpy's argmin over 64 values, and a loop of Python
    additions (what the decision benchmark's figures are made of)."""
    a = np.random.default_rng(0).random(64)
    argmin_us = min(timeit.repeat(a.argmin, number=100_000, repeat=5)) / 100_000 * 1e6
    loop_ms = min(timeit.repeat("s = 0\nfor i in range(100_000): s += i", number=1, repeat=5)) * 1e3
    return (
        f"host reference: numpy argmin over 64 values {argmin_us:.3f} us; "
        f"100,000 Python additions in a loop {loop_ms:.2f} ms"
    )


def loopback_round_trip_us(trips: int = 2000) -> float:
    """Median wall time (us) of a 64-byte message sent to another process over a loopback TCP
    connection and answered: two system calls and a wake-up on each side, the unit of what the
    live benchmark's HTTP messages cost beyond their parsing."""
    child = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            msg, times = b"x" * 64, []
            for _ in range(trips):
                t0 = time.perf_counter()
                s.sendall(msg)
                got = 0
                while got < len(msg):
                    got += len(s.recv(4096))
                times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6
    finally:
        child.wait(timeout=10)


def live_reference() -> str:
    """:func:`compute_reference` and the loopback round trip between two processes."""
    return (
        f"{compute_reference()}; loopback round trip between two processes {loopback_round_trip_us():.0f} us"
    )


if __name__ == "__main__":
    print(live_reference())
