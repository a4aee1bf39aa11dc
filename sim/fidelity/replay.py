"""Replay of decision logs from either shell: ``python -m sim replay``.

A decision log is the core's event stream as JSON lines
(:class:`scheduler.DecisionLog`): live mode writes one with ``python -m
scheduler serve --decision-log FILE``; the simulator with ``python -m sim run
... --decision-log DIR``, one file per (strategy, replication) through
:class:`sim.RunLogs`.  Each scheduler's events start with its ``config`` event, so
a file may also hold several schedulers one after the other: :func:`replay_file`
replays each of them on its own (:func:`scheduler.replay`, the recorded clock
and random state) and reports per scheduler.

    python -m sim replay run.jsonl [more.jsonl | DIR ...]

prints, per scheduler, how many decisions came out identical and the first
mismatches; exits 0 when every decision of every log is identical, 1
otherwise, 2 when a log cannot be read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler import ReplayReport, read_log, replay


@dataclass
class RunReplay:
    """The replay of one scheduler's events (one config event and what followed)."""

    source: str
    index: int  # 1-based position of the scheduler in its file
    strategy: str
    replication: int | None
    report: ReplayReport

    @property
    def name(self) -> str:
        rep = f", replication {self.replication}" if self.replication is not None else ""
        return f"{self.source} #{self.index} ({self.strategy}{rep})"


def split_schedulers(events: Iterable[dict]) -> Iterator[list[dict]]:
    """The events of each scheduler in turn: a ``config`` event starts a new one."""
    current: list[dict] = []
    for ev in events:
        if ev.get("event") == "config" and current:
            yield current
            current = []
        current.append(ev)
    if current:
        yield current


def replay_file(path: str | Path) -> list[RunReplay]:
    """Replay every scheduler recorded in one decision log."""
    out = []
    for k, events in enumerate(split_schedulers(read_log(path)), start=1):
        head = events[0]
        strategy = str(head.get("label") or head.get("strategy") or "?")
        switches = [e["name"] for e in events if e.get("event") == "set_strategy"]
        if switches:
            strategy += " then " + ", ".join(switches)
        out.append(RunReplay(Path(path).name, k, strategy, head.get("replication"), replay(events)))
    return out


def log_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, with a folder standing for its ``*.jsonl`` files (sorted)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.jsonl"))
            if not found:
                raise FileNotFoundError(f"{p}: no *.jsonl decision log in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such decision log (a JSON-lines file or a folder of them)")
    return files


def main(paths: Sequence[str], *, show: int = 5, out=None) -> int:
    """``python -m sim replay``: print the reports; 0 if all identical, 1 if not, 2 on a bad log."""
    out = out or sys.stdout
    try:
        runs = [r for f in log_files(paths) for r in replay_file(f)]
    except (OSError, ValueError, KeyError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        print(f"error: cannot replay: {what}", file=sys.stderr)
        return 2
    if not runs:
        print("error: cannot replay: the log holds no events", file=sys.stderr)
        return 2
    decisions = identical = events = 0
    for r in runs:
        print(f"{r.name}: {r.report}", file=out)
        for m in r.report.mismatches[:show]:
            print(f"    task {m['task_id']}: recorded {m['recorded']}, replayed {m['replayed']}", file=out)
        decisions += r.report.decisions
        identical += r.report.identical
        events += r.report.events
    ok = identical == decisions
    print(
        f"{'all' if ok else 'NOT all'} decisions identical: {identical:,} of {decisions:,} in {len(runs)} "
        f"scheduler run(s), {events:,} events replayed",
        file=out,
    )
    return 0 if ok else 1
