import numpy as np

from .base import Candidates, Strategy, argmin_random


class LeastRequests(Strategy):
    """Fewest tasks in flight (assigned and not yet ended)."""

    name = "least_requests"
    description = "fewest tasks in flight"

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        return argmin_random(view.in_flight, rng)
