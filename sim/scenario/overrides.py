"""Dotted-path overrides of a scenario dict (parameter sweeps, ``--set``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from scheduler import SpecError


def apply_overrides(scenario_dict: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A deep copy of ``scenario_dict`` with each ``{"dotted.path": value}`` set.

    Segments index mappings by key and lists by integer (``instances.0.count``).
    A key that itself contains dots (a model named ``v1.5``) is found by joining
    segments.  Missing mapping levels are created.  The result is not
    validated here; :meth:`Scenario.with_changes` validates it.
    """
    out = copy.deepcopy(dict(scenario_dict))
    for dotted, value in overrides.items():
        if not isinstance(dotted, str) or not dotted:
            raise SpecError("overrides", dotted, "a dotted path such as 'workload.arrival.rate_per_s'")
        parts = dotted.split(".")
        node: Any = out
        i = 0
        while True:
            key, i = _next_key(node, parts, i, dotted)
            if i == len(parts):
                node[key] = copy.deepcopy(value)
                break
            if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                node[key] = {}  # a missing (or scalar) level becomes a mapping
            node = node[key]
    return out


def _next_key(node: Any, parts: list[str], i: int, dotted: str) -> tuple[Any, int]:
    if isinstance(node, list):
        try:
            idx = int(parts[i])
        except ValueError:
            raise SpecError(dotted, parts[i], "a list index (an integer) at this level") from None
        if not -len(node) <= idx < len(node):
            raise SpecError(dotted, idx, f"an index in 0..{len(node) - 1}")
        return idx, i + 1
    if not isinstance(node, dict):
        raise SpecError(dotted, node, "a path through mappings and lists")
    for j in range(len(parts), i, -1):  # longest key first: names may contain dots
        key = ".".join(parts[i:j])
        if key in node:
            return key, j
    return parts[i], i + 1
