"""The OpenAI-compatible backend: a task instance in front of a real model server.

``python -m scheduler.instance --backend openai --upstream http://HOST:PORT/v1
--model NAME --concurrency N`` serves the task-instance protocol unchanged
(FIFO, ``N`` workers, so at most ``N`` upstream requests at a time) and runs
each task as one request to an OpenAI-compatible server (vLLM, SGLang,
llama.cpp server, ...):

* ``input_data`` is an OpenAI request body without ``model``: with
  ``messages`` it goes to ``POST {upstream}/chat/completions``, with
  ``prompt`` to ``POST {upstream}/completions``; ``model`` is set to
  ``--model``.  Anything else is refused at enqueue (:meth:`OpenAIWork.check`);
* the task's result is the upstream's JSON answer as it came; its ``usage``
  gives the completion's ``metrics`` (:func:`metrics_of`);
* an upstream 4xx fails the task with the upstream's own error message, a 5xx,
  a refused connection or a timeout with that reason.

The API key is read from the environment variable named by ``--api-key-env``
and only ever sent upstream as a bearer token: never logged, never echoed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .work import TaskInputError

CHAT_SHAPE = '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 64}'
COMPLETION_SHAPE = '{"prompt": "Once upon a time", "max_tokens": 64}'


class UpstreamError(TaskInputError):
    """The upstream refused or failed the request; the message says why (the task fails with it)."""


def endpoint_of(input_data: Any) -> str:
    """``chat/completions`` or ``completions`` for an OpenAI request body; a :class:`TaskInputError` else."""
    if isinstance(input_data, Mapping):
        if "model" in input_data:
            raise TaskInputError(
                "input_data.model: leave it out; the instance sets it to the model it serves (--model)"
            )
        has_chat, has_prompt = "messages" in input_data, "prompt" in input_data
        if has_chat and not has_prompt and isinstance(input_data["messages"], list):
            return "chat/completions"
        if has_prompt and not has_chat:
            return "completions"
    raise TaskInputError(
        f"input_data: got {_short(input_data)}, expected an OpenAI request body without 'model': "
        f"a chat request such as {CHAT_SHAPE} or a completion request such as {COMPLETION_SHAPE}"
    )


def metrics_of(result: Any) -> dict[str, int] | None:
    """``{input_tokens, output_tokens}`` from an OpenAI answer's ``usage`` (None without one)."""
    usage = result.get("usage") if isinstance(result, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    out = {}
    for ours, theirs in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
        v = usage.get(theirs)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            out[ours] = v
    return out or None


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upstream_message(resp: httpx.Response) -> str:
    """The error message of an OpenAI error body ``{"error": {"message": ...}}``, else the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    err = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(err, Mapping) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(err, str):
        return err
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    return _short(body, 500)


class OpenAIWork:
    """One task = one request to an OpenAI-compatible upstream (see the module docs)."""

    kind = "openai"
    prior_ms = None  # unknown until measured

    def __init__(
        self,
        upstream: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if not upstream.startswith(("http://", "https://")):
            raise ValueError(f"--upstream: got {upstream!r}, expected a URL such as http://127.0.0.1:8000/v1")
        if not timeout_s > 0:
            raise ValueError(f"--upstream-timeout-s: got {timeout_s!r}, expected a number of seconds > 0")
        self.upstream, self.model, self.timeout_s = upstream.rstrip("/"), model, float(timeout_s)
        self._api_key = api_key
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIWork(upstream={self.upstream!r}, model={self.model!r})"

    def check(self, input_data: Any) -> None:
        """Refuse at enqueue what is neither a chat nor a completion request (:class:`TaskInputError`)."""
        endpoint_of(input_data)

    metrics = staticmethod(metrics_of)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
            self._http = httpx.AsyncClient(timeout=self.timeout_s, headers=headers, transport=self._transport)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run(self, input_data: Any, metadata: Mapping[str, Any] | None = None) -> Any:
        """One upstream request (``metadata`` is the scheduler's; the upstream does not see it)."""
        url = f"{self.upstream}/{endpoint_of(input_data)}"
        body = {**input_data, "model": self.model}
        try:
            resp = await self._client().post(url, json=body)
        except httpx.TimeoutException:
            raise UpstreamError(
                f"upstream {url} did not answer within {self.timeout_s:g} s (--upstream-timeout-s)"
            ) from None
        except httpx.ConnectError as e:
            raise UpstreamError(f"upstream {url} unreachable (connection refused or failed: {e})") from None
        except httpx.HTTPError as e:
            raise UpstreamError(f"upstream {url} failed: {type(e).__name__}: {e}") from None
        if resp.status_code >= 400:
            who = "refused the request" if resp.status_code < 500 else "failed"
            raise UpstreamError(f"upstream {who} (HTTP {resp.status_code}): {_upstream_message(resp)}")
        try:
            return resp.json()
        except ValueError:
            raise UpstreamError(
                f"upstream answered HTTP {resp.status_code} with a body that is not JSON: {resp.text[:200]!r}"
            ) from None
