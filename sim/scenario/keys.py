"""The keys and named choices a scenario accepts, by section: the tables the validator checks
against, and :func:`accepted_keys`, which the user's reference (docs/scenarios.md) is held to."""

from __future__ import annotations

from scheduler import PREDICT_MODES, distribution_fields
from scheduler.core.tokens import TOKEN_FIELDS

from .. import network as _network
from .. import slo as _slo
from .. import tokens as _tokens
from ..traces import FORMATS as TRACE_FORMATS
from ..traces import TRACE_OPTIONS

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
