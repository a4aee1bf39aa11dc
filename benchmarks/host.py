"""How fast this host is, printed beside a benchmark's figures so that runs on different hosts
(or on one virtual machine at different hours: its speed moves with what its neighbours run,
which the load average does not show) can be read side by side.

Run: .venv/bin/python benchmarks/host.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import timeit

import numpy as np

# a child process that answers every message on one loopback connection with the same bytes
_ECHO = """
import os, socket, sys
if len(sys.argv) > 1:
    os.sched_setaffinity(0, {int(sys.argv[1])})
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


def loopback_round_trips_us(
    trips: int = 1000, idle_trips: int = 200, idle_s: float = 0.005
) -> tuple[float, float]:
    """Median wall time (us) of a 64-byte message sent to another process over a loopback TCP
    connection and answered: back to back, and after ``idle_s`` of idleness (the latency phase
    of the live benchmark sends a task every 5 ms).  Each is two system calls and a wake-up on
    each side, the unit of what the live benchmark's HTTP messages cost beyond their parsing.
    The two processes are held on two different CPUs where the system allows it (a wake-up on
    another CPU costs several times one on the same CPU on a virtual machine, so an unpinned
    figure depends on where the kernel put them)."""
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pin = len(mine) >= 2
    cpus = sorted(mine)[:2]
    argv = [sys.executable, "-c", _ECHO] + ([str(cpus[1])] if pin else [])
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def trip() -> float:
                t0 = time.perf_counter()
                s.sendall(b"x" * 64)
                got = 0
                while got < 64:
                    data = s.recv(4096)
                    if not data:
                        raise ConnectionError("the echo process closed the connection")
                    got += len(data)
                return time.perf_counter() - t0

            busy = statistics.median(trip() for _ in range(trips))
            idle = []
            for _ in range(idle_trips):
                time.sleep(idle_s)
                idle.append(trip())
        return busy * 1e6, statistics.median(idle) * 1e6
    finally:
        if pin:
            os.sched_setaffinity(0, mine)
        try:
            child.wait(timeout=10)  # it ends when the connection closes
        except subprocess.TimeoutExpired:  # never connected to: still waiting for one
            child.kill()
            child.wait()


def live_reference() -> str:
    """:func:`compute_reference` and the loopback round trips between two processes."""
    busy, idle = loopback_round_trips_us()
    return (
        f"{compute_reference()}; loopback round trip between two processes on two CPUs "
        f"{busy:.0f} us back to back, {idle:.0f} us after 5 ms idle"
    )


if __name__ == "__main__":
    print(live_reference())
