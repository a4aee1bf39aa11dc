"""The benchmarks run, end to end, on tiny workloads, and print every target with its verdict.

Their figures are not checked here (speed belongs to the benchmarks, not to timed tests); what is
checked is that each script still runs against today's code and says, for each target, whether
it was met, and the live benchmark's burst phase: every accepted task completed, none lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, timeout_s: float = 240.0) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_decisions_prints_each_target_with_its_verdict() -> None:
    out = run_bench("bench_decisions.py", "--tasks", "300", "--sizes", "8", "64", "--replicas", "1")
    assert out.count("host reference: numpy argmin over 64 values") == 2  # at the start and the end
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] and "<=" in line}
    for name, target in (
        ("shortest_queue", 10),
        ("weighted", 12),
        ("min_quantile", 12),
        ("probabilistic", 50),
    ):
        assert re.search(rf"<= {target}\s+(yes|NO)\b", rows[name]), rows[name]
    # the residual-life table: three strategies, the countdown beside, a verdict each
    residual = out.split("residual-life estimate against the countdown")[1]
    assert (
        len(re.findall(r"^\s*(shortest_queue|weighted|least_requests)\s.*\s(yes|no)$", residual, re.M)) == 3
    )


def test_bench_sim_prints_each_target_with_its_verdict() -> None:
    out = run_bench("bench_sim.py", "--tasks", "3000", "--big-tasks", "0", "--repeats", "1")
    for contender in ("sim.run shortest_queue", "sim.run round_robin", "bare SimPy"):
        assert re.search(rf"^\s*{re.escape(contender)}.*\s[\d,]+\s+\d+\.\d+\s+\d+\.\d+$", out, re.M), (
            contender
        )
    verdicts = re.findall(
        r"^\s*target sim\.run (\w+) >= ([\d.]+)x (bare SimPy|Ciw): [\d.]+x, (met|MISSED)$", out, re.M
    )
    names = {(name, target, ref) for name, target, ref, _ in verdicts}
    assert {("shortest_queue", "0.7", "bare SimPy"), ("round_robin", "0.9", "bare SimPy")} <= names


def test_bench_live_prints_each_target_and_loses_no_task() -> None:
    out = run_bench(
        "bench_live.py",
        *("--rounds", "1", "--tasks", "200", "--warmup", "40", "--latency-tasks", "40"),
        *("--batch-tasks", "400", "--batch-size", "200", "--burst", "300", "--burst-concurrency", "16"),
        timeout_s=280.0,
    )
    assert out.count("loopback round trip between two processes on two CPUs") == 2
    targets = out.split("targets (scheduler = store on, the default):")[1].split("\n\n")[0]
    verdicts = re.findall(r"^\s+(.+?)\s+[\d.]+\s+target ([<>]= [\d.]+)\s+(met|MISSED)$", targets, re.M)
    assert len(verdicts) == 7, targets
    assert "every accepted task completed, none lost: met (0 not completed)" in out
    assert re.search(r"batch \(store on\): 400 tasks in batches of 200 .* accepted at", out)
