"""``make fuzz``: the schemathesis command line against a real ``scheduler serve`` on loopback.

Two reference instances listen on two adjacent free ports; the scheduler admits only that range
(``--allow-instance-hosts 127.0.0.1:LOW-HIGH``), so a generated ``/ti/register`` can never reach
another service on this machine.  Tokens are set, and the run sends the admin token.  Exit status:
schemathesis' own (0 when no check failed).

    python tools/fuzz_live.py [--max-examples N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from scheduler.live import LocalCluster, free_port

HERE = Path(__file__).resolve().parent
CHECKS = "no_undocumented_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def adjacent_free_ports() -> tuple[int, int]:
    """Two free ports p, p+1 on 127.0.0.1 (a range the allowlist can name)."""
    for _ in range(100):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p, p + 1
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-examples", type=int, default=300, help="cases per operation (default 300)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    lo, hi = adjacent_free_ports()
    admin = secrets.token_urlsafe(24)
    instances = [
        {"model": "demo", "port": p, "service_time": {"dist": "exponential", "mean_ms": 5}} for p in (lo, hi)
    ]
    scheduler = {
        "api_token": secrets.token_urlsafe(24),
        "admin_token": admin,
        "allow_instance_hosts": f"127.0.0.1:{lo}-{hi}",
        "max_pending": 10_000,
    }
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with LocalCluster(instances, scheduler=scheduler) as cluster:
        cmd = [
            exe,
            "run",
            f"{cluster.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {admin}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(args.max_examples),
            "--workers",
            str(args.workers),
        ]
        print(f"fuzzing {cluster.url} (instances on 127.0.0.1:{lo}-{hi})", flush=True)
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
        with tempfile.TemporaryDirectory(prefix="infersched-fuzz-") as work:  # schemathesis' own files
            code = subprocess.call(cmd, env=env, cwd=work)
        print(f"scheduler log: {cluster.scheduler.log_path if cluster.scheduler else '-'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
