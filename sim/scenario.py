"""Scenarios: load, validate and change the description of one experiment.

A scenario (docs/scenarios.md) is a YAML file or the same dict in Python.  It is
validated completely before anything is simulated: a bad value raises
:class:`scheduler.SpecError` naming the field by its dotted path (for example
``models.llm-7b.service_time.cv``), the value, and what is accepted.

Validation produces a :class:`Scenario`: the normalised dict (defaults filled
in, files resolved to absolute paths) plus what the simulator needs from it
(distributions, the expanded instance list, a loaded trace).  ``to_dict()``
gives the normalised dict back, so ``Scenario.from_dict(s.to_dict()) == s``,
and :func:`apply_overrides` changes it by dotted paths for parameter sweeps.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scheduler import (
    PREDICT_MODES,
    Distribution,
    Empirical,
    SpecError,
    check_integer,
    check_number,
    distribution_fields,
    from_spec,
    make_strategy,
    parse_lookup_table,
    strategy_names,
)
from scheduler.core.regression import check_features, check_forgetting
from scheduler.core.tokens import TOKEN_FIELDS, TokenService

from . import network as _network
from . import slo as _slo
from . import tokens as _tokens
from .traces import FORMATS as TRACE_FORMATS
from .traces import TRACE_OPTIONS, Trace, load_trace

log = logging.getLogger(__name__)

TOP_KEYS = (
    "name",
    "seed",
    "replications",
    "tasks",
    "duration_s",
    "warmup_tasks",
    "strategies",
    "predictor",
    "slo_ms",
    "slo",
    "classes",
    "models",
    "instances",
    "workload",
    "network",
)
MODEL_KEYS = ("service_time",)
INSTANCE_KEYS = ("model", "count", "replicas", "speed")
STRATEGY_KEYS = ("name", "params")
PREDICTOR_KEYS = (
    "mode",
    "table",
    "file",
    "prior_mean_ms",
    "prior_std_ms",
    "min_samples",
    "features",
    "forgetting",
    "residual",
)
WORKLOAD_KEYS = ("arrival", "mix", "tokens")
ARRIVAL_KEYS = {
    "poisson": ("rate_per_s",),
    "deterministic": ("rate_per_s",),
    "bursty": ("rates_per_s", "mean_dwell_s"),
    "trace": ("file",),
}
EMPIRICAL_FILE_KEYS = (
    "dist",
    "file",
)  # the file form of an empirical distribution, read here (core does no I/O)
MIX_TOLERANCE = 1e-6


def accepted_keys() -> dict[str, tuple[str, ...]]:
    """Every key and every named choice the validator accepts, by where it goes.

    Built from the tables the validator itself checks against, so that the
    user's reference (docs/scenarios.md, which a test holds to this) cannot
    fall behind: a new key added to a table shows up here.
    """
    out: dict[str, tuple[str, ...]] = {
        "(top level)": TOP_KEYS,
        "models.<name>": MODEL_KEYS,
        "instances[]": INSTANCE_KEYS,
        "strategies[]": STRATEGY_KEYS,
        "predictor": PREDICTOR_KEYS,
        "predictor.mode": tuple(PREDICT_MODES),
        "workload": WORKLOAD_KEYS,
        "workload.arrival.process": tuple(ARRIVAL_KEYS),
        "service_time.dist": tuple(distribution_fields()),
        "service_time (empirical from a file)": EMPIRICAL_FILE_KEYS,
    }
    for process, keys in ARRIVAL_KEYS.items():
        out[f"workload.arrival ({process})"] = keys
    for dist, keys in distribution_fields().items():
        out[f"service_time ({dist})"] = keys
    out["service_time.dist (token-sized)"] = ("tokens",)
    out["service_time (tokens)"] = TOKEN_FIELDS
    out["workload.arrival (trace options)"] = TRACE_OPTIONS
    out["workload.arrival.format"] = ("auto",) + TRACE_FORMATS
    out["workload.arrival.models (a mix)"] = ("mix",)
    out["workload.tokens"] = _tokens.TOKEN_KINDS
    out["workload.tokens.<kind> (counts)"] = _tokens.TOKEN_DIST_KEYS
    out["slo.<class>"] = _slo.SLO_KEYS
    out["network"] = _network.NETWORK_KEYS
    return out


# -- small validators ------------------------------------------------------------
def _keys(path: str, value: Any, accepted: Sequence[str], what: str = "a mapping") -> Mapping:
    """``value`` must be a mapping whose keys are all in ``accepted``."""
    if not isinstance(value, Mapping):
        raise SpecError(path or "(scenario)", value, f"{what} with keys {', '.join(accepted)}")
    for key in value:
        if key not in accepted:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, value[key], f"a known key; accepted keys: {', '.join(accepted)}")
    return value


def _int(path: str, value: Any, low: int) -> int:
    return check_integer(path, value, low=low)


def _num(path: str, value: Any, *, positive: bool = True) -> float:
    return check_number(path, value, low=0.0, low_open=positive)


def _resolve(path: str, value: Any, base_dir: Path) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise SpecError(path, value, "a file path (relative paths resolve against the scenario's folder)")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else (base_dir / p)
    p = p.resolve()
    if not p.is_file():
        raise SpecError(path, str(value), f"an existing file (looked for {p})")
    return p


# -- value objects -----------------------------------------------------------------
@dataclass(frozen=True)
class StrategySpec:
    """One strategy to run: a registered name and its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name shown in results: ``weighted(w=2)`` when parameters are given."""
        if not self.params:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"

    def to_dict(self) -> dict:
        return {"name": self.name, "params": dict(self.params)}


@dataclass(frozen=True)
class InstanceSpec:
    """One simulated task instance (one entry of the expanded ``instances`` list)."""

    instance_id: str
    model: str
    replicas: int
    speed: float


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario.  Equality compares the normalised dict only."""

    spec: dict
    base_dir: Path
    distributions: dict[str, Distribution]
    instances: tuple[InstanceSpec, ...]
    strategies: tuple[StrategySpec, ...]
    lookup_table: dict | None
    trace: Trace | None
    token_models: dict[str, TokenService] = field(default_factory=dict)
    token_dists: dict[str, Distribution] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    class_of: np.ndarray | None = None  # class code per [trace model, model] (see sim.slo)

    # convenient reads of the normalised dict
    name = property(lambda self: self.spec["name"])
    seed = property(lambda self: self.spec["seed"])
    replications = property(lambda self: self.spec["replications"])
    tasks = property(lambda self: self.spec["tasks"])
    duration_s = property(lambda self: self.spec["duration_s"])
    warmup_tasks = property(lambda self: self.spec["warmup_tasks"])
    slo_ms = property(lambda self: self.spec["slo_ms"])
    slo = property(lambda self: self.spec["slo"])
    classes = property(lambda self: self.spec["classes"])
    predictor = property(lambda self: self.spec["predictor"])
    arrival = property(lambda self: self.spec["workload"]["arrival"])
    mix = property(lambda self: self.spec["workload"]["mix"])
    network = property(lambda self: _network.network_of(self.spec.get("network")))

    @property
    def has_classes(self) -> bool:
        """Whether results carry a ``class`` column: classes or per-class SLOs are declared,
        or a public-format trace is replayed."""
        return bool(self.spec["classes"] or self.spec["slo"]) or (
            self.trace is not None and self.trace.format != "csv"
        )

    @property
    def model_names(self) -> list[str]:
        return list(self.spec["models"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and self.spec == other.spec

    def __repr__(self) -> str:
        return (
            f"Scenario({self.name!r}, {len(self.instances)} instances, "
            f"strategies={[s.label for s in self.strategies]}, replications={self.replications})"
        )

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: str | Path | None = None, default_name: str = "scenario"
    ) -> Scenario:
        """Validate ``data``; relative file paths resolve against ``base_dir`` (default: cwd)."""
        return _validate(data, Path(base_dir or ".").resolve(), default_name)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read and validate a YAML scenario file."""
        p = Path(path)
        if not p.is_file():
            raise SpecError("scenario", str(path), "an existing YAML file")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise SpecError(
                f"scenario ({p})", "(file contents)", f"valid YAML; the parser said: {e}"
            ) from None
        return cls.from_dict(data if data is not None else {}, p.resolve().parent, p.stem)

    # -- changes -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The normalised dict (a deep copy); ``from_dict`` of it gives an equal scenario."""
        return copy.deepcopy(self.spec)

    def with_changes(self, overrides: Mapping[str, Any]) -> Scenario:
        """A new, re-validated scenario with dotted-path overrides applied (see :func:`apply_overrides`)."""
        return Scenario.from_dict(apply_overrides(self.spec, overrides), self.base_dir)

    def replace(self, **changes: Any) -> Scenario:
        """Keyword form of :meth:`with_changes`: ``s.replace(**{"workload.arrival.rate_per_s": 80})``."""
        return self.with_changes(changes)


def load_scenario(source: str | Path | Mapping | Scenario, base_dir: str | Path | None = None) -> Scenario:
    """A :class:`Scenario` from a YAML path, a dict or a scenario (returned as is)."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return Scenario.from_dict(source, base_dir)
    return Scenario.load(source)


def resize(
    scn: Scenario, tasks: int | None = None, warmup_tasks: int | None = None
) -> tuple[Scenario, str | None]:
    """``scn`` with ``tasks`` arrivals and ``warmup_tasks`` warm-up (each ``None``: keep), and a note.

    ``tasks`` replaces ``duration_s``.  Given ``tasks`` alone, the warm-up is
    kept unless it would leave fewer than half the tasks measured; then it
    shrinks to the scenario's own warm-up fraction of the new count (10% when
    the scenario counts by duration), and the note says so.  An explicit
    ``warmup_tasks`` is taken as given (and must be below the tasks).
    """
    for where, value in (("--tasks", tasks), ("--warmup-tasks", warmup_tasks)):
        low = 1 if where == "--tasks" else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise SpecError(where, value, f"an integer >= {low}")
    changes: dict[str, Any] = {}
    note = None
    if tasks is not None:
        changes["tasks"], changes["duration_s"] = tasks, None
    if warmup_tasks is not None:
        changes["warmup_tasks"] = warmup_tasks
        limit = tasks if tasks is not None else scn.tasks
        if limit is not None and warmup_tasks >= limit:
            raise SpecError("--warmup-tasks", warmup_tasks, f"an integer below the number of tasks ({limit})")
    elif tasks is not None and scn.warmup_tasks > tasks // 2:
        fraction = scn.warmup_tasks / scn.tasks if scn.tasks else 0.1
        changes["warmup_tasks"] = min(int(tasks * fraction), tasks // 2)
        note = (
            f"warm-up cut to {changes['warmup_tasks']} of {tasks} tasks (the scenario's "
            f"{scn.warmup_tasks} would leave too few); --warmup-tasks sets it"
        )
    return (scn.with_changes(changes) if changes else scn), note


# -- overrides ----------------------------------------------------------------------
def apply_overrides(scenario_dict: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A deep copy of ``scenario_dict`` with each ``{"dotted.path": value}`` set.

    Segments index mappings by key and lists by integer (``instances.0.count``).
    A key that itself contains dots (a model named ``v1.5``) is found by joining
    segments.  Missing mapping levels are created.  The result is not
    validated here; :meth:`Scenario.with_changes` validates it.
    """
    out = copy.deepcopy(dict(scenario_dict))
    for dotted, value in overrides.items():
        if not isinstance(dotted, str) or not dotted:
            raise SpecError("overrides", dotted, "a dotted path such as 'workload.arrival.rate_per_s'")
        parts = dotted.split(".")
        node: Any = out
        i = 0
        while True:
            key, i = _next_key(node, parts, i, dotted)
            if i == len(parts):
                node[key] = copy.deepcopy(value)
                break
            if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                node[key] = {}  # a missing (or scalar) level becomes a mapping
            node = node[key]
    return out


