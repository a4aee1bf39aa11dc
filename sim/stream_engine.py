"""The SimPy shell in bounded memory: the workload drawn, and results handed out, in chunks.

:func:`workload_chunks` draws a replication's workload ``chunk`` arrivals at a
time, giving exactly the numbers :func:`sim.workload.draw_workload` gives at
once (the generators are consumed in the same order; arrival times are summed
in the same order), for poisson and deterministic arrivals; bursty and trace
arrivals are drawn whole (24 bytes per task) and then cut.

:func:`simulate_chunks` is :func:`sim.engine.simulate` with per-task state in
chunk buffers: chunk ``c`` holds tasks ``c*chunk`` to ``(c+1)*chunk - 1``, is
filled as they arrive and finish, and is handed to ``emit`` (in chunk order)
once every task in it has finished, then dropped.  Memory is a few chunks
plus whatever is queued, whatever the number of tasks.  It drives the core
exactly as ``simulate`` does (same calls, same task ids, same clock), so the
per-task results are identical; a test holds the two side by side.
"""

from __future__ import annotations

import array
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import NORMAL

from scheduler import SpecError

from .engine import Run, Tick, build_scheduler, core_calls
from .scenario import Scenario, StrategySpec
from .workload import Workload, child_seed, draw_workload

__all__ = ["workload_chunks", "simulate_chunks", "CHUNK"]

CHUNK = 1 << 17  # tasks per chunk (a power of two)


def workload_chunks(scenario: Scenario, seeds: dict, chunk: int = CHUNK) -> Iterator[Workload]:
    """Replication workload in pieces of ``chunk`` arrivals (the last one shorter)."""
    models = tuple(scenario.model_names)
    arrival = scenario.arrival
    if scenario.token_models or scenario.has_classes or not scenario.network.is_zero:
        # token metadata, classes and network delays are carried by the in-memory engine only (sim.run)
        raise SpecError(
            "--stream",
            scenario.name,
            "a scenario without token-sized models (dist: tokens), classes, per-class slo or network delays; "
            "run it without --stream",
        )
    if scenario.trace is not None or arrival["process"] not in ("poisson", "deterministic"):
        whole = draw_workload(scenario, seeds)
        for a in range(0, len(whole), chunk):
            s = slice(a, a + chunk)
            yield Workload(whole.arrival_ms[s], whole.model[s], whole.size_ms[s], models)
        return
    limit_n = scenario.tasks if scenario.tasks is not None else math.inf
    limit_ms = scenario.duration_s * 1000.0 if scenario.duration_s is not None else math.inf
    arrival_rng = np.random.default_rng(seeds["arrivals"])
    mix_rng = np.random.default_rng(seeds["mix"])
    size_rngs = [np.random.default_rng(child_seed(seeds["sizes"], k)) for k in range(len(models))]
    probs = np.array([scenario.mix.get(m, 0.0) for m in models])
    gap = 1000.0 / arrival["rate_per_s"]
    done, last = 0, 0.0
    while done < limit_n:
        n = int(min(chunk, limit_n - done))
        if arrival["process"] == "deterministic":
            times = np.arange(done + 1, done + n + 1) * gap
        else:  # the same additions, in the same order, as one cumsum over all arrivals
            times = np.cumsum(np.concatenate(([last], arrival_rng.exponential(gap, n))))[1:]
        if times.size and times[-1] > limit_ms:
            times = times[times <= limit_ms]
            limit_n = done + times.size  # the last chunk
        if times.size == 0:
            return
        last = float(times[-1])
        model = (
            np.zeros(times.size, dtype=np.int64)
            if len(models) == 1
            else mix_rng.choice(len(models), size=times.size, p=probs / probs.sum())
        )
        size = np.empty(times.size)
        for k, name in enumerate(models):
            mask = model == k
            count = int(mask.sum())
            if count:
                size[mask] = scenario.distributions[name].sample(size_rngs[k], count)
        done += times.size
        yield Workload(times, model, size, models)


@dataclass
class _Chunk:
    base: int
    n: int
    arrival_in: array.array
    sizes: array.array
    names: list
    out: dict  # column -> array.array
    left: int


_OUT = ("arrival_ms", "start_ms", "finish_ms", "service_ms", "predicted_ms", "predicted_error_ms")


def _chunk(base: int, w: Workload) -> _Chunk:
    n = len(w)
    out: dict[str, array.array] = {col: array.array("d", bytes(8 * n)) for col in _OUT}
    out["instance"] = array.array("i", bytes(4 * n))
    names = np.array(w.models, dtype=object)[w.model].tolist() if n else []
    return _Chunk(
        base,
        n,
        array.array("d", w.arrival_ms.tobytes()),
        array.array("d", w.size_ms.tobytes()),
        names,
        out,
        n,
    )


