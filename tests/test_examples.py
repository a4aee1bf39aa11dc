"""Run the examples as a user would (``python examples/X.py`` from the repository root)
and check from their output that tasks went through live mode and completed.

Both examples start real servers on 127.0.0.1, hence the ``e2e`` mark.  Each
runs in its own process group, so that on a timeout the example and every
server it started are killed together.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120  # a generous bound on a loaded machine, not a speed target


def run_example(name: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{name} still running after {TIMEOUT_S} s; its output:\n{out}")
    assert proc.returncode == 0, f"{name} exited with code {proc.returncode}; its output:\n{out}"
    # a run that succeeded leaves no folder behind (the servers' logs are kept only on failure)
    for logs in re.findall(r"logs in (\S+?)[;\s]", out):
        assert not Path(logs).exists(), f"{name} left {logs} behind"
    assert "logs removed" in out
    return out


def test_basic_usage():
    out = run_example("basic_usage.py")
    # the per-task lines: ten llm tasks and two matmul tasks, each completed
    ended = re.findall(r"^task-\S+\s+(completed|failed)\s+on ", out, flags=re.M)
    assert ended == ["completed"] * 12, out
    assert '"message": "OK"' in out  # switching the strategy worked
    assert "all processes stopped" in out


def test_custom_strategy():
    out = run_example("custom_strategy.py")
    # the simulator's summary has a row for the custom strategy and both built-ins
    for name in ("idle_first", "shortest_queue", "power_of_two"):
        assert re.search(rf"^\s*{name}\s+\d+\s", out, flags=re.M), f"no summary row for {name}:\n{out}"
    # the live scheduler used the custom strategy and every task completed
    assert "strategy in use: idle_first" in out, out
    done, submitted = map(int, re.search(r"completed (\d+)/(\d+) tasks", out).groups())
    assert done == submitted > 0, out
    assert len(re.findall(r"^\s+task-\S+\s+completed\s+on llm-\d", out, flags=re.M)) == 8, out
    assert "all processes stopped" in out


def test_openai_backend():
    out = run_example("openai_backend.py")
    lines = re.findall(r"^task-\S+ completed on \S+: .* \(tokens in (\d+), out (\d+)\)$", out, flags=re.M)
    assert len(lines) == 6, out
    assert [int(o) for _, o in lines] == [8 + 4 * i for i in range(6)]  # max_tokens of each request
    assert "all processes stopped" in out
