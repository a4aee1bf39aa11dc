"""The state store in an embedded SQLite file (WAL), written by group commit on the event loop.

:meth:`~SqliteStore.put_task` and friends only keep a row (the latest of each task) for the next
commit.  A :meth:`~SqliteStore.flush` asks for that commit on the event loop's next turn (or
``interval_s`` later) and returns a future done once it is in: every flush and every put of the
same turn shares one transaction, one ``executemany`` per table.  Rows put without a flush are
committed within ``idle_commit_s`` (20 ms).  ``/queue/submit`` awaits its task's flush
(:meth:`~SqliteStore.flush_task`: at once when another submit's commit already wrote the task's
rows), so a task is in the file before its client hears ``success``.

Why on the loop and not in a writer thread: SQLite is cheap here (~10 µs per row, ~1 µs per empty
transaction), but each call from a second thread gives up the interpreter lock and waits to get it
back, up to the 5 ms switch interval while the event loop runs: under load a thread's commits took
milliseconds of waiting and held every submit that waited for them.  On the loop a commit waits
for nothing.  With ``synchronous=NORMAL`` a commit appends to the write-ahead log without an fsync
(durable against a crash of the process, not of the machine: docs/operations.md).  Checkpoints
(copying the log into the database, with the fsyncs) run in a background thread on their own
connection, so the loop never waits for the disk; one call there gives up the lock once.

Retention: the file keeps what the tracker keeps in memory (``--max-history`` and
``--max-history-bytes``): once ended tasks pass either bound by a tenth, the oldest are deleted
down to it, at most ``TRIM_ROWS`` per commit, so no commit stalls the loop for long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Awaitable
from typing import Any

from .base import ENDED, StoredInstance, StoredState, StoredTask
from .schema import (
    ADDED,
    COL,
    DELETE_OLDEST,
    INSTANCE_COLS,
    ROW_BYTES,
    SCHEMA,
    TASK_COLS,
    UPDATE_RESULT,
    UPDATE_TASK,
    UPSERT_TASK,
    dumps,
    ended_bytes,
    instance_of,
    instance_row,
    row_bytes,
    task_of,
    task_row,
    update_row,
)

log = logging.getLogger("scheduler.live")

TRIM_ROWS = 2000  # ended tasks deleted per commit at most, while over a retention bound
CHECKPOINT_COMMITS = 200  # the checkpointer is woken after this many commits (or every second)
# a log longer than this (~4 MB) is started again from its beginning: the checkpointer copied
# most of it, and the loop copies the few frames committed since, between two of its commits
WAL_RESET_FRAMES = 1024
WAL_LIMIT_BYTES = 16 << 20
_ENDED = COL["ended"]


class SqliteStore:
    """An embedded SQLite file (WAL), committed in groups on the event loop."""

    def __init__(
        self,
        path: str,
        *,
        max_history: int = 100_000,
        max_bytes: int = 256 << 20,
        interval_s: float = 0.0,
        idle_commit_s: float = 0.02,
        checkpoint_s: float = 1.0,
    ):
        self.path = path
        self.description = f"sqlite {path} (WAL)"
        self.max_history = max_history
        self.max_bytes = max_bytes
        self.interval_s = interval_s  # how long a flush waits for others to join its commit
        self.idle_commit_s = idle_commit_s  # what is put without a flush is committed this late at most
        self.checkpoint_s = checkpoint_s
        self.commits = 0  # transactions committed (for tests and benchmarks)
        self.checkpoints = 0  # checkpoints the checkpointer thread ran that found frames to copy
        self._lock = threading.Lock()  # the rows put since the last commit (puts may come from any thread)
        self._commit_lock = threading.Lock()  # one transaction at a time on the connection
        self._tasks: dict[str, StoredTask] = {}  # latest row of each task put since the last commit
        self._updates: dict[str, StoredTask] = {}  # latest state of tasks put before the last commit
        self._instances: dict[str, StoredInstance] = {}
        self._settings: dict[str, Any] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._handle: asyncio.Handle | None = None  # the commit asked for, on _handle_loop
        self._handle_loop: asyncio.AbstractEventLoop | None = None
        self._handle_soon = False  # asked for by a flush (not only by the idle timer)
        self._gen = 0
        self._closed = False
        self._failed = False  # a commit failed: rows were lost, flush_task no longer answers at once
        self._committing = 0  # commits that took rows and have not written them yet
        self._trimming = False
        fresh = not os.path.exists(path)
        self._db = self._connect()  # create the schema (and fail early on a bad path)
        if fresh:  # it holds task inputs and callback secrets: readable by its owner only
            os.chmod(path, 0o600)
        try:
            self._db.executescript(SCHEMA)
            for table, col, decl in ADDED:
                if col not in {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
            self._ended, self._ended_bytes = self._db.execute(
                f"SELECT count(*), coalesce(sum({ROW_BYTES}), 0) FROM tasks WHERE ended = 1"
            ).fetchone()
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
            self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the log's file, once reset
        except BaseException:
            self._db.close()
            raise
        self._reset_wanted = False  # set by the checkpointer: the log is long, and mostly copied
        self._since_checkpoint = 0
        self._checkpoint_wake = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="state-checkpoint", daemon=True)
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # a commit is in the log without an fsync: safe against a process crash (docs/operations.md)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.row_factory = sqlite3.Row
        return db

    # -- reads -----------------------------------------------------------------
    def load(self) -> StoredState:
        db = self._connect()
        try:
            tasks = [
                task_of(r) for r in db.execute(f"SELECT {TASK_COLS} FROM tasks ORDER BY submit_ms, rowid")
            ]
            instances = [
                instance_of(r) for r in db.execute(f"SELECT {INSTANCE_COLS} FROM instances ORDER BY rowid")
            ]
            settings = {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT * FROM settings")}
        finally:
            db.close()
        return StoredState(tasks, instances, settings)

    # -- writes ----------------------------------------------------------------
    def put_task(self, task: StoredTask) -> None:
        with self._lock:
            _keep(task, self._tasks.get(task.task_id))
            self._tasks[task.task_id] = task
        if self._handle is None:
            self._ask(self.idle_commit_s, soon=False)

    def update_task(self, task: StoredTask) -> None:
        with self._lock:
            tid = task.task_id
            if tid in self._tasks:  # its first row is not committed yet: this one replaces it
                _keep(task, self._tasks[tid])
                self._tasks[tid] = task
            else:
                _keep(task, self._updates.get(tid))
                self._updates[tid] = task
        if self._handle is None:
            self._ask(self.idle_commit_s, soon=False)

    def put_instance(self, inst: StoredInstance) -> None:
        with self._lock:
            self._instances[inst.ti_uuid] = inst
        if self._handle is None:
            self._ask(self.idle_commit_s, soon=False)

    def put_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._settings[key] = value
        if self._handle is None:
            self._ask(self.idle_commit_s, soon=False)

    def flush(self) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if self._closed:
            fut.set_exception(RuntimeError(f"the state store {self.path} is closed"))
            return fut
        with self._lock:
            self._waiters.append((loop, fut))
        if not (self._handle_soon and self._handle_loop is loop):
            self._ask(self.interval_s, soon=True)
        return fut

    def flush_task(self, task_id: str) -> Awaitable[None]:
        """:meth:`flush` for one task's rows: done at once (no future, no loop turn) when a commit
        already wrote them, none of its rows is waiting, and no instance or setting is.  A submit's
        row is usually committed by another submit's flush while it is delivered."""
        with self._lock:
            waiting = (
                task_id in self._tasks
                or task_id in self._updates
                or self._instances
                or self._settings
                or self._failed  # a commit failed: every flush waits for its own
                or self._closed
                or self._committing  # a commit in another thread (close) took rows not yet written
            )
        if waiting:
            return self.flush()
        return _written()

    def _ask(self, delay_s: float, *, soon: bool) -> None:
        """Ask the running event loop (if any) for a commit in ``delay_s``; replaces an idle timer."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: the next flush (or close) commits it
            return
        if self._handle is not None and self._handle_loop is loop:
            self._handle.cancel()
        self._gen += 1
        if delay_s > 0:
            self._handle = loop.call_later(delay_s, self._commit_now, self._gen)
        else:
            self._handle = loop.call_soon(self._commit_now, self._gen)
        self._handle_loop, self._handle_soon = loop, soon

    def close(self) -> None:
        if self._closed:
            return
        self._commit_now()
        self._closed = True
        self._checkpoint_wake.set()
        self._checkpointer.join(timeout=10)
        with self._commit_lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:  # the next open replays the log
                log.warning("checkpointing the state store %s on close failed: %s", self.path, e)
            self._db.close()

    # -- commits ---------------------------------------------------------------
    def _commit_now(self, gen: int | None = None) -> None:
        """Commit what was put, then tell the flushes waiting for it."""
        if gen == self._gen:
            self._handle, self._handle_loop, self._handle_soon = None, None, False
        with self._lock:
            tasks, self._tasks = self._tasks, {}
            updates, self._updates = self._updates, {}
            insts, self._instances = self._instances, {}
            settings, self._settings = self._settings, {}
            waiters, self._waiters = self._waiters, []
            self._committing += 1  # rows taken, not yet written (flush_task waits)
        error: BaseException | None = None
        try:
            if self._closed:
                error = RuntimeError("closed")
            elif tasks or updates or insts or settings:
                try:
                    with self._commit_lock:
                        self._commit(
                            list(tasks.values()), list(updates.values()), list(insts.values()), settings
                        )
                except Exception as e:  # reported to the waiters; the service logs it
                    log.exception("writing the state store %s failed", self.path)
                    self._failed = True
                    error = e
        finally:
            with self._lock:
                self._committing -= 1
        if waiters:
            self._resolve(waiters, error)

    def _resolve(
        self,
        waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]],
        error: BaseException | None,
    ) -> None:
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        elsewhere: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for loop, fut in waiters:
            if loop is here:
                _settle(fut, error, self.path)
            else:
                elsewhere.setdefault(loop, []).append(fut)
        for loop, futs in elsewhere.items():  # one wake-up of each other loop
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle_all, futs, error, self.path)

    def _commit(
        self,
        tasks: list[StoredTask],
        updates: list[StoredTask],
        insts: list[StoredInstance],
        settings: dict[str, Any],
    ) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            rows = [task_row(t) for t in tasks]
            if rows:
                db.executemany(UPSERT_TASK, rows)
            changes = [update_row(t) for t in updates]
            if changes:
                db.executemany(UPDATE_TASK, changes)
            if insts:
                db.executemany(
                    f"INSERT OR REPLACE INTO instances ({INSTANCE_COLS}) VALUES ({', '.join('?' * 10)})",
                    [instance_row(i) for i in insts],
                )
            if settings:
                db.executemany(
                    "INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [(k, dumps(v)) for k, v in settings.items()],
                )
            # upper bounds (a row may be written ended twice): the count is redone per trim
            for r in rows:
                if r[_ENDED]:
                    self._ended += 1
                    self._ended_bytes += row_bytes(r)
            for t, c in zip(updates, changes):
                if t.status in ENDED:
                    self._ended += 1
                    self._ended_bytes += ended_bytes(t, c[UPDATE_RESULT])
            if self._trimming or (
                self._ended > self.max_history + max(100, self.max_history // 10)
                or self._ended_bytes > self.max_bytes + self.max_bytes // 10
            ):
                self._trim(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_COMMITS:
            self._since_checkpoint = 0
            self._checkpoint_wake.set()
        if self._reset_wanted:
            # while the loop commits, a checkpoint in another thread never catches up with the log's
            # end, and SQLite starts the log again only once all of it is copied: the loop copies the
            # rest (what it committed since the checkpointer's last look), and its next transaction
            # writes the log from its beginning
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._reset_wanted = bool(busy) or copied < frames  # the checkpointer was at it: next time

    def _trim(self, db: sqlite3.Connection) -> None:
        """Delete the oldest ended tasks beyond ``max_history`` or ``max_bytes``, ``TRIM_ROWS`` at most."""
        if not self._trimming:  # a new round of deletions starts from an exact count (from the index)
            self._trimming = True
            self._ended = db.execute("SELECT count(*) FROM tasks WHERE ended = 1").fetchone()[0]
        budget = TRIM_ROWS
        while budget > 0 and (self._ended > self.max_history or self._ended_bytes > self.max_bytes):
            over_bytes = self._ended_bytes - self.max_bytes
            n = max(
                self._ended - self.max_history,
                -(-over_bytes * self._ended // max(self._ended_bytes, 1)) if over_bytes > 0 else 0,
                1,
            )
            sizes = [r[0] for r in db.execute(DELETE_OLDEST, (min(n, budget),))]
            if not sizes:  # nothing ended is left: the counts were upper bounds
                self._ended, self._ended_bytes = 0, 0
                break
            self._ended -= len(sizes)
            self._ended_bytes -= sum(sizes)
            budget -= len(sizes)
        self._trimming = self._ended > self.max_history or self._ended_bytes > self.max_bytes

    # -- the checkpointer thread -----------------------------------------------
    def _checkpoints(self) -> None:
        db = self._connect()
        try:
            while not self._closed:
                self._checkpoint_wake.wait(self.checkpoint_s)
                self._checkpoint_wake.clear()
                if self._closed:
                    return
                try:
                    _busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self._reset_wanted = frames > WAL_RESET_FRAMES
                    self.checkpoints += copied > 0
                except sqlite3.Error as e:  # the next round tries again
                    log.warning("checkpointing the state store %s failed: %s", self.path, e)
        finally:
            db.close()


def _keep(task: StoredTask, prev: StoredTask | None) -> None:
    """``task`` replaces ``prev`` (an earlier row of it not committed yet): keep what only ``prev`` carried."""
    if prev is not None:
        task.task_input = task.task_input if task.task_input is not None else prev.task_input
        task.body_hash = task.body_hash or prev.body_hash
        task.answer_ti = task.answer_ti or prev.answer_ti


async def _written() -> None:
    """What :meth:`SqliteStore.flush_task` returns when the rows are already in: awaited, it does
    not yield to the loop."""


def _settle(fut: asyncio.Future[None], error: BaseException | None, path: str) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(RuntimeError(f"the state store {path} failed: {error}"))


def _settle_all(futs: list[asyncio.Future[None]], error: BaseException | None, path: str) -> None:
    for fut in futs:
        _settle(fut, error, path)
