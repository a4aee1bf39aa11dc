"""The ``strategies`` section, and picking strategies by name or label (``--strategy``,
:func:`sim.run`'s and :func:`sim.twin`'s ``strategies``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scheduler import SpecError, make_strategy, strategy_names

from .checks import check_keys, plain
from .keys import STRATEGY_KEYS
from .specs import StrategySpec

if TYPE_CHECKING:  # for annotations only: the Scenario is built from what this module parses
    from .model import Scenario


def parse_strategies(value: Any) -> list[StrategySpec]:
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(
            "strategies",
            value,
            "a non-empty list of strategy names or {name, params}; valid names: "
            + ", ".join(strategy_names()),
        )
    out = [parse_strategy(v, f"strategies.{i}") for i, v in enumerate(value)]
    labels = [s.label for s in out]
    for i, lab in enumerate(labels):
        if labels.index(lab) != i:
            raise SpecError(f"strategies.{i}", lab, "each strategy (with its parameters) listed once")
    return out


def pick_strategy(scenario: Scenario, value: Any, where: str = "strategy") -> StrategySpec:
    """The strategy ``value`` names: a bare name that is one of the scenario's labels, or
    else one of its strategy names, keeps that strategy's parameters; anything else goes
    through :func:`parse_strategy`."""
    if isinstance(value, str):
        for key in ("label", "name"):  # labels first: "weighted" is not "weighted(w=2)"
            for s in scenario.strategies:
                if getattr(s, key) == value:
                    return s
    return parse_strategy(value, where)


def pick_strategies(scenario: Scenario, strategies: Any) -> list[StrategySpec]:
    """:func:`pick_strategy` for one strategy or a list of them (the ``strategies`` override
    of :func:`sim.run` and :func:`sim.twin`)."""
    if isinstance(strategies, (str, tuple, StrategySpec)) or hasattr(strategies, "keys"):
        strategies = [strategies]
    return [pick_strategy(scenario, s, f"strategies.{k}") for k, s in enumerate(strategies)]


def parse_strategy(value: Any, where: str = "strategy") -> StrategySpec:
    """A :class:`StrategySpec` from a name, a ``(name, params)`` pair, ``{name, params}`` or a spec.

    The name must be registered (checked now, so custom strategies registered
    with ``scheduler.register_strategy`` are accepted) and the parameters must
    construct the strategy.
    """
    name: Any
    if isinstance(value, StrategySpec):
        name, params = value.name, dict(value.params)
    elif isinstance(value, str):
        name, params = value, {}
    elif isinstance(value, tuple) and len(value) == 2:
        name, params = value
    elif isinstance(value, Mapping):
        check_keys(where, value, STRATEGY_KEYS, "a strategy")
        name, params = value.get("name"), value.get("params") or {}
    else:
        raise SpecError(where, value, "a strategy name, (name, params) or {name: ..., params: {...}}")
    valid = strategy_names()
    if name not in valid:
        raise SpecError(
            f"{where}.name" if isinstance(value, Mapping) else where,
            name,
            "one of the registered strategies: " + ", ".join(valid),
        )
    if not isinstance(params, Mapping):
        raise SpecError(f"{where}.params", params, "a mapping of parameter name to value")
    params = plain(dict(params))
    try:
        make_strategy(name, **params)
    except SpecError as e:
        sub = e.field if e.field in params else None
        raise SpecError(f"{where}.params" + (f".{sub}" if sub else ""), e.value, e.accepted) from None
    return StrategySpec(name, params)
