from .base import Candidates, Strategy, argmin_random, check_number


class Weighted(Strategy):
    """Least ``expected + w * error`` of completion time: w > 0 is risk-averse."""

    name = "weighted"
    description = "least expected completion time plus w times its standard deviation"

    def __init__(self, w: float = 1.0):
        self.w = check_number("w", w, low=0.0)

    def params(self):
        return {"w": self.w}

    def choose(self, view: Candidates, rng) -> int:
        return argmin_random(view.completion_mean + self.w * view.completion_std, rng)
