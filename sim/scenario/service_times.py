"""The ``models`` section: each model's service-time distribution (a named distribution, an
empirical one from a file of numbers, or token-sized)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scheduler import Distribution, Empirical, SpecError, from_spec
from scheduler.core.tokens import TokenService

from .checks import check_keys, plain, resolve_file
from .keys import EMPIRICAL_FILE_KEYS, MODEL_KEYS


def parse_models(value: Any, base_dir: Path) -> tuple[dict, dict[str, Distribution | TokenService]]:
    if not isinstance(value, Mapping) or not value:
        raise SpecError("models", value, "a mapping of model name to {service_time: {...}}")
    models: dict = {}
    dists: dict[str, Distribution | TokenService] = {}
    for name, entry in value.items():
        where = f"models.{name}"
        if not isinstance(name, str) or not name:
            raise SpecError("models", name, "model names that are non-empty strings")
        check_keys(where, entry, MODEL_KEYS)
        st = entry.get("service_time")
        if st is None:
            raise SpecError(
                f"{where}.service_time", None, "a distribution such as {dist: exponential, mean_ms: 10}"
            )
        st_spec, dists[name] = _service_time(f"{where}.service_time", st, base_dir)
        models[name] = {"service_time": st_spec}
    return models, dists


def _service_time(where: str, st: Any, base_dir: Path) -> tuple[dict, Distribution | TokenService]:
    if isinstance(st, Mapping) and st.get("dist") == "tokens":
        ts = TokenService.from_spec(st, where)
        return ts.to_spec(), ts
    if isinstance(st, Mapping) and st.get("dist") == "empirical" and "file" in st:
        check_keys(where, st, EMPIRICAL_FILE_KEYS, "an empirical distribution")
        p = resolve_file(f"{where}.file", st["file"], base_dir)
        values = read_values(p, f"{where}.file")
        try:
            return {"dist": "empirical", "file": str(p)}, Empirical(values)
        except SpecError as e:
            raise SpecError(f"{where}.file", str(p), f"a file of numbers >= 0 ({e.accepted})") from None
    if not isinstance(st, Mapping):
        raise SpecError(where, st, "a mapping such as {dist: exponential, mean_ms: 10}")
    dist = from_spec(st, field=where)
    return plain(st), dist


def read_values(path: Path, where: str) -> list[float]:
    """Numbers (ms) from a text or CSV file: one column, optional header, ``#`` comments.

    A header naming several columns selects ``service_ms`` (or ``value_ms``).
    """
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise SpecError(where, str(path), "a file with at least one number (ms)")
    column = None
    head = [c.strip() for c in lines[0].replace(";", ",").split(",")]
    if not _is_number(head[0]):
        names = [c.lower() for c in head]
        for wanted in ("service_ms", "value_ms", "values_ms"):
            if wanted in names:
                column = names.index(wanted)
                break
        else:
            if len(names) != 1:
                raise SpecError(
                    where, lines[0], "a header with a service_ms column, or a single column of numbers"
                )
            column = 0
        lines = lines[1:]
    values = []
    for n, line in enumerate(lines, start=2 if column is not None else 1):
        cells = [c for c in line.replace(";", ",").replace(",", " ").split()]
        picked = cells if column is None else cells[column : column + 1]
        for c in picked:
            if not _is_number(c):
                raise SpecError(where, f"{c!r} on line {n}", "numbers of milliseconds")
            values.append(float(c))
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
