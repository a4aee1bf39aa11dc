"""Decision logs on disk: the core's events as JSON lines.

The core emits events as dicts (it does no I/O); this module is the small
piece of shell both the simulator and live mode use to write them to a file
and read them back.  Stdlib only.

    with DecisionLog("run.jsonl") as log:
        sched = Scheduler("random", rng=7, recorder=log)
        ...
    report = replay(read_log("run.jsonl"))
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class DecisionLog:
    """A recorder (callable taking one event dict) appending JSON lines to a file.

    The file is opened for appending: a restarted scheduler adds a new run (it
    starts with its own ``config`` event) instead of erasing the previous one."""

    def __init__(self, path: str | Path, flush_every: int = 256):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._pending = 0
        self._flush_every = flush_every
        self.events = 0

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), default=_jsonable)
        with self._lock:
            self._fh.write(line + "\n")
            self.events += 1
            self._pending += 1
            if self._pending >= self._flush_every:
                self._fh.flush()
                self._pending = 0

    def flush(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
            self._pending = 0

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(obj: Any) -> Any:
    try:  # numpy scalars and arrays
        return obj.item() if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0 else obj.tolist()
    except AttributeError:
        raise TypeError(f"cannot write {type(obj).__name__} to a decision log") from None


def read_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """The events of a decision log, in order.  A torn last line (a crash mid-write) is skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                return
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
