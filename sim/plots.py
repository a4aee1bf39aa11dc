"""Plots of simulation (or live-driver) results, written as PNG files.

Every function takes a pandas DataFrame with the columns of SCENARIO.md
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

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .results import ALL_MODELS  # the summary's row for all models together

__all__ = ["plot_latency_cdf", "plot_latency_percentiles", "plot_utilization", "plot_sweep_p99"]

PERCENTILES = ("p50", "p95", "p99")

# Half-width columns of a summary are named after the statistic they belong to;
# these suffixes are accepted (the first one present is used).
_HALF_WIDTH_SUFFIXES = ("_ci", "_hw", "_ci95", "_half_width", "_halfwidth")


def _require(df, columns: Iterable[str], what: str) -> None:
    if df is None or not hasattr(df, "columns"):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    for col in columns:
        if col not in df.columns:
            raise ValueError(f"{what}: missing column {col!r} (columns present: {list(df.columns)})")
    if len(df) == 0:
        raise ValueError(f"{what}: the table is empty")


def _new_figure(width: float = 7.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return out


def _overall(df, model: str | None, what: str):
    """Summary rows of one model: ``model``, or by default the all-models rows when the table has them."""
    if "model" not in df.columns:
        if model is not None:
            raise ValueError(f"{what}: missing column 'model' (needed to select model {model!r})")
        return df
    pick = model if model is not None else (ALL_MODELS if (df["model"] == ALL_MODELS).any() else None)
    if pick is None:
        return df
    out = df[df["model"] == pick]
    if len(out) == 0:
        raise ValueError(
            f"{what}: no row with model == {pick!r} (models present: {sorted(map(str, df['model'].unique()))})"
        )
    return out


def _title(df, default: str) -> str:
    if "scenario" in df.columns:
        names = [str(x) for x in df["scenario"].dropna().unique()]
        if len(names) == 1:
            return f"{default} ({names[0]})"
    return default


def _stat_column(df, stat: str) -> str | None:
    """The column of a summary holding latency statistic ``stat`` (``p50``, ``mean`` ...)."""
    for name in (f"latency_{stat}_ms", f"latency_{stat}"):
        if name in df.columns:
            return name
    return None


def _half_width_column(df, col: str) -> str | None:
    base = col[:-3] if col.endswith("_ms") else col
    for stem in (col, base):
        for suffix in _HALF_WIDTH_SUFFIXES:
            for name in (stem + suffix, stem + suffix + "_ms"):
                if name in df.columns:
                    return name
    return None


def _log_safe(values: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Asymmetric error bars for a log axis: the lower arm stops at 10% of the value
    instead of reaching 0 or below (which a log axis cannot show)."""
    err = np.nan_to_num(err, nan=0.0)
    return np.vstack([np.minimum(err, 0.9 * values), err])


# -- latency CDF ---------------------------------------------------------------------


def _step_cdf(ax, values, log_x: bool, label: str, **style) -> None:
    """One empirical CDF line (non-finite values, and values <= 0 on a log axis, left out)."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    if log_x:
        x = x[x > 0]
    if x.size:
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=f"{label} (n={x.size})", **style)


def _cdf_axes(ax, log_x: bool) -> None:
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("latency (ms)" + (", log scale" if log_x else ""))
    ax.set_ylabel("fraction of tasks with latency <= x")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)


def plot_latency_cdf(
    tasks_df,
    path,
    by: str = "strategy",
    *,
    log_x: bool = False,
    column: str = "latency_ms",
    title: str | None = None,
) -> Path:
    """Empirical CDF of task latency (ms), one line per value of ``by``.

    ``tasks_df`` is the per-task table (``latency_ms`` and the ``by`` column);
    ``log_x`` draws the latency axis on a log scale (latencies <= 0 are left
    out there).
    """
    _require(tasks_df, [by, column], "plot_latency_cdf")
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    for key, group in tasks_df.groupby(by, sort=False, observed=True):
        _step_cdf(ax, group[column], log_x, str(key))
    _cdf_axes(ax, log_x)
    ax.legend(title=by, fontsize=8)
    ax.set_title(title or _title(tasks_df, "Latency CDF"))
    return _save(fig, path)


def plot_latency_cdf_overlay(
    live_tasks, sim_tasks, path, by: str = "strategy", *, log_x: bool = False, title: str | None = None
) -> Path:
    """Latency CDFs of live (solid) and simulated (dashed) runs, one colour per ``by`` value.

    Both frames are per-task tables (SCENARIO.md columns: ``latency_ms`` and ``by``).
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


