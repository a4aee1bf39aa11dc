"""Settings of the scheduler service, from command-line options, environment
variables and files.

One table, :data:`OPTIONS`, names every setting once: ``python -m scheduler
serve`` builds its options from it (``--task-timeout-s``) and
:meth:`LiveConfig.from_sources` reads the matching environment variable
(``SCHEDULER_TASK_TIMEOUT_S``).  A command-line value wins over the
environment, which wins over the default.  Bad values raise
:class:`scheduler.SpecError` naming the option and what is accepted.

:func:`scheduler.live.loading.load_config` reads what three settings name
(the settings themselves are plain data, :class:`LiveConfig`):

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

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from ..core import SpecError, parse_lookup_table
from .allowlist import DEFAULT as DEFAULT_ALLOWLIST
from .allowlist import parse_allowlist

ENV_PREFIX = "SCHEDULER_"
DEFAULT_STATE_DB = "scheduler-state.db"  # what `serve` uses when neither --state-db nor the env names one


def to_int(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
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


def to_str(name: str, v: Any) -> str:
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
    Option("host", to_str, "interface to bind (default 127.0.0.1)", "HOST"),
    Option("port", to_int(1, 65535), "port to listen on (default 8102)", "PORT"),
    Option(
        "public_url",
        to_str,
        "base URL task instances use for completion callbacks "
        "(default http://HOST:PORT, with 127.0.0.1 for a wildcard HOST)",
        "URL",
    ),
    Option("strategy", to_str, "scheduling strategy (default shortest_queue)", "NAME"),
    Option(
        "strategy_module",
        to_str,
        "a module name or .py file imported at startup, for strategies it registers "
        "with scheduler.register_strategy (e.g. examples/custom_strategy.py)",
        "MODULE",
    ),
    Option("strategy_params", _json_dict, "strategy parameters as JSON/YAML, e.g. '{d: 2}'", "MAPPING"),
    Option(
        "predict_mode",
        to_str,
        "predictor mode: default (online learning), lookup_table or regression (on task metadata)",
        "MODE",
    ),
    Option("lookup_table", to_str, "YAML/JSON file {model: {mean_ms, std_ms, instances: {...}}}", "FILE"),
    Option(
        "config_path",
        to_str,
        "YAML/JSON list of instances {host, port, model_name?} registered at startup",
        "FILE",
    ),
    Option("seed", to_int(0), "seed of the scheduler's random generator (default: fresh entropy)", "N"),
    Option("request_timeout_s", _float_pos, "timeout of each call to a task instance (default 5)", "S"),
    Option(
        "enqueue_timeout_s",
        _float_pos,
        "timeout of a delivery when another instance could take the task instead, so a hung "
        "instance does not hold the client (default 2)",
        "S",
    ),
    Option("max_attempts", to_int(1), "instances tried when delivering one task (default 3)", "N"),
    Option("health_interval_s", _float_pos, "seconds between health checks of instances (default 2)", "S"),
    Option(
        "unhealthy_after",
        to_int(1),
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
        "poll_interval_s",
        _float_pos,
        "seconds between GET /results polls of instances without a callback secret (the 'submit' "
        "dialect, or one that assigns its own task ids) while they have tasks (default 1)",
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
        to_int(1),
        "finished tasks kept for /task/query, in memory and in the state file (default 100000)",
        "N",
    ),
    Option(
        "state_db",
        to_str,
        "SQLite file (WAL) keeping tasks, instances and settings across restarts; 'none' keeps "
        f"state in memory only (default {DEFAULT_STATE_DB} in the working directory)",
        "PATH",
    ),
    Option(
        "max_history_bytes",
        to_int(1),
        "bytes of finished tasks (results, metadata, errors as JSON) kept for /task/query; the oldest "
        "go first (default 268435456)",
        "N",
    ),
    Option(
        "decision_log",
        to_str,
        "write every core event (config, arrivals, decisions, completions) to this "
        "JSON-lines file, for `python -m sim replay FILE` (default: none)",
        "FILE",
    ),
    Option(
        "api_token",
        to_str,
        "bearer token for the client endpoints (/queue/*, /task/*, /scheduler/stats, /metrics); "
        "default: open (lab mode)",
        "TOKEN",
    ),
    Option(
        "admin_token",
        to_str,
        "bearer token for the management endpoints (/ti/*, /scheduler/set, /scheduler/predict_mode); "
        "it also opens the client endpoints; default: open (lab mode)",
        "TOKEN",
    ),
    Option(
        "allow_instance_hosts",
        to_str,
        "where instances may be registered: comma-separated CIDRs and host names, each optionally "
        "with :PORT or :LOW-HIGH (default 127.0.0.0/8,::1)",
        "LIST",
    ),
    Option("max_body_bytes", to_int(1), "largest request body accepted, else 413 (default 1048576)", "N"),
    Option(
        "max_pending",
        to_int(1),
        "tasks not yet ended above which /queue/submit answers 429 (default 100000)",
        "N",
    ),
    Option("log_level", to_str, "logging level: debug, info, warning, error (default info)", "LEVEL"),
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
    poll_interval_s: float = 1.0  # GET /results of instances without a callback secret (dialects)
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


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
