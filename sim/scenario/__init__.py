"""Scenarios: load, validate and change the description of one experiment.

A scenario (docs/scenarios.md) is a YAML file or the same dict in Python.  It is
validated completely before anything is simulated: a bad value raises
:class:`scheduler.SpecError` naming the field by its dotted path (for example
``models.llm-7b.service_time.cv``), the value, and what is accepted.

Validation produces a :class:`Scenario`: the normalised dict (defaults filled
in, files resolved to absolute paths) plus what the simulator needs from it
(distributions, the expanded instance list, a loaded trace).  ``to_dict()``
gives the normalised dict back, so ``Scenario.from_dict(s.to_dict()) == s``,
and :func:`apply_overrides` changes it by dotted paths for parameter sweeps.

One module per job: ``model`` (the :class:`Scenario` object, loading, resizing),
``validate`` (the whole dict, checks across sections), one module per section
(``service_times``, ``workload``, ``strategies``, ``predictor``), ``keys`` (what is
accepted where), ``checks`` (the small validators they share), ``overrides``, ``specs``.
"""

from .keys import (
    ARRIVAL_KEYS,
    EMPIRICAL_FILE_KEYS,
    INSTANCE_KEYS,
    MIX_TOLERANCE,
    MODEL_KEYS,
    PREDICTOR_KEYS,
    STRATEGY_KEYS,
    TOP_KEYS,
    WORKLOAD_KEYS,
    accepted_keys,
)
from .model import Scenario, load_scenario, resize
from .overrides import apply_overrides
from .predictor import read_lookup_table
from .service_times import read_values
from .specs import InstanceSpec, StrategySpec
from .strategies import parse_strategy, pick_strategies, pick_strategy

__all__ = [
    "ARRIVAL_KEYS",
    "EMPIRICAL_FILE_KEYS",
    "INSTANCE_KEYS",
    "MIX_TOLERANCE",
    "MODEL_KEYS",
    "PREDICTOR_KEYS",
    "STRATEGY_KEYS",
    "TOP_KEYS",
    "WORKLOAD_KEYS",
    "InstanceSpec",
    "Scenario",
    "StrategySpec",
    "accepted_keys",
    "apply_overrides",
    "load_scenario",
    "parse_strategy",
    "pick_strategies",
    "pick_strategy",
    "read_lookup_table",
    "read_values",
    "resize",
]
