"""Plots of summary figures: latency percentiles, utilization per instance, a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..results import ci_half_width
from ._base import (
    PERCENTILES,
    _half_width_column,
    _log_safe,
    _new_figure,
    _overall,
    _require,
    _save,
    _stat_column,
    _title,
)

# -- latency percentiles -------------------------------------------------------------


def _percentile_table(df, by: str, model: str | None):
    """Rows ``by`` value -> (values per percentile, half-widths or None)."""
    if "latency_ms" in df.columns:  # a per-task table: compute the percentiles
        _require(df, [by, "latency_ms"], "plot_latency_percentiles")
        if model is not None:
            df = _overall(df, model, "plot_latency_percentiles")
        rows: dict[Any, tuple[list[float], list[float] | None]] = {}
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
        half: list[float] | None = None
        if any(h is not None for h in hws):
            half = [float(r[h]) if h else 0.0 for h in hws]
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
        err: Any = None  # a list of half-widths, or the (2, n) array of a log axis
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


def _instance_label(df, instance) -> str:
    """``llm-7b-4`` with its speed and replicas on the lines below, when the table has them."""
    rows = df[df["instance"] == instance]
    parts = [str(instance)]
    if "speed" in df.columns:
        parts.append(f"speed {float(rows['speed'].iloc[0]):g}")
    if "replicas" in df.columns:
        n = int(rows["replicas"].iloc[0])
        parts.append(f"{n} replica" + ("s" if n != 1 else ""))
    return "\n".join(parts)


def plot_utilization(instances_df, path, by: str = "strategy", *, title: str | None = None) -> Path:
    """Utilization (fraction of replica time busy) per instance, one bar per ``by`` value.

    Each bar is the mean over replications; with several replications its
    error bar is the 95% confidence half-width (Student t, as in the summary).
    Instance labels carry the speed and replicas when the table has those
    columns (the simulator's and the live driver's do); the legend sits to the
    right of the bars, never on them.
    """
    _require(instances_df, [by, "instance", "utilization"], "plot_utilization")
    df = instances_df
    grouped = df.groupby(["instance", by], sort=False, observed=True)["utilization"]
    means = grouped.mean()
    halves = grouped.agg(lambda v: ci_half_width(v.to_numpy(dtype=float)))
    counts = grouped.count()
    instances = list(dict.fromkeys(df["instance"]))  # order of appearance
    groups = list(dict.fromkeys(df[by]))  # order of appearance (the scenario's order)
    width_in = max(6.5, 0.22 * len(instances) * max(len(groups), 1) + 3.5)
    fig = _new_figure(min(width_in, 16.0), 4.8, constrained=True)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(instances))
    width = 0.8 / max(len(groups), 1)
    any_err = bool((counts > 1).any())
    for j, g in enumerate(groups):
        heights = [means.get((i, g), np.nan) for i in instances]
        errs = None
        if any_err:
            errs = [halves.get((i, g), np.nan) for i in instances]
            errs = [0.0 if not np.isfinite(e) else e for e in errs]
        ax.bar(
            x + (j - (len(groups) - 1) / 2) * width,
            heights,
            width,
            yerr=errs,
            capsize=2 if any_err else 0,
            error_kw={"elinewidth": 0.8},
            label=str(g),
        )
    ax.set_xticks(x)
    ax.set_xticklabels([_instance_label(df, i) for i in instances], fontsize=8)
    ax.set_xlabel("instance")
    ax.set_ylabel("utilization (busy fraction of replica time)")
    top = float(np.nanmax(means.to_numpy())) if len(means) else 1.0
    ax.set_ylim(0, max(1.05, top * 1.1))
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title=by, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    sub = " (error bars: 95% CI over replications)" if any_err else ""
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
