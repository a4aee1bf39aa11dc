"""``GET /metrics``: the scheduler in Prometheus' text format (docs/api.md, "Metrics").

:class:`LiveMetrics` owns one :class:`prometheus_client.CollectorRegistry` per
service (no global registry).  The service tells it what happens (a task submitted, decided,
sent elsewhere, ended); it counts in plain integers, and the series are made from them when
scraped (``prometheus_client``'s own counters take a lock per increment, and learning from the
core's event stream made the core build an event for every step: together about a tenth of the
scheduler's own CPU per task).  Series (Prometheus conventions: ``_total`` counters, units in
the name):

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

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


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


class _Histogram:
    """Bucket counts (not cumulative; the last one past every bound) and the sum of what was observed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1  # the first bound >= v: Prometheus' "le"
        self.total += v

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative, buckets = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        family.add_metric(labels, buckets, self.total)


class LiveMetrics(Collector):
    """What the service tells it, counted; ``render()`` is the scrape."""

    _COUNTERS = (
        ("submitted", "infersched_tasks_submitted", "tasks submitted"),
        ("completed", "infersched_tasks_completed", "tasks completed"),
        ("failed", "infersched_tasks_failed", "tasks failed"),
        ("retries", "infersched_dispatch_retries", "tasks dispatched again elsewhere"),
    )

    def __init__(self, read_instances: Callable[[], tuple[int, list[tuple[str, str, float, bool]]]]):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.registry.register(_Instances(read_instances))
        self._counts: dict[str, dict[str, int]] = {key: {} for key, _, _ in self._COUNTERS}
        self._decision = _Histogram(_DECISION_BUCKETS)
        self._latency: dict[str, _Histogram] = {}  # by model
        self._open: dict[str, tuple[str, float]] = {}  # task_id -> (model, submit ms)

    def _inc(self, counter: str, model: str) -> None:
        counts = self._counts[counter]
        counts[model] = counts.get(model, 0) + 1

    def submitted(self, task_id: str, model: str, submit_ms: float) -> None:
        self._open[task_id] = (model, submit_ms)
        self._inc("submitted", model)

    def decided(self, seconds: float) -> None:
        """The core took ``seconds`` (on the event loop) from a task's arrival or retry to its decision."""
        self._decision.observe(seconds)

    def retried(self, task_id: str) -> None:
        opened = self._open.get(task_id)
        if opened is not None:
            self._inc("retries", opened[0])

    def ended(self, task_id: str, completed: bool, end_ms: float) -> None:
        opened = self._open.pop(task_id, None)
        if opened is not None:
            model, submit_ms = opened
            self._inc("completed" if completed else "failed", model)
            latency = self._latency.get(model)
            if latency is None:
                latency = self._latency[model] = _Histogram(_LATENCY_BUCKETS)
            latency.observe(max(0.0, end_ms - submit_ms) / 1000.0)

    def resume(self, task_id: str, model: str, submit_ms: float) -> None:
        """A task restored in flight after a restart: its end counts (and its latency is observed)
        in this process, though its submit was counted by the one before."""
        self._open[task_id] = (model, submit_ms)

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        for key, name, doc in self._COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["model"])
            for model, n in sorted(self._counts[key].items()):
                family.add_metric([model], n)
            yield family
        decision = HistogramMetricFamily(
            "infersched_decision_seconds", "time from a task's arrival (or retry) to the core's decision"
        )
        self._decision.add_to(decision, [])
        yield decision
        latency = HistogramMetricFamily(
            "infersched_task_latency_seconds",
            "end-to-end time from submit to completion or failure",
            labels=["model"],
        )
        for model, h in sorted(self._latency.items()):
            h.add_to(latency, [model])
        yield latency

    def render(self) -> bytes:
        return generate_latest(self.registry)
