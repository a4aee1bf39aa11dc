"""``GET /metrics``: the scheduler in Prometheus' text format (docs/api.md, "Metrics").

:class:`LiveMetrics` owns one :class:`prometheus_client.CollectorRegistry` per
service (no global registry) and learns what happens from the core's event
stream: it is a recorder (``Scheduler.recorder``), chained after the decision
log if there is one.  Series (Prometheus conventions: ``_total`` counters,
units in the name):

* ``infersched_tasks_submitted_total{model}``, ``infersched_tasks_completed_total{model}``,
  ``infersched_tasks_failed_total{model}``, ``infersched_dispatch_retries_total{model}``;
* ``infersched_decision_seconds`` (submit or retry to decision, CPU on the
  event loop) and ``infersched_task_latency_seconds{model}`` (submit to end)
  histograms;
* read at scrape time: ``infersched_tasks_in_flight``,
  ``infersched_instance_expected_wait_seconds{model,ti_uuid}`` and
  ``infersched_instance_healthy{model,ti_uuid}``.

Counters and histograms live in the process: a restarted scheduler starts them at zero
(Prometheus' ``rate()`` and ``increase()`` take a reset in their stride); tasks it restores in
flight are counted when they end (:meth:`LiveMetrics.resume`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

Recorder = Callable[[dict[str, Any]], None]


class _Instances(Collector):
    """Per-instance gauges and the in-flight count, read from the service when scraped."""

    def __init__(self, read: Callable[[], tuple[int, list[tuple[str, str, float, bool]]]]):
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight, instances = self._read()
        yield GaugeMetricFamily("infersched_tasks_in_flight", "tasks accepted and not yet ended", in_flight)
        wait = GaugeMetricFamily(
            "infersched_instance_expected_wait_seconds",
            "the scheduler's expected wait of a new task on the instance",
            labels=["model", "ti_uuid"],
        )
        healthy = GaugeMetricFamily(
            "infersched_instance_healthy", "1 if the instance takes new tasks", labels=["model", "ti_uuid"]
        )
        for model, ti, wait_ms, ok in instances:
            wait.add_metric([model, ti], wait_ms / 1000.0)
            healthy.add_metric([model, ti], 1.0 if ok else 0.0)
        yield wait
        yield healthy


class LiveMetrics:
    """Counters and histograms fed by core events; ``render()`` is the scrape."""

    def __init__(self, read_instances: Callable[[], tuple[int, list[tuple[str, str, float, bool]]]]):
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.submitted = Counter("infersched_tasks_submitted", "tasks submitted", ["model"], registry=r)
        self.completed = Counter("infersched_tasks_completed", "tasks completed", ["model"], registry=r)
        self.failed = Counter("infersched_tasks_failed", "tasks failed", ["model"], registry=r)
        self.retries = Counter(
            "infersched_dispatch_retries", "tasks dispatched again elsewhere", ["model"], registry=r
        )
        self.decision = Histogram(
            "infersched_decision_seconds",
            "time from a task's arrival (or retry) to the core's decision",
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "infersched_task_latency_seconds",
            "end-to-end time from submit to completion or failure",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_Instances(read_instances))
        self._children: dict[tuple[int, str], Any] = {}  # (metric, model) -> labelled child, looked up once
        self._open: dict[str, tuple[str, float]] = {}  # task_id -> (model, submit ms)
        self._started: dict[str, float] = {}  # task_id -> perf_counter at submit/retry, until decided

    def _of(self, metric: Any, model: str) -> Any:
        key = (id(metric), model)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(model)
        return child

    def resume(self, task_id: str, model: str, submit_ms: float) -> None:
        """A task restored in flight after a restart: its end counts (and its latency is observed)
        in this process, though its submit was counted by the one before."""
        self._open[task_id] = (model, submit_ms)

    def __call__(self, event: dict[str, Any]) -> None:
        kind, tid = event.get("event"), event.get("task_id")
        if not isinstance(tid, str):
            return
        if kind == "submit":
            model = str(event["model"])
            self._open[tid] = (model, float(event["t"]))
            self._started[tid] = time.perf_counter()
            self._of(self.submitted, model).inc()
        elif kind == "retry":
            self._started[tid] = time.perf_counter()
            if tid in self._open:
                self._of(self.retries, self._open[tid][0]).inc()
        elif kind == "decision":
            t0 = self._started.pop(tid, None)
            if t0 is not None:
                self.decision.observe(time.perf_counter() - t0)
        elif kind in ("complete", "fail", "no_instance"):
            self._started.pop(tid, None)
            opened = self._open.pop(tid, None)
            if opened is not None:
                model, t_ms = opened
                self._of(self.completed if kind == "complete" else self.failed, model).inc()
                self._of(self.latency, model).observe(max(0.0, float(event["t"]) - t_ms) / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def chain(first: Recorder | None, second: Recorder) -> Recorder:
    """One recorder calling ``first`` (if any), then ``second``."""
    if first is None:
        return second

    def both(event: dict[str, Any]) -> None:
        first(event)
        second(event)

    return both
