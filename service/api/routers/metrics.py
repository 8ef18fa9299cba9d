"""GET /metrics, for Prometheus; outside the OpenAPI document, like a probe."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.metrics import CONTENT_TYPE, exposition

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Every metric in the Prometheus text format, summed over all workers."""
    # A plain def: with several workers the scrape reads their files, which is
    # file I/O, so it runs in the thread pool rather than on the event loop.
    return Response(exposition(), media_type=CONTENT_TYPE)
