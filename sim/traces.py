"""Reading public LLM request traces into a replayable workload.

Formats (``workload.arrival: {process: trace, file, format}``):

* ``csv``: ``arrival_ms, model[, service_ms][, input_tokens][, output_tokens]``
  (the project's own format);
* ``azure_llm``: Azure LLM inference traces 2023 and 2024,
  ``TIMESTAMP, ContextTokens, GeneratedTokens``, and the 2025 multimodal one
  with ``NumImages``; ``TIMESTAMP`` is an absolute date-time;
* ``burstgpt``: ``Timestamp`` (s), ``Model``, ``Request tokens``, ``Response
  tokens``, ``Total tokens``, ``Log Type``; a row whose ``Response tokens`` is
  0 is a failed request, dropped unless ``keep_failed: true``;
* ``mooncake``: JSON lines with ``timestamp`` (ms), ``input_length``,
  ``output_length``, ``hash_ids``;
* ``auto`` (the default) tells them apart by the CSV header or the first
  JSON object's keys.

Files are read in chunks (pandas' C parser, only the needed columns, numeric
dtypes), so a million-row trace loads in seconds and no Python object is kept
per row.  Rows are sorted by time (stably) if the file is not.  Arrival
times are ms from the trace's first row (``csv``: as recorded); ``start_s``
and ``duration_s`` cut a window of that time axis (trace seconds), which then
starts at 0, and ``max_tasks`` keeps its first rows; times are divided by
``speedup`` (2: twice as fast).  Token counts become the task
metadata ``input_tokens``, ``output_tokens`` and ``images``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scheduler import SpecError

log = logging.getLogger(__name__)

FORMATS = ("csv", "azure_llm", "burstgpt", "mooncake")
TRACE_OPTIONS = ("format", "speedup", "start_s", "duration_s", "max_tasks", "models", "keep_failed")
CHUNK_ROWS = 250_000

# what each format requires (CSV header names or JSON keys) and may carry
REQUIRED = {
    "csv": ("arrival_ms", "model"),
    "azure_llm": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Model", "Request tokens", "Response tokens"),
    "mooncake": ("timestamp", "input_length", "output_length"),
}
OPTIONAL = {
    "csv": ("service_ms", "input_tokens", "output_tokens"),
    "azure_llm": ("NumImages",),
    "burstgpt": ("Total tokens", "Log Type"),
    "mooncake": ("hash_ids",),
}
# numeric columns -> metadata names
TOKEN_COLUMNS = {
    "csv": {"input_tokens": "input_tokens", "output_tokens": "output_tokens"},
    "azure_llm": {"ContextTokens": "input_tokens", "GeneratedTokens": "output_tokens", "NumImages": "images"},
    "burstgpt": {"Request tokens": "input_tokens", "Response tokens": "output_tokens"},
    "mooncake": {"input_length": "input_tokens", "output_length": "output_tokens"},
}


def describe(fmt: str) -> str:
    kind = "JSON lines with keys" if fmt == "mooncake" else "CSV with columns"
    opt = f"[, {', '.join(OPTIONAL[fmt])}]" if OPTIONAL[fmt] else ""
    return f"{fmt} ({kind} {', '.join(REQUIRED[fmt])}{opt})"


@dataclass(frozen=True)
class RawTrace:
    """A trace file's rows, sorted by time: arrival (ms from the first row), the trace's own
    model column (codes into ``sources``) and token counts, before model mapping."""

    format: str
    arrival_ms: np.ndarray
    service_ms: np.ndarray | None
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    source: np.ndarray | None = None  # int32 codes into ``sources``
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.arrival_ms.size)


# -- detection --------------------------------------------------------------------------
def _first_line(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()
    return ""


def _seen(path: Path) -> tuple[str, list[str]]:
    """``("json", keys)`` or ``("csv", header names)`` of a file's first line."""
    line = _first_line(path)
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return "json", []
        return "json", list(obj) if isinstance(obj, dict) else []
    return "csv", [c.strip() for c in line.split(",")]


