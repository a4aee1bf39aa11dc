"""Trace loading speed: a million-row trace in each public format, read by ``sim.traces``.

For each format the script writes a look-alike file of ``--rows`` rows (default
1,000,000) with :mod:`sim.trace_fixtures` into a temporary folder (not timed),
then times :func:`sim.traces.read_raw` on it (best of ``--repeats``) and, side
by side in the same run, a plain ``pandas.read_csv`` of the whole file (or
``pandas.read_json(lines=True)`` for Mooncake) as the reference: the ratio
``read_raw / pandas`` says what the checks, chunking and conversion cost on
top of the parser.  It also prints the peak resident set size of the process.

Run: .venv/bin/python benchmarks/bench_traces.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sim import traces
from sim.trace_fixtures import write_fixture

FILES = (
    ("azure_llm", "azure.csv"),
    ("burstgpt", "burstgpt.csv"),
    ("mooncake", "mooncake.jsonl"),
)


def best(fn, arg, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    print(f"{args.rows:,} rows per format, best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, name in FILES:
            path = write_fixture(kind, Path(tmp) / name, rows=args.rows, seed=1, rate_per_s=50.0)
            mb = path.stat().st_size / 1e6
            ours = best(traces.read_raw, path, args.repeats)
            if kind == "mooncake":
                ref = best(lambda p: pd.read_json(p, lines=True), path, args.repeats)
            else:
                ref = best(pd.read_csv, path, args.repeats)
            rows = len(traces.read_raw(path, kind))
            print(
                f"{kind:10s} {mb:7.1f} MB  read_raw {ours:6.2f} s ({rows / ours / 1e6:5.2f} M rows/s)"
                f"  pandas alone {ref:6.2f} s  ratio {ours / ref:4.2f}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
