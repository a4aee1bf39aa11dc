"""The core's task records as the state store's rows and back, and the digest of a submit body
(a retry with the same task_id and body gets the first answer)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...core import SCHEDULED, Decision, TaskRecord
from ..store import StoredTask


def body_digest(model: str, task_input: Any, metadata: dict) -> str:
    """A digest of a submit body: a retry with the same task_id and the same digest gets the first answer."""
    text = json.dumps([model, task_input, metadata], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def stored_task(
    rec: TaskRecord,
    task_input: Any = None,
    body_hash: str | None = None,
    answer_ti: str | None = None,
    remote_id: str | None = None,
) -> StoredTask:
    return StoredTask(  # every field by position: a third cheaper than by keyword (one per task end)
        rec.task_id,
        rec.model,
        rec.status,
        rec.instance_id,
        rec.submit_ms,
        rec.schedule_ms,
        rec.end_ms,
        rec.predicted_ms,
        rec.predicted_error_ms,
        rec.execution_ms,
        rec.result,
        rec.error,
        rec.metadata,
        rec.attempts,
        task_input,
        body_hash,
        answer_ti,
        remote_id,
    )


def submitted_task(d: Decision, metadata: dict, task_input: Any, body_hash: str | None) -> StoredTask:
    """The first row of a task the core just scheduled, from its decision: what
    ``stored_task(core.task(d.task_id), ...)`` gives, without copying the core's record
    (tests/test_store.py checks the two agree)."""
    return StoredTask(
        d.task_id,
        d.model,
        SCHEDULED,
        d.instance_id,
        d.now_ms,
        d.now_ms,
        None,
        d.predicted_ms,
        d.predicted_error_ms,
        None,
        None,
        None,
        dict(metadata) if metadata else {},
        1,
        task_input,
        body_hash,
    )


def task_record(t: StoredTask) -> TaskRecord:
    return TaskRecord(
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
        t.result,
        t.error,
        dict(t.metadata),
        t.attempts,
    )
