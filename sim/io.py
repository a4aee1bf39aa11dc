"""Writing result tables as Parquet and/or CSV, and reading a results folder back.

Every table a command writes (``tasks``, ``summary``, ``instances``,
``replications``, a sweep's ``sweep`` ...) goes through :func:`write_table`.
``fmt`` chooses the files:

- ``"parquet"``: ``<name>.parquet`` (pyarrow; floats exact, categories kept);
- ``"csv"``: ``<name>.csv`` (floats with 6 decimals: nanosecond resolution for ms);
- ``"both"``: the two side by side;
- ``"auto"`` (the default): Parquet for a table of more than
  :data:`PARQUET_ABOVE` rows, CSV otherwise.

:func:`load_results` reads a folder back: every ``*.parquet`` and ``*.csv``
in it, keyed by file stem, Parquet preferred when both are there.
:class:`ParquetStream` appends frames to one Parquet file as row groups, so a
producer never holds more than one frame (used by streaming runs and sweeps
that keep per-task rows).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "PARQUET_ABOVE", "write_table", "write_tables", "load_results", "SavedResults"]

FORMATS = ("auto", "parquet", "csv", "both")
PARQUET_ABOVE = 1_000_000
CSV_FLOAT_FORMAT = "%.6f"


def check_format(fmt: Any) -> str:
    """``fmt`` if it is one of :data:`FORMATS`, else a ValueError naming the field."""
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return str(fmt)


def formats_for(fmt: str, rows: int) -> tuple[str, ...]:
    """The file suffixes ``fmt`` means for a table of ``rows`` rows."""
    check_format(fmt)
    if fmt == "auto":
        return ("parquet",) if rows > PARQUET_ABOVE else ("csv",)
    return ("parquet", "csv") if fmt == "both" else (fmt,)


def write_table(frame: pd.DataFrame, out_dir: str | Path, name: str, fmt: str = "auto") -> list[Path]:
    """Write ``frame`` as ``out_dir/name.parquet`` and/or ``.csv`` (see the module doc); return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in formats_for(fmt, len(frame)):
        p = out / f"{name}.{suffix}"
        if suffix == "parquet":
            frame.to_parquet(p, engine="pyarrow", index=False)
        else:
            frame.to_csv(p, index=False, float_format=CSV_FLOAT_FORMAT)
        paths.append(p)
    return paths


def write_tables(frames: Mapping[str, pd.DataFrame], out_dir: str | Path, fmt: str = "auto") -> dict:
    """:func:`write_table` for each ``{name: frame}``; returns ``{name: path}`` (with ``fmt="both"``,
    the CSV one is listed as ``name`` and the Parquet one as ``name.parquet``)."""
    check_format(fmt)
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        for p in write_table(frame, out_dir, name, fmt):
            key = name if p.suffix == ".csv" or fmt != "both" else f"{name}.parquet"
            paths[key] = p
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths


class ParquetStream:
    """Append frames of one schema to a Parquet file, one row group per :meth:`write`.

    The schema is the first frame's; a later frame is cast to it (categories
    become plain strings so that row groups with different category sets still
    share one schema).  Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._writer: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa  # local: pyarrow.parquet adds ~40 ms to every start; only streaming needs it
        import pyarrow.parquet as pq

        plain = frame.copy(deep=False)
        for col in plain.columns:
            if isinstance(plain[col].dtype, pd.CategoricalDtype):
                plain[col] = plain[col].astype(str)
        table = pa.Table.from_pandas(plain, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema.remove_metadata()
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_table(table.replace_schema_metadata(None).cast(self._schema))
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> ParquetStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TableStream:
    """Append frames to ``<name>.parquet`` and/or ``<name>.csv`` (``fmt`` as in :func:`write_table`;
    ``"auto"`` decides from ``expected_rows``, the number of rows the caller expects in all)."""

    def __init__(self, out_dir: str | Path, name: str, fmt: str = "auto", expected_rows: int = 0):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suffixes = formats_for(fmt, expected_rows)
        self.paths = [out / f"{name}.{s}" for s in suffixes]
        self._parquet = ParquetStream(out / f"{name}.parquet") if "parquet" in suffixes else None
        self._csv = out / f"{name}.csv" if "csv" in suffixes else None
        if self._csv is not None:
            self._csv.unlink(missing_ok=True)
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self._parquet is not None:
            self._parquet.write(frame)
        if self._csv is not None:
            frame.to_csv(
                self._csv, mode="a", header=self.rows == 0, index=False, float_format=CSV_FLOAT_FORMAT
            )
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()

    def __enter__(self) -> TableStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SavedResults(Mapping[str, pd.DataFrame]):
    """The tables of a results folder, by name: ``res["tasks"]`` or ``res.tasks``.

    Tables are read when first asked for (a 10-million-row ``tasks.parquet``
    is not read to get at ``summary``); ``res.files`` lists what is there.
    """

    def __init__(self, files: Mapping[str, Path]):
        self.files = dict(files)
        self._cache: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.files:
            raise KeyError(
                f"{name!r}: no {name}.parquet or {name}.csv here (tables: {', '.join(self.files)})"
            )
        if name not in self._cache:
            p = self.files[name]
            self._cache[name] = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        return self._cache[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("_") or name == "files":
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"SavedResults({', '.join(f'{k}={p.name}' for k, p in self.files.items())})"


def load_results(out_dir: str | Path) -> SavedResults:
    """Read the tables in a results folder (written by ``sim run``, ``sim sweep``, ``sim twin``...).

    Every ``<name>.parquet`` and ``<name>.csv`` is a table called ``name``;
    when both exist the Parquet file is read (its floats are exact).
    """
    d = Path(out_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"load_results: {d} is not a folder of results")
    files: dict[str, Path] = {}
    for p in sorted(d.glob("*.csv")):
        files[p.stem] = p
    for p in sorted(d.glob("*.parquet")):
        files[p.stem] = p
    if not files:
        raise FileNotFoundError(f"load_results: no .parquet or .csv tables in {d}")
    return SavedResults(files)