def _as_run(c: _Chunk, instance_ids: tuple[str, ...]) -> Run:
    o = c.out
    f = np.frombuffer
    return Run(
        f(o["arrival_ms"]),
        f(o["start_ms"]),
        f(o["finish_ms"]),
        f(o["service_ms"]),
        f(o["instance"], dtype=np.int32),
        f(o["predicted_ms"]),
        f(o["predicted_error_ms"]),
        instance_ids,
    )


def simulate_chunks(
    scenario: Scenario,
    chunks: Iterator[Workload],
    strategy: StrategySpec,
    scheduler_seed: np.random.SeedSequence | int,
    emit: Callable[[int, Run], None],
    chunk: int = CHUNK,
) -> int:
    """Play the chunks of a workload through SimPy (see the module doc); returns the number of tasks.

    ``emit(first_index, run)`` receives each finished chunk, in order, as a
    :class:`sim.engine.Run` of its tasks (the shell keeps no reference to it
    afterwards, so memory is freed unless the caller keeps it).  Every chunk but
    the last must hold exactly ``chunk`` tasks, a power of two.
    """
    if chunk <= 0 or chunk & (chunk - 1):
        raise ValueError(f"chunk: expected a power of two, got {chunk!r}")
    shift, mask = chunk.bit_length() - 1, chunk - 1
    env = simpy.Environment()
    sched = build_scheduler(scenario, strategy, scheduler_seed, env)
    specs = scenario.instances
    instance_ids = tuple(inst.instance_id for inst in specs)
    clairvoyant = scenario.predictor["mode"] == "clairvoyant"
    index = {inst.instance_id: k for k, inst in enumerate(specs)}
    speed = [inst.speed for inst in specs]
    free = [inst.replicas for inst in specs]
    fifo: list[deque] = [deque() for _ in specs]
    place, finish = core_calls(sched)
    schedule = env.schedule
    live: dict[int, _Chunk] = {}
    state = {"loaded": 0, "emitted": 0, "total": 0, "short": False}

    def load() -> _Chunk | None:
        w = next(chunks, None)
        if w is None or len(w) == 0:
            return None
        if state["short"]:
            raise ValueError(f"chunks: only the last chunk may hold fewer than {chunk} tasks")
        c = _chunk(state["loaded"] * chunk, w)
        state["short"] = c.n != chunk
        live[state["loaded"]] = c
        state["loaded"] += 1
        state["total"] += c.n
        return c

    def begin(i: int, c: _Chunk, o: int, k: int, now: float, tick: Tick | None = None) -> None:
        c.out["start_ms"][o] = now
        s = c.sizes[o] / speed[k]
        c.out["service_ms"][o] = s
        if tick is None:
            schedule(Tick(i, end), NORMAL, s)
        else:  # a processed tick, scheduled again (see sim.engine.Tick)
            tick.callbacks, tick._value = to_end, i
            schedule(tick, NORMAL, s)

    def arrive(event) -> None:
        i = event._value
        now = env.now
        c = live[i >> shift]
        o = i & mask
        if o + 1 < c.n:
            gap = c.arrival_in[o + 1] - now
            event.callbacks, event._value = to_arrive, i + 1
            schedule(event, NORMAL, gap if gap > 0.0 else 0.0)
        elif c.n == chunk:
            nxt = load()
            if nxt is not None:
                gap = nxt.arrival_in[0] - now
                schedule(Tick(i + 1, arrive), NORMAL, gap if gap > 0.0 else 0.0)
        out = c.out
        instance_id, out["predicted_ms"][o], out["predicted_error_ms"][o] = place(
            c.names[o], str(i), c.sizes[o] if clairvoyant else None, None
        )
        k = index[instance_id]
        out["arrival_ms"][o] = now
        out["instance"][o] = k
        if free[k]:
            free[k] -= 1
            begin(i, c, o, k, now)
        else:
            fifo[k].append(i)

    def end(event) -> None:
        i = event._value
        now = env.now
        c = live[i >> shift]
        o = i & mask
        c.out["finish_ms"][o] = now
        k = c.out["instance"][o]
        finish(str(i), c.out["service_ms"][o], None)
        q = fifo[k]
        if q:
            j = q.popleft()
            begin(j, live[j >> shift], j & mask, k, now, event)
        else:
            free[k] += 1
        c.left -= 1
        if c.left == 0:
            while state["emitted"] in live and live[state["emitted"]].left == 0:
                done = live.pop(state["emitted"])
                emit(done.base, _as_run(done, instance_ids))
                state["emitted"] += 1

    to_arrive: list[Callable[[simpy.Event], None]] = [arrive]
    to_end: list[Callable[[simpy.Event], None]] = [end]
    first = load()
    if first is not None:
        schedule(Tick(0, arrive), NORMAL, first.arrival_in[0])
    env.run()
    if live or sched.in_flight():  # pragma: no cover - would be a shell bug
        raise RuntimeError(f"{len(live)} chunks did not finish")
    return state["total"]
