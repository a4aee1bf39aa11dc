#!/usr/bin/env python3
"""Live mode on one machine, end to end, in about ten seconds.

1. starts two reference task instances of model ``llm`` (sleeping for a
   lognormal service time) and lists them in an instance file, the format of
   ``examples/config_example.yaml``;
2. starts the scheduler with ``SCHEDULER_CONFIG_PATH`` pointing at that file
   (so it registers them at startup) and a lookup table;
3. starts a third instance, of model ``mm`` doing real matrix products, and
   registers it with ``POST /ti/register``;
4. submits tasks with ``POST /queue/submit`` and polls ``GET /task/query``
   until each has completed, printing what it sees; switches the predictor to
   the lookup table and shows the queue estimates;
5. stops every process, whatever happened.

Everything listens on free 127.0.0.1 ports.  Run from the repository root:
``.venv/bin/python examples/basic_usage.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from scheduler.live import auth_headers, start_instance, start_scheduler, wait_for_tasks

HERE = Path(__file__).resolve().parent
DEADLINE_S = 60.0


def show(title: str, data) -> None:
    print(f"\n== {title}\n{json.dumps(data, indent=2)}")


def main() -> None:
    started = time.monotonic()
    logs = tempfile.mkdtemp(prefix="infersched-example-")  # the servers' logs: removed unless it fails
    procs = []
    ok = False
    try:
        llm = {"dist": "lognormal", "mean_ms": 40, "cv": 0.5}
        instances = [
            start_instance("llm", replicas=2, service_time=llm, seed=i, log_dir=logs) for i in range(2)
        ]
        procs += instances
        for p in instances:
            p.wait_ready()
        config = Path(logs) / "instances.yaml"
        config.write_text(
            "instances:\n"
            + "".join(
                f"  - {{host: 127.0.0.1, port: {p.url.rsplit(':', 1)[1]}, model_name: llm}}\n"
                for p in instances
            )
        )

        # the admin token opens every endpoint; instances get their own callback secrets.
        # Given through the environment, it stays out of the process list.
        token = os.environ.get("SCHEDULER_ADMIN_TOKEN") or secrets.token_urlsafe(16)
        sched = start_scheduler(
            lookup_table=str(HERE / "lookup_table.yaml"),
            log_dir=logs,
            env={**os.environ, "SCHEDULER_CONFIG_PATH": str(config), "SCHEDULER_ADMIN_TOKEN": token},
        )
        procs.append(sched)
        mm = start_instance("mm", model_kind="matmul", log_dir=logs)
        procs.append(mm)
        sched.wait_ready()
        mm.wait_ready()
        print(f"scheduler at {sched.url}; instances at {', '.join(p.url for p in procs if p is not sched)}")
        print(f"logs in {logs}")

        with httpx.Client(base_url=sched.url, timeout=10, headers=auth_headers(token)) as c:
            show("GET /health", c.get("/health").json())
            port = int(mm.url.rsplit(":", 1)[1])
            show(
                "POST /ti/register (the matmul instance)",
                c.post("/ti/register", json={"host": "127.0.0.1", "port": port}).json(),
            )
            show("GET /queue/info", c.get("/queue/info").json())

            submitted = []
            for i in range(10):
                r = c.post(
                    "/queue/submit",
                    json={
                        "model_name": "llm",
                        "task_input": {"prompt": f"question {i}"},
                        "metadata": {"input_tokens": 10 + i},
                    },
                )
                submitted.append(r.json())
            for n in (64, 256):
                submitted.append(
                    c.post("/queue/submit", json={"model_name": "mm", "task_input": {"n": n}}).json()
                )
            show("POST /queue/submit (first answer)", submitted[0])
            show("GET /queue/info (tasks queued)", c.get("/queue/info").json())

            done = wait_for_tasks(c, [s["task_id"] for s in submitted], token=token)
            print("\n== GET /task/query, once each task has ended")
            for s in submitted:
                task = done[s["task_id"]]
                print(
                    f"{task['task_id']}  {task['task_status']:9}  on {task['scheduled_ti'][:8]}  "
                    f"result {json.dumps(task['result'])}"
                )

            show(
                "POST /scheduler/predict_mode lookup_table",
                c.post("/scheduler/predict_mode", json={"mode": "lookup_table"}).json(),
            )
            for _ in range(4):
                c.post("/queue/submit", json={"model_name": "llm", "task_input": {"prompt": "more"}})
            show(
                "GET /queue/info (estimates from the table: 50 ms per llm task)",
                c.get("/queue/info", params={"model_name": "llm"}).json(),
            )
            show(
                "POST /scheduler/set round_robin",
                c.post("/scheduler/set", json={"name": "round_robin"}).json(),
            )
            show(
                "POST /scheduler/set nonsense (an error lists the valid names)",
                c.post("/scheduler/set", json={"name": "nonsense"}).json(),
            )
            show("GET /scheduler/stats", c.get("/scheduler/stats").json())
        if time.monotonic() - started > DEADLINE_S:
            raise TimeoutError(f"the example took more than {DEADLINE_S:g} s")
        ok = True
    finally:
        for p in procs:
            p.stop()
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"\nsomething failed: the servers' logs are kept in {logs}")
    print(f"\nall processes stopped, logs removed; {time.monotonic() - started:.1f} s in all")


if __name__ == "__main__":
    main()