def detect_format(path: Path, where: str = "workload.arrival.file") -> str:
    """The format of a trace file from its header or first JSON keys; an error lists the known ones."""
    kind, names = _seen(path)
    for fmt in FORMATS:
        if (fmt == "mooncake") == (kind == "json") and set(REQUIRED[fmt]) <= set(names):
            return fmt
    what = "JSON keys" if kind == "json" else "a CSV header"
    raise SpecError(
        where,
        f"{path.name} with {what} {names[:8]}",
        "a trace in a known format: " + "; ".join(describe(f) for f in FORMATS),
    )


# -- reading ---------------------------------------------------------------------------
def read_raw(
    path: Path, fmt: str = "auto", *, keep_failed: bool = False, where: str = "workload.arrival.file"
) -> RawTrace:
    """Read a whole trace file (any format) into arrays sorted by time."""
    if fmt == "auto":
        fmt = detect_format(path, where)
    if fmt not in FORMATS:
        raise SpecError("workload.arrival.format", fmt, "one of auto, " + ", ".join(FORMATS))
    kind, names = _seen(path)
    missing = [c for c in REQUIRED[fmt] if c not in names]
    if missing or (fmt == "mooncake") != (kind == "json"):
        try:
            looks = f"{path.name}, which looks like {detect_format(path, where)}"
        except SpecError:
            looks = path.name
        seen = f"JSON keys {names[:8]}" if kind == "json" else f"columns {names[:8]}"
        raise SpecError(
            where,
            looks,
            f"a {describe(fmt)} file, as workload.arrival.format names (the file has {seen})",
        )
    wanted = [c for c in REQUIRED[fmt] + OPTIONAL[fmt] if c in names and c not in ("hash_ids", "Log Type")]
    if fmt == "csv":
        extra = [c for c in names if c not in REQUIRED[fmt] + OPTIONAL[fmt]]
        if extra:
            raise SpecError(where, f"columns {names}", f"a {describe('csv')} file; unknown: {extra}")
    parts = _json_chunks(path, wanted, where) if fmt == "mooncake" else _csv_chunks(path, fmt, wanted, where)
    cols, sources = _concat(parts, wanted)
    if not cols or cols[wanted[0]].size == 0:
        raise SpecError(where, f"{path.name} with no rows", f"a non-empty {describe(fmt)} file")
    time_col = REQUIRED[fmt][0]
    t = cols.pop(time_col)
    if fmt == "burstgpt":
        t = t * 1000.0  # seconds
    elif fmt == "azure_llm":  # microseconds since the epoch: subtract in integers, keep the precision
        t = (t - t.min()).astype(float) / 1000.0
    model_col = {"csv": "model", "burstgpt": "Model"}.get(fmt)
    source = cols.pop(model_col) if model_col else None
    service = cols.pop("service_ms", None)
    tokens = {TOKEN_COLUMNS[fmt][c]: v for c, v in cols.items() if c in TOKEN_COLUMNS[fmt]}
    keep = None
    if fmt == "burstgpt" and not keep_failed:
        keep = tokens["output_tokens"] > 0
        dropped = int(keep.size - np.count_nonzero(keep))
        if dropped:
            log.info(
                "%s: dropped %d failed requests (Response tokens 0; keep_failed: true keeps them)",
                path.name,
                dropped,
            )
    if keep is not None:
        t, source, service = (
            t[keep],
            (source[keep] if source is not None else None),
            (service[keep] if service is not None else None),
        )
        tokens = {k: v[keep] for k, v in tokens.items()}
    if t.size == 0:
        raise SpecError(
            where,
            f"{path.name}: every row was dropped as failed",
            "a trace with successful requests (or keep_failed: true)",
        )
    if np.any(np.diff(t) < 0):
        log.info("trace %s is not sorted by time; sorting it (stable)", path.name)
        order = np.argsort(t, kind="stable")
        t, source = t[order], (source[order] if source is not None else None)
        service = service[order] if service is not None else None
        tokens = {k: v[order] for k, v in tokens.items()}
    origin = 0.0 if fmt == "csv" else t[0]  # the project's own format is replayed as recorded
    return RawTrace(fmt, t - origin, service, tokens, source, sources)


