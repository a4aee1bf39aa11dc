"""``python -m scheduler.instance``: run a reference task instance under uvicorn.

Example::

    python -m scheduler.instance --model llm --port 8100 --replicas 2 \\
        --service-time '{dist: lognormal, mean_ms: 50, cv: 0.5}' --seed 1
    python -m scheduler.instance --model mm --model-kind matmul --port 8101   # task_input {"n": 256}
    python -m scheduler.instance --backend openai --upstream http://127.0.0.1:8000/v1 \\
        --model Qwen/Qwen2.5-0.5B-Instruct --port 8102 --concurrency 8 --api-key-env OPENAI_API_KEY
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import yaml

from ..core import Distribution, SpecError, from_spec
from ..core.tokens import TokenService
from ..protocol import log_config, run
from .app import create_instance_app
from .openai_work import OpenAIWork
from .runtime import InstanceRuntime
from .work import MatmulWork, SleepWork

DEFAULT_SERVICE_TIME = "{dist: exponential, mean_ms: 50}"


def parse_service_time(text: str) -> Distribution | TokenService:
    """A distribution from JSON or YAML flow text (docs/scenarios.md forms; ``{dist: empirical, file: F}`` reads F)."""
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(
            "--service-time", text, f"JSON or YAML such as {DEFAULT_SERVICE_TIME} ({e})"
        ) from None
    if isinstance(spec, dict) and spec.get("dist") == "empirical" and "file" in spec:
        path = spec.pop("file")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise SpecError(
                "--service-time.file", path, f"a readable YAML/JSON list of ms values ({e})"
            ) from None
        if isinstance(data, str):  # plain text: numbers separated by spaces, commas or new lines
            data = data.replace(",", " ").split()
        spec["values_ms"] = data
    if isinstance(spec, dict) and spec.get("dist") == "tokens":
        return TokenService.from_spec(spec, "--service-time")
    return from_spec(spec, "--service-time")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scheduler.instance",
        description="Run a reference task instance (task-instance protocol of docs/api.md).",
    )
    p.add_argument(
        "--model",
        required=True,
        help="model name reported as model_type (and, with --backend openai, sent upstream as 'model')",
    )
    p.add_argument(
        "--backend",
        choices=("reference", "openai"),
        default="reference",
        help="reference: the built-in work of --model-kind (default); "
        "openai: each task is one request to the OpenAI-compatible server at --upstream "
        "(docs/openai_backend.md)",
    )
    p.add_argument(
        "--upstream", default=None, help="with --backend openai: base URL such as http://HOST:PORT/v1"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="with --backend openai: most upstream requests at a time (same as --replicas; default 1)",
    )
    p.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="with --backend openai: environment variable holding the upstream API key (never logged)",
    )
    p.add_argument(
        "--upstream-timeout-s",
        type=float,
        default=600.0,
        help="with --backend openai: a request unanswered this long fails its task (default 600)",
    )
    p.add_argument(
        "--model-kind",
        choices=("sleep", "matmul"),
        default="sleep",
        help='sleep: sleeps task_input["size_ms"] / --speed when the task carries a size, '
        "else a service time drawn from --service-time (default); "
        'matmul: real CPU work, task_input {"n": 256, "repeat": 1}',
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8100, help="port (default 8100)")
    p.add_argument("--replicas", type=int, default=1, help="parallel workers (default 1)")
    p.add_argument(
        "--service-time",
        default=DEFAULT_SERVICE_TIME,
        metavar="SPEC",
        help=f"service-time distribution, JSON or YAML flow (default {DEFAULT_SERVICE_TIME!r})",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the instance's random generator")
    p.add_argument(
        "--instance-id", default=None, help="id reported in /status and completions (default MODEL@HOST:PORT)"
    )
    p.add_argument("--speed", type=float, default=1.0, help="divides the sleep time (default 1)")
    p.add_argument(
        "--history", type=int, default=10_000, help="finished results kept for /results (default 10000)"
    )
    p.add_argument(
        "--max-task-ms",
        type=float,
        default=None,
        help="a task running longer fails with this reason and frees its replica "
        "(default 300000; with --backend openai, the upstream timeout plus 5 s)",
    )
    p.add_argument(
        "--notify-deadline-s",
        type=float,
        default=60.0,
        help="how long a failed completion notification is retried, with backoff (default 60)",
    )
    p.add_argument("--max-n", type=int, default=2048, help="largest matrix size for matmul (default 2048)")
    p.add_argument("--log-level", default="info", help="debug, info, warning, error (default info)")
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="log every HTTP request (default off)",
    )
    return p


def _openai_work(ns: argparse.Namespace) -> OpenAIWork:
    if not ns.upstream:
        raise SpecError(
            "--upstream", ns.upstream, "a base URL such as http://127.0.0.1:8000/v1 (--backend openai)"
        )
    key = None
    if ns.api_key_env:
        key = os.environ.get(ns.api_key_env)
        if not key:  # the variable's name is said, never its value
            raise SpecError(
                "--api-key-env", ns.api_key_env, "the name of a set, non-empty environment variable"
            )
    if not ns.upstream.startswith(("http://", "https://")):
        raise SpecError("--upstream", ns.upstream, "a base URL such as http://127.0.0.1:8000/v1")
    if not 0 < ns.upstream_timeout_s < float("inf"):
        raise SpecError("--upstream-timeout-s", ns.upstream_timeout_s, "a number of seconds > 0")
    return OpenAIWork(ns.upstream, ns.model, api_key=key, timeout_s=ns.upstream_timeout_s)


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        log_config(ns.log_level)
        if not 1 <= ns.port <= 65535:
            raise SpecError("--port", ns.port, "an integer in 1..65535")
        if ns.concurrency is not None:
            if ns.backend != "openai":
                raise SpecError(
                    "--concurrency", ns.concurrency, "only with --backend openai (else --replicas)"
                )
            ns.replicas = ns.concurrency
        if ns.max_task_ms is None:
            ns.max_task_ms = ns.upstream_timeout_s * 1000.0 + 5000.0 if ns.backend == "openai" else 300_000.0
        if ns.replicas < 1:
            raise SpecError("--replicas", ns.replicas, "an integer >= 1")
        if not ns.speed > 0:
            raise SpecError("--speed", ns.speed, "a number > 0")
        if not 0 < ns.max_task_ms < float("inf"):
            raise SpecError("--max-task-ms", ns.max_task_ms, "a number of ms > 0")
        if not ns.notify_deadline_s >= 0:
            raise SpecError("--notify-deadline-s", ns.notify_deadline_s, "a number of seconds >= 0")
        if ns.history < 1:
            raise SpecError("--history", ns.history, "an integer >= 1")
        rng = np.random.default_rng(ns.seed)
        work: MatmulWork | SleepWork | OpenAIWork
        if ns.backend == "openai":
            work = _openai_work(ns)
        elif ns.model_kind == "matmul":
            work = MatmulWork(rng, max_n=ns.max_n)
        else:
            work = SleepWork(parse_service_time(ns.service_time), rng, ns.speed)
    except SpecError as e:
        print(f"scheduler.instance: {e}", file=sys.stderr)
        return 2
    runtime = InstanceRuntime(
        work,
        model=ns.model,
        instance_id=ns.instance_id or f"{ns.model}@{ns.host}:{ns.port}",
        replicas=ns.replicas,
        history=ns.history,
        max_task_ms=ns.max_task_ms,
        notify_deadline_s=ns.notify_deadline_s,
    )
    run(
        create_instance_app(runtime),
        host=ns.host,
        port=ns.port,
        log_level=ns.log_level,
        access_log=ns.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
