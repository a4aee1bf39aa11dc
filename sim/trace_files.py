"""Reading trace files: public LLM request traces and the project's CSV, as raw rows.

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
