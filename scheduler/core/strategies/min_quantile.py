from typing import Any

import numpy as np

from ..distributions import normal_quantile
from ..validate import check_number
from .base import Candidates, Strategy, argmin_random


class MinQuantile(Strategy):
    """Least predicted p-quantile of completion time (normal approximation of wait + execution)."""

    name = "min_quantile"
    description = "least predicted p-quantile of completion time (default p=0.95)"
    param_help = {"p": "the quantile of completion time minimised, a number strictly between 0 and 1"}

    def __init__(self, p: float = 0.95):
        self.p = check_number("p", p, low=0.0, high=1.0, low_open=True, high_open=True)
        self._z = np.array(normal_quantile(self.p))  # 0-d: numpy multiplies by it faster than by a float

    def params(self) -> dict[str, Any]:
        return {"p": self.p}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        return argmin_random(view.completion_plus(self._z), rng)