def _csv_chunks(path: Path, fmt: str, wanted: list[str], where: str):
    text_cols = {"model", "Model"}
    # numbers are left to the parser's own inference (fast) and checked per chunk, so a bad
    # value is reported with its line; only the model column is typed (categorical: no
    # Python string per row)
    reader = pd.read_csv(
        path,
        usecols=wanted,
        skipinitialspace=True,
        comment="#",
        chunksize=CHUNK_ROWS,
        dtype={c: "category" for c in wanted if c in text_cols},
        engine="c",
    )
    line = 2
    try:
        for chunk in reader:
            yield _check_chunk(chunk, fmt, where, line)
            line += len(chunk)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SpecError(
            where, f"{path.name} near line {line}", f"a well-formed {describe(fmt)} file ({e})"
        ) from None


def _check_chunk(chunk: pd.DataFrame, fmt: str, where: str, line: int) -> dict[str, np.ndarray]:
    out: dict[str, Any] = {}
    for col in chunk.columns:
        s = chunk[col]
        if col in ("model", "Model"):
            if s.isna().any():
                row = int(np.flatnonzero(s.isna().to_numpy())[0])
                raise SpecError(where, f"empty {col} on line {line + row}", f"a {col} on every row")
            out[col] = s
            continue
        if col == "TIMESTAMP":
            ts = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
            if ts.isna().any():
                row = int(np.flatnonzero(ts.isna().to_numpy())[0])
                raise SpecError(
                    where,
                    f"TIMESTAMP={s.iloc[row]!r} on line {line + row}",
                    "a date-time such as 2023-11-16 18:15:46.6805900",
                )
            out[col] = ts.dt.as_unit("us").astype("int64").to_numpy(dtype=np.int64)
            continue
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SpecError(
                where, f"{col}={s.iloc[row]!r} on line {line + row}", f"{col} a number >= 0 on every row"
            )
        out[col] = v
    return out


_JSON_BLOCK = 1 << 24  # bytes of JSON lines scanned at a time


