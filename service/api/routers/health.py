"""GET /health/live and /health/ready."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.errors import NotReadyError
from service.api.models import Health
from service.api.spec import problem

router = APIRouter(prefix="/health", tags=["health"])


@router.get(
    "/live",
    operation_id="health_live",
    summary="Liveness",
    response_description="The process is up.",
)
async def live() -> Health:
    """200 while the process can answer at all."""
    return Health(status="ok")


@router.get(
    "/ready",
    operation_id="health_ready",
    response_description="The service takes new work.",
    summary="Readiness",
    responses={503: problem("The service is shutting down.")},
)
async def ready(request: Request) -> Health:
    """200 while the service takes new work; 503 once it is shutting down."""
    if not request.app.state.ready:
        raise NotReadyError(
            "The service is shutting down.", headers={"Retry-After": "1"}
        )
    return Health(status="ready")
