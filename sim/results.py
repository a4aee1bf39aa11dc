"""Results of a simulation: the result object, metrics per replication, the summary with
confidence intervals, and a Little's-law check (the frames they start from are built by
:mod:`sim.frames`).

Warm-up tasks (the first ``warmup_tasks`` arrivals of each replication) are
**excluded** from the task frame and so from every statistic.  Each
(strategy, replication) run is observed over one window, from the arrival of
its first measured task to the last finish of a measured task; throughput,
goodput and utilisation use that window.  Utilisation of an instance is its
busy time inside the window (warm-up tasks still in service count) divided by
``replicas * window``; for a group of instances it is the total busy time
over the total capacity.

Summary columns (one row per strategy, ``model == "all"``, and, with several
models, one row per strategy and model): ``strategy, model, replications,
count`` (measured tasks over all replications), then for each metric below
its mean over replications and ``<metric>_ci``, the half-width of a 95%
Student-t confidence interval (NaN with one replication):
``throughput_per_s, latency_mean_ms, latency_p50_ms, latency_p95_ms,
latency_p99_ms, wait_mean_ms, wait_p50_ms, wait_p95_ms, wait_p99_ms,
service_mean_ms, utilization, prediction_mae_ms, prediction_bias_ms`` and,
when ``slo_ms`` is set, ``slo_attainment, goodput_per_s``.
``prediction_bias_ms`` is the mean of ``predicted_ms - service_ms`` (positive:
over-prediction); ``prediction_mae_ms`` the mean of its absolute value.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from .io import write_tables
from .scenario import Scenario

log = logging.getLogger(__name__)

ALL_MODELS = "all"
ALL_CLASSES = "all"
CONFIDENCE = 0.95


# -- Student t, no scipy ---------------------------------------------------------------
def _t_central_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (closed form, A&S 26.7.3)."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for j in range(1, df // 2):
            term *= (2 * j - 1) / (2 * j) * c2
            total += term
        return s * total
    if df == 1:
        return 2.0 * theta / math.pi
    term = total = math.cos(theta)
    for j in range(1, (df - 1) // 2):
        term *= (2 * j) / (2 * j + 1) * c2
        total += term
    return 2.0 / math.pi * (theta + s * total)


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` degrees of freedom, by bisection."""
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must be in (0.5, 1), got {p}")
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df}")
    df = int(df)
    mass = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while _t_central_mass(hi, df) < mass:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_mass(mid, df) < mass:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def ci_half_width(values: Sequence[float], confidence: float = CONFIDENCE) -> float:
    """Half-width of the Student-t confidence interval of the mean; NaN below two finite values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan
    return t_quantile(0.5 + confidence / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)


def quantile_half_width(values: Sequence[float], q: float, confidence: float = CONFIDENCE) -> float:
    """Half-width (in the values' unit) of a distribution-free confidence interval of the
    ``q``-th percentile (0-100) of one sample: the order statistics at ranks
    ``n p -+ z sqrt(n p (1 - p))``, half their distance.  NaN below 10 values."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    n = x.size
    if n < 10:
        return math.nan
    p = q / 100.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    spread = z * math.sqrt(n * p * (1.0 - p))
    lo = int(max(math.floor(n * p - spread) - 1, 0))
    hi = int(min(math.ceil(n * p + spread) - 1, n - 1))
    return float(x[hi] - x[lo]) / 2.0


# -- summary --------------------------------------------------------------------------------
_PCTS = (50, 95, 99)


def _metrics(
    g: pd.DataFrame, span_ms: float, target: np.ndarray | None, busy: float, capacity: float
) -> dict:
    lat = g["latency_ms"].to_numpy()
    wait = g["wait_ms"].to_numpy()
    err = g["predicted_ms"].to_numpy() - g["service_ms"].to_numpy()
    n = lat.size
    span_s = span_ms / 1000.0 if span_ms > 0 else math.nan
    out = {"count": n, "throughput_per_s": n / span_s}
    for name, v in (("latency", lat), ("wait", wait)):
        out[f"{name}_mean_ms"] = float(v.mean()) if n else math.nan
        qs = np.percentile(v, _PCTS) if n else [math.nan] * len(_PCTS)
        for p, q in zip(_PCTS, qs):
            out[f"{name}_p{p}_ms"] = float(q)
    out["service_mean_ms"] = float(g["service_ms"].mean()) if n else math.nan
    out["utilization"] = busy / capacity if capacity > 0 else math.nan
    out["prediction_mae_ms"] = float(np.abs(err).mean()) if n else math.nan
    out["prediction_bias_ms"] = float(err.mean()) if n else math.nan
    if target is not None:  # latency target per task; NaN: its class has none (left out)
        has = np.isfinite(target)
        m = int(np.count_nonzero(has))
        ok = int(np.count_nonzero(lat[has] <= target[has]))
        out["slo_attainment"] = ok / m if m else math.nan
        out["goodput_per_s"] = ok / span_s if m else math.nan
    return out


def per_replication(
    tasks: pd.DataFrame, instances: pd.DataFrame, slo_ms: float | None, slo: dict | None = None
) -> pd.DataFrame:
    """Metrics of every (strategy, replication), overall (``model == "all"``), per model and,
    when the frame has a ``class`` column with several classes, per class (``class`` column;
    ``"all"`` on the overall and per-model rows).  ``slo`` gives per-class latency targets
    (``{class: {latency_ms}}``), ``slo_ms`` the target of every other class."""
    rows = []
    several = tasks["model"].nunique() > 1 if len(tasks) else False
    by_class = "class" in tasks.columns
    several_classes = by_class and _classes_split_models(tasks)
    target = slo_targets(tasks, slo_ms, slo)
    inst = instances.copy()
    inst["capacity"] = inst["replicas"] * inst["span_ms"]
    for (strategy, rep), g in tasks.groupby(["strategy", "replication"], observed=True, sort=True):
        span = float(g["finish_ms"].max() - g["arrival_ms"].min())
        ig = inst[(inst["strategy"] == strategy) & (inst["replication"] == rep)]
        groups = [(ALL_MODELS, ALL_CLASSES, g, ig)]
        if several:
            groups += [
                (m, ALL_CLASSES, gm, ig[ig["model"] == m])
                for m, gm in g.groupby("model", observed=True, sort=True)
            ]
        if several_classes:  # a class may span models: utilisation is not split by class
            groups += [
                (ALL_MODELS, c, gc, ig.iloc[0:0]) for c, gc in g.groupby("class", observed=True, sort=True)
            ]
        for model, cls, gm, igm in groups:
            row = {"strategy": strategy, "model": model, "replication": rep}
            if by_class:  # a model's row names its class when all its tasks share one
                one = list(gm["class"].unique()) if model != ALL_MODELS else []
                row["class"] = str(one[0]) if len(one) == 1 else cls
            t = None if target is None else target[tasks.index.get_indexer(gm.index)]
            row.update(_metrics(gm, span, t, float(igm["busy_ms"].sum()), float(igm["capacity"].sum())))
            rows.append(row)
    return pd.DataFrame(rows)


def _classes_split_models(tasks: pd.DataFrame) -> bool:
    """Several classes, and not one per model (then the per-model rows already say it all)."""
    if not len(tasks):
        return False
    n_cls = tasks["class"].nunique()
    pairs = len(tasks.groupby(["model", "class"], observed=True))
    return n_cls > 1 and not (pairs == n_cls == tasks["model"].nunique())


def overall_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows over all models and all classes (one per strategy)."""
    keep = summary["model"] == ALL_MODELS
    if "class" in summary.columns:
        keep &= summary["class"] == ALL_CLASSES
    return summary[keep]


def slo_targets(tasks: pd.DataFrame, slo_ms: float | None, slo: dict | None) -> np.ndarray | None:
    """Each task's latency target (NaN: none), from its class; ``None`` when no target is set."""
    if not slo:
        return None if slo_ms is None else np.full(len(tasks), float(slo_ms))
    default = math.nan if slo_ms is None else float(slo_ms)
    if "class" not in tasks.columns:
        return np.full(len(tasks), default)
    per = {c: e["latency_ms"] for c, e in slo.items()}
    return tasks["class"].astype(object).map(per).fillna(default).to_numpy(dtype=float)


def summarize(reps: pd.DataFrame, strategies: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean over replications and 95% CI half-width (``<metric>_ci``) per strategy and model."""
    if reps.empty:
        return pd.DataFrame(columns=["strategy", "model", "replications", "count"])
    keys = ["strategy", "model"] + (["class"] if "class" in reps.columns else [])
    metrics = [c for c in reps.columns if c not in (*keys, "replication", "count")]
    rows = []
    for group, g in reps.groupby(keys, sort=False, observed=True):
        row = dict(zip(keys, group))
        row["replications"] = int(g["replication"].nunique())
        row["count"] = int(g["count"].sum())
        for m in metrics:
            v = g[m].to_numpy(dtype=float)
            row[m] = float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
            row[f"{m}_ci"] = ci_half_width(v)
        rows.append(row)
    out = pd.DataFrame(rows)
    order = list(strategies) if strategies is not None else list(dict.fromkeys(out["strategy"]))
    models = [ALL_MODELS] + sorted(m for m in out["model"].unique() if m != ALL_MODELS)
    out["_s"] = out["strategy"].map({s: k for k, s in enumerate(order)})
    out["_m"] = out["model"].map({m: k for k, m in enumerate(models)})
    order_keys = ["_s", "_m"]
    if "class" in out.columns:  # overall and per-model rows first, then per class
        classes = [ALL_CLASSES] + sorted(c for c in out["class"].unique() if c != ALL_CLASSES)
        out["_c"] = out["class"].map({c: k for k, c in enumerate(classes)})
        order_keys.append("_c")
    return out.sort_values(order_keys, kind="stable").drop(columns=order_keys).reset_index(drop=True)


# -- Little's law ---------------------------------------------------------------------------
def littles_law(tasks: pd.DataFrame) -> pd.DataFrame:
    """Both sides of L = lambda * W per (strategy, replication), measured independently.

    The window runs from the first to the last arrival of the frame.
    ``L_time_average`` is the time-average number of tasks in the system over
    the window, from the arrival and finish events, each sojourn clipped to the
    window; ``lambda_W`` is the arrival rate over the window times the mean of
    the recorded ``latency_ms`` column.  The two differ only by edge effects of
    order (mean latency / window), so a recording error (latencies that do not
    match the event times, tasks missing from the frame) shows up as a gap.
    ``relative_difference`` is ``|L - lambda W| / lambda W``.
    """
    rows = []
    for (strategy, rep), g in tasks.groupby(["strategy", "replication"], observed=True, sort=True):
        a = g["arrival_ms"].to_numpy()
        f = g["finish_ms"].to_numpy()
        t0, t1 = float(a.min()), float(a.max())
        span = t1 - t0
        inside = np.clip(np.minimum(f, t1) - a, 0.0, None)  # each sojourn, clipped to the window
        lam = a.size / span if span > 0 else math.nan
        w = float(g["latency_ms"].mean())
        L = float(inside.sum()) / span if span > 0 else math.nan
        lw = lam * w
        rows.append(
            {
                "strategy": strategy,
                "replication": rep,
                "count": int(a.size),
                "span_ms": span,
                "arrival_rate_per_ms": lam,
                "mean_latency_ms": w,
                "L_time_average": L,
                "lambda_W": lw,
                "relative_difference": abs(L - lw) / lw if lw > 0 else math.nan,
            }
        )
    return pd.DataFrame(rows)


# -- the result object -----------------------------------------------------------------------
@dataclass
class Results:
    """What :func:`sim.run` returns.

    ``tasks``: per-task frame (docs/scenarios.md columns, warm-up excluded);
    ``summary``: per strategy (and model) with 95% CI half-widths;
    ``instances``: per-instance utilisation; ``replications``: the per-replication
    metrics behind the summary; ``scenario``: the validated scenario run.
    """

    scenario: Scenario
    tasks: pd.DataFrame
    summary: pd.DataFrame
    instances: pd.DataFrame
    replications: pd.DataFrame
    wall_s: float = math.nan
    simulated_tasks: int = 0
    files: dict = field(default_factory=dict)

    def littles_law(self) -> pd.DataFrame:
        return littles_law(self.tasks)

    def save(self, out_dir: str | Path, format: str = "auto") -> dict[str, Path]:
        """Write the tasks, summary, instances and replications tables; return their paths.

        ``format``: ``"auto"`` (Parquet for tables of more than a million rows,
        CSV otherwise), ``"parquet"``, ``"csv"`` or ``"both"`` (:mod:`sim.io`).
        CSV floats are written with 6 decimals (nanosecond resolution for ms values).
        """
        paths = write_tables(
            {
                "tasks": self.tasks,
                "summary": self.summary,
                "instances": self.instances,
                "replications": self.replications,
            },
            out_dir,
            format,
        )
        self.files.update(paths)
        return paths