def _next_key(node: Any, parts: list[str], i: int, dotted: str) -> tuple[Any, int]:
    if isinstance(node, list):
        try:
            idx = int(parts[i])
        except ValueError:
            raise SpecError(dotted, parts[i], "a list index (an integer) at this level") from None
        if not -len(node) <= idx < len(node):
            raise SpecError(dotted, idx, f"an index in 0..{len(node) - 1}")
        return idx, i + 1
    if not isinstance(node, dict):
        raise SpecError(dotted, node, "a path through mappings and lists")
    for j in range(len(parts), i, -1):  # longest key first: names may contain dots
        key = ".".join(parts[i:j])
        if key in node:
            return key, j
    return parts[i], i + 1


# -- validation ------------------------------------------------------------------------
def _validate(data: Mapping[str, Any], base_dir: Path, default_name: str) -> Scenario:
    _keys("", data, TOP_KEYS, "a scenario mapping")
    spec: dict[str, Any] = {}
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SpecError("name", name, "a non-empty string")
    spec["name"] = name
    spec["seed"] = _int("seed", data.get("seed", 0), 0)
    spec["replications"] = _int("replications", data.get("replications", 1), 1)

    models, services = _models(data.get("models"), base_dir)
    spec["models"] = models
    instances, groups = _instances(data.get("instances"), models)
    spec["instances"] = groups
    workload, trace, token_dists = _workload(data.get("workload"), models, base_dir, spec["seed"])
    spec["workload"] = workload
    token_models = {m: d for m, d in services.items() if isinstance(d, TokenService)}
    moments = _tokens.token_moments(token_dists, trace.tokens if trace is not None else None)
    dists = {m: d for m, d in services.items() if not isinstance(d, TokenService)}
    dists.update(_tokens.marginals(token_models, moments))
    served = {i.model for i in instances}
    used = (
        {m for m, p in workload["mix"].items() if p > 0}
        if trace is None
        else {trace.models[k] for k in np.unique(trace.model_code)}
    )
    for m in sorted(used - served):
        accepted = f"models with at least one instance; instances serve: {', '.join(sorted(served))}"
        if trace is None:
            raise SpecError(f"workload.mix.{m}", workload["mix"][m], accepted)
        raise SpecError("workload.arrival.file", f"tasks of model {m!r}", accepted)

    tasks, duration = data.get("tasks"), data.get("duration_s")
    spec["tasks"] = None if tasks is None else _int("tasks", tasks, 1)
    spec["duration_s"] = None if duration is None else _num("duration_s", duration)
    if spec["tasks"] is None and spec["duration_s"] is None and trace is None:
        raise SpecError("tasks", None, "a number of arrivals per replication (or duration_s in seconds)")
    warmup = spec["warmup_tasks"] = _int("warmup_tasks", data.get("warmup_tasks", 0), 0)
    limit = (
        spec["tasks"] if spec["tasks"] is not None else (trace.arrival_ms.size if trace is not None else None)
    )
    if limit is not None and warmup >= limit:
        raise SpecError("warmup_tasks", warmup, f"an integer below the number of tasks ({limit})")

    strategies = _strategies(data.get("strategies", ["shortest_queue"]))
    spec["strategies"] = [s.to_dict() for s in strategies]
    spec["predictor"], table = _predictor(data.get("predictor", {"mode": "online"}), models, base_dir)
    slo = data.get("slo_ms")
    spec["slo_ms"] = None if slo is None else _num("slo_ms", slo)
    sources = trace.sources if trace is not None else ()
    spec["classes"] = _slo.parse_classes(data.get("classes"), list(models) + list(sources))
    class_names, class_of = _slo.class_table(spec["classes"], list(models), sources)
    spec["slo"] = _slo.parse_slo(data.get("slo"), class_names)
    if data.get("network") is not None:  # only when given: scenarios without it normalise as before
        spec["network"] = _network.parse_network(data["network"])
    return Scenario(
        spec,
        base_dir,
        dists,
        tuple(instances),
        tuple(strategies),
        table,
        trace,
        token_models,
        token_dists,
        class_names,
        class_of,
    )


