"""Predictor-mode names at live mode's boundary.

The core names its modes ``online``, ``lookup_table``, ``oracle``,
``clairvoyant`` and ``regression``; the HTTP API and the command line call the online mode
``default`` (docs/api.md).  These two functions are the only place the names are
translated: incoming names on their way to the core, and the core's name on
its way out to clients.
"""

from __future__ import annotations

#: predictor modes live mode serves, as the core names them (oracle and
#: clairvoyant need knowledge only a simulator has)
LIVE_MODES = ("online", "lookup_table", "regression")
#: the same modes as the HTTP API names them
LIVE_PREDICT_MODES = ("default", "lookup_table", "regression")

_API_TO_CORE = {"default": "online"}
_CORE_TO_API = {core: api for api, core in _API_TO_CORE.items()}


def mode_from_api(name: str) -> str:
    """The core's name for a mode a client named (``default`` -> ``online``; others unchanged)."""
    return _API_TO_CORE.get(name, name)


def mode_to_api(name: str) -> str:
    """The HTTP API's name for a core mode (``online`` -> ``default``; others unchanged)."""
    return _CORE_TO_API.get(name, name)
