"""Sweep engine and large-run benchmark.

    python benchmarks/bench_sweep.py                 # 16-point sweep, serial vs 2-worker LocalCluster
    python benchmarks/bench_sweep.py --large         # the same, then the 10,000,000-task streamed run
    python benchmarks/bench_sweep.py --large-only    # only the 10M-task run (takes a while)

Sweep: 16 points (4 loads x 4 instance counts), one replication each, run
serially (in this process) and on a Dask LocalCluster of 2 single-threaded
worker processes, side by side in one invocation; the frames must be
identical and the ratio of wall times is printed (target: cluster >= 1.7x
faster on a 2-core machine; the LocalCluster's start-up is included).

Large run: 10,000,000 tasks over 1,024 instances (power_of_two, oracle
predictor, load 0.8, one replication), streamed to Parquet with
``sim.streaming.run_streaming`` in a child process; prints its wall time and
peak resident memory (the child's ``ru_maxrss``; target < 1 GB).  The child
also logs its RSS every 30 s to ``<out>/rss.log`` so a long run shows its
memory as it goes.  Numbers depend on the machine's load: say so when quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SWEEP_BASE = {
    "name": "bench-sweep",
    "seed": 21,
    "replications": 1,
    "tasks": 120000,
    "warmup_tasks": 500,
    "strategies": ["power_of_two", "shortest_queue"],
    "predictor": {"mode": "oracle"},
    "models": {"m": {"service_time": {"dist": "lognormal", "mean_ms": 100, "cv": 1.0}}},
    "instances": [{"model": "m", "count": 8}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 40}},
}
SWEEP_GRID = {"load": [0.5, 0.7, 0.8, 0.9], "instances.0.count": [4, 8, 12, 16]}

LARGE = {
    "name": "large-10M",
    "seed": 5,
    "replications": 1,
    "tasks": 10_000_000,
    "warmup_tasks": 10_000,
    "strategies": ["power_of_two"],
    "predictor": {"mode": "oracle"},
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 100}}},
    "instances": [{"model": "m", "count": 1024}],
    # 0.8 x 1024 servers / 100 ms = 8192 tasks/s
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 8192}},
}


def _dask_startup_s() -> float:
    """Seconds for the sweep's own LocalCluster (``sim.executors``) to start with 2 workers, import
    ``sim`` on each and close: what a sweep on ``cluster="local"`` pays besides its units."""
    from sim.executors import run_units

    t0 = time.perf_counter()
    list(run_units(_import_sim, [(), ()], cluster="local", processes=2))
    return time.perf_counter() - t0


def _import_sim() -> None:
    import sim.sweep_units  # noqa: F401


def bench_sweep() -> dict:
    import pandas as pd

    from sim.sweep_units import run_sweep

    t0 = time.perf_counter()
    serial = run_sweep(SWEEP_BASE, SWEEP_GRID, processes=1)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    dask = run_sweep(SWEEP_BASE, SWEEP_GRID, cluster="local", processes=2)
    t_dask = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = run_sweep(SWEEP_BASE, SWEEP_GRID, processes=2)
    t_procs = time.perf_counter() - t0
    for other in (dask, procs):
        pd.testing.assert_frame_equal(serial.replications, other.replications, check_exact=True)
        pd.testing.assert_frame_equal(serial.summary, other.summary, check_exact=True)
    out = {
        "points": len(serial.points),
        "tasks_simulated": serial.simulated_tasks,
        "serial_s": round(t_serial, 2),
        "localcluster_2_workers_s": round(t_dask, 2),
        "speedup": round(t_serial / t_dask, 2),
        "local_processes_2_s": round(t_procs, 2),
        "identical_frames": True,
        "dask_startup_s": round(_dask_startup_s(), 2),
    }
    print(
        f"sweep of {out['points']} points ({out['tasks_simulated']:,} tasks): serial {t_serial:.1f} s, "
        f"LocalCluster(2 workers) {t_dask:.1f} s -> {out['speedup']:.2f}x (target >= 1.7x; start-up included); "
        f"2 local processes {t_procs:.1f} s -> {t_serial / t_procs:.2f}x; frames identical"
    )
    print(
        f"of the LocalCluster's time, about {out['dask_startup_s']:.1f} s is its start-up (measured apart: "
        "the sweep's own cluster started, `sim` imported on both workers, closed)"
    )
    return out


def _large_child(out_dir: str) -> None:
    """Runs in a child process: the streamed 10M-task run, RSS logged every 30 s."""
    from sim.progress import ProgressBar
    from sim.streaming import run_streaming

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def sample() -> None:
        with open(out / "rss.log", "a") as f:
            t0 = time.perf_counter()
            while not stop.wait(30):
                rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                f.write(f"{time.perf_counter() - t0:.0f}s rss {rss / 2**20:.0f} MiB\n")
                f.flush()

    threading.Thread(target=sample, daemon=True).start()
    bar = ProgressBar(LARGE["tasks"], stream=sys.stderr)
    t0 = time.perf_counter()
    res = run_streaming(LARGE, out, progress=bar)
    bar.close()
    wall = time.perf_counter() - t0
    stop.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    report = {
        "tasks_simulated": res.simulated_tasks,
        "tasks_written": res.tasks_written,
        "instances": len(res.scenario.instances),
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "tasks_parquet_mib": round(res.tasks_path.stat().st_size / 2**20, 1),
        "p99_ms": float(res.summary.loc[0, "latency_p99_ms"]),
    }
    (out / "large.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


def bench_large(out_dir: str | None) -> dict:
    out = out_dir or tempfile.mkdtemp(prefix="bench-large-")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", out], stdout=subprocess.PIPE, text=True, check=True
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"10M-task streamed run over {report['instances']} instances: {report['wall_s']:.0f} s wall, "
        f"peak RSS {report['peak_rss_mib']:.0f} MiB (target < 1024 MiB), "
        f"tasks.parquet {report['tasks_parquet_mib']:.0f} MiB, in {out}"
    )
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="also run the 10M-task streamed run")
    ap.add_argument("--large-only", action="store_true", help="only the 10M-task streamed run")
    ap.add_argument("--out", help="folder for the large run's files (default: a temporary folder)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _large_child(args.child)
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    if not args.large_only:
        bench_sweep()
    if args.large or args.large_only:
        bench_large(args.out)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