# -- latency percentiles -------------------------------------------------------------


def _percentile_table(df, by: str, model: str | None):
    """Rows ``by`` value -> (values per percentile, half-widths or None)."""
    if "latency_ms" in df.columns:  # a per-task table: compute the percentiles
        _require(df, [by, "latency_ms"], "plot_latency_percentiles")
        if model is not None:
            df = _overall(df, model, "plot_latency_percentiles")
        rows = {}
        for key, group in df.groupby(by, sort=False, observed=True):
            lat = group["latency_ms"].to_numpy(dtype=float)
            rows[key] = ([float(np.percentile(lat, int(p[1:]))) for p in PERCENTILES], None)
        return rows
    _require(df, [by], "plot_latency_percentiles")
    cols = []
    for p in PERCENTILES:
        col = _stat_column(df, p)
        if col is None:
            raise ValueError(
                f"plot_latency_percentiles: missing column 'latency_{p}_ms' "
                f"(a summary needs latency_p50/p95/p99; or pass a per-task table with "
                f"'latency_ms'; columns present: {list(df.columns)})"
            )
        cols.append(col)
    hws = [_half_width_column(df, c) for c in cols]
    df = _overall(df, model, "plot_latency_percentiles")
    rows = {}
    if df[by].duplicated().any():
        raise ValueError(
            f"plot_latency_percentiles: several summary rows per {by!r}; "
            f"filter the table to one row per {by} (e.g. one model) first"
        )
    for _, r in df.iterrows():  # the table's order (a summary lists strategies as the scenario does)
        half = None if all(h is None for h in hws) else [float(r[h]) if h else 0.0 for h in hws]
        rows[r[by]] = ([float(r[c]) for c in cols], half)
    return rows


