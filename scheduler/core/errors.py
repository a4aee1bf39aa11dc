"""Errors the core raises.  Each says what was wrong and what is accepted."""

from __future__ import annotations

from typing import Any


class SchedulerError(Exception):
    """Base class of every error the core raises on purpose."""


class SpecError(SchedulerError, ValueError):
    """A configuration value is invalid: names the field, the value and what is accepted."""

    def __init__(self, field: str, value: Any, accepted: str):
        self.field, self.value, self.accepted = field, value, accepted
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: got {shown}, expected {accepted}")


class UnknownStrategyError(SchedulerError, ValueError):
    def __init__(self, name: Any, valid: list[str]):
        self.name, self.valid = name, valid
        super().__init__(f"unknown strategy {name!r}; valid strategies: {', '.join(valid)}")


class UnknownPredictModeError(SchedulerError, ValueError):
    def __init__(self, mode: Any, valid: list[str]):
        self.mode, self.valid = mode, valid
        super().__init__(f"unknown predict mode {mode!r}; valid modes: {', '.join(valid)}")


class NoInstanceError(SchedulerError, RuntimeError):
    """No healthy, active instance serves the requested model."""

    def __init__(self, model: str, reason: str, task_id: str | None = None):
        self.model, self.reason, self.task_id = model, reason, task_id
        super().__init__(f"no instance can take a task for model {model!r}: {reason}")


class UnknownTaskError(SchedulerError, KeyError):
    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"unknown task {task_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownInstanceError(SchedulerError, KeyError):
    def __init__(self, instance_id: str):
        self.instance_id = instance_id
        super().__init__(f"unknown instance {instance_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidTransitionError(SchedulerError, ValueError):
    def __init__(self, task_id: str, current: str, target: str):
        self.task_id, self.current, self.target = task_id, current, target
        super().__init__(f"task {task_id!r} cannot go from {current!r} to {target!r}")


class DuplicateTaskError(SchedulerError, ValueError):
    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"task id {task_id!r} is already in use")
