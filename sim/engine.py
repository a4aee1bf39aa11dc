"""The SimPy shell: task instances and the clock, around the unchanged core.

Each simulated task instance is a FIFO queue served by ``replicas`` parallel
workers at its ``speed`` (a task of size ``s`` takes ``s / speed`` ms).  The
shell drives the core exactly as live mode does: ``Scheduler.submit`` when a
task arrives, ``Scheduler.complete`` when its service ends, with the core's
clock reading SimPy's ``env.now`` (simulation ms).

Workloads (arrival times, models, sizes) are drawn once per replication by
:func:`draw_workload`, from streams of ``numpy.random.SeedSequence(seed)``
spawned per replication, and then replayed for every strategy: common random
numbers, so differences between strategies are the strategies' own.

For speed the shell schedules events directly instead of running one SimPy
process per task: an arrival is a timeout whose callback submits the task and
schedules the next arrival; a service is a timeout whose callback completes
the task and starts the next one waiting in that instance's FIFO.  Per-task
results go into preallocated ``array.array`` buffers (cheaper per item than
numpy), handed out as numpy arrays sharing their memory (:class:`sim.frames.Run`)
and turned into frames once at the end (:mod:`sim.frames`).  Task ``i`` of a replication (in arrival order)
is ``str(i)`` to the core, so decision logs join the task frame's ``task_id``.
"""

from __future__ import annotations

import array
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy
from simpy.events import NORMAL

from scheduler import FunctionClock, Predictor, Scheduler, TaskTracker

from .frames import Run, RunRecord, build_results
from .progress import ProgressBar
from .scenario import Scenario, StrategySpec, load_scenario, pick_strategies
from .tokens import draw_tokens

log = logging.getLogger(__name__)

# the core's tracker keeps this many finished tasks; the shell records its own results
TRACKER_HISTORY = 10_000
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


