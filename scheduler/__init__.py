"""infersched: a simulation-first scheduler for model-inference tasks.

``import scheduler`` loads only the core (stdlib and numpy).  The live shell
lives in :mod:`scheduler.live` and the reference task instance in
:mod:`scheduler.instance`; both are imported on demand.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .core import (
    COMPLETED, DISTRIBUTIONS, FAILED, MODE_ALIASES, PREDICT_MODES, QUEUED, SCHEDULED, STATES, STRATEGIES,
    Candidates, Clock, Decision, Deterministic, Distribution, DuplicateTaskError, Empirical, Exponential,
    FunctionClock, Gamma, InvalidTransitionError, LogNormal, ManualClock, NoInstanceError, Prediction, Predictor,
    QueueInfo, Scheduler, SchedulerError, SpecError, Strategy, TaskRecord, TaskTracker, Uniform,
    UnknownInstanceError, UnknownPredictModeError, UnknownStrategyError, UnknownTaskError, WaitEstimate,
    ReplayReport, argmax_random, argmin_random, from_spec, make_strategy, parse_lookup_table, register_strategy,
    replay, strategy_names,
)
from .decision_log import DecisionLog, read_log

try:
    __version__ = _version("infersched")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+local"

__all__ = [
    "COMPLETED", "DISTRIBUTIONS", "FAILED", "MODE_ALIASES", "PREDICT_MODES", "QUEUED", "SCHEDULED", "STATES",
    "STRATEGIES", "Candidates", "Clock", "Decision", "Deterministic", "Distribution", "DuplicateTaskError",
    "Empirical", "Exponential", "FunctionClock", "Gamma", "InvalidTransitionError", "LogNormal", "ManualClock",
    "NoInstanceError", "Prediction", "Predictor", "QueueInfo", "Scheduler", "SchedulerError", "SpecError",
    "Strategy", "TaskRecord", "TaskTracker", "Uniform", "UnknownInstanceError", "UnknownPredictModeError",
    "UnknownStrategyError", "UnknownTaskError", "WaitEstimate", "argmax_random", "argmin_random", "from_spec",
    "make_strategy", "parse_lookup_table", "register_strategy", "strategy_names", "__version__",
    "ReplayReport", "replay", "DecisionLog", "read_log",
]
