"""Loading what the live settings name: the strategy module imported, the lookup table read,
the instance list read (:func:`load_config`, called by ``python -m scheduler serve``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..core import SpecError, parse_lookup_table
from .config import InstanceAddress, LiveConfig, to_int, to_str


def load_config(config: LiveConfig) -> LiveConfig:
    """``config`` with what its settings name loaded: the ``strategy_module``
    imported (so its strategies can be named), the ``lookup_table`` file read
    into ``table`` (unless a table is given), the ``config_path`` instances
    appended to ``instances``.  Raises :class:`SpecError` naming the setting."""
    if config.strategy_module:
        import_strategy_module(config.strategy_module)
    table = config.table
    if config.lookup_table and table is None:
        table = load_lookup_table(config.lookup_table)
    instances = list(config.instances)
    if config.config_path:
        instances += load_instances(config.config_path)
    return replace(config, table=table, instances=instances)


def _load(path: str, what: str) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(what, path, f"a readable file ({e.strerror})") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise SpecError(what, path, f"valid YAML or JSON ({e})") from None


def load_lookup_table(path: str) -> dict:
    """Read a lookup-table file; raises :class:`SpecError` if it is not a valid table."""
    table = _load(path, "lookup_table")
    parse_lookup_table(table, f"lookup_table ({path})")
    return table


def load_instances(path: str) -> list[InstanceAddress]:
    """Read an instance list: ``[{host, port, model_name?}, ...]`` or ``{instances: [...]}``."""
    data = _load(path, "config_path")
    if isinstance(data, Mapping):
        data = data.get("instances")
    if not isinstance(data, list):
        raise SpecError(
            f"{path}", data, "a list of {host, port, model_name?} (or a mapping with key instances)"
        )
    out = []
    for i, entry in enumerate(data):
        where = f"{path}: instances[{i}]"
        if not isinstance(entry, Mapping):
            raise SpecError(where, entry, "a mapping {host, port, model_name?}")
        unknown = set(entry) - {"host", "port", "model_name"}
        if unknown:
            raise SpecError(
                f"{where}.{sorted(unknown)[0]}", entry[sorted(unknown)[0]], "only host, port, model_name"
            )
        host = to_str(f"{where}.host", entry.get("host"))
        port = to_int(1, 65535)(f"{where}.port", entry.get("port"))
        model = entry.get("model_name")
        out.append(
            InstanceAddress(host, port, None if model is None else to_str(f"{where}.model_name", model))
        )
    return out


def import_strategy_module(name: str) -> None:
    """Import a module (dotted name, or a path to a ``.py`` file) so that the
    strategies it registers can be named: a strategy written and evaluated in
    the simulator is served by ``python -m scheduler serve`` without an edit."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise SpecError("strategy_module", name, "an existing .py file or an importable module name")
            spec = importlib.util.spec_from_file_location(f"_strategies_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise SpecError("strategy_module", name, "a .py file Python can import")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(
            "strategy_module", name, f"a module that imports cleanly ({type(e).__name__}: {e})"
        ) from None
