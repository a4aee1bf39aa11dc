"""Task instances joining and leaving: ``POST /ti/register``, ``POST /ti/remove``.
Refusals answer 200 with ``status: "error"`` (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..models import RegisterRequest, RegisterResponse, RemoveRequest, RemoveResponse
from ..service import Refused
from .deps import service_of


async def register(req: RegisterRequest, request: Request) -> RegisterResponse:
    service = service_of(request)
    try:
        ti = await service.register(
            req.host, req.port, req.model_name, speed=req.speed, protocol=req.protocol
        )
    except Refused as e:
        return RegisterResponse(status="error", message=str(e), ti_uuid="")
    protocol = service.protocol_of(ti)
    return RegisterResponse(
        status="success",
        message=f"TaskInstance registered (protocol {protocol}: {service.dialects[protocol].endpoints})",
        ti_uuid=ti,
        protocol=protocol,
    )


async def remove(req: RemoveRequest, request: Request) -> RemoveResponse:
    service = service_of(request)
    try:
        left = service.remove(req.ti_uuid)
    except Refused as e:
        return RemoveResponse(status="error", message=str(e), ti_uuid=req.ti_uuid)
    return RemoveResponse(
        status="success",
        ti_uuid=req.ti_uuid,
        message=f"TaskInstance removed; its {left} task(s) in flight will finish and be recorded",
    )


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/ti/register", register, methods=["POST"], response_model=RegisterResponse)
    r.add_api_route("/ti/remove", remove, methods=["POST"], response_model=RemoveResponse)
    return r
