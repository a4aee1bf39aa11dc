"""The simulator's decision logs: one JSON-lines file per (strategy, replication).

``python -m sim run ... --decision-log DIR`` (or ``sim.run(..., recorder=RunLogs(DIR))``)
writes them; ``python -m sim replay DIR`` feeds them back through the core
(:mod:`sim.fidelity.replay`).
"""

from __future__ import annotations

import re
from pathlib import Path

from scheduler import DecisionLog


class RunLogs:
    """A recorder for :func:`sim.run` writing one decision log per (strategy, replication).

    ``sim.run`` tags every event with the strategy's ``label`` (``weighted(w=2)``)
    and the ``replication``; each run starts with its core's ``config`` event,
    which opens the run's file ``DIR/<label>_r<replication>.jsonl``.
    """

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._log: DecisionLog | None = None
        self.paths: list[Path] = []

    def __call__(self, event: dict) -> None:
        if event.get("event") == "config":
            self._close_current()
            label = event.get("label") or event.get("strategy")
            name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(label)).strip("_") or "strategy"
            path = self.dir / f"{name}_r{event.get('replication', 0)}.jsonl"
            self._log = DecisionLog(path)
            self.paths.append(path)
        if self._log is None:
            raise ValueError("RunLogs: the first event must be a scheduler's config event")
        self._log(event)

    def _close_current(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self._close_current()

    def __enter__(self) -> RunLogs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