def _models(value: Any, base_dir: Path) -> tuple[dict, dict[str, Distribution | TokenService]]:
    if not isinstance(value, Mapping) or not value:
        raise SpecError("models", value, "a mapping of model name to {service_time: {...}}")
    models: dict = {}
    dists: dict[str, Distribution | TokenService] = {}
    for name, entry in value.items():
        where = f"models.{name}"
        if not isinstance(name, str) or not name:
            raise SpecError("models", name, "model names that are non-empty strings")
        _keys(where, entry, MODEL_KEYS)
        st = entry.get("service_time")
        if st is None:
            raise SpecError(
                f"{where}.service_time", None, "a distribution such as {dist: exponential, mean_ms: 10}"
            )
        st_spec, dists[name] = _service_time(f"{where}.service_time", st, base_dir)
        models[name] = {"service_time": st_spec}
    return models, dists


def _service_time(where: str, st: Any, base_dir: Path) -> tuple[dict, Distribution | TokenService]:
    if isinstance(st, Mapping) and st.get("dist") == "tokens":
        ts = TokenService.from_spec(st, where)
        return ts.to_spec(), ts
    if isinstance(st, Mapping) and st.get("dist") == "empirical" and "file" in st:
        _keys(where, st, EMPIRICAL_FILE_KEYS, "an empirical distribution")
        p = _resolve(f"{where}.file", st["file"], base_dir)
        values = read_values(p, f"{where}.file")
        try:
            return {"dist": "empirical", "file": str(p)}, Empirical(values)
        except SpecError as e:
            raise SpecError(f"{where}.file", str(p), f"a file of numbers >= 0 ({e.accepted})") from None
    if not isinstance(st, Mapping):
        raise SpecError(where, st, "a mapping such as {dist: exponential, mean_ms: 10}")
    dist = from_spec(st, field=where)
    return _plain(st), dist


