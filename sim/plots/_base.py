"""What every plot shares: column checks, an Agg figure, saving, summary-column lookup.

matplotlib is imported lazily, inside the functions, and only its
object-oriented API is used (``Figure`` drawn by the Agg canvas): nothing
touches pyplot's global state or the user's interactive backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..results import ALL_MODELS  # the summary's row for all models together

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


def _new_figure(width: float = 7.0, height: float = 4.5, *, constrained: bool = False):
    """A figure on the Agg canvas; ``constrained`` lays it out with room for legends outside the axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # local: matplotlib takes ~0.4 s to import
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(out, format="png")
    return out


def _panels(df, panel_by: str | None) -> list[tuple[str | None, Any]]:
    """``[(value, rows)]`` per value of ``panel_by`` when the table has several, else ``[(None, df)]``."""
    if panel_by is None or panel_by not in df.columns:
        return [(None, df)]
    col = df[panel_by]
    order = list(col.cat.categories) if hasattr(col, "cat") else list(dict.fromkeys(col))  # scenario order
    values = [v for v in order if (col == v).any()]
    if len(values) < 2:
        return [(None, df)]
    return [(str(v), df[df[panel_by] == v]) for v in values]


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