def _json_chunks(path: Path, wanted: list[str], where: str):
    """Mooncake JSON lines, scanned for the wanted numeric keys with a regular expression per
    key over blocks of whole lines (``hash_ids`` and the rest are never parsed).  A block in
    which some line does not yield every key once is parsed line by line to report the line."""
    patterns = [re.compile(rb'"' + re.escape(k.encode()) + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)') for k in wanted]
    line = 1
    rest = b""
    with path.open("rb") as f:
        while True:
            data = f.read(_JSON_BLOCK)
            block = rest + data
            if data:
                cut = block.rfind(b"\n") + 1
                block, rest = block[:cut], block[cut:]
            else:
                rest = b""
            if block.strip():
                n = sum(1 for ln in block.split(b"\n") if ln.strip())
                found = [p.findall(block) for p in patterns]
                if any(len(v) != n for v in found):
                    _json_error(block, wanted, where, path, line)
                try:
                    cols = {k: np.array(v, dtype=np.bytes_).astype(float) for k, v in zip(wanted, found)}
                except ValueError:
                    _json_error(block, wanted, where, path, line)
                if any(not np.all(np.isfinite(v) & (v >= 0)) for v in cols.values()):
                    _json_error(block, wanted, where, path, line)
                yield cols
                line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            if not data:
                return


def _json_error(block: bytes, wanted: list[str], where: str, path: Path, first: int) -> None:
    for k, raw in enumerate(block.split(b"\n")):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise SpecError(
                where, f"{path.name} line {first + k}", f"one JSON object per line ({e})"
            ) from None
        for key in wanted:
            v = obj.get(key) if isinstance(obj, dict) else None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise SpecError(
                    where,
                    f"{key}={v!r} on line {first + k} of {path.name}",
                    f"{key} a number >= 0 on every line",
                )
    raise SpecError(where, f"{path.name} near line {first}", "one JSON object per line with plain numbers")


def _concat(parts, wanted: list[str]) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Join chunk columns; a text column becomes int32 codes into one list of names."""
    acc: dict[str, list] = {c: [] for c in wanted}
    names: dict[str, int] = {}
    for part in parts:
        for c, v in part.items():
            if isinstance(v, pd.Series):  # categorical text: re-code into the global names
                cats = [str(x) for x in v.cat.categories]
                remap = np.array([names.setdefault(x, len(names)) for x in cats], dtype=np.int32)
                codes = v.cat.codes.to_numpy()
                v = remap[codes] if remap.size else codes.astype(np.int32)
            acc[c].append(v)
    out = {c: np.concatenate(v) for c, v in acc.items() if v}
    return out, tuple(names)


# -- options and model mapping ---------------------------------------------------------------
def apply_window(
    raw: RawTrace, speedup: float, start_s: float, duration_s: float | None, max_tasks: int | None
) -> RawTrace:
    """The rows of the window, arrival ms from the window's start divided by ``speedup``."""
    t = raw.arrival_ms
    keep = t >= start_s * 1000.0
    if duration_s is not None:
        keep &= t < (start_s + duration_s) * 1000.0
    idx = np.flatnonzero(keep)
    if max_tasks is not None:
        idx = idx[:max_tasks]
    if idx.size == len(raw) and speedup == 1.0:
        return raw
    return RawTrace(
        raw.format,
        (t[idx] - start_s * 1000.0) / speedup,
        raw.service_ms[idx] if raw.service_ms is not None else None,
        {k: v[idx] for k, v in raw.tokens.items()},
        raw.source[idx] if raw.source is not None else None,
        raw.sources,
    )


def map_models(raw: RawTrace, spec: Any, models: Mapping, rng_seed: int, where: str) -> np.ndarray:
    """Scenario-model codes (int32, index into ``models``) of every row.

    ``spec`` is ``None`` (the trace's model column when it names scenario models,
    else the only scenario model), a model name, a mapping from the trace's
    model names, or ``{mix: {model: probability}}`` drawn with the scenario's seed.
    """
    names = list(models)
    code = {m: k for k, m in enumerate(names)}
    n = len(raw)
    if isinstance(spec, str):
        if spec not in code:
            raise SpecError(where, spec, f"a declared model; models: {', '.join(names)}")
        return np.full(n, code[spec], dtype=np.int32)
    if isinstance(spec, Mapping) and set(spec) == {"mix"}:
        return _mix_codes(spec["mix"], names, n, rng_seed, f"{where}.mix")
    mapping: dict[str, str] = {}
    if spec is not None:
        if not isinstance(spec, Mapping) or not spec:
            raise SpecError(
                where, spec, "a model name, a mapping {trace model: model} or {mix: {model: probability}}"
            )
        for k, v in spec.items():
            if v not in code:
                raise SpecError(f"{where}.{k}", v, f"a declared model; models: {', '.join(names)}")
        mapping = {str(k): str(v) for k, v in spec.items()}
    if raw.source is None:
        if mapping:
            raise SpecError(
                where, spec, f"a model name or {{mix: ...}}: a {raw.format} trace has no model column"
            )
        if len(names) == 1:
            return np.zeros(n, dtype=np.int32)
        raise SpecError(
            where,
            None,
            f"which model the rows become (a {raw.format} trace has no model column): one of {', '.join(names)} or {{mix: {{model: probability}}}}",
        )
    per_source = []
    for s in raw.sources:
        target = mapping.get(s, s if s in code else (names[0] if len(names) == 1 and not mapping else None))
        if target is None:
            raise SpecError(
                where if mapping else "workload.arrival.file",
                f"trace model {s!r}",
                f"models declared under models ({', '.join(names)}), or a mapping in "
                "workload.arrival.models from each trace model to one of them",
            )
        per_source.append(code[target])
    table = np.array(per_source, dtype=np.int32)
    return table[raw.source] if n else np.zeros(0, dtype=np.int32)


def _mix_codes(mix: Any, names: list[str], n: int, seed: int, where: str) -> np.ndarray:
    if not isinstance(mix, Mapping) or not mix:
        raise SpecError(where, mix, "a mapping of model name to probability")
    probs = np.zeros(len(names))
    for m, p in mix.items():
        if m not in names:
            raise SpecError(f"{where}.{m}", p, f"a declared model; models: {', '.join(names)}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 0:
            raise SpecError(f"{where}.{m}", p, "a probability >= 0")
        probs[names.index(m)] = float(p)
    if abs(probs.sum() - 1.0) > 1e-6:
        raise SpecError(where, dict(mix), f"probabilities summing to 1; sum is {probs.sum():g}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x7ACE,)))
    return rng.choice(len(names), size=n, p=probs / probs.sum()).astype(np.int32)


# -- the scenario's trace ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Trace:
    """A trace ready to replay: arrivals (ms), scenario models, sizes if recorded, token counts,
    and the trace's own model names (``source``) where it has a model column."""

    arrival_ms: np.ndarray
    model_code: np.ndarray  # int32 index into ``models``
    models: tuple[str, ...]
    service_ms: np.ndarray | None
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    source: np.ndarray | None = None  # int32 index into ``sources``
    sources: tuple[str, ...] = ()
    format: str = "csv"

    @property
    def model(self) -> np.ndarray:
        """Model name of every row (an object array referring to the few name strings)."""
        return np.array(self.models, dtype=object)[self.model_code]

    def __len__(self) -> int:
        return int(self.arrival_ms.size)


def _opt_num(arrival: Mapping, key: str, default: Any, *, positive: bool) -> Any:
    if key not in arrival or arrival[key] is None:
        return default
    v = arrival[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    if not ok or (v <= 0 if positive else v < 0):
        raise SpecError(f"workload.arrival.{key}", v, "a number > 0" if positive else "a number >= 0")
    return float(v)


def load_trace(arrival: Mapping, path: Path, models: Mapping, seed: int) -> tuple[dict, Trace]:
    """Validate a trace arrival's options, read its file and map its rows to scenario models.

    Returns the normalised options (``format`` resolved, defaults filled in) and the trace.
    """
    where = "workload.arrival"
    fmt = arrival.get("format", "auto")
    if fmt not in ("auto",) + FORMATS:
        raise SpecError(f"{where}.format", fmt, "one of auto, " + ", ".join(FORMATS))
    keep_failed = arrival.get("keep_failed", False)
    if not isinstance(keep_failed, bool):
        raise SpecError(f"{where}.keep_failed", keep_failed, "true or false")
    speedup = _opt_num(arrival, "speedup", 1.0, positive=True)
    start_s = _opt_num(arrival, "start_s", 0.0, positive=False)
    duration_s = _opt_num(arrival, "duration_s", None, positive=True)
    max_tasks = arrival.get("max_tasks")
    if max_tasks is not None and (
        isinstance(max_tasks, bool) or not isinstance(max_tasks, (int, np.integer)) or max_tasks < 1
    ):
        raise SpecError(f"{where}.max_tasks", max_tasks, "an integer >= 1")
    full = read_raw(path, fmt, keep_failed=keep_failed, where=f"{where}.file")
    raw = apply_window(full, speedup, start_s, duration_s, None if max_tasks is None else int(max_tasks))
    if len(raw) == 0:
        span = float(full.arrival_ms[-1]) / 1000.0
        raise SpecError(
            f"{where}.start_s", start_s, f"a window holding at least one row (the trace spans {span:.3f} s)"
        )
    codes = map_models(raw, arrival.get("models"), models, seed, f"{where}.models")
    out = {
        "format": raw.format,
        "speedup": speedup,
        "start_s": start_s,
        "duration_s": duration_s,
        "max_tasks": None if max_tasks is None else int(max_tasks),
        "models": _plain_models(arrival.get("models")),
        "keep_failed": keep_failed,
    }
    trace = Trace(
        raw.arrival_ms, codes, tuple(models), raw.service_ms, raw.tokens, raw.source, raw.sources, raw.format
    )
    return out, trace


def _plain_models(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        return {str(k): _plain_models(v) for k, v in spec.items()}
    return spec
