"""Command line of infersched.

``python -m scheduler serve [options]`` starts the live scheduler (FastAPI
under uvicorn, port 8102 by default).  Every option also reads an environment
variable (``--task-timeout-s`` / ``SCHEDULER_TASK_TIMEOUT_S``); the option
wins.  ``SCHEDULER_CONFIG_PATH`` names a YAML/JSON list of instances
``{host, port, model_name?}`` registered at startup.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from .core import SpecError, UnknownStrategyError, make_strategy
from .live import OPTIONS, LiveConfig, LiveScheduler, create_app, load_config
from .protocol import log_config, run


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the live scheduler service",
        description="Run the live scheduler service (docs/api.md) under uvicorn.",
    )
    for opt in OPTIONS:
        flags = [opt.flag] + (["--config"] if opt.name == "config_path" else [])
        help_text = f"{opt.help} [env {opt.env}]"
        if opt.name == "access_log":
            p.add_argument(
                *flags, dest=opt.name, default=None, action=argparse.BooleanOptionalAction, help=help_text
            )
        else:
            p.add_argument(*flags, dest=opt.name, default=None, metavar=opt.metavar, help=help_text)


def _display_flag(name: str) -> str:
    return "--config" if name == "config_path" else "--" + name.replace("_", "-")


def _source(name: str, cli: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """Where a setting's value came from, as the user gave it: the flag, the environment
    variable, or the default."""
    opt = next(o for o in OPTIONS if o.name == name)
    if cli.get(name) is not None:
        return _display_flag(name)
    if env.get(opt.env, "") != "":
        return f"{opt.env} (environment)"
    return f"{_display_flag(name)} (default)"


def _setting_of(e: SpecError, config: Any) -> str | None:
    """The setting a SpecError is about, from its field (``lookup_table (f.yaml).llm``,
    ``f.yaml: instances[0].port`` for the --config file, ``log_level``, ...)."""
    for opt in OPTIONS:
        if e.field == opt.name or e.field.startswith((opt.name + " ", opt.name + ".")):
            return opt.name
    path = getattr(config, "config_path", None)
    if path and e.field.startswith(str(path)):
        return "config_path"
    return None


def _explain(e: Exception, setting: str | None, cli: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The error with the flag or environment variable named instead of the internal field."""
    if setting is None:
        return str(e)
    where = _source(setting, cli, env)
    if isinstance(e, SpecError):
        rest = e.field.removeprefix(setting).lstrip(" .:")
        value = repr(e.value) if len(repr(e.value)) <= 80 else repr(e.value)[:77] + "..."
        accepted = e.accepted
        for opt in OPTIONS:  # "a number >= task_timeout_s (30)": the other setting by its flag too
            accepted = re.sub(rf"\b{opt.name}\b", _display_flag(opt.name), accepted)
        return f"{where}{' ' + rest if rest else ''}: got {value}, expected {accepted}"
    return f"{where}: {e}"


def _configure(ns: argparse.Namespace, env: Mapping[str, str]) -> tuple[Any, LiveScheduler]:
    """The loaded configuration and the service built from it; errors name the setting's flag
    or environment variable (raised as ValueError with the message to print)."""
    cli = vars(ns)
    config = None
    try:
        config = LiveConfig.from_sources(cli, env)
        config = load_config(config)
        log_config(config.log_level)
        try:  # the strategy first, so that its errors are told apart from the predictor's
            make_strategy(config.strategy, **config.strategy_params)
        except UnknownStrategyError as e:
            raise ValueError(_explain(e, "strategy", cli, env)) from None
        except SpecError as e:
            if e.field in ("strategy", "strategy_params"):
                raise
            raise ValueError(
                f"{_source('strategy_params', cli, env)}: {e.field}: got {e.value!r}, expected {e.accepted}"
            ) from None
        service = LiveScheduler(config)  # builds the core: bad predictor settings fail here
    except SpecError as e:
        raise ValueError(_explain(e, _setting_of(e, config), cli, env)) from None
    return config, service


def _serve(ns: argparse.Namespace) -> int:
    try:
        config, service = _configure(ns, os.environ)
    except ValueError as e:
        print(f"infersched serve: {e}", file=sys.stderr)
        return 2
    run(
        create_app(service),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.access_log,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(sub)
    ns = parser.parse_args(argv)
    if ns.command == "serve":
        return _serve(ns)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
