"""GET /v1/info."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.models import LossInfo, ServiceInfo, ServiceLimits
from service.settings import Settings

router = APIRouter(prefix="/v1", tags=["info"])

LOSSES = (
    LossInfo(
        name="binary_cross_entropy",
        path="/v1/losses/binary-cross-entropy",
        inputs=["logits", "probabilities"],
        targets=["targets"],
    ),
    LossInfo(
        name="cross_entropy",
        path="/v1/losses/cross-entropy",
        inputs=["logits", "probabilities"],
        targets=["labels", "target_probabilities"],
    ),
)


@router.get(
    "/info",
    operation_id="info",
    summary="Service information",
    response_description="Version, limits and losses.",
)
async def info(request: Request) -> ServiceInfo:
    """The service's version, the limits in force and the losses it offers."""
    settings: Settings = request.app.state.settings
    return ServiceInfo(
        name="lossgrad",
        version=request.app.version,
        api_version="v1",
        limits=ServiceLimits(
            max_body_bytes=settings.max_body_bytes,
            max_elements=settings.max_elements,
            max_classes=settings.max_classes,
            offload_min_elements=settings.offload_min_elements,
            max_in_flight=settings.max_in_flight,
            compute_threads=settings.compute_threads,
        ),
        losses=list(LOSSES),
    )
