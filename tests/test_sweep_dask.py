"""Sweeps on a real Dask cluster, started the way Dask's documentation says.

``dask scheduler`` and two ``dask worker`` processes run as separate
processes bound to 127.0.0.1 (dashboards off, their HTTP servers on
loopback too); ``python -m sim sweep`` runs against them through the
command line, and its frames must equal a serial run of the same sweep to
the last bit.  Then a worker is killed while it holds a run, and the sweep
must still finish with the identical result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml
from live_helpers import wait_for

from scheduler.live import free_port
from sim.io import load_results

pytestmark = pytest.mark.e2e

DASK = Path(sys.executable).with_name("dask")
REPO = Path(__file__).resolve().parents[1]

SWEEP = {
    "scenario": {
        "name": "dask-sweep",
        "seed": 11,
        "tasks": 1000,
        "warmup_tasks": 200,
        "strategies": ["random", "shortest_queue"],
        "predictor": {"mode": "oracle"},
        "models": {"m": {"service_time": {"dist": "lognormal", "mean_ms": 100, "cv": 1.0}}},
        "instances": [{"model": "m", "count": 4}],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 20}},
    },
    "grid": {"load": [0.6, 0.9], "predictor.mode": ["oracle", "online"]},
    "replications": 2,
    "tasks": 6000,
}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _sweep_cli(sweep_file: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim", "sweep", str(sweep_file), "--out", str(out), "--no-plots", *extra],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _listening(pid: int) -> list[tuple[str, int]]:
    conns = psutil.Process(pid).net_connections(kind="inet")
    return [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    p.write_text(yaml.safe_dump(SWEEP))
    return p


@pytest.fixture(scope="module")
def serial(sweep_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    done = _sweep_cli(sweep_file, out, "--processes", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    return load_results(out)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker``s on 127.0.0.1; yields (address, worker processes)."""
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process below
        p = subprocess.Popen([str(DASK), *args], cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    loopback_http = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")
    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), *loopback_http)
        workers = [
            start(
                f"worker{k}",
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--death-timeout",
                "60",
                *loopback_http,
            )
            for k in range(2)
        ]
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address, workers, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a["sweep"], b["sweep"], check_exact=True)
    pd.testing.assert_frame_equal(a["summary"], b["summary"], check_exact=True)


def test_engine_listens_on_loopback_only(dask_cluster):
    _, _, procs = dask_cluster
    for p in procs:
        sockets = _listening(p.pid)
        assert sockets, f"process {p.args[:2]} listens nowhere?"
        assert all(ip == "127.0.0.1" for ip, _ in sockets), (p.args[:2], sockets)


def test_sweep_on_dask_matches_serial_exactly(dask_cluster, sweep_file, serial, tmp_path):
    address, _, _ = dask_cluster
    done = _sweep_cli(sweep_file, tmp_path, "--cluster", address, "--no-progress", "-v")
    assert done.returncode == 0, done.stderr
    assert f"on {address}" in done.stdout
    on_dask = load_results(tmp_path)
    assert len(on_dask["sweep"]) == 4 * 2 * 2  # points x replications x strategies
    _assert_same(on_dask, serial)


def test_sweep_survives_a_killed_worker(dask_cluster, sweep_file, serial, tmp_path):
    from distributed import Client

    address, workers, _ = dask_cluster
    victim = workers[0]
    cli = subprocess.Popen(
        [sys.executable, "-m", "sim", "sweep", str(sweep_file), "--out", str(tmp_path), "--no-plots"]
        + ["--cluster", address, "--no-progress", "-v"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(address, timeout="30s") as client:
            pids = client.run(os.getpid)  # worker address -> pid
            victim_addr = next(a for a, pid in pids.items() if pid == victim.pid)

            def victim_busy():
                held = client.processing().get(victim_addr, ())
                return any(str(k).startswith("sim-unit-") for k in held)

            wait_for(victim_busy, 120, "a sweep run on the worker to be killed", interval_s=0.05)
            time.sleep(0.1)  # inside a run (each takes about half a second)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            wait_for(lambda: len(client.scheduler_info()["workers"]) == 1, 30, "the scheduler to drop it")
        stdout, stderr = cli.communicate(timeout=240)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 0, stderr
    assert "8 of 8 runs" in stdout
    _assert_same(load_results(tmp_path), serial)
