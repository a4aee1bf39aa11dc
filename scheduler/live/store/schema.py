"""The state file's tables, and the store's rows as SQLite rows and back."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ...protocol.jsonhttp import encode
from .base import ENDED, ROW_OVERHEAD_BYTES, StoredInstance, StoredTask

SCHEMA = """
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

TASK_COLS = (
    "task_id, model, status, instance_id, submit_ms, schedule_ms, end_ms, predicted_ms, "
    "predicted_error_ms, execution_ms, result, error, metadata, attempts, task_input, body_hash, "
    "answer_ti, ended, remote_id"
)
INSTANCE_COLS = (
    "ti_uuid, base_url, model, reported_id, replicas, speed, active, callback_token, protocol, own_ids"
)
# columns added since the first schema: a file written before them gets them on open
ADDED = (
    ("instances", "callback_token", "TEXT"),
    ("instances", "protocol", "TEXT NOT NULL DEFAULT 'enqueue'"),
    ("instances", "own_ids", "INTEGER NOT NULL DEFAULT 0"),
    ("tasks", "remote_id", "TEXT"),
)
# an update keeps the input and the idempotency columns a later row does not carry
UPSERT_TASK = (
    f"INSERT INTO tasks ({TASK_COLS}) VALUES ({', '.join('?' * 19)}) "
    "ON CONFLICT(task_id) DO UPDATE SET status=excluded.status, instance_id=excluded.instance_id, "
    "schedule_ms=excluded.schedule_ms, end_ms=excluded.end_ms, predicted_ms=excluded.predicted_ms, "
    "predicted_error_ms=excluded.predicted_error_ms, execution_ms=excluded.execution_ms, "
    "result=excluded.result, error=excluded.error, attempts=excluded.attempts, "
    "task_input=CASE WHEN excluded.ended THEN NULL ELSE coalesce(excluded.task_input, task_input) END, "
    "body_hash=coalesce(excluded.body_hash, body_hash), answer_ti=coalesce(excluded.answer_ti, answer_ti), "
    "ended=excluded.ended, remote_id=excluded.remote_id"
)


# a later state of a task already in the file: only what changes after submit (not its model,
# submit time, metadata or input, which only goes when it ends)
UPDATE_TASK = (
    "UPDATE tasks SET status=?, instance_id=?, schedule_ms=?, end_ms=?, predicted_ms=?, "
    "predicted_error_ms=?, execution_ms=?, result=?, error=?, attempts=?, "
    "body_hash=coalesce(?, body_hash), answer_ti=coalesce(?, answer_ti), ended=?, remote_id=?, "
    "task_input=CASE WHEN ? THEN NULL ELSE task_input END WHERE task_id=?"
)


def dumps(v: Any) -> str:
    """JSON text of a value to store (orjson)."""
    return encode(v).decode()


def task_row(t: StoredTask) -> tuple:
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
        None if t.result is None else dumps(t.result),
        t.error,
        dumps(t.metadata or {}),
        t.attempts,
        None if ended or t.task_input is None else dumps(t.task_input),
        t.body_hash,
        t.answer_ti,
        int(ended),
        t.remote_id,
    )


def update_row(t: StoredTask) -> tuple:
    """The parameters of :data:`UPDATE_TASK` for ``t``."""
    ended = int(t.status in ENDED)
    return (
        t.status,
        t.instance_id,
        t.schedule_ms,
        t.end_ms,
        t.predicted_ms,
        t.predicted_error_ms,
        t.execution_ms,
        None if t.result is None else dumps(t.result),
        t.error,
        t.attempts,
        t.body_hash,
        t.answer_ti,
        ended,
        t.remote_id,
        ended,
        t.task_id,
    )


UPDATE_RESULT = 7  # where update_row puts the stored result (JSON text)


def ended_bytes(t: StoredTask, result: str | None) -> int:
    """:data:`ROW_BYTES` of an ended task whose result is stored as ``result``."""
    n = ROW_OVERHEAD_BYTES + len(t.task_id.encode()) + (len(result.encode()) if result else 0)
    n += len(t.error.encode()) if t.error else 0
    return n + (len(dumps(t.metadata).encode()) if t.metadata else 2)  # "{}"


def task_of(row: sqlite3.Row) -> StoredTask:
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


def instance_row(i: StoredInstance) -> tuple:
    return (
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


def instance_of(r: sqlite3.Row) -> StoredInstance:
    return StoredInstance(
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


# what an ended row takes (the same measure as ended_bytes and row_bytes, so they agree)
ROW_BYTES = (
    f"{ROW_OVERHEAD_BYTES} + length(CAST(task_id AS BLOB)) + coalesce(length(CAST(result AS BLOB)), 0) "
    "+ coalesce(length(CAST(metadata AS BLOB)), 0) + coalesce(length(CAST(error AS BLOB)), 0)"
)


COL = {name.strip(): i for i, name in enumerate(TASK_COLS.split(","))}  # a row's positions
SIZED = tuple(COL[c] for c in ("task_id", "result", "error", "metadata"))


def row_bytes(row: tuple) -> int:
    """:data:`ROW_BYTES` of a row from :func:`task_row`: its id, result, error and metadata."""
    return ROW_OVERHEAD_BYTES + sum(len(row[i].encode()) for i in SIZED if row[i])


#: the ``?`` oldest ended tasks (by end time, then by insertion), deleted; each one's :data:`ROW_BYTES`
DELETE_OLDEST = (
    "DELETE FROM tasks WHERE rowid IN "
    "(SELECT rowid FROM tasks WHERE ended = 1 ORDER BY end_ms, rowid LIMIT ?) "
    f"RETURNING {ROW_BYTES}"
)
