import numpy as np

from .base import Candidates, Strategy


class RoundRobin(Strategy):
    """Cycles through the candidates, with its own counter per model."""

    name = "round_robin"
    description = "each model's candidates in turn"

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def choose(self, view: Candidates, rng: np.random.Generator) -> int:
        k = self._next.get(view.model, 0)
        self._next[view.model] = k + 1
        return k % view.n