def _plain(value: Any) -> Any:
    """Numbers and containers as plain Python (numpy scalars and tuples become float/int/list)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _instances(value: Any, models: Mapping) -> tuple[list[InstanceSpec], list[dict]]:
    if not isinstance(value, list) or not value:
        raise SpecError("instances", value, "a non-empty list of {model, count, replicas, speed}")
    out, groups, counters = [], [], dict.fromkeys(models, 0)
    for i, entry in enumerate(value):
        where = f"instances.{i}"
        _keys(where, entry, INSTANCE_KEYS)
        model = entry.get("model")
        if model not in models:
            raise SpecError(f"{where}.model", model, f"one of the models: {', '.join(models)}")
        count = _int(f"{where}.count", entry.get("count", 1), 1)
        replicas = _int(f"{where}.replicas", entry.get("replicas", 1), 1)
        speed = _num(f"{where}.speed", entry.get("speed", 1.0))
        groups.append({"model": model, "count": count, "replicas": replicas, "speed": speed})
        for _ in range(count):
            out.append(InstanceSpec(f"{model}-{counters[model]}", model, replicas, speed))
            counters[model] += 1
    return out, groups


def _workload(
    value: Any, models: Mapping, base_dir: Path, seed: int
) -> tuple[dict, Trace | None, dict[str, Distribution]]:
    _keys("workload", value, WORKLOAD_KEYS)
    arrival = value.get("arrival")
    if not isinstance(arrival, Mapping):
        raise SpecError("workload.arrival", arrival, "a mapping such as {process: poisson, rate_per_s: 60}")
    process = arrival.get("process")
    if process not in ARRIVAL_KEYS:
        raise SpecError("workload.arrival.process", process, "one of " + ", ".join(ARRIVAL_KEYS))
    optional = TRACE_OPTIONS if process == "trace" else ()
    _keys(
        "workload.arrival",
        arrival,
        ("process",) + ARRIVAL_KEYS[process] + optional,
        f"a {process} arrival process",
    )
    for key in ARRIVAL_KEYS[process]:
        if key not in arrival:
            raise SpecError(f"workload.arrival.{key}", None, f"a value (required for {process})")
    out: dict[str, Any] = {"process": process}
    trace = None
    if process in ("poisson", "deterministic"):
        out["rate_per_s"] = _num("workload.arrival.rate_per_s", arrival["rate_per_s"])
    elif process == "bursty":
        rates = arrival["rates_per_s"]
        if not isinstance(rates, (list, tuple)) or len(rates) < 2:
            raise SpecError(
                "workload.arrival.rates_per_s", rates, "a list of at least two rates (>= 0) per second"
            )
        out["rates_per_s"] = [
            _num(f"workload.arrival.rates_per_s.{k}", r, positive=False) for k, r in enumerate(rates)
        ]
        if max(out["rates_per_s"]) <= 0:
            raise SpecError("workload.arrival.rates_per_s", rates, "at least one rate > 0")
        out["mean_dwell_s"] = _num("workload.arrival.mean_dwell_s", arrival["mean_dwell_s"])
    else:
        p = _resolve("workload.arrival.file", arrival["file"], base_dir)
        out["file"] = str(p)
        options, trace = load_trace(arrival, p, models, seed)
        out.update(options)
    out_workload = {"arrival": out, "mix": _mix(value.get("mix"), models, trace is not None)}
    token_dists: dict[str, Distribution] = {}
    if value.get("tokens") is not None:
        if trace is not None and trace.tokens:
            raise SpecError(
                "workload.tokens", value["tokens"], "no token distributions: the trace carries token counts"
            )
        out_workload["tokens"], token_dists = _tokens.parse_tokens(value["tokens"])
    return out_workload, trace, token_dists


def _mix(mix: Any, models: Mapping, is_trace: bool) -> dict[str, float]:
    if is_trace:
        if mix is not None and mix != {}:  # {}: the normalised form of a trace scenario
            raise SpecError("workload.mix", mix, "no mix with a trace (the trace names each task's model)")
        return {}
    if mix is None:
        if len(models) == 1:
            return {next(iter(models)): 1.0}
        raise SpecError(
            "workload.mix",
            None,
            f"probabilities per model (required with several models: {', '.join(models)})",
        )
    if not isinstance(mix, Mapping) or not mix:
        raise SpecError("workload.mix", mix, "a mapping of model name to probability")
    out = {}
    for m, p in mix.items():
        if m not in models:
            raise SpecError(f"workload.mix.{m}", p, f"a declared model; models: {', '.join(models)}")
        out[m] = _num(f"workload.mix.{m}", p, positive=False)
    total = sum(out.values())
    if abs(total - 1.0) > MIX_TOLERANCE:
        raise SpecError(
            "workload.mix", mix, f"probabilities summing to 1 (within {MIX_TOLERANCE:g}); sum is {total:g}"
        )
    return out


def _strategies(value: Any) -> list[StrategySpec]:
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(
            "strategies",
            value,
            "a non-empty list of strategy names or {name, params}; valid names: "
            + ", ".join(strategy_names()),
        )
    out = [parse_strategy(v, f"strategies.{i}") for i, v in enumerate(value)]
    labels = [s.label for s in out]
    for i, lab in enumerate(labels):
        if labels.index(lab) != i:
            raise SpecError(f"strategies.{i}", lab, "each strategy (with its parameters) listed once")
    return out


def pick_strategy(scenario: Scenario, value: Any, where: str = "strategy") -> StrategySpec:
    """The strategy ``value`` names: a bare name that is one of the scenario's labels, or
    else one of its strategy names, keeps that strategy's parameters; anything else goes
    through :func:`parse_strategy`."""
    if isinstance(value, str):
        for key in ("label", "name"):  # labels first: "weighted" is not "weighted(w=2)"
            for s in scenario.strategies:
                if getattr(s, key) == value:
                    return s
    return parse_strategy(value, where)


def pick_strategies(scenario: Scenario, strategies: Any) -> list[StrategySpec]:
    """:func:`pick_strategy` for one strategy or a list of them (the ``strategies`` override
    of :func:`sim.run` and :func:`sim.twin`)."""
    if isinstance(strategies, (str, tuple, StrategySpec)) or hasattr(strategies, "keys"):
        strategies = [strategies]
    return [pick_strategy(scenario, s, f"strategies.{k}") for k, s in enumerate(strategies)]


def parse_strategy(value: Any, where: str = "strategy") -> StrategySpec:
    """A :class:`StrategySpec` from a name, a ``(name, params)`` pair, ``{name, params}`` or a spec.

    The name must be registered (checked now, so custom strategies registered
    with ``scheduler.register_strategy`` are accepted) and the parameters must
    construct the strategy.
    """
    name: Any
    if isinstance(value, StrategySpec):
        name, params = value.name, dict(value.params)
    elif isinstance(value, str):
        name, params = value, {}
    elif isinstance(value, tuple) and len(value) == 2:
        name, params = value
    elif isinstance(value, Mapping):
        _keys(where, value, STRATEGY_KEYS, "a strategy")
        name, params = value.get("name"), value.get("params") or {}
    else:
        raise SpecError(where, value, "a strategy name, (name, params) or {name: ..., params: {...}}")
    valid = strategy_names()
    if name not in valid:
        raise SpecError(
            f"{where}.name" if isinstance(value, Mapping) else where,
            name,
            "one of the registered strategies: " + ", ".join(valid),
        )
    if not isinstance(params, Mapping):
        raise SpecError(f"{where}.params", params, "a mapping of parameter name to value")
    params = _plain(dict(params))
    try:
        make_strategy(name, **params)
    except SpecError as e:
        sub = e.field if e.field in params else None
        raise SpecError(f"{where}.params" + (f".{sub}" if sub else ""), e.value, e.accepted) from None
    return StrategySpec(name, params)


def _predictor(value: Any, models: Mapping, base_dir: Path) -> tuple[dict, dict | None]:
    _keys("predictor", value, PREDICTOR_KEYS)
    mode = value.get("mode", "online")
    if mode not in PREDICT_MODES:
        raise SpecError("predictor.mode", mode, "one of " + ", ".join(PREDICT_MODES))
    out: dict[str, Any] = {"mode": mode}
    for key in ("prior_mean_ms", "prior_std_ms"):
        if key in value:
            out[key] = _num(f"predictor.{key}", value[key], positive=False)
    if "min_samples" in value:
        out["min_samples"] = _int("predictor.min_samples", value["min_samples"], 1)
    if "features" in value:
        out["features"] = list(check_features(value["features"], "predictor.features"))
    if "forgetting" in value:
        out["forgetting"] = check_forgetting(value["forgetting"], "predictor.forgetting")
    if "residual" in value:  # false: running tasks count down instead of their residual life
        if not isinstance(value["residual"], bool):
            raise SpecError("predictor.residual", value["residual"], "true or false")
        out["residual"] = value["residual"]
    if "table" in value and "file" in value:
        raise SpecError("predictor.file", value["file"], "either predictor.table or predictor.file, not both")
    table = None
    if "table" in value:
        parse_lookup_table(value["table"], "predictor.table")
        table, out["table"] = _plain(value["table"]), _plain(value["table"])
        where = "predictor.table"
    elif "file" in value:
        p = _resolve("predictor.file", value["file"], base_dir)
        out["file"] = str(p)
        table = read_lookup_table(p, "predictor.file")
        parse_lookup_table(table, f"predictor.file ({p.name})")
        where = "predictor.file"
    if table is not None:
        for m in table:
            if m not in models:
                raise SpecError(f"{where}.{m}", m, f"a declared model; models: {', '.join(models)}")
    elif mode == "lookup_table":
        raise SpecError(
            "predictor.table",
            None,
            "a lookup table (predictor.table or predictor.file) for mode lookup_table",
        )
    return out, table


# -- files the scenario refers to ---------------------------------------------------------
def read_values(path: Path, where: str) -> list[float]:
    """Numbers (ms) from a text or CSV file: one column, optional header, ``#`` comments.

    A header naming several columns selects ``service_ms`` (or ``value_ms``).
    """
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise SpecError(where, str(path), "a file with at least one number (ms)")
    column = None
    head = [c.strip() for c in lines[0].replace(";", ",").split(",")]
    if not _is_number(head[0]):
        names = [c.lower() for c in head]
        for wanted in ("service_ms", "value_ms", "values_ms"):
            if wanted in names:
                column = names.index(wanted)
                break
        else:
            if len(names) != 1:
                raise SpecError(
                    where, lines[0], "a header with a service_ms column, or a single column of numbers"
                )
            column = 0
        lines = lines[1:]
    values = []
    for n, line in enumerate(lines, start=2 if column is not None else 1):
        cells = [c for c in line.replace(";", ",").replace(",", " ").split()]
        picked = cells if column is None else cells[column : column + 1]
        for c in picked:
            if not _is_number(c):
                raise SpecError(where, f"{c!r} on line {n}", "numbers of milliseconds")
            values.append(float(c))
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_lookup_table(path: Path, where: str) -> dict:
    """A lookup table from YAML/JSON (the inline form) or CSV (``model, [instance,] mean_ms, std_ms``)."""
    if path.suffix.lower() != ".csv":
        try:
            table = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise SpecError(
                where, str(path), f"a YAML or JSON mapping of model to {{mean_ms, std_ms}} ({e})"
            ) from None
        return _plain(table) if isinstance(table, Mapping) else table
    df = pd.read_csv(path, skipinitialspace=True, comment="#")
    if not {"model", "mean_ms"} <= set(df.columns):
        raise SpecError(
            where, f"columns {list(df.columns)}", "CSV columns model, mean_ms[, std_ms][, instance]"
        )
    out: dict = {}
    for row in df.to_dict("records"):
        model = str(row["model"])
        entry = {"mean_ms": row["mean_ms"], "std_ms": row.get("std_ms", 0.0)}
        inst = row.get("instance")
        if inst is None or (isinstance(inst, float) and math.isnan(inst)):
            out.setdefault(model, {}).update(entry)
        else:
            out.setdefault(model, {}).setdefault("instances", {})[str(inst)] = entry
    for entry in out.values():
        if "mean_ms" not in entry:  # only per-instance rows: the model mean is their average
            per = list(entry["instances"].values())
            entry["mean_ms"] = float(np.mean([e["mean_ms"] for e in per]))
            entry["std_ms"] = float(np.mean([e["std_ms"] for e in per]))
    return _plain(out)
