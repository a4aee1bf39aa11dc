"""Plots of simulation (or live-driver) results, written as PNG files.

Every function takes a pandas DataFrame with the columns of docs/scenarios.md
(per-task table, summary table, per-instance table or a sweep table), writes
one PNG and returns its path.  A missing column raises ``ValueError`` naming
it, so the same functions serve the live driver's tables, which carry the
same columns.

matplotlib is imported lazily, inside the functions, and only its
object-oriented API is used (``Figure`` drawn by the Agg canvas): nothing
touches pyplot's global state or the user's interactive backend, so plotting
works headless, in threads, and inside notebooks alike; ``import sim`` does not
import matplotlib.
"""

from ._base import ALL_MODELS, PERCENTILES
from .latency import plot_latency_cdf, plot_latency_cdf_overlay, plot_latency_tail
from .summary import plot_latency_percentiles, plot_sweep_p99, plot_utilization

__all__ = [
    "ALL_MODELS",
    "PERCENTILES",
    "plot_latency_cdf",
    "plot_latency_cdf_overlay",
    "plot_latency_percentiles",
    "plot_latency_tail",
    "plot_sweep_p99",
    "plot_utilization",
]
