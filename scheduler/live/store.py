"""Durable state of the live scheduler: tasks, instances and settings.

The service writes every task it accepts (with its input, so that it can be
dispatched again), every change of a task's state, every registered instance
and its settings to a :class:`StateStore`; a scheduler started on the same
store rebuilds its core from what :meth:`StateStore.load` returns
(:mod:`scheduler.live.service.recovery`).  The core stays pure: it never sees the store.

Two implementations:

* :class:`MemoryStore` (``--state-db none``): nothing outlives the process;
* :class:`SqliteStore`: an embedded SQLite file in WAL mode.  Writes are
  batched: :meth:`~StateStore.put_task` and friends only queue a row; one
  writer thread commits whatever is queued in one transaction, a few milliseconds
  after a :meth:`~StateStore.flush` (which returns an awaitable that is done once
  everything queued before it is committed), and within ``idle_commit_s`` (20 ms)
  without one.  Puts do not wake the writer (handing it the GIL on every state
  change cost the event loop more than the writes).  ``/queue/submit`` awaits it, so a task is on
  disk before its client hears ``success``, without one fsync per request.

Retention: the file keeps what the tracker keeps in memory (``--max-history`` and
``--max-history-bytes``): at most ``max_history`` ended tasks, whose results, metadata
and errors take at most about ``max_bytes``; the writer deletes the oldest beyond either
bound (in batches, so a bound may be passed by a tenth before the next deletion).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol.jsonhttp import encode

log = logging.getLogger("scheduler.live")

ENDED = ("completed", "failed")
#: about what an ended task takes, in bytes: ids and timings, plus its result, metadata and error
ROW_OVERHEAD_BYTES = 200


@dataclass
class StoredTask:
    """One task as the store keeps it: the core's record plus what the shell needs."""

    task_id: str
    model: str
    status: str
    instance_id: str | None
    submit_ms: float
    schedule_ms: float | None = None
    end_ms: float | None = None
    predicted_ms: float | None = None
    predicted_error_ms: float | None = None
    execution_ms: float | None = None
    result: Any = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    task_input: Any = None  # kept while the task has not ended
    body_hash: str | None = None  # of a client-supplied task_id's submit body (idempotent retry)
    answer_ti: str | None = None  # the instance its submit was answered with
    remote_id: str | None = None  # the id its instance answered with, when not the scheduler's own


@dataclass
class StoredInstance:
    ti_uuid: str
    base_url: str
    model: str
    reported_id: str
    replicas: int
    speed: float = 1.0
    active: bool = True
    callback_token: str | None = None  # its completion-callback secret (when tokens are set)
    protocol: str = "enqueue"  # its dialect (scheduler.live.dialects)
    own_ids: bool = False  # it answered an enqueue with an id of its own


@dataclass
class StoredState:
    tasks: list[StoredTask]
    instances: list[StoredInstance]
    settings: dict[str, Any]


class StateStore(Protocol):
    """Where the live scheduler keeps what must survive a restart."""

    #: a short description for the log (``memory only``, ``sqlite FILE``)
    description: str

    def load(self) -> StoredState: ...

    def put_task(self, task: StoredTask) -> None: ...

    def put_instance(self, inst: StoredInstance) -> None: ...

    def put_setting(self, key: str, value: Any) -> None: ...

    def flush(self) -> Awaitable[None]:
        """Done when everything put before this call is durable."""
        ...

    def close(self) -> None: ...


async def _done() -> None:
    return None


