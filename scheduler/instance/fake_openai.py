"""A small OpenAI-compatible server for tests and examples: no model, no GPU.

``python -m scheduler.instance.fake_openai --port 8000 --ms-per-token 2``
serves ``POST /v1/chat/completions`` and ``POST /v1/completions`` with the
bodies of the OpenAI API reference (``choices``, ``usage``; errors as
``{"error": {"message", "type", "param", "code"}}``) and ``GET /v1/models``.
A "token" is a whitespace-separated word; the answer has ``max_tokens``
tokens (default 16) and takes ``ms-per-token`` per output token, so latency
grows with the request as on a real server.

For tests, a prompt (or last message) containing ``[fake:500]`` is answered
with a server error and one containing ``[fake:hang]`` is never answered.
``GET /fake/stats`` tells how many requests came and the most that were in
flight at once.  With ``--api-key-env VAR`` requests without
``Authorization: Bearer $VAR`` are refused (401).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from ..protocol import log_config, run


class FakeState:
    def __init__(self, model: str, ms_per_token: float, api_key: str | None):
        self.model, self.ms_per_token, self.api_key = model, ms_per_token, api_key
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": param, "code": None}},
    )


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):  # content parts [{"type": "text", "text": ...}]
        return [w for part in value if isinstance(part, dict) for w in str(part.get("text", "")).split()]
    return []


def _check(body: Any, chat: bool) -> tuple[list[str], int] | JSONResponse:
    """The prompt's words and max_tokens, or a 400 as OpenAI words it."""
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object", "invalid_request_error")
    if not isinstance(body.get("model"), str):
        return _error(400, "you must provide a model parameter", "invalid_request_error", "model")
    if chat:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            return _error(
                400, "'messages' must be a non-empty array of objects", "invalid_request_error", "messages"
            )
        words = [w for m in msgs for w in _words(m.get("content"))]
    else:
        if not isinstance(body.get("prompt"), str):
            return _error(400, "'prompt' must be a string", "invalid_request_error", "prompt")
        words = _words(body["prompt"])
    max_tokens = body.get("max_tokens", 16)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return _error(
            400,
            f"max_tokens: {max_tokens!r} is not valid; it must be an integer >= 1",
            "invalid_request_error",
            "max_tokens",
        )
    return words, max_tokens


async def _answer(request: Request, chat: bool) -> JSONResponse:
    state: FakeState = request.app.state.fake
    if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
        return _error(401, "Incorrect API key provided.", "invalid_request_error")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the request body is not valid JSON", "invalid_request_error")
    checked = _check(body, chat)
    if isinstance(checked, JSONResponse):
        return checked
    words, max_tokens = checked
    state.requests += 1
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        if "[fake:500]" in words:
            return _error(500, "The server had an error while processing your request.", "server_error")
        if "[fake:hang]" in words:
            await asyncio.sleep(3600)
        await asyncio.sleep(state.ms_per_token * max_tokens / 1000.0)
    finally:
        state.in_flight -= 1
    text = " ".join((words or ["ok"])[i % max(1, len(words))] for i in range(max_tokens))
    choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return JSONResponse(
        {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(words),
                "completion_tokens": max_tokens,
                "total_tokens": len(words) + max_tokens,
            },
        }
    )


async def chat_completions(request: Request) -> JSONResponse:
    return await _answer(request, chat=True)


async def completions(request: Request) -> JSONResponse:
    return await _answer(request, chat=False)


async def models(request: Request) -> dict:
    state: FakeState = request.app.state.fake
    return {"object": "list", "data": [{"id": state.model, "object": "model", "owned_by": "fake"}]}


async def stats(request: Request) -> dict:
    state: FakeState = request.app.state.fake
    return {"requests": state.requests, "in_flight": state.in_flight, "max_in_flight": state.max_in_flight}


def create_fake_app(
    model: str = "fake-model", ms_per_token: float = 2.0, api_key: str | None = None
) -> FastAPI:
    app = FastAPI(title="fake OpenAI-compatible server")
    app.state.fake = FakeState(model, ms_per_token, api_key)
    r = APIRouter()
    r.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    r.add_api_route("/v1/completions", completions, methods=["POST"])
    r.add_api_route("/v1/models", models, methods=["GET"])
    r.add_api_route("/fake/stats", stats, methods=["GET"])
    app.include_router(r)
    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scheduler.instance.fake_openai", description=__doc__.split("\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="fake-model", help="the name /v1/models lists")
    p.add_argument("--ms-per-token", type=float, default=2.0, help="latency per output token (default 2)")
    p.add_argument("--api-key-env", default=None, metavar="VAR", help="require this key as a bearer token")
    ns = p.parse_args(argv)
    key = os.environ.get(ns.api_key_env) if ns.api_key_env else None
    if ns.api_key_env and not key:
        print(f"fake_openai: --api-key-env: {ns.api_key_env!r} is not set", file=sys.stderr)
        return 2
    log_config("warning")
    run(create_fake_app(ns.model, ns.ms_per_token, key), host=ns.host, port=ns.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
