"""What the command line prints and writes: the summary table and the offered load, within
100 columns, and a run's tables and plots in its output folder.

Kept apart from :mod:`sim.cli` (argument parsing) so that notebooks and
scripts can print the same text: ``print(sim.report.format_summary(res.summary))``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from . import plots
from .results import overall_rows

log = logging.getLogger("sim")

WIDTH = 100  # columns the printed tables fit in (with the scenario's usual strategy labels)
LOAD_WARN = 0.95  # offered load at which a pool is said to be close to saturation
LOAD_REFUSE = 1.0  # at or above: the pool cannot keep up; runs need --allow-overload

# (summary column, heading, scale): latency columns in ms, shares shown as percent
SHOWN = (
    ("throughput_per_s", "tasks/s", 1.0),
    ("latency_mean_ms", "mean", 1.0),
    ("latency_p50_ms", "p50", 1.0),
    ("latency_p95_ms", "p95", 1.0),
    ("latency_p99_ms", "p99", 1.0),
    ("wait_mean_ms", "wait", 1.0),
    ("utilization", "util %", 100.0),
    ("slo_attainment", "SLO %", 100.0),
    ("goodput_per_s", "good/s", 1.0),
)
# dropped in this order, while the table is wider than WIDTH (summary.csv keeps every column)
DROP_FIRST = ("wait", "good/s", "tasks/s", "mean", "util %")


def _decimals(value: float) -> int:
    """Three significant figures for the usual magnitudes, never an exponent."""
    a = abs(value)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def _cell(value: float, half: float) -> str:
    if not math.isfinite(value):
        return "-"
    d = _decimals(value)
    return f"{value:.{d}f}" + (f"±{half:.{d}f}" if math.isfinite(half) else "")


def _table(header: list[str], rows: list[list[str]], left: int) -> str:
    """Columns separated by two spaces; the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        out = [c.ljust(w) if k < left else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a text table: ``mean±half-width`` per figure, with its unit.

    Latency, its percentiles and the wait are in ms, throughput in tasks/s,
    utilization and SLO attainment in percent; ± is the half-width of the 95%
    confidence interval over replications (left out with one replication).
    """
    if summary.empty:
        return "(no measured tasks)"
    shown = [(c, h, s) for c, h, s in SHOWN if c in summary.columns]
    by_class = "class" in summary.columns  # per-class rows (see sim.results.per_replication)
    keys = ["strategy", "model"] + (["class"] if by_class else [])
    header = keys + ["tasks"] + [h for _, h, _ in shown]
    rows = []
    for k in range(len(summary)):
        r = summary.iloc[k]
        cells = [str(r[key]) for key in keys] + [f"{int(r['count']):,}"]
        for col, _, scale in shown:
            half = r.get(f"{col}_ci", math.nan)
            cells.append(_cell(float(r[col]) * scale, float(half) * scale))
        rows.append(cells)
    table = _table(header, rows, left=len(keys))
    for head in DROP_FIRST:
        if max(map(len, table.splitlines())) <= WIDTH or head not in header:
            continue
        k = header.index(head)
        header = header[:k] + header[k + 1 :]
        rows = [r[:k] + r[k + 1 :] for r in rows]
        table = _table(header, rows, left=len(keys))
    reps = int(summary["replications"].max()) if "replications" in summary.columns else 1
    note = (
        f"± is the 95% confidence half-width over {reps} replications"
        if reps > 1
        else "one replication: no confidence intervals (run more with --replications)"
    )
    timed = [h for h in ("mean", "p50", "p95", "p99", "wait") if h in header]
    units = f"{', '.join(timed)} of latency in ms" if timed else ""
    units = units.replace(", wait of latency", " of latency, wait")
    return f"{units}; {note}\n{table}"


def format_loads(loads: dict[str, float]) -> list[tuple[str, str]]:
    """``(level, line)`` per model pool: level is ``ok``, ``warning`` (>= 0.95) or ``overload`` (>= 1)."""
    out = []
    for model, rho in loads.items():
        text = f"offered load of model {model}: {rho:.3f}"
        if rho >= LOAD_REFUSE:
            out.append(
                (
                    "overload",
                    text + " (>= 1: its instances cannot keep up; latency grows all run long)",
                )
            )
        elif rho >= LOAD_WARN:
            out.append(
                (
                    "warning",
                    text + f" (>= {LOAD_WARN}: near saturation; long latencies, slow to settle)",
                )
            )
        else:
            out.append(("ok", text))
    return out


# (file name, sim.plots function, the frame it draws, options)
PLOTS: tuple[tuple[str, str, Callable[[Any], pd.DataFrame], dict[str, Any]], ...] = (
    ("latency_tail.png", "plot_latency_tail", lambda res: res.tasks, {"panel_by": "model"}),
    ("latency_cdf.png", "plot_latency_cdf", lambda res: res.tasks, {"log_x": True, "panel_by": "model"}),
    (
        "latency_percentiles.png",
        "plot_latency_percentiles",
        lambda res: overall_rows(res.summary),
        {},
    ),
    ("utilization.png", "plot_utilization", lambda res: res.instances, {}),
)


def write_results(res, out: Path, *, plots: bool, fmt: str = "auto") -> bool | None:
    """Print the summary, write the tables (and plots) into ``out`` and list them.

    Returns whether a plot failed, or ``None`` when the tables could not be written."""
    print(format_summary(res.summary))
    try:
        paths = dict(res.save(out, fmt))
    except OSError as e:
        print(f"error: cannot write results to {out}: {e}", file=sys.stderr)
        return None
    failed = False
    if plots:
        plot_paths, failed = draw_plots(res, out)
        paths.update(plot_paths)
    print(f"results in {out.resolve()}/:")
    for name, p in paths.items():
        print(f"  {name:22s} {Path(p).name}")
    return failed


def draw_plots(res, out: Path) -> tuple[dict, bool]:
    """Draw the plots of :mod:`sim.plots`; returns (paths, any failed)."""
    paths, failed = {}, False
    for fname, func, frame, options in PLOTS:
        try:
            paths[fname.removesuffix(".png")] = getattr(plots, func)(frame(res), out / fname, **options)
        except Exception as e:  # a plot must not hide the tables already written
            log.debug("plot %s failed", fname, exc_info=True)
            print(f"error: plot {fname} failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
    return paths, failed
