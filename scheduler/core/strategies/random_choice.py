import numpy as np

from .base import Candidates, Strategy, pick


class Random(Strategy):
    """Uniformly at random, from the injected generator."""

    name = "random"
    description = "uniformly at random"

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        return pick(rng, view.n)
