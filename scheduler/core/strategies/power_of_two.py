from .base import Candidates, Strategy, argmin_random, check_number, pick


class PowerOfTwo(Strategy):
    """Power of d choices: samples d distinct candidates, takes the one with fewest tasks."""

    name = "power_of_two"
    description = "d random candidates (default 2), the one with the fewest tasks in flight"

    def __init__(self, d: int = 2):
        self.d = check_number("d", d, low=1, high=1024, integer=True)

    def params(self):
        return {"d": self.d}

    def choose(self, view: Candidates, rng) -> int:
        n = view.n
        if n <= self.d:
            return argmin_random(view.in_flight, rng)
        if self.d == 2:
            i = pick(rng, n)
            j = pick(rng, n - 1)
            sample = (i, j + (j >= i))
        else:
            sample = tuple(int(x) for x in rng.choice(n, self.d, replace=False))
        loads = view.in_flight
        best = min(loads[k] for k in sample)
        ties = [k for k in sample if loads[k] == best]
        return ties[0] if len(ties) == 1 else ties[pick(rng, len(ties))]