class MemoryStore:
    """Nothing is written: a restart forgets everything (``--state-db none``)."""

    description = "memory only (--state-db none): a restart forgets every task, instance and setting"

    def load(self) -> StoredState:
        return StoredState([], [], {})

    def put_task(self, task: StoredTask) -> None:
        pass

    def put_instance(self, inst: StoredInstance) -> None:
        pass

    def put_setting(self, key: str, value: Any) -> None:
        pass

    def flush(self) -> Awaitable[None]:
        return _done()

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL, instance_id TEXT,
    submit_ms REAL NOT NULL, schedule_ms REAL, end_ms REAL, predicted_ms REAL,
    predicted_error_ms REAL, execution_ms REAL, result TEXT, error TEXT, metadata TEXT,
    attempts INTEGER NOT NULL, task_input TEXT, body_hash TEXT, answer_ti TEXT, ended INTEGER NOT NULL,
    remote_id TEXT
);
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (ended, end_ms);
CREATE TABLE IF NOT EXISTS instances (
    ti_uuid TEXT PRIMARY KEY, base_url TEXT NOT NULL, model TEXT NOT NULL, reported_id TEXT NOT NULL,
    replicas INTEGER NOT NULL, speed REAL NOT NULL, active INTEGER NOT NULL, callback_token TEXT,
    protocol TEXT NOT NULL DEFAULT 'enqueue', own_ids INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_TASK_COLS = (
    "task_id, model, status, instance_id, submit_ms, schedule_ms, end_ms, predicted_ms, "
    "predicted_error_ms, execution_ms, result, error, metadata, attempts, task_input, body_hash, "
    "answer_ti, ended, remote_id"
)
_INSTANCE_COLS = (
    "ti_uuid, base_url, model, reported_id, replicas, speed, active, callback_token, protocol, own_ids"
)
# columns added since the first schema: a file written before them gets them on open
_ADDED = (
    ("instances", "callback_token", "TEXT"),
    ("instances", "protocol", "TEXT NOT NULL DEFAULT 'enqueue'"),
    ("instances", "own_ids", "INTEGER NOT NULL DEFAULT 0"),
    ("tasks", "remote_id", "TEXT"),
)
# an update keeps the input and the idempotency columns a later row does not carry
_UPSERT_TASK = (
    f"INSERT INTO tasks ({_TASK_COLS}) VALUES ({', '.join('?' * 19)}) "
    "ON CONFLICT(task_id) DO UPDATE SET status=excluded.status, instance_id=excluded.instance_id, "
    "schedule_ms=excluded.schedule_ms, end_ms=excluded.end_ms, predicted_ms=excluded.predicted_ms, "
    "predicted_error_ms=excluded.predicted_error_ms, execution_ms=excluded.execution_ms, "
    "result=excluded.result, error=excluded.error, attempts=excluded.attempts, "
    "task_input=CASE WHEN excluded.ended THEN NULL ELSE coalesce(excluded.task_input, task_input) END, "
    "body_hash=coalesce(excluded.body_hash, body_hash), answer_ti=coalesce(excluded.answer_ti, answer_ti), "
    "ended=excluded.ended, remote_id=excluded.remote_id"
)


def _dumps(v: Any) -> str:
    """JSON text of a value to store (orjson: the writer holds the GIL while it encodes)."""
    return encode(v).decode()


def _task_row(t: StoredTask) -> tuple:
    ended = t.status in ENDED
    return (
        t.task_id,
        t.model,
        t.status,
        t.instance_id,
        t.submit_ms,
        t.schedule_ms,
        t.end_ms,
        t.predicted_ms,
        t.predicted_error_ms,
        t.execution_ms,
        None if t.result is None else _dumps(t.result),
        t.error,
        _dumps(t.metadata or {}),
        t.attempts,
        None if ended or t.task_input is None else _dumps(t.task_input),
        t.body_hash,
        t.answer_ti,
        int(ended),
        t.remote_id,
    )


def _task_of(row: sqlite3.Row) -> StoredTask:
    return StoredTask(
        task_id=row["task_id"],
        model=row["model"],
        status=row["status"],
        instance_id=row["instance_id"],
        submit_ms=row["submit_ms"],
        schedule_ms=row["schedule_ms"],
        end_ms=row["end_ms"],
        predicted_ms=row["predicted_ms"],
        predicted_error_ms=row["predicted_error_ms"],
        execution_ms=row["execution_ms"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        metadata=json.loads(row["metadata"] or "{}"),
        attempts=row["attempts"],
        task_input=None if row["task_input"] is None else json.loads(row["task_input"]),
        body_hash=row["body_hash"],
        answer_ti=row["answer_ti"],
        remote_id=row["remote_id"],
    )


class SqliteStore:
    """An embedded SQLite file (WAL) written by one batching writer thread."""

    def __init__(
        self,
        path: str,
        *,
        max_history: int = 100_000,
        max_bytes: int = 256 << 20,
        interval_s: float = 0.002,
        idle_commit_s: float = 0.02,
    ):
        self.path = path
        self.description = f"sqlite {path} (WAL)"
        self.max_history = max_history
        self.max_bytes = max_bytes
        self.interval_s = interval_s
        self.idle_commit_s = idle_commit_s  # what is put without a flush is committed this late at most
        self.commits = 0  # transactions committed by the writer (for tests and benchmarks)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tasks: dict[str, StoredTask] = {}  # latest row of each task put since the last commit
        self._instances: dict[str, StoredInstance] = {}
        self._settings: dict[str, Any] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._error: BaseException | None = None
        fresh = not os.path.exists(path)
        db = self._connect()  # create the schema (and fail early on a bad path)
        if fresh:  # it holds task inputs and callback secrets: readable by its owner only
            os.chmod(path, 0o600)
        try:
            db.executescript(_SCHEMA)
            for table, col, decl in _ADDED:
                if col not in {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
            self._ended, self._ended_bytes = db.execute(
                f"SELECT count(*), coalesce(sum({_ROW_BYTES}), 0) FROM tasks WHERE ended = 1"
            ).fetchone()
        finally:
            db.close()
        self._thread = threading.Thread(target=self._run, name="state-writer", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "PRAGMA synchronous=NORMAL"
        )  # durable at each WAL checkpoint; safe against a process crash
        db.execute("PRAGMA busy_timeout=5000")
        db.row_factory = sqlite3.Row
        return db

    # -- reads -----------------------------------------------------------------
    def load(self) -> StoredState:
        db = self._connect()
        try:
            tasks = [
                _task_of(r) for r in db.execute(f"SELECT {_TASK_COLS} FROM tasks ORDER BY submit_ms, rowid")
            ]
            instances = [
                StoredInstance(
                    r["ti_uuid"],
                    r["base_url"],
                    r["model"],
                    r["reported_id"],
                    r["replicas"],
                    r["speed"],
                    bool(r["active"]),
                    r["callback_token"],
                    r["protocol"],
                    bool(r["own_ids"]),
                )
                for r in db.execute(f"SELECT {_INSTANCE_COLS} FROM instances ORDER BY rowid")
            ]
            settings = {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT * FROM settings")}
        finally:
            db.close()
        return StoredState(tasks, instances, settings)

    # -- writes ----------------------------------------------------------------
    def put_task(self, task: StoredTask) -> None:
        with self._lock:
            prev = self._tasks.get(task.task_id)
            if prev is not None:  # keep what only the first row of the batch carried
                task.task_input = task.task_input if task.task_input is not None else prev.task_input
                task.body_hash = task.body_hash or prev.body_hash
                task.answer_ti = task.answer_ti or prev.answer_ti
            self._tasks[task.task_id] = task

    def put_instance(self, inst: StoredInstance) -> None:
        with self._lock:
            self._instances[inst.ti_uuid] = inst

    def put_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._settings[key] = value

    def flush(self) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._error is not None:
                fut.set_exception(RuntimeError(f"the state store {self.path} failed: {self._error}"))
                return fut
            self._waiters.append((loop, fut))
        self._wakeup()
        return fut

    def _wakeup(self) -> None:
        # Event.set takes a lock and hands the GIL to the writer; most flushes find it already woken.
        # Safe: the writer clears the event before it takes what was put, under the same lock.
        if not self._wake.is_set():
            self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=10)

    # -- the writer thread -----------------------------------------------------
    def _has_puts(self) -> bool:
        with self._lock:
            return bool(self._tasks or self._instances or self._settings or self._waiters)

    def _run(self) -> None:
        db = self._connect()
        try:
            while True:
                # a flush wakes the writer; what was put without one is committed within idle_commit_s
                if not self._wake.wait(self.idle_commit_s) and not self._has_puts():
                    continue
                if not self._closing:
                    time.sleep(self.interval_s)  # let a batch gather
                self._wake.clear()
                with self._lock:
                    tasks, self._tasks = self._tasks, {}
                    insts, self._instances = self._instances, {}
                    settings, self._settings = self._settings, {}
                    waiters, self._waiters = self._waiters, []
                error: BaseException | None = None
                if tasks or insts or settings:
                    try:
                        self._commit(db, list(tasks.values()), list(insts.values()), settings)
                    except Exception as e:  # report to the waiters; the service logs it
                        log.exception("writing the state store %s failed", self.path)
                        error = e
                by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for loop, fut in waiters:
                    by_loop.setdefault(loop, []).append(fut)
                for loop, futs in by_loop.items():  # one wake-up of each loop, not one per waiter
                    loop.call_soon_threadsafe(_resolve, futs, error, self.path)
                if self._closing:
                    with self._lock:
                        if not (self._tasks or self._instances or self._settings or self._waiters):
                            return
        finally:
            db.close()

    def _commit(
        self,
        db: sqlite3.Connection,
        tasks: list[StoredTask],
        insts: list[StoredInstance],
        settings: dict[str, Any],
    ) -> None:
        db.execute("BEGIN")
        try:
            rows = [_task_row(t) for t in tasks]
            if rows:
                db.executemany(_UPSERT_TASK, rows)
            if insts:
                db.executemany(
                    f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLS}) VALUES ({', '.join('?' * 10)})",
                    [
                        (
                            i.ti_uuid,
                            i.base_url,
                            i.model,
                            i.reported_id,
                            i.replicas,
                            i.speed,
                            int(i.active),
                            i.callback_token,
                            i.protocol,
                            int(i.own_ids),
                        )
                        for i in insts
                    ],
                )
            if settings:
                db.executemany(
                    "INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [(k, _dumps(v)) for k, v in settings.items()],
                )
            ended = [
                r for r in rows if r[_COL["ended"]]
            ]  # upper bounds (a row may be updated): recounted by _retain
            self._ended += len(ended)
            self._ended_bytes += sum(map(_row_bytes, ended))
            if (
                self._ended > self.max_history + max(100, self.max_history // 10)
                or self._ended_bytes > self.max_bytes + self.max_bytes // 10
            ):
                self._retain(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1

    def _retain(self, db: sqlite3.Connection) -> None:
        """Delete the oldest ended tasks beyond ``max_history`` or ``max_bytes`` (newest kept first)."""
        db.execute(
            "DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM ("
            f"SELECT task_id, row_number() OVER w AS n, sum({_ROW_BYTES}) OVER w AS b "
            "FROM tasks WHERE ended = 1 WINDOW w AS (ORDER BY end_ms DESC, rowid DESC)"
            ") WHERE n > ? OR b > ?)",
            (self.max_history, self.max_bytes),
        )
        self._ended, self._ended_bytes = db.execute(
            f"SELECT count(*), coalesce(sum({_ROW_BYTES}), 0) FROM tasks WHERE ended = 1"
        ).fetchone()


# what an ended row takes (the same measure as _ended_bytes, so the two agree)
_ROW_BYTES = (
    f"{ROW_OVERHEAD_BYTES} + length(CAST(task_id AS BLOB)) + coalesce(length(CAST(result AS BLOB)), 0) "
    "+ coalesce(length(CAST(metadata AS BLOB)), 0) + coalesce(length(CAST(error AS BLOB)), 0)"
)


_COL = {name.strip(): i for i, name in enumerate(_TASK_COLS.split(","))}  # a row's positions
_SIZED = tuple(_COL[c] for c in ("task_id", "result", "error", "metadata"))


def _row_bytes(row: tuple) -> int:
    """:data:`_ROW_BYTES` of a row from :func:`_task_row`: its id, result, error and metadata."""
    return ROW_OVERHEAD_BYTES + sum(len(row[i].encode()) for i in _SIZED if row[i])


def _resolve(futs: list[asyncio.Future[None]], error: BaseException | None, path: str) -> None:
    for fut in futs:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(RuntimeError(f"the state store {path} failed: {error}"))


def open_store(spec: str | None, *, max_history: int = 100_000, max_bytes: int = 256 << 20) -> StateStore:
    """The store ``--state-db`` names: ``none`` (or nothing) keeps state in memory, else a SQLite file
    keeping at most ``max_history`` ended tasks and about ``max_bytes`` of their results and metadata."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return MemoryStore()
    return SqliteStore(spec, max_history=max_history, max_bytes=max_bytes)
