"""One replication's workload: arrival times, models, sizes, token counts and network delays.

Drawn once per replication by :func:`draw_workload`, from streams of
``numpy.random.SeedSequence(seed)`` spawned per replication (:func:`replication_seeds`),
and then replayed for every strategy by the engine (:mod:`sim.engine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .scenario import Scenario
from .tokens import draw_tokens

# streams spawned per replication, in this order (a fixed order keeps seeds stable)
STREAMS = ("arrivals", "mix", "sizes", "scheduler", "tokens", "network")


# -- randomness ----------------------------------------------------------------------
def replication_seeds(seed: int, replications: int) -> list[dict[str, np.random.SeedSequence]]:
    """Independent seed sequences per replication and purpose.

    Replication ``r`` is child ``r`` of ``SeedSequence(seed)``, so its streams
    do not depend on how many replications are run.
    """
    out = []
    for child in np.random.SeedSequence(seed).spawn(replications):
        out.append(dict(zip(STREAMS, child.spawn(len(STREAMS)))))
    return out


def child_seed(seq: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """Child ``k`` of ``seq`` as ``seq.spawn`` would make it, without changing ``seq``
    (``spawn`` counts its calls, so calling it twice would give other children)."""
    return np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (k,))


# -- workloads -----------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """What every strategy of one replication sees: arrivals, models, sizes (ms)."""

    arrival_ms: np.ndarray  # float64, non-decreasing
    model: np.ndarray  # int, index into ``models``
    size_ms: np.ndarray  # float64, the task's size on a speed-1 instance
    models: tuple[str, ...]
    # task metadata columns where known (input_tokens, output_tokens, images), float64
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    klass: np.ndarray | None = None  # int32 class code per task (index into ``classes``)
    classes: tuple[str, ...] = ()
    # per-task network delays (sim.network), only the non-zero ones: dispatch_ms, notify_ms
    network: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.arrival_ms.size)

    def head(self, n: int) -> Workload:
        """The first ``n`` tasks (with their token counts and classes)."""
        return Workload(
            self.arrival_ms[:n],
            self.model[:n],
            self.size_ms[:n],
            self.models,
            {k: v[:n] for k, v in self.tokens.items()},
            None if self.klass is None else self.klass[:n],
            self.classes,
            {k: v[:n] for k, v in self.network.items()},
        )

    def metadata(self) -> list[dict[str, int]]:
        """Each task's metadata as a live request carries it: its token counts (Python ints)."""
        cols = [(k, v.astype(np.int64).tolist()) for k, v in self.tokens.items()]
        return (
            [{k: col[i] for k, col in cols} for i in range(len(self))]
            if cols
            else [{} for _ in range(len(self))]
        )


