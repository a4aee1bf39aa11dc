"""Crash recovery with real processes on 127.0.0.1 (docs/operations.md, "Durable state and recovery").

A scheduler on a state file is killed with SIGKILL while tasks stream in, and
restarted on the same file and port.  Every task a client was told
``success`` about must end ``completed`` or ``failed`` with a reason,
``/task/query`` must answer for it, and no reference instance may have run any
task twice (``GET /runs``).  Clients whose submit met the dead scheduler retry
with the same ``task_id`` (idempotent submit).
"""

from __future__ import annotations

import threading
import time

import httpx

from scheduler.live import ServerProcess, free_port, start_instance, start_scheduler

SERVICE = {"dist": "deterministic", "value_ms": 50}
SCHEDULER_OPTIONS = {
    "task_timeout_s": 5,
    "health_interval_s": 0.5,
    "unhealthy_after": 2,
    "request_timeout_s": 5,
    "log_level": "warning",
}


def _instances(tmp_path, n: int = 2) -> list[ServerProcess]:
    procs = [
        start_instance(
            "llm",
            replicas=2,
            service_time=SERVICE,
            log_dir=tmp_path,
            extra_args=["--notify-deadline-s", "60"],
        )
        for _ in range(n)
    ]
    for p in procs:
        p.wait_ready()
    return procs


def _scheduler(tmp_path, port: int, db: str) -> ServerProcess:
    return start_scheduler(port=port, state_db=db, log_dir=tmp_path, **SCHEDULER_OPTIONS).wait_ready()


class Submitter:
    """Submits ``n`` tasks at ``rate`` per second from a thread; a submit that fails (the
    scheduler is down) is retried with the same task_id until it is answered."""

    def __init__(self, url: str, n: int, rate: float, prefix: str = "t"):
        self.url, self.n, self.rate, self.prefix = url, n, rate, prefix
        self.answered: dict[str, dict] = {}  # task_id -> 200 body
        self.refused: dict[str, int] = {}  # task_id -> final non-200 status
        self.retries = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _submit(self, c: httpx.Client, tid: str) -> None:
        body = {"model_name": "llm", "task_input": {"i": tid}, "task_id": tid}
        deadline = time.monotonic() + 60
        while True:
            try:
                r = c.post("/queue/submit", json=body)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                self.retries += 1
                time.sleep(0.1)
                continue
            if r.status_code == 200:
                self.answered[tid] = r.json()
            else:
                self.refused[tid] = r.status_code
            return

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            t0 = time.monotonic()
            for i in range(self.n):
                delay = t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._submit(c, f"{self.prefix}{i:04d}")

    def __enter__(self) -> Submitter:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(timeout=120)


