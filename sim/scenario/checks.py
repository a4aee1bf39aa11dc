"""Small validators the scenario's sections share: known keys, numbers and integers (the
core's validators, named by the dotted path), files relative to the scenario, plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scheduler import SpecError, check_integer, check_number


def check_keys(path: str, value: Any, accepted: Sequence[str], what: str = "a mapping") -> Mapping:
    """``value`` must be a mapping whose keys are all in ``accepted``."""
    if not isinstance(value, Mapping):
        raise SpecError(path or "(scenario)", value, f"{what} with keys {', '.join(accepted)}")
    for key in value:
        if key not in accepted:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, value[key], f"a known key; accepted keys: {', '.join(accepted)}")
    return value


def integer(path: str, value: Any, low: int) -> int:
    return check_integer(path, value, low=low)


def number(path: str, value: Any, *, positive: bool = True) -> float:
    return check_number(path, value, low=0.0, low_open=positive)


def resolve_file(path: str, value: Any, base_dir: Path) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise SpecError(path, value, "a file path (relative paths resolve against the scenario's folder)")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else (base_dir / p)
    p = p.resolve()
    if not p.is_file():
        raise SpecError(path, str(value), f"an existing file (looked for {p})")
    return p


def plain(value: Any) -> Any:
    """Numbers and containers as plain Python (numpy scalars and tuples become float/int/list)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_yaml(path: str | Path, what: str, kind: str) -> Any:
    """The parsed contents of a YAML file; ``what`` names it in errors, ``kind`` says what it
    should be (``an existing <kind>``)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(what, str(path), f"an existing {kind}")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{what} ({p})", "(file contents)", f"valid YAML; the parser said: {e}") from None
