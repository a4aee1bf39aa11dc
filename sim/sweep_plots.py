"""The sweep command's plot: latency p50, p95 and p99 against a swept field, per strategy.

One panel per strategy (a strategy's three percentiles share the panel, one
colour each), the line the mean over replications and the shaded band its 95%
confidence interval.  The x axis is the swept column: numeric values on a
linear axis, anything else (a list of strategies, a predictor mode) as
evenly spaced categories.  Rows of other swept fields are averaged in only if
the caller did not filter them: the sweep command draws one file per value
combination of the other grid keys.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .plots._base import PERCENTILES, _new_figure, _overall, _require, _save

__all__ = ["plot_sweep_percentiles"]

COLOURS = {"p50": "tab:blue", "p95": "tab:orange", "p99": "tab:red"}


def _x_positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x values, or category positions plus their tick labels."""
    try:
        return values.astype(float).to_numpy(), None
    except (TypeError, ValueError):
        cats = list(dict.fromkeys(values.astype(str)))
        lookup = {c: k for k, c in enumerate(cats)}
        return values.astype(str).map(lookup).to_numpy(dtype=float), cats


def plot_sweep_percentiles(
    summary: pd.DataFrame, path, x: str, by: str = "strategy", *, model: str | None = None, title: str = ""
) -> Path:
    """Draw latency p50/p95/p99 (mean and 95% CI band) against column ``x``, one panel per ``by``.

    ``summary``: the frame :func:`sim.sweep` returns (or ``summary.csv`` of
    ``python -m sim sweep``).  ``model``: which model's rows (default: all models).
    """
    cols = [f"latency_{p}_ms" for p in PERCENTILES]
    _require(summary, [x, by, *cols], "plot_sweep_percentiles")
    df = _overall(summary, model, "plot_sweep_percentiles")
    keys = list(dict.fromkeys(df[by].astype(str)))
    n = len(keys)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = _new_figure(4.2 * ncols + 0.6, 3.4 * nrows + 0.6)
    for k, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        g = df[df[by].astype(str) == key]
        xs, ticks = _x_positions(g[x])
        order = np.argsort(xs, kind="stable")
        for p, col in zip(PERCENTILES, cols):
            y = g[col].to_numpy(dtype=float)[order]
            hw_col = f"{col}_ci"
            hw = g[hw_col].to_numpy(dtype=float)[order] if hw_col in g else np.full(y.size, np.nan)
            ax.plot(xs[order], y, marker="o", ms=3, color=COLOURS[p], label=p)
            ok = np.isfinite(hw)
            if ok.any():
                ax.fill_between(
                    xs[order], y - np.where(ok, hw, 0), y + np.where(ok, hw, 0), color=COLOURS[p], alpha=0.2
                )
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=20, fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel("latency (ms)", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title or f"Latency percentiles against {x} (bands: 95% CI over replications)", fontsize=10)
    return _save(fig, path)
