"""Do the simulator and live mode rank the strategies the same?

A simulator earns its keep when it picks the strategy live mode would pick.
:func:`rankings` orders the strategies by a latency statistic (lower is better)
in each world and gives Kendall's tau between the two orders (tau-b, which
allows ties: 1 the same order, -1 the reverse) and whether the winner is the
same.  Pure pandas and arithmetic: used by ``sim twin`` and ``sim calibrate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..results import ALL_MODELS

#: (column of the summary, short name) of the statistics ranked
RANK_BY = (("latency_mean_ms", "mean"), ("latency_p95_ms", "p95"))
RANKING_COLUMNS = ("metric", "live_order", "sim_order", "kendall_tau", "same_winner", "live", "sim")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two paired sequences (NaN when either is constant or shorter than 2)."""
    n = len(x)
    if n != len(y):
        raise ValueError(f"kendall_tau: {n} and {len(y)} values; the sequences must pair up")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom > 0 else math.nan


def _values(summary: pd.DataFrame, strategies: Sequence[str], column: str) -> list[float]:
    rows = summary[summary["model"] == ALL_MODELS].assign(label=lambda f: f["strategy"].astype(str))
    by = rows.set_index("label")[column]
    return [float(by[s]) if s in by.index else math.nan for s in strategies]


def _order(strategies: Sequence[str], values: Sequence[float]) -> list[str]:
    return [s for _, s in sorted(zip(values, strategies), key=lambda p: (math.isnan(p[0]), p[0]))]


def rankings(
    live_summary: pd.DataFrame, sim_summary: pd.DataFrame, strategies: Sequence[str]
) -> pd.DataFrame:
    """One row per statistic (``mean``, ``p95`` of latency, all models together): each world's
    order (best first), Kendall's tau between the two, whether the winner is the same, and the
    values themselves (``live``, ``sim``: dicts strategy -> ms)."""
    rows = []
    for column, name in RANK_BY:
        live = _values(live_summary, strategies, column)
        simulated = _values(sim_summary, strategies, column)
        lo, so = _order(strategies, live), _order(strategies, simulated)
        rows.append(
            (
                name,
                lo,
                so,
                kendall_tau(live, simulated),
                bool(lo and so and lo[0] == so[0]),
                dict(zip(strategies, live)),
                dict(zip(strategies, simulated)),
            )
        )
    return pd.DataFrame(rows, columns=list(RANKING_COLUMNS))


def format_rankings(ranking: pd.DataFrame) -> str:
    """The orders side by side, tau and the winner's verdict, one block per statistic."""
    lines = []
    for r in ranking.itertuples():
        lines.append(
            f"ranking by {r.metric} latency (best first): Kendall's tau {r.kendall_tau:+.2f}, "
            + ("same winner" if r.same_winner else "DIFFERENT winner")
        )
        width = max(len(s) for s in r.live_order) if r.live_order else 8
        lines.append(f"  {'rank':>4}  {'live':<{width}} {'ms':>8}    {'simulated':<{width}} {'ms':>8}")
        for k, (a, b) in enumerate(zip(r.live_order, r.sim_order), start=1):
            lines.append(f"  {k:>4}  {a:<{width}} {r.live[a]:8.1f}    {b:<{width}} {r.sim[b]:8.1f}")
    return "\n".join(lines)
