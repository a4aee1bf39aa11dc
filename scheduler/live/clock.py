"""The live shell's clock: epoch milliseconds from the wall clock.

The core never reads the wall clock; live mode hands it this object, so the
core's timestamps are epoch ms and ``submit_ms / 1000`` is the API's
``submit_time`` in epoch seconds.
"""

from __future__ import annotations

import time


class WallClock:
    """``now_ms()`` is ``time.time() * 1000``."""

    __slots__ = ()

    def now_ms(self) -> float:
        return time.time() * 1000.0
