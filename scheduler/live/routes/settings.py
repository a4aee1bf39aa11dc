"""The scheduler's own settings: ``POST /scheduler/set``, ``POST /scheduler/predict_mode``,
``GET /scheduler/stats``.  Refusals answer 200 with ``status: "error"`` (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..models import PredictModeRequest, SetStrategyRequest, StatsResponse, StatusMessage
from ..modes import mode_from_api
from ..service import Refused
from .deps import service_of


async def set_strategy(req: SetStrategyRequest, request: Request) -> StatusMessage:
    service = service_of(request)
    try:
        service.set_strategy(req.name, req.params)
    except Refused as e:
        return StatusMessage(status="error", message=str(e))
    return StatusMessage(status="success", message="OK")


async def set_predict_mode(req: PredictModeRequest, request: Request) -> StatusMessage:
    service = service_of(request)
    try:
        service.set_predict_mode(mode_from_api(req.mode))
    except Refused as e:
        return StatusMessage(status="error", message=str(e))
    return StatusMessage(status="success", message="OK")


async def stats(request: Request) -> StatsResponse:
    service = service_of(request)
    s = service.core.tracker.stats()
    return StatsResponse(
        strategy=service.core.strategy_name,
        predict_mode=service.predict_mode,
        counts=s["counts"],
        instances=len(service.core.instance_ids()),
        total_ms=s["total_ms"],
        wait_ms=s["wait_ms"],
        execution_ms=s["execution_ms"],
    )


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/scheduler/set", set_strategy, methods=["POST"], response_model=StatusMessage)
    r.add_api_route(
        "/scheduler/predict_mode", set_predict_mode, methods=["POST"], response_model=StatusMessage
    )
    r.add_api_route("/scheduler/stats", stats, methods=["GET"], response_model=StatsResponse)
    return r
