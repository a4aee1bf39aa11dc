"""What ``sim drive`` sends as each task's ``task_input`` (``--task-input``).

* ``size_ms`` (the default): ``{"size_ms": <the task's drawn size>}``, which the reference
  instance's sleep model sleeps (divided by its speed);
* ``openai``: an OpenAI completion body for instances of the OpenAI-compatible backend
  (``python -m scheduler.instance --backend openai``, docs/openai_backend.md):
  ``{"prompt": <input_tokens words>, "max_tokens": <output_tokens>}`` from the task's token
  counts (a trace's, or ``workload.tokens``'), so the model server reads a prompt of the trace's
  length and writes at most the trace's number of tokens.  The prompt is the word ``hello``
  repeated: one token per word on the fake upstream and on common tokenizers.  A real model may
  stop before ``max_tokens``; servers that take vLLM's ``ignore_eos`` extension can be told not
  to with ``--openai-extra '{"ignore_eos": true}'``.

The tables of a drive never depend on the input's form: the token columns come from the
workload, as in the simulator, and the times from the scheduler's records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler import SpecError

TASK_INPUTS = ("size_ms", "openai")
PROMPT_WORD = "hello"


def check_task_input(kind: str, extra: Mapping[str, Any] | None = None) -> None:
    """Refuse an unknown ``--task-input``, or ``extra`` fields that would replace the generated ones."""
    if kind not in TASK_INPUTS:
        raise SpecError("task_input", kind, "one of " + ", ".join(TASK_INPUTS))
    if extra:
        if kind != "openai":
            raise SpecError("openai_extra", dict(extra), "only with task_input openai")
        taken = sorted(set(extra) & {"prompt", "max_tokens", "messages", "model"})
        if taken:
            raise SpecError(
                "openai_extra",
                dict(extra),
                f"fields other than {', '.join(taken)} (the drive sets prompt and max_tokens from the "
                "trace; the instance sets model)",
            )


def task_input(
    kind: str, size_ms: float, metadata: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Any:
    """The ``task_input`` of one task (see the module docstring)."""
    if kind == "size_ms":
        return {"size_ms": size_ms}
    n_in, n_out = metadata.get("input_tokens"), metadata.get("output_tokens")
    if n_in is None or n_out is None:
        raise SpecError(
            "task_input",
            kind,
            "size_ms for a workload without token counts; openai needs input_tokens and output_tokens "
            "for every task (a trace with token columns, or workload.tokens in the scenario)",
        )
    body = {"prompt": " ".join([PROMPT_WORD] * int(n_in)), "max_tokens": max(1, int(n_out))}
    return {**body, **(extra or {})}
