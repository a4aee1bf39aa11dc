"""A scenario dict validated as a whole: each section parsed by its module, then the checks
across sections (models served, tasks and warm-up, classes and SLOs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scheduler import SpecError
from scheduler.core.tokens import TokenService

from .. import network as _network
from .. import slo as _slo
from .. import tokens as _tokens
from ..traces import Trace
from .checks import check_keys, integer, number
from .keys import INSTANCE_KEYS, TOP_KEYS
from .predictor import parse_predictor
from .service_times import parse_models
from .specs import InstanceSpec
from .strategies import parse_strategies
from .workload import parse_workload


def validate(data: Mapping[str, Any], base_dir: Path, default_name: str) -> dict[str, Any]:
    """``data`` validated: the fields of a :class:`~sim.scenario.Scenario`, by name."""
    check_keys("", data, TOP_KEYS, "a scenario mapping")
    spec: dict[str, Any] = {}
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SpecError("name", name, "a non-empty string")
    spec["name"] = name
    spec["seed"] = integer("seed", data.get("seed", 0), 0)
    spec["replications"] = integer("replications", data.get("replications", 1), 1)

    models, services = parse_models(data.get("models"), base_dir)
    spec["models"] = models
    instances, groups = parse_instances(data.get("instances"), models)
    spec["instances"] = groups
    workload, trace, token_dists = parse_workload(data.get("workload"), models, base_dir, spec["seed"])
    spec["workload"] = workload
    token_models = {m: d for m, d in services.items() if isinstance(d, TokenService)}
    moments = _tokens.token_moments(token_dists, trace.tokens if trace is not None else None)
    dists = {m: d for m, d in services.items() if not isinstance(d, TokenService)}
    dists.update(_tokens.marginals(token_models, moments))
    _check_served(instances, workload["mix"], trace)

    tasks, duration = data.get("tasks"), data.get("duration_s")
    spec["tasks"] = None if tasks is None else integer("tasks", tasks, 1)
    spec["duration_s"] = None if duration is None else number("duration_s", duration)
    if spec["tasks"] is None and spec["duration_s"] is None and trace is None:
        raise SpecError("tasks", None, "a number of arrivals per replication (or duration_s in seconds)")
    warmup = spec["warmup_tasks"] = integer("warmup_tasks", data.get("warmup_tasks", 0), 0)
    limit = (
        spec["tasks"] if spec["tasks"] is not None else (trace.arrival_ms.size if trace is not None else None)
    )
    if limit is not None and warmup >= limit:
        raise SpecError("warmup_tasks", warmup, f"an integer below the number of tasks ({limit})")

    strategies = parse_strategies(data.get("strategies", ["shortest_queue"]))
    spec["strategies"] = [s.to_dict() for s in strategies]
    spec["predictor"], table = parse_predictor(data.get("predictor", {"mode": "online"}), models, base_dir)
    slo = data.get("slo_ms")
    spec["slo_ms"] = None if slo is None else number("slo_ms", slo)
    sources = trace.sources if trace is not None else ()
    spec["classes"] = _slo.parse_classes(data.get("classes"), list(models) + list(sources))
    class_names, class_of = _slo.class_table(spec["classes"], list(models), sources)
    spec["slo"] = _slo.parse_slo(data.get("slo"), class_names)
    if data.get("network") is not None:  # only when given: scenarios without it normalise as before
        spec["network"] = _network.parse_network(data["network"])
    return {
        "spec": spec,
        "base_dir": base_dir,
        "distributions": dists,
        "instances": tuple(instances),
        "strategies": tuple(strategies),
        "lookup_table": table,
        "trace": trace,
        "token_models": token_models,
        "token_dists": token_dists,
        "class_names": class_names,
        "class_of": class_of,
    }


def _check_served(instances: list[InstanceSpec], mix: dict[str, float], trace: Trace | None) -> None:
    """Every model the workload sends tasks to has at least one instance."""
    served = {i.model for i in instances}
    used = (
        {m for m, p in mix.items() if p > 0}
        if trace is None
        else {trace.models[k] for k in np.unique(trace.model_code)}
    )
    for m in sorted(used - served):
        accepted = f"models with at least one instance; instances serve: {', '.join(sorted(served))}"
        if trace is None:
            raise SpecError(f"workload.mix.{m}", mix[m], accepted)
        raise SpecError("workload.arrival.file", f"tasks of model {m!r}", accepted)


def parse_instances(value: Any, models: Mapping) -> tuple[list[InstanceSpec], list[dict]]:
    if not isinstance(value, list) or not value:
        raise SpecError("instances", value, "a non-empty list of {model, count, replicas, speed}")
    out, groups, counters = [], [], dict.fromkeys(models, 0)
    for i, entry in enumerate(value):
        where = f"instances.{i}"
        check_keys(where, entry, INSTANCE_KEYS)
        model = entry.get("model")
        if model not in models:
            raise SpecError(f"{where}.model", model, f"one of the models: {', '.join(models)}")
        count = integer(f"{where}.count", entry.get("count", 1), 1)
        replicas = integer(f"{where}.replicas", entry.get("replicas", 1), 1)
        speed = number(f"{where}.speed", entry.get("speed", 1.0))
        groups.append({"model": model, "count": count, "replicas": replicas, "speed": speed})
        for _ in range(count):
            out.append(InstanceSpec(f"{model}-{counters[model]}", model, replicas, speed))
            counters[model] += 1
    return out, groups
