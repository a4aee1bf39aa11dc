from typing import Any

import numpy as np

from ..validate import check_integer
from .base import Candidates, Strategy, argmin_random, pick


class PowerOfTwo(Strategy):
    """Power of d choices: samples d distinct candidates, takes the one with fewest tasks."""

    name = "power_of_two"
    description = "d random candidates (default 2), the one with the fewest tasks in flight"
    param_help = {"d": "how many distinct candidates are sampled, an integer in 1..1024"}

    def __init__(self, d: int = 2):
        self.d = check_integer("d", d, low=1, high=1024)

    def params(self) -> dict[str, Any]:
        return {"d": self.d}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        n = view.n
        if n <= self.d:
            return argmin_random(view.in_flight, rng)
        if self.d == 2:
            i = pick(rng, n)
            j = pick(rng, n - 1)
            sample: tuple[int, ...] = (i, j + (j >= i))
        else:
            sample = tuple(int(x) for x in rng.choice(n, self.d, replace=False))
        loads = view.in_flight
        best = min(loads[k] for k in sample)
        ties = [k for k in sample if loads[k] == best]
        return ties[0] if len(ties) == 1 else ties[pick(rng, len(ties))]
