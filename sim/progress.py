"""A small text progress bar for the command line: tasks (or sweep units) done / total, rate, ETA.

It writes to a stream (stderr by default).  On a terminal it redraws one line
at most ten times a second; otherwise it prints a line every few seconds, so
logs stay short.  It reads the wall clock, which is fine here: this is the
shell, not the core.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar:
    """Call with the number of tasks just simulated; ``close()`` at the end."""

    def __init__(
        self, total: int, stream: TextIO | None = None, width: int = 28, label: str = "", unit: str = "tasks"
    ):
        self.unit = unit
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.label = label
        self.done = 0
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.1 if self._tty else 5.0

    def set_total(self, total: int) -> None:
        self.total = max(int(total), self.done, 1)

    def set_label(self, label: str) -> None:
        self.label = label

    def __call__(self, n: int) -> None:
        self.done += int(n)
        now = time.perf_counter()
        if now - self._last >= self._every:
            self._last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The current progress as one line of text."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._t0, 1e-9)
        frac = min(self.done / self.total, 1.0)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        label = f" {self.label}" if self.label else ""
        return (
            f"[{bar}] {self.done:,}/{self.total:,} {self.unit} {frac:6.1%} "
            f"{rate:,.{0 if rate >= 10 else 2}f} {self.unit}/s elapsed {_duration(elapsed)} ETA {_duration(eta)}{label}"
        )

    def _draw(self, now: float) -> None:
        if self._tty:
            self.stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.total = max(self.done, 1) if self.done >= self.total else self.total
        elapsed = time.perf_counter() - self._t0
        self._draw(time.perf_counter())
        if self._tty:
            self.stream.write("\n")
        self.stream.write(f"simulated {self.done:,} {self.unit} in {elapsed:.1f} s\n")
        self.stream.flush()
