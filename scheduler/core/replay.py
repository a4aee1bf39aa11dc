"""Decision replay: feed a recorded event stream back through the core.

A :class:`~scheduler.core.scheduler.Scheduler` built with ``recorder=`` emits
one dict per event (either shell, same format):

* ``config``: strategy, its parameters, the predictor's configuration and the
  random generator's exact state, emitted at construction;
* ``add_instance``, ``remove_instance``, ``set_healthy``, ``set_strategy``,
  ``set_predict_mode``, ``set_lookup_table``;
* ``submit`` (arrival: time, task id, model, size, metadata if any), followed by ``decision``
  (the chosen instance and its prediction) or ``no_instance``;
* ``retry`` (a task taken back, with the instances to avoid), then its
  ``decision``; ``complete`` (with the execution time) and ``fail``.

:func:`replay` builds a fresh scheduler from the ``config`` event, sets a
:class:`ManualClock` to each event's recorded time and calls the same methods
again, comparing every decision with the recorded one.  Pure: events in,
report out; reading the log file is the shell's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .clock import ManualClock
from .errors import NoInstanceError
from .predictor import Predictor
from .scheduler import Scheduler


@dataclass
class ReplayReport:
    decisions: int = 0
    identical: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # the first few, for the reader
    events: int = 0

    @property
    def all_identical(self) -> bool:
        return self.decisions == self.identical

    def __str__(self) -> str:
        return f"{self.identical} of {self.decisions} decisions identical ({self.events} events replayed)"


def _build(config: dict[str, Any], clock: ManualClock) -> Scheduler:
    pred_cfg = dict(config["predictor"])
    pred = Predictor(**pred_cfg)
    rng = np.random.default_rng()
    rng.bit_generator.state = config["rng_state"]
    return Scheduler(
        config["strategy"],
        strategy_params=config.get("strategy_params") or {},
        predictor=pred,
        clock=clock,
        rng=rng,
    )


def replay(events: Iterable[dict[str, Any]], max_mismatches: int = 20) -> ReplayReport:
    """Replay recorded events; count decisions that come out identical."""
    report = ReplayReport()
    clock = ManualClock()
    sched: Scheduler | None = None
    expect: tuple[str, str | None] | None = None  # (task_id, replayed instance or None for no_instance)

    def compare(task_id: str, recorded: str | None) -> None:
        nonlocal expect
        report.decisions += 1
        got = expect[1] if expect and expect[0] == task_id else "<not replayed>"
        if got == recorded:
            report.identical += 1
        elif len(report.mismatches) < max_mismatches:
            report.mismatches.append({"task_id": task_id, "recorded": recorded, "replayed": got})
        expect = None

    for ev in events:
        report.events += 1
        kind = ev.get("event")
        if "t" in ev and ev["t"] is not None:
            clock.set(ev["t"])
        if kind == "config":
            sched = _build(ev, clock)
            continue
        if sched is None:
            raise ValueError("the log does not start with a 'config' event; record from construction")
        if kind == "add_instance":
            sched.add_instance(
                ev["model"],
                instance_id=ev["instance_id"],
                replicas=ev["replicas"],
                speed=ev["speed"],
                name=ev.get("name"),
            )
        elif kind == "remove_instance":
            sched.remove_instance(ev["instance_id"])
        elif kind == "set_healthy":
            sched.set_healthy(ev["instance_id"], ev["healthy"])
        elif kind == "set_strategy":
            sched.set_strategy(ev["name"], **(ev.get("params") or {}))
        elif kind == "set_predict_mode":
            sched.set_predict_mode(ev["mode"])
        elif kind == "set_lookup_table":
            sched.set_lookup_table(ev["table"])
        elif kind in ("submit", "retry"):
            try:
                if kind == "submit":
                    d = sched.submit(
                        ev["model"],
                        None,
                        ev.get("metadata"),
                        task_id=ev["task_id"],
                        size_ms=ev.get("size_ms"),
                    )
                else:
                    d = sched.retry(ev["task_id"], exclude=ev.get("exclude") or ())
                expect = (ev["task_id"], d.instance_id)
            except NoInstanceError:
                expect = (ev["task_id"], None)
        elif kind == "decision":
            compare(ev["task_id"], ev["instance_id"])
        elif kind == "no_instance":
            compare(ev["task_id"], None)
        elif kind == "complete":
            sched.complete(ev["task_id"], ev.get("execution_ms"), metrics=ev.get("metrics"))
        elif kind == "fail":
            sched.fail(ev["task_id"], ev.get("reason", ""))
        else:
            raise ValueError(f"unknown event {kind!r} in the log")
    return report
