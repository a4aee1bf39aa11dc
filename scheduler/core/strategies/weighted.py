from typing import Any

import numpy as np

from ..validate import check_number
from .base import Candidates, Strategy, argmin_random


class Weighted(Strategy):
    """Least ``expected + w * error`` of completion time: w > 0 is risk-averse."""

    name = "weighted"
    description = "least expected completion time plus w times its standard deviation"
    param_help = {"w": "weight of the completion time's standard deviation, a number >= 0"}

    def __init__(self, w: float = 1.0):
        self.w = check_number("w", w, low=0.0)
        self._w = np.array(self.w)  # 0-d: numpy multiplies an array by it faster than by a float

    def params(self) -> dict[str, Any]:
        return {"w": self.w}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        return argmin_random(view.completion_plus(self._w), rng)