def draw_workload(scenario: Scenario, seeds: dict[str, np.random.SeedSequence]) -> Workload:
    """Draw one replication's arrivals, models and sizes."""
    models = tuple(scenario.model_names)
    trace = scenario.trace
    limit_n = scenario.tasks
    limit_ms = scenario.duration_s * 1000.0 if scenario.duration_s is not None else math.inf
    tokens: dict[str, np.ndarray] = {}
    source = None
    if trace is not None:
        keep = trace.arrival_ms <= limit_ms
        if limit_n is not None:
            keep &= np.arange(trace.arrival_ms.size) < limit_n
        arrival = trace.arrival_ms[keep]
        model = trace.model_code[keep].astype(np.int64)
        tokens = {k: v[keep].astype(float) for k, v in trace.tokens.items()}
        source = trace.source[keep] if trace.source is not None else None
    else:
        arrival = arrivals(scenario.arrival, np.random.default_rng(seeds["arrivals"]), limit_n, limit_ms)
        probs = np.array([scenario.mix.get(m, 0.0) for m in models])
        mix_rng = np.random.default_rng(seeds["mix"])
        model = (
            np.zeros(arrival.size, dtype=np.int64)
            if len(models) == 1
            else mix_rng.choice(len(models), size=arrival.size, p=probs / probs.sum())
        )
    if not tokens and scenario.token_dists:
        tokens = draw_tokens(scenario.token_dists, arrival.size, seeds["tokens"])
    if trace is not None and trace.service_ms is not None:
        size = trace.service_ms[keep].astype(float)  # recorded sizes, replayed as they are
    else:
        size = np.empty(arrival.size)
        for k, name in enumerate(models):  # one stream per model: models do not disturb each other
            mask = model == k
            count = int(mask.sum())
            if count:
                rng = np.random.default_rng(child_seed(seeds["sizes"], k))
                service = scenario.token_models.get(name)
                if service is not None:
                    zero = np.zeros(count)
                    size[mask] = service.sample(
                        rng, tokens.get("input_tokens", zero)[mask], tokens.get("output_tokens", zero)[mask]
                    )
                else:
                    size[mask] = scenario.distributions[name].sample(rng, count)
    klass = None
    if scenario.has_classes and scenario.class_of is not None:
        klass = scenario.class_of[source if source is not None else 0, model].astype(np.int32)
    net = scenario.network
    delays = {} if net.is_zero else net.draw(np.random.default_rng(seeds["network"]), arrival.size)
    return Workload(arrival.astype(float), model, size, models, tokens, klass, scenario.class_names, delays)


def arrivals(spec: dict, rng: np.random.Generator, limit_n: int | None, limit_ms: float) -> np.ndarray:
    """Arrival times (ms) of a poisson, deterministic or bursty process, stopped by count or time."""
    process = spec["process"]
    if process == "deterministic":
        gap = 1000.0 / spec["rate_per_s"]
        n = limit_n if limit_n is not None else int(math.floor(limit_ms / gap))
        if limit_n is not None and math.isfinite(limit_ms):
            n = min(n, int(math.floor(limit_ms / gap)))
        return np.arange(1, n + 1) * gap
    if process == "poisson":
        return _poisson(spec["rate_per_s"], rng, limit_n, limit_ms)
    if process == "bursty":
        return _mmpp(spec["rates_per_s"], spec["mean_dwell_s"] * 1000.0, rng, limit_n, limit_ms)
    raise ValueError(f"unknown arrival process {process!r}")  # validated before; defensive


def _poisson(rate_per_s: float, rng, limit_n, limit_ms) -> np.ndarray:
    mean_gap = 1000.0 / rate_per_s
    if limit_n is not None:
        times = np.cumsum(rng.exponential(mean_gap, limit_n))
        return times[times <= limit_ms]
    chunks, last = [], 0.0
    expected = limit_ms / mean_gap
    chunk = int(expected + 6 * math.sqrt(expected) + 16)
    while last <= limit_ms:
        t = last + np.cumsum(rng.exponential(mean_gap, chunk))
        chunks.append(t)
        last = float(t[-1])
    times = np.concatenate(chunks)
    return times[times <= limit_ms]


def _mmpp(rates_per_s, mean_dwell_ms, rng, limit_n, limit_ms) -> np.ndarray:
    """Markov-modulated Poisson: exponential dwell per state, next state uniform among the others."""
    rates = np.asarray(rates_per_s, dtype=float) / 1000.0  # per ms
    k = rates.size
    state = int(rng.integers(k))  # stationary law of this chain is uniform
    t, count, parts = 0.0, 0, []
    while t < limit_ms and (limit_n is None or count < limit_n):
        dwell = float(rng.exponential(mean_dwell_ms))
        end = min(t + dwell, limit_ms)
        n = int(rng.poisson(rates[state] * (end - t)))
        if n:
            parts.append(np.sort(rng.uniform(t, end, n)))
            count += n
        t = t + dwell
        state = (state + 1 + int(rng.integers(k - 1))) % k
    times = np.concatenate(parts) if parts else np.empty(0)
    return times[:limit_n] if limit_n is not None else times
