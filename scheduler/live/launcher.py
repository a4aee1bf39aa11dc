"""Start reference task instances and a scheduler as subprocesses on loopback.

For examples, end-to-end tests and benchmarks: each server is a real
``python -m scheduler.instance`` or ``python -m scheduler serve`` process on a
free 127.0.0.1 port, with its output in a log file.  Every wait has a
deadline, and :class:`ServerProcess` / :class:`LocalCluster` always stop what
they started (terminate, then kill), also when a step fails.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from .config import OPTIONS

log = logging.getLogger(__name__)

_SRC_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the ``scheduler`` package


def wait_for_tasks(
    client: httpx.Client,
    task_ids: Sequence[str],
    timeout_s: float = 30.0,
    poll_s: float = 0.05,
    *,
    token: str | None = None,
) -> dict[str, dict]:
    """Poll ``GET /task/query`` until every task has completed or failed; their answers by id.

    ``client`` has the scheduler's base URL; ``token`` is the api (or admin) token, if the
    scheduler has one.  Raises ``TimeoutError`` naming how many tasks are still running once
    ``timeout_s`` has passed."""
    headers = auth_headers(token)
    deadline = time.monotonic() + timeout_s
    done: dict[str, dict] = {}
    while len(done) < len(task_ids):
        for tid in task_ids:
            if tid not in done:
                task = client.get("/task/query", params={"task_id": tid}, headers=headers).json()
                if task["task_status"] in ("completed", "failed"):
                    done[tid] = task
        if len(done) < len(task_ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(task_ids) - len(done)} task(s) still running after {timeout_s:g} s")
            time.sleep(poll_s)
    return done


def auth_headers(token: str | None) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}``, or no header without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """One server subprocess: its base URL, its log, and a clean stop."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        url: str,
        ready_path: str,
        *,
        env: Mapping[str, str] | None = None,
        log_dir: str | os.PathLike | None = None,
    ):
        self.name, self.url, self.ready_path = name, url, ready_path
        folder = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="infersched-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"{name}.log"
        full_env = dict(os.environ if env is None else env)
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC_ROOT, full_env.get("PYTHONPATH")) if p)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float = 60.0) -> ServerProcess:
        """Poll ``ready_path`` until it answers 200; raise with the log if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode}; log:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} not ready at {self.url} after {timeout_s:g} s; log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.alive:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate (graceful shutdown), kill if still running after ``timeout_s``."""
        try:
            if self.alive:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_instance(
    model: str = "demo",
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    replicas: int = 1,
    service_time: Mapping[str, Any] | str | None = None,
    model_kind: str | None = None,
    seed: int | None = None,
    speed: float | None = None,
    instance_id: str | None = None,
    log_dir: str | os.PathLike | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """``python -m scheduler.instance`` on a free port (not yet ready: call ``wait_ready``)."""
    port = port or free_port(host)
    args = [
        "-m",
        "scheduler.instance",
        "--model",
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--replicas",
        str(replicas),
    ]
    if service_time is not None:
        args += [
            "--service-time",
            service_time if isinstance(service_time, str) else json.dumps(service_time),
        ]
    for flag, value in (
        ("--model-kind", model_kind),
        ("--seed", seed),
        ("--speed", speed),
        ("--instance-id", instance_id),
    ):
        if value is not None:
            args += [flag, str(value)]
    return ServerProcess(
        f"instance-{model}-{port}", [*args, *extra_args], f"http://{host}:{port}", "/status", log_dir=log_dir
    )


def start_scheduler(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    log_dir: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> ServerProcess:
    """``python -m scheduler serve`` on a free port; ``options`` are :data:`OPTIONS` names
    (``task_timeout_s=2`` becomes ``--task-timeout-s 2``).  State is kept in memory only
    unless ``state_db`` names a file."""
    port = port or free_port(host)
    options.setdefault("state_db", "none")  # a test or example never leaves a state file behind
    known = {o.name: o for o in OPTIONS}
    args = ["-m", "scheduler", "serve", "--host", host, "--port", str(port)]
    for name, value in options.items():
        if name not in known:
            raise TypeError(f"unknown scheduler option {name!r}; valid: {', '.join(sorted(known))}")
        flag = known[name].flag
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            args += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return ServerProcess(
        f"scheduler-{port}", args, f"http://{host}:{port}", "/health", env=env, log_dir=log_dir
    )


class LocalCluster:
    """Reference instances and a scheduler on loopback, the instances registered.

    ``instances`` holds keyword arguments of :func:`start_instance`, one dict
    per instance; ``scheduler`` those of :func:`start_scheduler`.  Use it as a
    context manager: everything started is stopped on exit, whatever happened.
    """

    def __init__(
        self,
        instances: Sequence[Mapping[str, Any]],
        *,
        scheduler: Mapping[str, Any] | None = None,
        register: bool = True,
        log_dir: str | os.PathLike | None = None,
        ready_timeout_s: float = 60.0,
    ):
        self._instance_args = [dict(a) for a in instances]
        self._scheduler_args = dict(scheduler or {})
        self._register = register
        # a folder of its own is removed when the cluster ends well, and kept (and named) when it does not
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="infersched-"))
        self.ready_timeout_s = ready_timeout_s
        self.instances: list[ServerProcess] = []
        self.scheduler: ServerProcess | None = None
        self.ti_uuids: list[str] = []

    @property
    def url(self) -> str:
        assert self.scheduler is not None, "cluster not started"
        return self.scheduler.url

    def start(self) -> LocalCluster:
        try:
            # start every process first, so that they boot in parallel
            self.instances = [start_instance(log_dir=self.log_dir, **a) for a in self._instance_args]
            self.scheduler = start_scheduler(log_dir=self.log_dir, **self._scheduler_args)
            for p in [*self.instances, self.scheduler]:
                p.wait_ready(self.ready_timeout_s)
            self._register_instances()
        except BaseException:
            self.stop()
            raise
        return self

    def restart_scheduler(self, **options: Any) -> ServerProcess:
        """Stop the scheduler, start a fresh one with ``options`` (those of
        :func:`start_scheduler`, replacing the cluster's) and register the instances with it."""
        if self.scheduler is not None:
            self.scheduler.stop()
        self._scheduler_args = dict(options)
        try:
            self.scheduler = start_scheduler(log_dir=self.log_dir, **self._scheduler_args)
            self.scheduler.wait_ready(self.ready_timeout_s)
            self._register_instances()
        except BaseException:
            self.stop()
            raise
        return self.scheduler

    def _register_instances(self) -> None:
        if self._register:
            self.ti_uuids = [
                self.register(p, a.get("speed")) for p, a in zip(self.instances, self._instance_args)
            ]

    def register(self, inst: ServerProcess, speed: float | None = None) -> str:
        """Register one instance with the scheduler (``speed``: the predictor's hint, as the
        instance was started with); returns its ti_uuid."""
        where = httpx.URL(inst.url)
        req: dict[str, Any] = {"host": where.host, "port": where.port}
        if speed is not None:
            req["speed"] = speed
        body = httpx.post(
            f"{self.url}/ti/register", json=req, headers=self.headers(admin=True), timeout=10
        ).json()
        if body.get("status") != "success":
            raise RuntimeError(f"registering {inst.name} failed: {body.get('message')}")
        return body["ti_uuid"]

    def headers(self, *, admin: bool = False) -> dict[str, str]:
        """The bearer header for the scheduler's client endpoints (``admin``: management ones),
        from the tokens it was started with; none if it has none."""
        opts = self._scheduler_args
        token = opts.get("admin_token") or opts.get("api_token") if admin else opts.get("api_token")
        return auth_headers(token or opts.get("admin_token"))

    def stop(self) -> None:
        procs = [p for p in [self.scheduler, *self.instances] if p is not None]
        for p in procs:  # terminate all first, then wait: shutdowns overlap
            if p.alive:
                p.proc.terminate()
        for p in procs:
            p.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if not self._own_log_dir:
            return
        if exc_type is None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        else:
            log.warning("the cluster's server logs are kept in %s", self.log_dir)
