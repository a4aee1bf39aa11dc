from .base import Candidates, Strategy, argmax_random, argmin_random
from .registry import (
    STRATEGIES,
    make_strategy,
    register_strategy,
    strategies_scope,
    strategy_names,
    strategy_params,
)

__all__ = [
    "Candidates",
    "Strategy",
    "argmin_random",
    "argmax_random",
    "STRATEGIES",
    "make_strategy",
    "register_strategy",
    "strategies_scope",
    "strategy_names",
    "strategy_params",
]
