"""Latency distributions: the CDF, the tail P(latency > x), and live against simulated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import _new_figure, _panels, _require, _save, _title


def _finite(values, positive: bool) -> np.ndarray:
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    return x[x > 0] if positive else x


def _step_cdf(ax, values, log_x: bool, label: str, *, count: bool = True, **style) -> None:
    """One empirical CDF line (non-finite values, and values <= 0 on a log axis, left out);
    ``count`` adds the number of tasks to the label."""
    x = _finite(values, log_x)
    if x.size:
        text = f"{label} (n={x.size:,})" if count else label
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=text, **style)


def _panel_title(panel_by: str | None, name: str, part, by: str) -> str:
    """``model llm-7b, 5,014 tasks per strategy`` (a range when the counts differ)."""
    sizes = part.groupby(by, observed=True).size()
    lo, hi = int(sizes.min()), int(sizes.max())
    n = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    return f"{panel_by} {name}, {n} tasks per {by}"


def _cdf_axes(ax, log_x: bool) -> None:
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("latency (ms)" + (", log scale" if log_x else ""))
    ax.set_ylabel("fraction of tasks with latency <= x")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)


def _clip_left(ax, values) -> None:
    """Start a log latency axis at the panel's 0.5th percentile: below it the lines are flat,
    and a few near-zero latencies would otherwise squeeze everything that differs to the right."""
    x = _finite(values, True)
    if x.size:
        ax.set_xlim(left=float(np.percentile(x, 0.5)) * 0.8)


def _grid(n: int, width_each: float = 5.2, height: float = 4.3):
    """A figure with ``n`` panels side by side (at most 3 per row), sharing no axes."""
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = _new_figure(max(7.0, width_each * cols), height * rows + 0.6, constrained=True)
    axes = [fig.add_subplot(rows, cols, k + 1) for k in range(n)]
    return fig, axes


def _figure_legend(fig, axes, title: str, n_entries: int) -> None:
    """One legend for every panel, under them, so that it covers no line."""
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=min(n_entries, 3),
        fontsize=8,
        title=title,
        title_fontsize=8,
    )


def plot_latency_cdf(
    tasks_df,
    path,
    by: str = "strategy",
    *,
    log_x: bool = False,
    column: str = "latency_ms",
    title: str | None = None,
    panel_by: str | None = None,
) -> Path:
    """Empirical CDF of task latency (ms), one line per value of ``by``.

    ``tasks_df`` is the per-task table (``latency_ms`` and the ``by`` column);
    ``log_x`` draws the latency axis on a log scale (latencies <= 0 are left
    out there).  ``panel_by`` (e.g. ``"model"``) draws one panel per value of
    that column when the table holds several.
    """
    _require(tasks_df, [by, column], "plot_latency_cdf")
    panels = _panels(tasks_df, panel_by)
    if len(panels) == 1:
        fig = _new_figure()
        axes = [fig.add_subplot(1, 1, 1)]
    else:
        fig, axes = _grid(len(panels))
    for ax, (name, part) in zip(axes, panels):
        for key, group in part.groupby(by, sort=False, observed=True):
            _step_cdf(ax, group[column], log_x, str(key), count=name is None)
        _cdf_axes(ax, log_x)
        if log_x:
            _clip_left(ax, part[column])
        if name is not None:
            ax.set_title(_panel_title(panel_by, name, part, by), fontsize=10)
    head = title or _title(tasks_df, "Latency CDF")
    if len(panels) == 1:
        axes[0].legend(title=by, fontsize=8)
        axes[0].set_title(head)
    else:
        _figure_legend(fig, axes, by, tasks_df[by].nunique())
        fig.suptitle(head)
    return _save(fig, path)


def plot_latency_tail(
    tasks_df,
    path,
    by: str = "strategy",
    *,
    panel_by: str | None = "model",
    column: str = "latency_ms",
    title: str | None = None,
) -> Path:
    """The tail of task latency, P(latency > x) against x (ms), both axes logarithmic.

    One line per value of ``by``; one panel per value of ``panel_by`` (default:
    per model, when there are several).  On these axes the body of the
    distribution sits at the top left and the slowest tasks at the bottom
    right, so strategies that differ only in their tail are told apart; the
    lowest point of a line is 1/n, the slowest of its n tasks.
    """
    _require(tasks_df, [by, column], "plot_latency_tail")
    panels = _panels(tasks_df, panel_by)
    fig, axes = _grid(len(panels))
    for ax, (name, part) in zip(axes, panels):
        for key, group in part.groupby(by, sort=False, observed=True):
            x = _finite(group[column], True)
            if x.size:
                # P(latency >= x_i) = (n - i) / n at the i-th smallest value; it ends at 1/n
                ax.step(x, (x.size - np.arange(x.size)) / x.size, where="post", label=str(key))
        ax.set_xscale("log")
        ax.set_yscale("log")
        _clip_left(ax, part[column])
        ax.set_xlabel("latency x (ms), log scale")
        ax.set_ylabel("P(latency > x), log scale")
        ax.grid(True, which="both", alpha=0.25)
        ax.set_title(_panel_title(panel_by, name, part, by) if name is not None else "", fontsize=10)
    _figure_legend(fig, axes, by, tasks_df[by].nunique())
    head = title or _title(tasks_df, "Latency tail")
    if len(panels) == 1:
        head += f", {_panel_title('', '', tasks_df, by).strip(' ,')}"
    fig.suptitle(head)
    return _save(fig, path)


def plot_latency_cdf_overlay(
    live_tasks, sim_tasks, path, by: str = "strategy", *, log_x: bool = False, title: str | None = None
) -> Path:
    """Latency CDFs of live (solid) and simulated (dashed) runs, one colour per ``by`` value.

    Both frames are per-task tables (docs/scenarios.md columns: ``latency_ms`` and ``by``).
    """
    _require(live_tasks, [by, "latency_ms"], "plot_latency_cdf_overlay (live)")
    _require(sim_tasks, [by, "latency_ms"], "plot_latency_cdf_overlay (sim)")
    fig = _new_figure(7.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    keys = list(dict.fromkeys([*map(str, sim_tasks[by].unique()), *map(str, live_tasks[by].unique())]))
    for k, key in enumerate(keys):
        for frame, style, world in ((live_tasks, "-", "live"), (sim_tasks, "--", "sim")):
            values = frame.loc[frame[by].astype(str) == key, "latency_ms"]
            _step_cdf(ax, values, log_x, f"{key} {world}", ls=style, color=f"C{k % 10}")
    _cdf_axes(ax, log_x)
    ax.legend(fontsize=7, title="solid: live, dashed: simulated", title_fontsize=8)
    name = (
        str(live_tasks["scenario"].iloc[0]) if "scenario" in live_tasks.columns and len(live_tasks) else None
    )
    ax.set_title(
        title or (f"Latency CDF, live vs simulated ({name})" if name else "Latency CDF, live vs simulated")
    )
    return _save(fig, path)
