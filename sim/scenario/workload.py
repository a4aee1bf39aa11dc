"""The ``workload`` section: the arrival process (or a trace), the model mix, token counts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scheduler import Distribution, SpecError

from .. import tokens as _tokens
from ..traces import TRACE_OPTIONS, Trace, load_trace
from .checks import check_keys, number, resolve_file
from .keys import ARRIVAL_KEYS, MIX_TOLERANCE, WORKLOAD_KEYS


def parse_workload(
    value: Any, models: Mapping, base_dir: Path, seed: int
) -> tuple[dict, Trace | None, dict[str, Distribution]]:
    check_keys("workload", value, WORKLOAD_KEYS)
    arrival = value.get("arrival")
    if not isinstance(arrival, Mapping):
        raise SpecError("workload.arrival", arrival, "a mapping such as {process: poisson, rate_per_s: 60}")
    process = arrival.get("process")
    if process not in ARRIVAL_KEYS:
        raise SpecError("workload.arrival.process", process, "one of " + ", ".join(ARRIVAL_KEYS))
    optional = TRACE_OPTIONS if process == "trace" else ()
    check_keys(
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
        out["rate_per_s"] = number("workload.arrival.rate_per_s", arrival["rate_per_s"])
    elif process == "bursty":
        rates = arrival["rates_per_s"]
        if not isinstance(rates, (list, tuple)) or len(rates) < 2:
            raise SpecError(
                "workload.arrival.rates_per_s", rates, "a list of at least two rates (>= 0) per second"
            )
        out["rates_per_s"] = [
            number(f"workload.arrival.rates_per_s.{k}", r, positive=False) for k, r in enumerate(rates)
        ]
        if max(out["rates_per_s"]) <= 0:
            raise SpecError("workload.arrival.rates_per_s", rates, "at least one rate > 0")
        out["mean_dwell_s"] = number("workload.arrival.mean_dwell_s", arrival["mean_dwell_s"])
    else:
        p = resolve_file("workload.arrival.file", arrival["file"], base_dir)
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
        out[m] = number(f"workload.mix.{m}", p, positive=False)
    total = sum(out.values())
    if abs(total - 1.0) > MIX_TOLERANCE:
        raise SpecError(
            "workload.mix", mix, f"probabilities summing to 1 (within {MIX_TOLERANCE:g}); sum is {total:g}"
        )
    return out
