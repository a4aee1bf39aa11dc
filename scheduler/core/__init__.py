"""The scheduling core: stdlib and numpy only, no I/O, no wall clock, no global random state."""

from .clock import Clock, FunctionClock, ManualClock
from .decision import Decision, QueueInfo
from .distributions import (
    DISTRIBUTIONS,
    Deterministic,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Uniform,
    distribution_fields,
    from_spec,
)
from .errors import (
    DuplicateTaskError,
    InvalidTransitionError,
    NoInstanceError,
    SchedulerError,
    SpecError,
    UnknownInstanceError,
    UnknownPredictModeError,
    UnknownStrategyError,
    UnknownTaskError,
)
from .instance_state import WaitEstimate
from .lookup import parse_lookup_table
from .pool_stats import Prediction
from .predictor import PREDICT_MODES, Predictor
from .replay import ReplayReport, replay
from .scheduler import Scheduler
from .stats import Welford
from .strategies import (
    STRATEGIES,
    Candidates,
    Strategy,
    argmax_random,
    argmin_random,
    make_strategy,
    register_strategy,
    strategies_scope,
    strategy_names,
    strategy_params,
)
from .tracker import COMPLETED, FAILED, QUEUED, SCHEDULED, STATES, TaskRecord, TaskTracker
from .validate import check_integer, check_number

__all__ = [
    "Clock",
    "FunctionClock",
    "ManualClock",
    "DISTRIBUTIONS",
    "Deterministic",
    "Distribution",
    "Empirical",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Uniform",
    "distribution_fields",
    "from_spec",
    "DuplicateTaskError",
    "InvalidTransitionError",
    "NoInstanceError",
    "SchedulerError",
    "SpecError",
    "UnknownInstanceError",
    "UnknownPredictModeError",
    "UnknownStrategyError",
    "UnknownTaskError",
    "PREDICT_MODES",
    "Prediction",
    "Predictor",
    "parse_lookup_table",
    "WaitEstimate",
    "ReplayReport",
    "replay",
    "Decision",
    "QueueInfo",
    "Scheduler",
    "STRATEGIES",
    "Candidates",
    "Strategy",
    "argmax_random",
    "argmin_random",
    "make_strategy",
    "register_strategy",
    "strategies_scope",
    "strategy_names",
    "strategy_params",
    "Welford",
    "COMPLETED",
    "FAILED",
    "QUEUED",
    "SCHEDULED",
    "STATES",
    "TaskRecord",
    "TaskTracker",
    "check_integer",
    "check_number",
]