def _child(seq: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
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
                rng = np.random.default_rng(_child(seeds["sizes"], k))
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


class Tick(simpy.Event):
    """What ``env.timeout(delay, i).callbacks.append(callback)`` schedules, built in one
    step: an event already triggered with the task index ``i`` and its one callback,
    handed to ``env.schedule`` (same priority as a timeout, so the same order of events).
    Half the cost of a ``Timeout`` per event; the engine schedules nothing else.  Once
    processed (SimPy reads nothing of it after its callbacks), a tick is scheduled again
    with new ``callbacks`` and ``_value`` where the engine can: fewer objects made."""

    def __init__(self, value: int, callback: Callable[[simpy.Event], None]) -> None:
        # Event.__init__ is skipped on purpose: these are the fields Timeout sets
        self.callbacks = [callback]
        self._ok = True
        self._value = value


# -- one run -------------------------------------------------------------------------
def build_predictor(scenario: Scenario) -> Predictor:
    """The scenario's predictor: oracle gets the true distributions, lookup_table the table."""
    p = scenario.predictor
    opts = {
        k: p[k]
        for k in ("prior_mean_ms", "prior_std_ms", "min_samples", "features", "forgetting", "residual")
        if k in p
    }
    return Predictor(
        p["mode"],
        oracle=scenario.distributions,
        lookup_table=scenario.lookup_table,
        fixed_mode=True,  # a run keeps its scenario's mode: oracle and clairvoyant need not learn
        **opts,
    )


def build_scheduler(
    scenario: Scenario,
    strategy: StrategySpec,
    scheduler_seed: np.random.SeedSequence | int,
    env: simpy.Environment,
    recorder: Callable[[dict], None] | None = None,
) -> Scheduler:
    """A fresh core for one run: ``strategy``, the scenario's predictor and instances, SimPy's clock."""
    sched = Scheduler(
        strategy.name,
        strategy_params=dict(strategy.params),
        predictor=build_predictor(scenario),
        # env.now's getter bound to env: one call per reading, where a lambda makes two
        clock=FunctionClock(type(env).now.fget.__get__(env)),  # type: ignore[attr-defined]  # a property
        rng=np.random.default_rng(scheduler_seed),
        tracker=TaskTracker(max_history=TRACKER_HISTORY),
        recorder=recorder,
    )
    for inst in scenario.instances:
        sched.add_instance(inst.model, instance_id=inst.instance_id, replicas=inst.replicas, speed=inst.speed)
    return sched


def core_calls(
    sched: Scheduler,
) -> tuple[
    Callable[[str, str, float | None, dict | None], tuple[str, float, float]],
    Callable[[str, float, dict | None], None],
]:
    """How the shell hands a task to the core and tells it the task ended:
    ``place(model, task_id, size_ms, metadata) -> (instance_id, predicted_ms, predicted_error_ms)``
    and ``finish(task_id, execution_ms, metadata)``.  The core's lean path (no per-task records:
    the shell keeps its own) unless a recorder listens; then ``submit`` and ``complete``, whose
    events it records.  Both make the same decisions."""
    if sched.recorder is None:
        return sched.place, sched.finish

    def place(model: str, task_id: str, size_ms: float | None, meta: dict | None) -> tuple[str, float, float]:
        d = sched.submit(model, None, meta, task_id=task_id, size_ms=size_ms)
        return d.instance_id, d.predicted_ms, d.predicted_error_ms

    def finish(task_id: str, execution_ms: float, meta: dict | None) -> None:
        sched.complete(task_id, execution_ms)

    return place, finish


def simulate(
    scenario: Scenario,
    workload: Workload,
    strategy: StrategySpec,
    scheduler_seed: np.random.SeedSequence | int,
    *,
    recorder: Callable[[dict], None] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 4096,
) -> Run:
    """Play ``workload`` through SimPy with a fresh core configured for ``strategy``.

    ``progress(n)`` is called with the number of arrivals handled since its
    last call, every ``progress_every`` arrivals and at the end.
    """
    env = simpy.Environment()
    sched = build_scheduler(scenario, strategy, scheduler_seed, env, recorder)
    specs = scenario.instances

    n = len(workload)

    # outputs: preallocated typed arrays, one element written per task (an array.array item
    # is cheaper to set and read than a numpy element, and as compact), numpy at the end
    def doubles():
        return array.array("d", bytes(8 * n))

    arrival_out, start, finish_at, service = doubles(), doubles(), doubles(), doubles()
    where = array.array("i", bytes(4 * n))
    predicted, predicted_err = doubles(), doubles()
    # inputs read per task: compact typed arrays whose items come out as Python floats
    arrival_in = array.array("d", workload.arrival_ms.tobytes())
    sizes = array.array("d", workload.size_ms.tobytes())
    names = np.array(workload.models, dtype=object)[workload.model].tolist() if n else []
    clairvoyant = scenario.predictor["mode"] == "clairvoyant"
    # token counts go to the core as task metadata (Python ints, as a live request carries them)
    meta_cols = [(k, v.astype(np.int64).tolist()) for k, v in workload.tokens.items()]
    # network delays (sim.network): None when zero, and then the events are exactly those without them
    dispatch_in, notify_in = (
        array.array("d", workload.network[key].tobytes()) if key in workload.network else None
        for key in ("dispatch_ms", "notify_ms")
    )

    index = {inst.instance_id: k for k, inst in enumerate(specs)}
    speed = [inst.speed for inst in specs]
    free = [inst.replicas for inst in specs]
    fifo: list[deque] = [deque() for _ in specs]
    place, finish = core_calls(sched)
    schedule = env.schedule
    tick = [progress_every if progress is not None else n + 1]

    def begin(i: int, k: int, now: float, tick: Tick | None = None) -> None:
        """Task ``i`` starts on instance ``k``; ``tick``: a processed one to schedule again."""
        start[i] = now
        s = sizes[i] / speed[k]
        service[i] = s
        if tick is None:
            schedule(Tick(i, end), NORMAL, s)
        else:
            tick.callbacks, tick._value = to_end, i
            schedule(tick, NORMAL, s)

    def arrive(event) -> None:
        i = event._value
        now = env.now
        if i + 1 < n:  # the next arrival, on this tick again
            gap = arrival_in[i + 1] - now
            event.callbacks, event._value = to_arrive, i + 1
            schedule(event, NORMAL, gap if gap > 0.0 else 0.0)
        meta = {k: col[i] for k, col in meta_cols} if meta_cols else None
        instance_id, predicted[i], predicted_err[i] = place(
            names[i], str(i), sizes[i] if clairvoyant else None, meta
        )
        k = index[instance_id]
        arrival_out[i] = now
        where[i] = k
        if dispatch_in is not None:
            schedule(Tick(i, deliver), NORMAL, dispatch_in[i])
        elif free[k]:
            free[k] -= 1
            begin(i, k, now)
        else:
            fifo[k].append(i)
        if i + 1 == tick[0] and progress is not None:
            progress(progress_every)
            tick[0] += progress_every

    def deliver(event) -> None:  # the task reaches its instance after its dispatch delay
        i = event._value
        k = where[i]
        if free[k]:
            free[k] -= 1
            begin(i, k, env.now, event)
        else:
            fifo[k].append(i)

    def end(event) -> None:
        i = event._value
        now = env.now
        k = where[i]
        if notify_in is None:
            finish_at[i] = now
            finish(str(i), service[i], {k: col[i] for k, col in meta_cols} if meta_cols else None)
        else:
            schedule(Tick(i, notified), NORMAL, notify_in[i])
        q = fifo[k]
        if q:
            begin(q.popleft(), k, now, event)
        else:
            free[k] += 1

    def notified(event) -> None:  # the core hears of the end after the notify delay
        i = event._value
        now = env.now
        finish_at[i] = now
        start[i] = now - service[i]  # as live tables have it: the hops count as wait, busy is service
        finish(str(i), service[i], {k: col[i] for k, col in meta_cols} if meta_cols else None)

    # the callbacks of a tick scheduled again
    to_arrive: list[Callable[[simpy.Event], None]] = [arrive]
    to_end: list[Callable[[simpy.Event], None]] = [end]
    if n:
        schedule(Tick(0, arrive), NORMAL, arrival_in[0])
    env.run()
    if progress is not None:
        progress(n - (tick[0] - progress_every))
    unfinished = sched.in_flight()
    if unfinished:  # pragma: no cover - would be a shell bug: the run drains every queue
        raise RuntimeError(f"{unfinished} tasks did not finish")

    def out(a, dtype=np.float64):
        return np.frombuffer(a, dtype=dtype)  # shares the array's memory: no copy

    return Run(
        out(arrival_out),
        out(start),
        out(finish_at),
        out(service),
        out(where, np.int32),
        out(predicted),
        out(predicted_err),
        tuple(inst.instance_id for inst in specs),
    )


# -- a whole scenario ------------------------------------------------------------------
def run(
    scenario_or_path,
    strategies=None,
    replications: int | None = None,
    tasks: int | None = None,
    progress=False,
    recorder: Callable[[dict], None] | None = None,
):
    """Simulate a scenario (a path, a dict or a :class:`Scenario`) and return :class:`sim.Results`.

    ``strategies`` replaces the scenario's list: names, ``(name, params)``
    pairs, ``{name, params}`` dicts or :class:`StrategySpec`; a bare name that
    matches a scenario strategy keeps that strategy's parameters.  Custom
    strategies registered with ``scheduler.register_strategy`` are accepted.
    ``replications`` and ``tasks`` override the scenario's (``tasks`` replaces
    ``duration_s``).  ``progress`` is ``True`` for a bar on stderr or a
    callable taking a number of tasks.  ``recorder`` receives every core event
    (a dict) with ``label`` (the strategy's label) and ``replication`` added.

    Every strategy of replication ``r`` sees the same arrivals, models and
    sizes, and its core gets the same scheduler random stream.
    """
    t_start = time.perf_counter()
    scn = load_scenario(scenario_or_path)
    changes: dict = {}
    if replications is not None:
        changes["replications"] = replications
    if tasks is not None:
        changes["tasks"], changes["duration_s"] = tasks, None
    if strategies is not None:
        changes["strategies"] = [s.to_dict() for s in pick_strategies(scn, strategies)]
    if changes:
        scn = scn.with_changes(changes)

    labels = [s.label for s in scn.strategies]
    seeds = replication_seeds(scn.seed, scn.replications)
    bar = None
    tick: Callable[[int], None] | None
    if progress is True:
        bar = ProgressBar(_expected_tasks(scn) * len(labels) * scn.replications)
        tick = bar
    else:
        tick = progress or None
    records = []
    for r in range(scn.replications):
        workload = draw_workload(scn, seeds[r])
        if len(workload) <= scn.warmup_tasks:
            log.warning(
                "replication %d has %d arrivals, not more than warmup_tasks=%d: nothing is measured",
                r,
                len(workload),
                scn.warmup_tasks,
            )
        if bar is not None and r == 0:
            bar.set_total(len(workload) * len(labels) * scn.replications)
        for strategy in scn.strategies:
            if bar is not None:
                bar.set_label(f"replication {r + 1}/{scn.replications} {strategy.label}")
            rec = _tagged(recorder, strategy.label, r) if recorder is not None else None
            log.info("simulating %s, replication %d, %d tasks", strategy.label, r, len(workload))
            result = simulate(scn, workload, strategy, seeds[r]["scheduler"], recorder=rec, progress=tick)
            records.append(RunRecord(strategy.label, r, workload, result))
    if bar is not None:
        bar.close()
    return build_results(scn, records, labels, wall_s=time.perf_counter() - t_start)


def _expected_tasks(scn: Scenario) -> int:
    """Arrivals per replication, as far as known before drawing (for the progress bar)."""
    if scn.trace is not None:
        return int(
            scn.trace.arrival_ms.size if scn.tasks is None else min(scn.tasks, scn.trace.arrival_ms.size)
        )
    if scn.tasks is not None:
        return scn.tasks
    a = scn.arrival
    rate = a["rate_per_s"] if "rate_per_s" in a else float(np.mean(a["rates_per_s"]))
    return int(rate * scn.duration_s)


def _tagged(recorder: Callable[[dict], None], label: str, replication: int) -> Callable[[dict], None]:
    def record(event: dict) -> None:
        # "label" and "replication" say which run an event belongs to; the core's own
        # fields (the config event's "strategy" name among them) stay as emitted
        event["label"] = label
        event["replication"] = replication
        recorder(event)

    return record
