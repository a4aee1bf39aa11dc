"""Read-only arrays: what the core hands to strategies, which must not write its state."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def readonly(a: FloatArray) -> FloatArray:
    """A read-only view of ``a`` (``a`` itself stays writable)."""
    v = a.view()
    v.setflags(write=False)
    return v


def frozen(a: FloatArray) -> FloatArray:
    """Mark a fresh array read-only and return it."""
    a.setflags(write=False)
    return a
