"""The application factory: ``create_app(settings)`` builds one ASGI app."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI

from service.api.auth import ApiKeyMiddleware
from service.api.cors import ProblemCorsMiddleware
from service.api.docs import install_docs
from service.api.errors import install_error_handlers
from service.api.limits import ComputeSlots, InFlightLimitMiddleware
from service.api.middleware import RequestMiddleware
from service.api.routers import ROUTERS
from service.api.routers.metrics import router as metrics_router
from service.api.spec import TAGS, build_openapi
from service.metrics import mark_worker_stopped
from service.settings import Settings, get_settings
from service.shutdown import on_stop_signal

log = logging.getLogger(__name__)

DESCRIPTION = """\
Classification losses, their gradients and Hessian diagonals, over JSON.

Every number is float64. Errors are RFC 9457 problem documents
(`application/problem+json`); validation errors list each culprit's location.
"""


def service_version() -> str:
    """The installed package's version."""
    try:
        return version("lossgrad")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "0+unknown"


class LossgradApp(FastAPI):
    """FastAPI with the OpenAPI document completed by :func:`build_openapi`."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = build_openapi(self)
        return self.openapi_schema


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.ready = True
    # Readiness falls at SIGTERM, while the server still drains requests.
    stop_watching = on_stop_signal(lambda: setattr(app.state, "ready", False))
    log.info(
        "lossgrad %s started",
        app.version,
        extra={
            "max_body_bytes": settings.max_body_bytes,
            "max_elements": settings.max_elements,
            "max_classes": settings.max_classes,
            "max_in_flight": settings.max_in_flight,
            "auth": "api_keys" if settings.api_keys else "open",
        },
    )
    if not settings.api_keys:
        log.warning(
            "the service is open: no API keys are set (LOSSGRAD_API_KEYS), so any "
            "caller that can reach it may use it"
        )
    try:
        yield
    finally:
        app.state.ready = False
        stop_watching()
        mark_worker_stopped()
    log.info("lossgrad stopped")


def telemetry_options(enabled: bool) -> dict[str, Any]:
    """The keyword that turns FastAPI's native OpenTelemetry off unless
    ``enabled``; nothing for FastAPI releases that have none."""
    if enabled or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to those of the environment."""
    settings = settings or get_settings()
    app = LossgradApp(
        title="lossgrad",
        version=service_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan,
        docs_url=None,  # install_docs serves both pages without CDNs
        redoc_url=None,
        **telemetry_options(settings.opentelemetry),
    )
    app.state.settings = settings
    app.state.ready = True
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(metrics_router)
    install_docs(app)
    # The last added runs first: log, then CORS, then keys, then the in-flight bound.
    app.state.compute_slots = ComputeSlots(settings.compute_threads)
    app.add_middleware(InFlightLimitMiddleware, limit=settings.max_in_flight)
    if settings.api_keys:
        keys = [key.get_secret_value() for key in settings.api_keys]
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    if settings.cors_origins:
        app.add_middleware(ProblemCorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(RequestMiddleware)
    return app
