"""The Scheduler facade: the one object both shells drive.

Both shells call the same methods for the same events: ``submit`` when a task
arrives, ``complete`` or ``fail`` when it ends, ``add_instance`` and
``remove_instance`` when an instance joins or leaves.  Live mode additionally
reports health (``set_healthy``) and takes a task back from an instance that
refused it (``retry``); the simulator never needs to, since its instances
never fail.

No locks: both shells call the scheduler from one thread (the simulator's
event loop; the live service's asyncio loop), so it is not thread-safe and a
caller that shares it across threads must serialise its calls.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from .clock import Clock, ManualClock
from .decision import Decision, QueueInfo, checked_choice, excluding, queue_info
from .errors import (
    DuplicateTaskError,
    InvalidTransitionError,
    NoInstanceError,
    UnknownTaskError,
)
from .instance_registry import InstanceRegistry
from .instance_state import InstanceState, WaitEstimate
from .pool_stats import Prediction
from .predictor import Predictor
from .queues import Pool
from .strategies import Candidates, Strategy, make_strategy
from .tracker import QUEUED, SCHEDULED, TaskRecord, TaskTracker

Recorder = Callable[[dict[str, Any]], None]


class Scheduler(InstanceRegistry):
    """Chooses an instance for each task and keeps the books (its instances: :class:`InstanceRegistry`).

    ``clock`` supplies ``now_ms()``; ``rng`` is a ``numpy.random.Generator``
    or an integer seed.  ``recorder``, if given, receives every event as a
    dict (the events are listed in :mod:`scheduler.core.replay`;
    :class:`scheduler.decision_log.DecisionLog` writes them to a file).
    """

    def __init__(
        self,
        strategy: str | Strategy = "shortest_queue",
        *,
        strategy_params: dict[str, Any] | None = None,
        predictor: Predictor | None = None,
        clock: Clock | None = None,
        rng: np.random.Generator | int | None = 0,
        tracker: TaskTracker | None = None,
        recorder: Recorder | None = None,
        task_ids: Callable[[], str] | None = None,
    ):
        self.clock = clock or ManualClock()
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.predictor = predictor or Predictor()
        self.tracker = tracker or TaskTracker()
        self.recorder = recorder
        # task-00000001, task-00000002, ...: formatted by C code, no Python frame per id
        self._next_task_id = task_ids or functools.partial(
            next, map("task-{:08d}".format, itertools.count(1))
        )
        self._pools: dict[str, Pool] = {}
        self._instances: dict[str, InstanceState] = {}
        self._task_inst: dict[str, InstanceState] = {}
        self._known = self.tracker.ids  # a live view of the tracker's task ids (the submit check)
        self._instance_counter = itertools.count(0)
        self.strategy: Strategy
        self.strategy_name: str
        if isinstance(strategy, Strategy):
            self.strategy, self.strategy_name = strategy, strategy.name or type(strategy).__name__
        else:
            self.strategy, self.strategy_name = make_strategy(strategy, **(strategy_params or {})), strategy
        if self.recorder is not None:
            self._emit({"event": "config", **self.config()})

    # -- configuration ---------------------------------------------------------
    def set_strategy(self, strategy: str | Strategy, **params: Any) -> None:
        """Switch strategy; queue estimates and predictor state are kept."""
        if isinstance(strategy, Strategy):
            self.strategy, self.strategy_name = strategy, strategy.name or type(strategy).__name__
        else:
            self.strategy, self.strategy_name = make_strategy(strategy, **params), strategy
        self._emit({"event": "set_strategy", "name": self.strategy_name, "params": self.strategy.params()})

    def config(self) -> dict[str, Any]:
        """What rebuilds this scheduler's decisions: strategy, predictor and the
        generator's exact state (see :mod:`scheduler.core.replay`)."""
        return {
            "strategy": self.strategy_name,
            "strategy_params": self.strategy.params(),
            "predictor": self.predictor.config(),
            "rng_state": self.rng.bit_generator.state,
        }

    def set_lookup_table(self, table: dict[str, Any]) -> None:
        self.predictor.set_lookup_table(table)
        self._emit({"event": "set_lookup_table", "table": table})

    def set_predict_mode(self, mode: str) -> None:
        self.predictor.set_mode(mode)
        self._emit({"event": "set_predict_mode", "mode": self.predictor.mode})

    @property
    def predict_mode(self) -> str:
        return self.predictor.mode

    # -- tasks -----------------------------------------------------------------
    def submit(
        self,
        model: str,
        task_input: Any = None,
        metadata: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        size_ms: float | None = None,
    ) -> Decision:
        """A task arrives: choose an instance and record the decision.

        ``size_ms`` is the task's true size, known only to the clairvoyant
        predictor.  Raises :class:`NoInstanceError` (after recording the task
        as failed) when no available instance serves ``model``.
        """
        now = self.clock.now_ms()
        tid = task_id if task_id is not None else self._next_task_id()
        if tid in self._known:
            raise DuplicateTaskError(tid)
        if self.recorder is not None:
            ev = {"event": "submit", "t": now, "task_id": tid, "model": model, "size_ms": size_ms}
            if metadata:
                ev["metadata"] = dict(metadata)
            self._emit(ev)
        return self._dispatch(tid, model, now, size_ms, (), metadata, True)

    def place(
        self, model: str, task_id: str, size_ms: float | None = None, metadata: dict[str, Any] | None = None
    ) -> tuple[str, float, float]:
        """:meth:`submit`'s lean form, for a shell that keeps its own per-task results (the
        simulator): the same decision, the same queue estimate and the same random draws, and
        nothing else.  No record is kept (the tracker does not know the task), nothing is
        emitted (a scheduler with a recorder refuses it: use :meth:`submit`), no
        :class:`Decision` is built, and ``task_id`` is refused only while that task is in flight.
        Returns the instance id and the predicted execution mean and standard deviation (ms)
        there.  The task ends with :meth:`finish`.  Raises :class:`NoInstanceError` as
        :meth:`submit` does (the refused task is recorded)."""
        if self.recorder is not None:
            raise RuntimeError("place() emits no events: a scheduler with a recorder takes submit()")
        if task_id in self._task_inst:
            raise DuplicateTaskError(task_id)
        now = self.clock.now_ms()
        pool = self._pools.get(model)
        if pool is None or not pool.has_available:
            self._unavailable(pool, task_id, model, now, True)
        _, _, inst, mean, std = self._assign(pool, pool.candidates, task_id, now, size_ms, metadata)
        return inst.instance_id, mean, std

    def finish(
        self, task_id: str, execution_ms: float | None, metadata: dict[str, Any] | None = None
    ) -> None:
        """:meth:`complete`'s lean form, for a task given by :meth:`place`: it leaves its queue
        estimate and the predictor learns ``execution_ms`` (with the task's ``metadata``, which
        :meth:`place` did not keep)."""
        now = self.clock.now_ms()
        inst = self._task_inst.pop(task_id, None)
        if inst is None:
            raise UnknownTaskError(task_id)
        inst.pool.release(inst, task_id, now)
        if execution_ms is not None:
            self.predictor.learn(inst.pool, inst, execution_ms, metadata)

    def in_flight(self) -> int:
        """Tasks assigned to an instance and not yet ended (by either path)."""
        return len(self._task_inst)

    def retry(self, task_id: str, exclude: Iterable[str] = (), size_ms: float | None = None) -> Decision:
        """Take a scheduled task back from its instance and dispatch it again,
        avoiding the instances in ``exclude``.  Raises :class:`NoInstanceError`
        (after recording the task as failed) if nowhere is left."""
        now = self.clock.now_ms()
        inst = self._task_inst.pop(task_id, None)
        if inst is None:
            raise UnknownTaskError(task_id)
        inst.pool.release(inst, task_id, now)
        rec = self.tracker.requeue(task_id)
        excl = tuple(exclude)
        self._emit({"event": "retry", "t": now, "task_id": task_id, "exclude": list(excl)})
        try:
            return self._dispatch(task_id, rec.model, now, size_ms, excl, rec.metadata, False)
        except NoInstanceError:
            raise  # recorded as failed already
        except Exception as e:  # a strategy's bug must not leave the task queued forever
            self.tracker.fail(task_id, now, f"re-dispatch failed: {type(e).__name__}: {e}")
            raise

    def restore(self, rec: TaskRecord) -> None:
        """Put back a task a live scheduler kept in its state store: an ended one into the
        books, a scheduled one also into its instance's queue estimate (as if assigned at
        ``rec.schedule_ms`` with its recorded prediction).  A queued one waits for
        :meth:`dispatch_queued`.  Nothing is emitted: the events happened before."""
        if rec.status == SCHEDULED:
            inst = self._instance(rec.instance_id or "")
            if rec.schedule_ms is None:
                raise ValueError(f"scheduled task {rec.task_id!r} has no schedule_ms")
            self.tracker.restore(rec)
            std = rec.predicted_error_ms or 0.0
            inst.pool.assign(inst, rec.task_id, rec.predicted_ms or 0.0, std * std, rec.schedule_ms)
            self._task_inst[rec.task_id] = inst
        else:
            self.tracker.restore(rec)

    def dispatch_queued(self, task_id: str, exclude: Iterable[str] = ()) -> Decision:
        """Choose an instance for a task that is queued (restored, not yet dispatched).
        Raises :class:`NoInstanceError` (after recording the task as failed) if none can take it."""
        rec = self.tracker.get(task_id)
        if rec is None:
            raise UnknownTaskError(task_id)
        if rec.status != QUEUED:
            raise InvalidTransitionError(task_id, rec.status, SCHEDULED)
        return self._dispatch(task_id, rec.model, self.clock.now_ms(), None, tuple(exclude), None, False)

    def _dispatch(
        self,
        tid: str,
        model: str,
        now: float,
        size_ms: float | None,
        exclude: tuple[str, ...],
        metadata: dict[str, Any] | None,
        new: bool,
    ) -> Decision:
        """Choose an instance for a task.  ``new``: the task is not in the tracker yet (it is
        added, scheduled, in one step); otherwise it is queued there (a retry, a restored task)."""
        pool = self._pools.get(model)
        if pool is None or not pool.has_available:
            self._unavailable(pool, tid, model, now, new)
        idx = pool.candidates
        if exclude:
            idx = excluding(self._instances, pool, idx, exclude)
            if idx.size == 0:
                self._no_instance(
                    tid, model, now, "every instance that serves this model refused the task", new
                )
        n, wait, inst, mean, std = self._assign(pool, idx, tid, now, size_ms, metadata)
        if new:
            self.tracker.add_scheduled(tid, model, now, metadata, inst.instance_id, mean, std)
        else:
            self.tracker.schedule(tid, inst.instance_id, now, mean, std)
        if self.recorder is not None:
            self._emit(
                {
                    "event": "decision",
                    "t": now,
                    "task_id": tid,
                    "instance_id": inst.instance_id,
                    "predicted_ms": mean,
                    "predicted_error_ms": std,
                }
            )
        return Decision(tid, model, inst.instance_id, self.strategy_name, now, mean, std, n, wait)

    def _assign(
        self,
        pool: Pool,
        idx: NDArray[np.intp] | None,
        tid: str,
        now: float,
        size_ms: float | None,
        metadata: dict[str, Any] | None,
    ) -> tuple[int, float | None, InstanceState, float, float]:
        """The strategy's choice among the candidates ``idx`` of ``pool``, assigned the task in
        the queue estimate: how many candidates there were, the wait the strategy saw at its
        choice (if it looked), the chosen instance, the predicted mean and spread there."""
        view = Candidates(pool, idx, self.predictor, now, size_ms, metadata)
        i = self.strategy.choose(view, self.rng)
        if i.__class__ is not int or not 0 <= i < view.n:
            i = checked_choice(self.strategy_name, i, view.n)
        inst = pool.instances[i if idx is None else int(idx[i])]
        mean, std, wait = view.chosen(i)  # before the assignment: the view may read kept estimates it updates
        pool.assign(inst, tid, mean, std * std, now)
        self._task_inst[tid] = inst
        return view.n, wait, inst, mean, std

    def _unavailable(self, pool: Pool | None, tid: str, model: str, now: float, new: bool) -> NoReturn:
        reason = (
            "no instance serves this model"
            if pool is None or not any(i.active for i in pool.instances)
            else "no healthy instance serves this model"
        )
        self._no_instance(tid, model, now, reason, new)

    def _no_instance(self, tid: str, model: str, now: float, reason: str, new: bool = False) -> NoReturn:
        if new:  # a refused task keeps no metadata: a burst of refusals holds no memory
            self.tracker.add(tid, model, now, None)
        self.tracker.fail(tid, now, f"no instance for model {model!r}: {reason}")
        self._emit({"event": "no_instance", "t": now, "task_id": tid, "reason": reason})
        raise NoInstanceError(model, reason, tid)

    def complete(
        self,
        task_id: str,
        execution_ms: float | None,
        result: Any = None,
        metrics: dict[str, int] | None = None,
    ) -> TaskRecord:
        """A task ended well after ``execution_ms`` of service on its instance.

        ``metrics`` (``input_tokens``, ``output_tokens``) are what the instance measured; they are
        kept with the task and the predictor learns from them (over the task's own metadata)."""
        now = self.clock.now_ms()
        rec = self.tracker.complete(task_id, now, execution_ms, result, metrics)
        inst = self._task_inst.pop(task_id)
        inst.pool.release(inst, task_id, now)
        if execution_ms is not None:
            seen = rec.metadata if not metrics else {**rec.metadata, **metrics}
            self.predictor.learn(inst.pool, inst, execution_ms, seen)
        if self.recorder is not None:
            ev: dict[str, Any] = {
                "event": "complete",
                "t": now,
                "task_id": task_id,
                "execution_ms": execution_ms,
            }
            if metrics:
                ev["metrics"] = dict(metrics)
            self._emit(ev)
        return rec

    def fail(self, task_id: str, reason: str, execution_ms: float | None = None) -> TaskRecord:
        """A task ended in error (or was given up on).  It leaves its queue estimate."""
        now = self.clock.now_ms()
        rec = self.tracker.fail(task_id, now, reason, execution_ms)
        inst = self._task_inst.pop(task_id, None)
        if inst is not None:
            inst.pool.release(inst, task_id, now)
        self._emit({"event": "fail", "t": now, "task_id": task_id, "reason": str(reason)})
        return rec

    def task(self, task_id: str) -> TaskRecord | None:
        return self.tracker.get(task_id)

    def peek(self, task_id: str) -> TaskRecord | None:
        """:meth:`task` without the copy: the record itself, to read at once and never change."""
        return self.tracker.peek(task_id)

    def tasks_on(self, instance_id: str) -> list[str]:
        """Ids of the tasks assigned to an instance and not yet ended."""
        inst = self._instance(instance_id)
        return list(inst.running) + list(inst.pending)

    # -- estimates -------------------------------------------------------------
    def queue_info(self, model: str | None = None, *, include_removed: bool = False) -> list[QueueInfo]:
        """The wait a new task would see on each instance, from the core's own estimate."""
        return queue_info(self._pools.values(), self.clock.now_ms(), model, include_removed)

    def wait_estimate(self, instance_id: str) -> WaitEstimate:
        inst = self._instance(instance_id)
        return inst.pool.wait_one(inst, self.clock.now_ms())

    def prediction(self, instance_id: str, size_ms: float | None = None) -> Prediction:
        inst = self._instance(instance_id)
        return self.predictor.prediction(inst.pool, inst, size_ms)

    # -- events out ------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        if self.recorder is not None:
            if "t" not in event:
                event["t"] = self.clock.now_ms()
            self.recorder(event)
