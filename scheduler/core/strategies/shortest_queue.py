import numpy as np

from .base import Candidates, Strategy, argmin_random


class ShortestQueue(Strategy):
    """Least expected completion time: expected wait plus this task's predicted time there."""

    name = "shortest_queue"
    description = "least expected completion time (wait + predicted execution)"

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        return argmin_random(view.completion_mean, rng)
