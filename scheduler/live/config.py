"""Settings of the scheduler service, from command-line options, environment
variables and files.

One table, :data:`OPTIONS`, names every setting once: ``python -m scheduler
serve`` builds its options from it (``--task-timeout-s``) and
:meth:`LiveConfig.from_sources` reads the matching environment variable
(``SCHEDULER_TASK_TIMEOUT_S``).  A command-line value wins over the
environment, which wins over the default.  Bad values raise
:class:`scheduler.SpecError` naming the option and what is accepted.

:func:`load_config` reads what three settings name (the settings themselves
are plain data, :class:`LiveConfig`):

* ``strategy_module``: a module or ``.py`` file imported for the strategies it
  registers;
* ``lookup_table``: ``{model: {mean_ms, std_ms, instances: {name: {mean_ms, std_ms}}}}``
  in YAML or JSON, for the ``lookup_table`` predictor mode;
* ``config_path`` (``SCHEDULER_CONFIG_PATH``, as in the seed): the instances to
  register at startup, a YAML/JSON list of ``{host, port, model_name?}`` or a
  mapping with that list under ``instances``.

``decision_log`` names a file the service writes: the core's events as JSON
lines (:class:`scheduler.DecisionLog`), replayed by ``python -m sim replay``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..core import SpecError, parse_lookup_table
from .allowlist import DEFAULT as DEFAULT_ALLOWLIST
from .allowlist import parse_allowlist

ENV_PREFIX = "SCHEDULER_"
DEFAULT_STATE_DB = "scheduler-state.db"  # what `serve` uses when neither --state-db nor the env names one


def _int(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
    accepted = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"

    def conv(name: str, v: Any) -> int:
        try:
            x = int(v)
        except (TypeError, ValueError):
            raise SpecError(name, v, accepted) from None
        if isinstance(v, float) and v != x or x < lo or hi is not None and x > hi:
            raise SpecError(name, v, accepted)
        return x

    return conv


def _float_pos(name: str, v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SpecError(name, v, "a number > 0") from None
    if not (x > 0 and math.isfinite(x)):
        raise SpecError(name, v, "a number > 0")
    return x


def _str(name: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise SpecError(name, v, "a non-empty string")
    return v


def _json_dict(name: str, v: Any) -> dict:
    if isinstance(v, str):
        try:
            v = yaml.safe_load(v)
        except yaml.YAMLError:
            raise SpecError(name, v, 'a JSON or YAML mapping such as {"w": [1, 2]}') from None
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise SpecError(name, v, 'a JSON or YAML mapping such as {"w": [1, 2]}')
    return dict(v)


def _bool(name: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise SpecError(name, v, "true or false (1/0, yes/no)")


@dataclass(frozen=True)
class Option:
    name: str  # LiveConfig field; CLI --name-with-dashes; env SCHEDULER_NAME
    convert: Callable[[str, Any], Any]
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("host", _str, "interface to bind (default 127.0.0.1)", "HOST"),
    Option("port", _int(1, 65535), "port to listen on (default 8102)", "PORT"),
    Option(
        "public_url",
        _str,
        "base URL task instances use for completion callbacks "
        "(default http://HOST:PORT, with 127.0.0.1 for a wildcard HOST)",
        "URL",
    ),
    Option("strategy", _str, "scheduling strategy (default shortest_queue)", "NAME"),
    Option(
        "strategy_module",
        _str,
        "a module name or .py file imported at startup, for strategies it registers "
        "with scheduler.register_strategy (e.g. examples/custom_strategy.py)",
        "MODULE",
    ),
    Option("strategy_params", _json_dict, "strategy parameters as JSON/YAML, e.g. '{d: 2}'", "MAPPING"),
    Option(
        "predict_mode",
        _str,
        "predictor mode: default (online learning), lookup_table or regression (on task metadata)",
        "MODE",
    ),
    Option("lookup_table", _str, "YAML/JSON file {model: {mean_ms, std_ms, instances: {...}}}", "FILE"),
    Option(
        "config_path",
        _str,
        "YAML/JSON list of instances {host, port, model_name?} registered at startup",
        "FILE",
    ),
    Option("seed", _int(0), "seed of the scheduler's random generator (default: fresh entropy)", "N"),
    Option("request_timeout_s", _float_pos, "timeout of each call to a task instance (default 5)", "S"),
    Option(
        "enqueue_timeout_s",
        _float_pos,
        "timeout of a delivery when another instance could take the task instead, so a hung "
        "instance does not hold the client (default 2)",
        "S",
    ),
    Option("max_attempts", _int(1), "instances tried when delivering one task (default 3)", "N"),
    Option("health_interval_s", _float_pos, "seconds between health checks of instances (default 2)", "S"),
    Option(
        "unhealthy_after",
        _int(1),
        "failed health checks before an instance gets no new tasks (default 2)",
        "N",
    ),
    Option(
        "task_timeout_s",
        _float_pos,
        "a task scheduled this long is checked with its instance and "
        "re-dispatched if the instance stopped answering (default 30)",
        "S",
    ),
    Option(
        "task_hard_limit_s",
        _float_pos,
        "a task still unfinished this long after dispatch is failed (default 600)",
        "S",
    ),
    Option(
        "learn_clip_sigmas",
        _float_pos,
        "the online predictor clips a new execution time to the instance's mean +- this many "
        "spreads, so one outlier or forged completion moves it a bounded step, e.g. 4 "
        "(default off: predictions match the simulator's)",
        "K",
    ),
    Option(
        "learn_half_life",
        _float_pos,
        "observations lose half their weight in the online predictor every this many newer ones, "
        "e.g. 500 (default off)",
        "N",
    ),
    Option(
        "max_history",
        _int(1),
        "finished tasks kept for /task/query, in memory and in the state file (default 100000)",
        "N",
    ),
    Option(
        "state_db",
        _str,
        "SQLite file (WAL) keeping tasks, instances and settings across restarts; 'none' keeps "
        f"state in memory only (default {DEFAULT_STATE_DB} in the working directory)",
        "PATH",
    ),
    Option(
        "max_history_bytes",
        _int(1),
        "bytes of finished tasks (results, metadata, errors as JSON) kept for /task/query; the oldest "
        "go first (default 268435456)",
        "N",
    ),
    Option(
        "decision_log",
        _str,
        "write every core event (config, arrivals, decisions, completions) to this "
        "JSON-lines file, for `python -m sim replay FILE` (default: none)",
        "FILE",
    ),
    Option(
        "api_token",
        _str,
        "bearer token for the client endpoints (/queue/*, /task/*, /scheduler/stats, /metrics); "
        "default: open (lab mode)",
        "TOKEN",
    ),
    Option(
        "admin_token",
        _str,
        "bearer token for the management endpoints (/ti/*, /scheduler/set, /scheduler/predict_mode); "
        "it also opens the client endpoints; default: open (lab mode)",
        "TOKEN",
    ),
    Option(
        "allow_instance_hosts",
        _str,
        "where instances may be registered: comma-separated CIDRs and host names, each optionally "
        "with :PORT or :LOW-HIGH (default 127.0.0.0/8,::1)",
        "LIST",
    ),
    Option("max_body_bytes", _int(1), "largest request body accepted, else 413 (default 1048576)", "N"),
    Option(
        "max_pending",
        _int(1),
        "tasks not yet ended above which /queue/submit answers 429 (default 100000)",
        "N",
    ),
    Option("log_level", _str, "logging level: debug, info, warning, error (default info)", "LEVEL"),
    Option("access_log", _bool, "log every HTTP request (default off)", "BOOL"),
)


@dataclass(frozen=True)
class InstanceAddress:
    """Where a task instance listens, and optionally which model it must serve."""

    host: str
    port: int
    model_name: str | None = None


@dataclass
class LiveConfig:
    """Everything the live scheduler needs; defaults suit one machine.

    Plain data: building one reads no file and imports nothing.  The settings
    that name files or modules (``strategy_module``, ``lookup_table``,
    ``config_path``) take effect through :func:`load_config`, which
    ``python -m scheduler serve`` calls."""

    host: str = "127.0.0.1"
    port: int = 8102
    public_url: str | None = None
    strategy: str = "shortest_queue"
    strategy_module: str | None = None  # imported by load_config, before the strategy is looked up
    strategy_params: dict[str, Any] = field(default_factory=dict)
    predict_mode: str = "default"  # as the command line and the HTTP API name it (scheduler.live.modes)
    lookup_table: str | None = None  # file name; load_config reads it into ``table``
    config_path: str | None = None
    seed: int | None = None
    request_timeout_s: float = 5.0
    enqueue_timeout_s: float = 2.0
    max_attempts: int = 3
    health_interval_s: float = 2.0
    unhealthy_after: int = 2
    task_timeout_s: float = 30.0
    task_hard_limit_s: float = 600.0
    learn_clip_sigmas: float | None = None  # off by default: live predicts as the simulator does
    learn_half_life: float | None = None
    max_history: int = 100_000
    max_history_bytes: int = 256 << 20
    #: the state store: a SQLite file, or None / "none" for memory only.  Built in code the
    #: default is memory only; ``serve`` (:meth:`from_sources`) defaults to :data:`DEFAULT_STATE_DB`.
    state_db: str | None = None
    decision_log: str | None = None  # JSON-lines file of the core's events (scheduler.DecisionLog)
    api_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    allow_instance_hosts: str = DEFAULT_ALLOWLIST
    max_body_bytes: int = 1 << 20
    max_pending: int = 100_000
    log_level: str = "info"
    access_log: bool = False
    table: dict[str, Any] | None = None  # a lookup table given directly (or loaded from ``lookup_table``)
    instances: list[InstanceAddress] = field(default_factory=list)  # registered at startup

    def __post_init__(self) -> None:
        parse_allowlist(self.allow_instance_hosts)  # a bad list fails at startup, naming the option
        if self.table is not None:
            parse_lookup_table(self.table, "table")
        if self.task_hard_limit_s < self.task_timeout_s:
            raise SpecError(
                "task_hard_limit_s",
                self.task_hard_limit_s,
                f"a number >= task_timeout_s ({self.task_timeout_s})",
            )

    @property
    def callback_url(self) -> str:
        """Where instances POST ``/notify/task_complete``."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/notify/task_complete"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"{base_url(host, self.port)}/notify/task_complete"

    @property
    def watchdog_interval_s(self) -> float:
        return min(1.0, self.task_timeout_s / 4)

    @classmethod
    def from_sources(
        cls, cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> LiveConfig:
        """Command-line values (``None`` means not given) over environment variables over defaults."""
        cli = cli or {}
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for opt in OPTIONS:
            assert opt.name in known, opt.name
            if cli.get(opt.name) is not None:
                values[opt.name] = opt.convert(opt.flag, cli[opt.name])
            elif env.get(opt.env, "") != "":
                values[opt.name] = opt.convert(opt.env, env[opt.env])
        values.setdefault("state_db", DEFAULT_STATE_DB)
        return cls(**values)


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


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
        host = _str(f"{where}.host", entry.get("host"))
        port = _int(1, 65535)(f"{where}.port", entry.get("port"))
        model = entry.get("model_name")
        out.append(InstanceAddress(host, port, None if model is None else _str(f"{where}.model_name", model)))
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
