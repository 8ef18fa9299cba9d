"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served without the internet.

FastAPI's own pages load their scripts, styles, fonts and favicon from CDNs.
These load everything from ``/static/docs``: the Swagger UI and ReDoc bundles
that the ``fastapi-offline`` package installs, and lossgrad's favicon from
``service/static``.  Swagger UI's online validator badge, which would send the
document's URL to a public validator, is switched off.

Both pages carry a Content-Security-Policy that confines them to their own
origin, so that whatever a bundle refers to elsewhere is refused by the browser
before a request is sent: ReDoc's sidebar credit shows a logo from ReDoc's CDN,
which the policy blocks (ReDoc then leaves the logo out).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/static/docs"

# (package, folder) pairs searched in order for a requested file.
_ASSET_PACKAGES: list[str | tuple[str, str]] = [
    ("service", "static"),
    ("fastapi_offline", "static"),
]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # FastAPI's pages start the UI from an inline script.
        "script-src 'self' 'unsafe-inline'",
        # Both UIs set styles inline.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        # ReDoc searches in a worker it builds from a blob.
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)

SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    "validatorUrl": None,
    "displayRequestDuration": True,
    "defaultModelsExpandDepth": 0,
}


def _openapi_url(request: Request) -> str:
    root = request.scope.get("root_path", "")
    return f"{root}{request.app.openapi_url}"


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


async def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive Swagger UI page."""
    return _confined(
        get_swagger_ui_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} API",
            swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=_asset(request, "swagger-ui.css"),
            swagger_favicon_url=_asset(request, "favicon.svg"),
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
    )


async def redoc(request: Request) -> HTMLResponse:
    """The ReDoc reference page."""
    return _confined(
        get_redoc_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} API reference",
            redoc_js_url=_asset(request, "redoc.standalone.js"),
            redoc_favicon_url=_asset(request, "favicon.svg"),
            with_google_fonts=False,
        )
    )


def install_docs(app: FastAPI) -> None:
    """Add the two pages and their assets to ``app`` (built with docs_url=None)."""
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=_ASSET_PACKAGES),
        name="docs-assets",
    )
    app.add_api_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc, include_in_schema=False)
