"""The core Scheduler live mode runs, built from the service's configuration."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable

from ...core import Clock, Predictor, Scheduler, SpecError, TaskRecord, TaskTracker
from ...core.scheduler import Recorder
from ..clock import WallClock
from ..config import LiveConfig
from ..modes import LIVE_MODES, LIVE_PREDICT_MODES, mode_from_api


def build_core(config: LiveConfig, clock: Clock | None = None, recorder: Recorder | None = None) -> Scheduler:
    """The core Scheduler live mode runs: wall clock (unless a test gives another),
    ``task-<32 hex digits>`` ids, the configured strategy and predictor; ``recorder``
    (e.g. a :class:`~scheduler.DecisionLog`) receives every core event from construction on.

    ``config`` must be loaded (:func:`~scheduler.live.loading.load_config`) if it names a lookup table."""
    if config.lookup_table and config.table is None:
        raise SpecError(
            "lookup_table",
            config.lookup_table,
            "a file read by scheduler.live.load_config(config) before the service is built",
        )
    core = Scheduler(
        config.strategy,
        strategy_params=config.strategy_params,
        predictor=Predictor(
            "online",
            lookup_table=config.table,
            clip_sigmas=config.learn_clip_sigmas,
            half_life=config.learn_half_life,
        ),
        clock=clock or WallClock(),
        rng=config.seed,
        tracker=TaskTracker(
            max_history=config.max_history, max_bytes=config.max_history_bytes, sizeof=record_bytes
        ),
        recorder=recorder,
        task_ids=task_ids(),
    )
    mode = mode_from_api(config.predict_mode)
    if mode not in LIVE_MODES:
        raise SpecError("predict_mode", config.predict_mode, "one of " + ", ".join(LIVE_PREDICT_MODES))
    if mode == "lookup_table" and not config.table:
        raise SpecError(
            "predict_mode",
            config.predict_mode,
            "default, or lookup_table together with a lookup table "
            "(--lookup-table FILE or SCHEDULER_LOOKUP_TABLE)",
        )
    core.set_predict_mode(mode)
    return core


def task_ids() -> Callable[[], str]:
    """``task-<32 hex digits>`` ids: the epoch milliseconds (12 digits), then 80 random bits from a
    generator seeded once from the OS (uuid4 asks the OS for every id: a system call per task).
    Ids that grow with time are appended to the state file's index instead of landing on a random
    page of it (about a fifth of the store's CPU per task, measured)."""
    bits = random.Random(os.urandom(32)).getrandbits
    return lambda: f"task-{int(time.time() * 1000):012x}{bits(80):020x}"


def record_bytes(rec: TaskRecord) -> int:
    """About what a finished task holds in memory: its result, metadata and error as JSON, plus ids."""
    try:
        body = json.dumps([rec.result, rec.metadata], default=str)
    except (TypeError, ValueError, RecursionError):
        body = repr((rec.result, rec.metadata))
    return 200 + len(body) + len(rec.error or "") + len(rec.task_id)
