"""Live against simulated latency, per strategy and percentile: the twin's comparison table.

:func:`compare` gives one row per (strategy, percentile) with the relative
difference ``(sim - live) / live``, the target, and a verdict that says
``inconclusive`` when the run was too short to tell; :func:`format_comparison`
and :func:`targets_text` print it.  Used by ``sim twin`` and ``sim calibrate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from ..results import ALL_MODELS, quantile_half_width

PERCENTILES = ("p50", "p95", "p99")
#: largest |relative difference| accepted per percentile (None: reported only)
TARGETS = {"p50": 0.10, "p95": 0.15, "p99": None}
COMPARISON_COLUMNS = (
    "strategy",
    "percentile",
    "live_ms",
    "sim_ms",
    "relative_difference",
    "target",
    "within_target",
    "live_ci_ms",
    "sim_ci_ms",
    "uncertainty",
    "verdict",
)


def compare(
    live_summary: pd.DataFrame,
    sim_summary: pd.DataFrame,
    strategies: Sequence[str],
    live_tasks: pd.DataFrame | None = None,
    sim_tasks: pd.DataFrame | None = None,
    targets: Mapping[str, float | None] = TARGETS,
) -> pd.DataFrame:
    """One row per (strategy, percentile): live and simulated latency, ``(sim - live) / live``,
    the target, whether the difference is within it, and a verdict (all models together).

    With the per-task tables, each percentile gets the half-width of its 95% confidence
    interval (``live_ci_ms``, ``sim_ci_ms``, from order statistics) and ``uncertainty``, the
    relative half-width of the difference.  ``targets``: percentile (``p50``, ``p90``, ...) ->
    largest accepted ``|relative difference|`` or None (reported only); its keys are the rows.  The verdict is ``met`` or ``NOT met``, or
    ``inconclusive`` when the uncertainty is wider than the target: too few tasks to tell.
    """
    rows = []
    for label in strategies:
        lv = live_summary[
            (live_summary["strategy"].astype(str) == label) & (live_summary["model"] == ALL_MODELS)
        ]
        sm = sim_summary[
            (sim_summary["strategy"].astype(str) == label) & (sim_summary["model"] == ALL_MODELS)
        ]
        for p, target in targets.items():
            col = f"latency_{p}_ms"
            live_ms = float(lv[col].iloc[0]) if len(lv) else math.nan
            sim_ms = float(sm[col].iloc[0]) if len(sm) else math.nan
            rel = (sim_ms - live_ms) / live_ms if live_ms > 0 else math.nan
            live_ci, sim_ci = (_half_width(t, label, p) for t in (live_tasks, sim_tasks))
            unc = math.hypot(live_ci / live_ms, sim_ci / sim_ms) if live_ms > 0 and sim_ms > 0 else math.nan
            within = (
                (abs(rel) <= target)
                if target is not None and math.isfinite(rel)
                else (False if target is not None else None)
            )
            if target is None:
                verdict = "no target"
            elif math.isfinite(unc) and unc > target:
                verdict = "inconclusive"
            else:
                verdict = "met" if within else "NOT met"
            rows.append(
                (
                    label,
                    p,
                    live_ms,
                    sim_ms,
                    rel,
                    math.nan if target is None else target,
                    within,
                    live_ci,
                    sim_ci,
                    unc,
                    verdict,
                )
            )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def _half_width(tasks: pd.DataFrame | None, label: str, p: str) -> float:
    if tasks is None or len(tasks) == 0:
        return math.nan
    lat = tasks.loc[tasks["strategy"].astype(str) == label, "latency_ms"]
    return quantile_half_width(lat.to_numpy(dtype=float), float(p[1:]))


def format_comparison(comparison: pd.DataFrame) -> str:
    """Side by side, per strategy: live and simulated p50, p95, p99 (ms) and the relative difference."""
    table: dict[str, list] = {"strategy": []}
    for p in dict.fromkeys(comparison["percentile"]):
        for head in (f"{p} live", f"{p} sim", f"{p} diff"):
            table[head] = []
    for label, g in comparison.groupby("strategy", sort=False):
        table["strategy"].append(label)
        for _, r in g.iterrows():
            p = r["percentile"]
            mark = {"met": " ok", "NOT met": " !!", "inconclusive": " ??"}.get(_verdict(r), "")
            table[f"{p} live"].append(f"{r['live_ms']:.1f}")
            table[f"{p} sim"].append(f"{r['sim_ms']:.1f}")
            table[f"{p} diff"].append(f"{100 * r['relative_difference']:+.1f}%{mark}")
    return pd.DataFrame(table).to_string(index=False)


def _verdict(row) -> str:
    """A comparison row's verdict (tables from before verdicts: from ``within_target``)."""
    if "verdict" in row and isinstance(row["verdict"], str):
        return row["verdict"]
    if row["within_target"] is None or pd.isna(row["within_target"]):
        return "no target"
    return "met" if row["within_target"] else "NOT met"


def targets_text(comparison: pd.DataFrame, targets: Mapping[str, float | None] = TARGETS) -> str:
    """Whether every target was met; the misses, and the comparisons too noisy to decide."""
    verdicts = comparison.apply(_verdict, axis=1)
    goal = ", ".join(f"{p} within {100 * t:.0f}%" for p, t in targets.items() if t is not None)
    miss = comparison[verdicts == "NOT met"]
    unsure = comparison[verdicts == "inconclusive"]
    if miss.empty and unsure.empty:
        return f"targets ({goal}): met for every strategy"
    parts = []
    if not miss.empty:
        parts.append(
            "NOT met for "
            + "; ".join(
                f"{r.strategy} {r.percentile} {100 * r.relative_difference:+.1f}%" for r in miss.itertuples()
            )
        )
    if not unsure.empty:
        parts.append(
            "inconclusive for "
            + "; ".join(
                f"{r.strategy} {r.percentile} {100 * r.relative_difference:+.1f}% ±{100 * r.uncertainty:.0f}%"
                for r in unsure.itertuples()
            )
            + " (the 95% intervals are wider than the target: too few tasks to tell; run more with --tasks)"
        )
    return f"targets ({goal}): " + "; ".join(parts)
