#!/usr/bin/env python3
"""The scheduler in front of OpenAI-compatible model servers (vLLM, SGLang, ...).

1. starts two OpenAI-compatible upstreams: fakes with token-proportional
   latency (``python -m scheduler.instance.fake_openai``; the second one half
   as fast), unless upstream URLs are given on the command line;
2. starts one backend instance per upstream
   (``python -m scheduler.instance --backend openai --upstream URL``) and a
   scheduler, and registers the instances with it;
3. sends chat requests through ``POST /queue/submit`` and prints each answer
   and its token counts.

Run from the repository root::

    .venv/bin/python examples/openai_backend.py
    .venv/bin/python examples/openai_backend.py --model Qwen/Qwen2.5-0.5B-Instruct \\
        http://gpu1:8000/v1 http://gpu2:8000/v1          # real servers (docs/openai_backend.md)

Everything it starts listens on free 127.0.0.1 ports and is stopped at the end.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

import httpx

from scheduler.live import free_port
from scheduler.live.launcher import LocalCluster, ServerProcess, wait_for_tasks

QUESTIONS = [
    "What is a scheduler?",
    "Name three prime numbers.",
    "Why is the sky blue?",
    "Translate hello into French.",
    "What does FIFO stand for?",
    "Write a haiku about queues.",
]


def start_fake(ms_per_token: float, log_dir: str) -> ServerProcess:
    port = free_port()
    args = ["-m", "scheduler.instance.fake_openai", "--port", str(port), "--ms-per-token", str(ms_per_token)]
    return ServerProcess(
        f"fake-openai-{port}", args, f"http://127.0.0.1:{port}", "/v1/models", log_dir=log_dir
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("upstreams", nargs="*", help="OpenAI-compatible base URLs (default: two local fakes)")
    p.add_argument("--model", default="fake-model", help="model name the upstreams serve")
    p.add_argument("--concurrency", type=int, default=2, help="upstream requests at a time per instance")
    ns = p.parse_args()

    logs = tempfile.mkdtemp(prefix="infersched-example-")
    fakes: list[ServerProcess] = []
    ok = False
    try:
        upstreams = ns.upstreams
        if not upstreams:
            fakes = [start_fake(5.0, logs), start_fake(10.0, logs)]
            for f in fakes:
                f.wait_ready()
            upstreams = [f.url + "/v1" for f in fakes]
        print(f"upstreams: {', '.join(upstreams)}")
        print(f"logs in {logs}")
        instances = [
            {
                "model": ns.model,
                "extra_args": ["--backend", "openai", "--upstream", u, "--concurrency", str(ns.concurrency)],
            }
            for u in upstreams
        ]
        with LocalCluster(instances, log_dir=logs) as cluster:
            print(f"scheduler at {cluster.url}; instances at {', '.join(i.url for i in cluster.instances)}")
            with httpx.Client(base_url=cluster.url, timeout=30) as c:
                ids = []
                for i, q in enumerate(QUESTIONS):
                    req = {"messages": [{"role": "user", "content": q}], "max_tokens": 8 + 4 * i}
                    answer = c.post("/queue/submit", json={"model_name": ns.model, "task_input": req}).json()
                    ids.append(answer["task_id"])
                done = wait_for_tasks(c, ids, timeout_s=120)
                for tid, q in zip(ids, QUESTIONS):
                    task = done[tid]
                    if task["task_status"] != "completed":
                        print(f"{tid} {task['task_status']}: {task['result']}")
                        continue
                    res = task["result"]
                    usage = res.get("usage", {})
                    print(
                        f"{tid} completed on {task['scheduled_ti']}: {q!r} -> "
                        f"{res['choices'][0]['message']['content'][:60]!r} "
                        f"(tokens in {usage.get('prompt_tokens')}, out {usage.get('completion_tokens')})"
                    )
        ok = all(done[t]["task_status"] == "completed" for t in ids)
    finally:
        for f in fakes:
            f.stop()
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
            print("logs removed; all processes stopped")
        else:
            print(f"all processes stopped; logs kept in {logs}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
