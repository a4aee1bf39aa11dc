"""How the scheduler app answers what its handlers do not.

A malformed body is FastAPI's 422, except that an offending value JSON cannot
carry (Infinity, NaN) is shown as text instead of turning the answer into a
500.  Anything else that goes wrong is a bug: logged with its traceback and
answered as a JSON 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("scheduler.live")
ECHO_LIMIT = 200  # characters of an offending input shown back in a 422


async def malformed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for err in exc.errors():
        err = dict(err)
        for key in ("input", "ctx"):
            if key in err and not _json_safe(err[key]):
                err[key] = repr(err[key])
        if "input" in err and len(text := repr(err["input"])) > ECHO_LIMIT:  # never echo a large input back
            err["input"] = text[:ECHO_LIMIT] + f"... ({len(text) - ECHO_LIMIT} more characters)"
        detail.append(err)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={"detail": f"internal error ({type(exc).__name__}); the scheduler log has the details"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, malformed)
    app.add_exception_handler(Exception, unexpected)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(jsonable_encoder(value), allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False
