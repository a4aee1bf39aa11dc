"""Durable state of the live scheduler: tasks, instances and settings.

The service writes every task it accepts (with its input, so that it can be
dispatched again), every change of a task's state, every registered instance
and its settings to a :class:`StateStore`; a scheduler started on the same
store rebuilds its core from what :meth:`StateStore.load` returns
(:mod:`scheduler.live.service.recovery`).  The core stays pure: it never sees the store.

Two implementations:

* :class:`MemoryStore` (``--state-db none``): nothing outlives the process;
* :class:`SqliteStore` (:mod:`.sqlite`): an embedded SQLite file in WAL mode, written by group
  commit on the event loop.
"""

from __future__ import annotations

from .base import MemoryStore, StateStore, StoredInstance, StoredState, StoredTask
from .sqlite import SqliteStore

__all__ = [
    "MemoryStore",
    "SqliteStore",
    "StateStore",
    "StoredInstance",
    "StoredState",
    "StoredTask",
    "open_store",
]


def open_store(spec: str | None, *, max_history: int = 100_000, max_bytes: int = 256 << 20) -> StateStore:
    """The store ``--state-db`` names: ``none`` (or nothing) keeps state in memory, else a SQLite file
    keeping at most ``max_history`` ended tasks and about ``max_bytes`` of their results and metadata."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return MemoryStore()
    return SqliteStore(spec, max_history=max_history, max_bytes=max_bytes)
