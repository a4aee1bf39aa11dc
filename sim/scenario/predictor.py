"""The ``predictor`` section: mode, priors, regression features, a lookup table inline or from
a file (YAML, JSON or CSV)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scheduler import PREDICT_MODES, SpecError, parse_lookup_table
from scheduler.core.regression import check_features, check_forgetting

from .checks import check_keys, integer, number, plain, resolve_file
from .keys import PREDICTOR_KEYS


def parse_predictor(value: Any, models: Mapping, base_dir: Path) -> tuple[dict, dict | None]:
    check_keys("predictor", value, PREDICTOR_KEYS)
    mode = value.get("mode", "online")
    if mode not in PREDICT_MODES:
        raise SpecError("predictor.mode", mode, "one of " + ", ".join(PREDICT_MODES))
    out: dict[str, Any] = {"mode": mode}
    for key in ("prior_mean_ms", "prior_std_ms"):
        if key in value:
            out[key] = number(f"predictor.{key}", value[key], positive=False)
    if "min_samples" in value:
        out["min_samples"] = integer("predictor.min_samples", value["min_samples"], 1)
    if "features" in value:
        out["features"] = list(check_features(value["features"], "predictor.features"))
    if "forgetting" in value:
        out["forgetting"] = check_forgetting(value["forgetting"], "predictor.forgetting")
    if "residual" in value:  # false: running tasks count down instead of their residual life
        if not isinstance(value["residual"], bool):
            raise SpecError("predictor.residual", value["residual"], "true or false")
        out["residual"] = value["residual"]
    if "table" in value and "file" in value:
        raise SpecError("predictor.file", value["file"], "either predictor.table or predictor.file, not both")
    table = None
    if "table" in value:
        parse_lookup_table(value["table"], "predictor.table")
        table, out["table"] = plain(value["table"]), plain(value["table"])
        where = "predictor.table"
    elif "file" in value:
        p = resolve_file("predictor.file", value["file"], base_dir)
        out["file"] = str(p)
        table = read_lookup_table(p, "predictor.file")
        parse_lookup_table(table, f"predictor.file ({p.name})")
        where = "predictor.file"
    if table is not None:
        for m in table:
            if m not in models:
                raise SpecError(f"{where}.{m}", m, f"a declared model; models: {', '.join(models)}")
    elif mode == "lookup_table":
        raise SpecError(
            "predictor.table",
            None,
            "a lookup table (predictor.table or predictor.file) for mode lookup_table",
        )
    return out, table


def read_lookup_table(path: Path, where: str) -> dict:
    """A lookup table from YAML/JSON (the inline form) or CSV (``model, [instance,] mean_ms, std_ms``)."""
    if path.suffix.lower() != ".csv":
        try:
            table = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise SpecError(
                where, str(path), f"a YAML or JSON mapping of model to {{mean_ms, std_ms}} ({e})"
            ) from None
        return plain(table) if isinstance(table, Mapping) else table
    df = pd.read_csv(path, skipinitialspace=True, comment="#")
    if not {"model", "mean_ms"} <= set(df.columns):
        raise SpecError(
            where, f"columns {list(df.columns)}", "CSV columns model, mean_ms[, std_ms][, instance]"
        )
    out: dict = {}
    for row in df.to_dict("records"):
        model = str(row["model"])
        entry = {"mean_ms": row["mean_ms"], "std_ms": row.get("std_ms", 0.0)}
        inst = row.get("instance")
        if inst is None or (isinstance(inst, float) and math.isnan(inst)):
            out.setdefault(model, {}).update(entry)
        else:
            out.setdefault(model, {}).setdefault("instances", {})[str(inst)] = entry
    for entry in out.values():
        if "mean_ms" not in entry:  # only per-instance rows: the model mean is their average
            per = list(entry["instances"].values())
            entry["mean_ms"] = float(np.mean([e["mean_ms"] for e in per]))
            entry["std_ms"] = float(np.mean([e["std_ms"] for e in per]))
    return plain(out)