def _wait_all_ended(c: httpx.Client, ids: list[str], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = c.post("/task/details", json={"task_ids": ids}).json()
        ended = {t["task_id"]: t for t in found["tasks"] if t["task_status"] in ("completed", "failed")}
        if len(ended) == len(ids) or time.monotonic() > deadline:
            return {t["task_id"]: t for t in found["tasks"]} | {
                u: {"task_status": "unknown"} for u in found["unknown"]
            }
        time.sleep(0.2)


def _assert_ran_once(instances: list[ServerProcess]) -> int:
    total = 0
    for inst in instances:
        runs = httpx.get(inst.url + "/runs", timeout=10).json()["runs"]
        twice = {t: n for t, n in runs.items() if n > 1}
        assert not twice, f"{inst.name} ran tasks more than once: {twice}"
        total += len(runs)
    return total


def _check_every_answered_task(c: httpx.Client, answered: dict[str, dict]) -> dict[str, dict]:
    ids = sorted(answered)
    final = _wait_all_ended(c, ids, 60)
    not_ended = {
        t: final[t]["task_status"] for t in ids if final[t]["task_status"] not in ("completed", "failed")
    }
    assert not not_ended, f"{len(not_ended)} answered task(s) did not end: {list(not_ended.items())[:5]}"
    for t in ids:
        if final[t]["task_status"] == "failed":
            assert final[t]["result"]["error"], t
    for t in ids[:: max(1, len(ids) // 50)]:  # /task/query answers too (a sample: it is one call each)
        assert c.get("/task/query", params={"task_id": t}).status_code == 200
    return final


def test_sigkill_in_the_middle_of_a_stream_loses_nothing_and_runs_nothing_twice(tmp_path):
    db = str(tmp_path / "state.db")
    port = free_port()
    instances = _instances(tmp_path)
    sched = _scheduler(tmp_path, port, db)
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            for inst in instances:
                port_i = int(inst.url.rsplit(":", 1)[1])
                assert (
                    c.post("/ti/register", json={"host": "127.0.0.1", "port": port_i}).json()["status"]
                    == "success"
                )
        with Submitter(sched.url, 600, rate=40) as sub:
            while len(sub.answered) < 300:
                time.sleep(0.02)
            sched.kill()  # SIGKILL with tasks queued, running and being submitted
            sched.stop()
            sched = _scheduler(tmp_path, port, db)
        assert len(sub.answered) + len(sub.refused) == 600
        assert not sub.refused, sub.refused
        with httpx.Client(base_url=sched.url, timeout=30) as c:
            final = _check_every_answered_task(c, sub.answered)
            completed = sum(t["task_status"] == "completed" for t in final.values())
            assert completed >= 0.95 * len(final), f"only {completed} of {len(final)} completed"
        started = _assert_ran_once(instances)
        assert started >= completed
    finally:
        sched.stop()
        for inst in instances:
            inst.stop()


def test_an_instance_killed_while_the_scheduler_is_down(tmp_path):
    db = str(tmp_path / "state.db")
    port = free_port()
    a, b = _instances(tmp_path)
    sched = _scheduler(tmp_path, port, db)
    try:
        with httpx.Client(base_url=sched.url, timeout=10) as c:
            tis = {}
            for inst in (a, b):
                p = int(inst.url.rsplit(":", 1)[1])
                tis[inst.name] = c.post("/ti/register", json={"host": "127.0.0.1", "port": p}).json()[
                    "ti_uuid"
                ]
            # a backlog on both instances: 120 tasks of 50 ms on 4 replicas take about 1.5 s
            first = {}
            for i in range(120):
                r = c.post(
                    "/queue/submit",
                    json={"model_name": "llm", "task_input": {"i": i}, "task_id": f"a{i:03d}"},
                )
                assert r.status_code == 200
                first[f"a{i:03d}"] = r.json()
        sched.kill()
        b.kill()
        sched.stop()
        sched = _scheduler(tmp_path, port, db)
        with httpx.Client(base_url=sched.url, timeout=30) as c:
            queues = {q["ti_uuid"] for q in c.get("/queue/info").json()["queues"]}
            assert queues == set(tis.values())  # both still registered
            later = {}
            for i in range(40):
                r = c.post(
                    "/queue/submit",
                    json={"model_name": "llm", "task_input": {"j": i}, "task_id": f"b{i:03d}"},
                )
                assert r.status_code == 200, r.text
                later[f"b{i:03d}"] = r.json()
            assert {v["scheduled_ti"] for v in later.values()} == {
                tis[a.name]
            }  # the dead one gets nothing new
            final = _check_every_answered_task(c, first | later)
            on_b = [t for t, v in first.items() if v["scheduled_ti"] == tis[b.name]]
            # what b had not finished was run on a (or failed with a reason); nothing is left hanging
            assert all(final[t]["task_status"] in ("completed", "failed") for t in on_b)
            assert sum(final[t]["task_status"] == "completed" for t in final) >= 0.95 * len(final)
        runs_a = httpx.get(a.url + "/runs", timeout=10).json()["runs"]
        assert all(n == 1 for n in runs_a.values()), {t: n for t, n in runs_a.items() if n > 1}
    finally:
        sched.stop()
        for inst in (a, b):
            inst.stop()