def plot_latency_percentiles(
    tasks_df_or_summary,
    path,
    by: str = "strategy",
    *,
    model: str | None = None,
    log_y: bool = False,
    title: str | None = None,
) -> Path:
    """Grouped bars of latency p50, p95 and p99 (ms) per ``by`` value.

    Accepts either the per-task table (percentiles computed from ``latency_ms``)
    or a summary table (``latency_p50_ms`` ... one row per ``by`` value); when
    the summary carries 95% CI half-widths (``latency_p50_ms_ci`` ...) they are
    drawn as error bars.  ``model`` picks one model's rows; by default a
    summary's all-models rows (``model == "all"``) and every task of a task table.
    """
    rows = _percentile_table(tasks_df_or_summary, by, model)
    keys = list(rows)
    fig = _new_figure(max(6.0, 1.3 * len(keys) + 3), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(PERCENTILES)
    x = np.arange(len(keys))
    for j, p in enumerate(PERCENTILES):
        vals = [rows[k][0][j] for k in keys]
        err = None
        if any(rows[k][1] is not None for k in keys):
            err = [rows[k][1][j] if rows[k][1] is not None else 0.0 for k in keys]
        if err is not None and log_y:
            err = _log_safe(np.asarray(vals, dtype=float), np.asarray(err, dtype=float))
        ax.bar(x + (j - 1) * width, vals, width, yerr=err, capsize=3 if err is not None else 0, label=p)
    ax.set_xticks(x)
    ax.set_xticklabels([str(k) for k in keys], rotation=20 if len(keys) > 4 else 0)
    ax.set_xlabel(by)
    ax.set_ylabel("latency (ms)" + (", log scale" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="percentile")
    suffix = " (error bars: 95% CI)" if any(rows[k][1] is not None for k in keys) else ""
    ax.set_title(title or _title(tasks_df_or_summary, "Latency percentiles" + suffix))
    return _save(fig, path)


# -- utilization ---------------------------------------------------------------------


def plot_utilization(instances_df, path, by: str = "strategy", *, title: str | None = None) -> Path:
    """Utilization (fraction of replica time busy) per instance, one bar per ``by`` value.

    With several replications the bar is their mean and the error bar their
    standard deviation.
    """
    _require(instances_df, [by, "instance", "utilization"], "plot_utilization")
    df = instances_df
    stats = df.groupby(["instance", by], sort=False, observed=True)["utilization"].agg(
        ["mean", "std", "count"]
    )
    instances = list(dict.fromkeys(df["instance"]))  # order of appearance
    groups = list(dict.fromkeys(df[by]))  # order of appearance (the scenario's order)
    fig = _new_figure(max(6.0, 0.45 * len(instances) * max(1, len(groups)) ** 0.5 + 3), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(instances))
    width = 0.8 / max(len(groups), 1)
    any_err = bool((stats["count"] > 1).any())
    for j, g in enumerate(groups):
        means = [stats["mean"].get((i, g), np.nan) for i in instances]
        errs = [stats["std"].get((i, g), np.nan) for i in instances] if any_err else None
        if errs is not None:
            errs = [0.0 if not np.isfinite(e) else e for e in errs]
        ax.bar(
            x + (j - (len(groups) - 1) / 2) * width,
            means,
            width,
            yerr=errs,
            capsize=2 if any_err else 0,
            label=str(g),
        )
    ax.set_xticks(x)
    ax.set_xticklabels(
        [str(i) for i in instances],
        rotation=45 if len(instances) > 6 else 0,
        ha="right" if len(instances) > 6 else "center",
        fontsize=8,
    )
    ax.set_xlabel("instance")
    ax.set_ylabel("utilization (busy fraction of replica time)")
    top = float(np.nanmax(stats["mean"].to_numpy())) if len(stats) else 1.0
    ax.set_ylim(0, max(1.05, top * 1.1))
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title=by, fontsize=8)
    sub = " (error bars: std over replications)" if any_err else ""
    ax.set_title(title or _title(instances_df, "Utilization per instance" + sub))
    return _save(fig, path)


# -- sweep -----------------------------------------------------------------------------


def plot_sweep_p99(
    sweep_df,
    path,
    x: str,
    by: str = "strategy",
    *,
    stat: str = "p99",
    model: str | None = None,
    log_y: bool = False,
    title: str | None = None,
) -> Path:
    """Latency ``stat`` (default p99, ms) against the swept column ``x``, one line per ``by``.

    ``sweep_df`` is the table :func:`sim.sweep.sweep` returns (summary rows
    plus one column per grid key); CI half-widths, when present, are drawn as
    error bars.  ``x`` must be numeric (e.g. ``load`` or
    ``workload.arrival.rate_per_s``).  ``model`` as in
    :func:`plot_latency_percentiles` (default: the all-models rows).
    """
    if not isinstance(x, str):
        raise ValueError(f"plot_sweep_p99: x must be the name of the swept column, got {x!r}")
    _require(sweep_df, [x, by], "plot_sweep_p99")
    col = _stat_column(sweep_df, stat)
    if col is None:
        raise ValueError(
            f"plot_sweep_p99: missing column 'latency_{stat}_ms' (columns present: {list(sweep_df.columns)})"
        )
    hw = _half_width_column(sweep_df, col)
    df = _overall(sweep_df, model, "plot_sweep_p99")
    try:
        xs_all = df[x].astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"plot_sweep_p99: column {x!r} must be numeric to be drawn on the x axis") from None
    df = df.assign(_x=xs_all)
    if df.duplicated(subset=[by, "_x"]).any():
        raise ValueError(
            f"plot_sweep_p99: several rows share one ({by!r}, {x!r}) pair; filter the table "
            f"to one value of the other swept columns (and one model) first"
        )
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    for key, group in df.groupby(by, sort=False, observed=True):
        group = group.sort_values("_x")
        err = group[hw].to_numpy(dtype=float) if hw else None
        if err is not None and log_y:
            err = _log_safe(group[col].to_numpy(dtype=float), err)
        ax.errorbar(
            group["_x"].to_numpy(),
            group[col].to_numpy(dtype=float),
            yerr=err,
            marker="o",
            capsize=3 if hw else 0,
            label=str(key),
        )
    ax.set_xlabel(x)
    ax.set_ylabel(f"latency {stat} (ms)" + (", log scale" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(title=by, fontsize=8)
    sub = " (error bars: 95% CI)" if hw else ""
    ax.set_title(title or _title(sweep_df, f"Latency {stat} against {x}{sub}"))
    return _save(fig, path)
