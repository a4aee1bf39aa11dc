"""Command line of infersched.

``python -m scheduler serve [options]`` starts the live scheduler (FastAPI
under uvicorn, port 8102 by default).  Every option also reads an environment
variable (``--task-timeout-s`` / ``SCHEDULER_TASK_TIMEOUT_S``); the option
wins.  ``SCHEDULER_CONFIG_PATH`` names a YAML/JSON list of instances
``{host, port, model_name?}`` registered at startup.
"""

from __future__ import annotations

import argparse
import sys

from .core import SpecError
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


def _serve(ns: argparse.Namespace) -> int:
    try:
        config = load_config(LiveConfig.from_sources(vars(ns)))
        log_config(config.log_level)
        service = LiveScheduler(config)  # builds the core: bad strategy or predictor settings fail here
    except (SpecError, ValueError) as e:
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
