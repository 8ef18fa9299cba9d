"""The application factory: ``create_app(settings)`` builds one ASGI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.middleware import RequestMiddleware
from service.api.routers import ROUTERS
from service.api.spec import TAGS, build_openapi
from service.settings import Settings, get_settings

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
    log.info(
        "lossgrad %s started",
        app.version,
        extra={
            "max_body_bytes": settings.max_body_bytes,
            "max_elements": settings.max_elements,
            "max_classes": settings.max_classes,
        },
    )
    yield
    app.state.ready = False
    log.info("lossgrad stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to those of the environment."""
    app = LossgradApp(
        title="lossgrad",
        version=service_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan,
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    app.state.ready = True
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(RequestMiddleware)
    return app
