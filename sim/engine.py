"""The SimPy shell: task instances and the clock, around the unchanged core.

Each simulated task instance is a FIFO queue served by ``replicas`` parallel
workers at its ``speed`` (a task of size ``s`` takes ``s / speed`` ms).  The
shell drives the core exactly as live mode does: ``Scheduler.submit`` when a
task arrives, ``Scheduler.complete`` when its service ends, with the core's
clock reading SimPy's ``env.now`` (simulation ms).

Workloads are drawn once per replication (:mod:`sim.workload`) and replayed for
every strategy: common random numbers, so differences between strategies are the
strategies' own.

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
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import NORMAL

from scheduler import FunctionClock, Predictor, Scheduler, TaskTracker

from .frames import Run, RunRecord, build_results
from .progress import ProgressBar
from .scenario import Scenario, StrategySpec, load_scenario, pick_strategies
from .workload import Workload, draw_workload, replication_seeds

log = logging.getLogger(__name__)

# the core's tracker keeps this many finished tasks; the shell records its own results
TRACKER_HISTORY = 10_000


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
