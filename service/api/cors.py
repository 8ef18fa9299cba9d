"""CORS, only when ``LOSSGRAD_CORS_ORIGINS`` names the origins to allow.

Starlette's middleware does the work; the one change is that a refused preflight
request is answered with a problem document, like every other error, instead of
a line of plain text.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from service.api.errors import problem_response

ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
EXPOSED_HEADERS = ("Retry-After", "Server-Timing", "WWW-Authenticate", "X-Request-ID")


class ProblemCorsMiddleware(CORSMiddleware):
    """Starlette's CORS for exactly ``origins``, refusing in problem documents."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette's text names what was refused: "Disallowed CORS origin, method".
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower().startswith("access-control-")
        }
        return problem_response(
            response.status_code,
            f"This cross-origin request is not allowed: its {refused} "
            "is not among those this service accepts.",
            headers=headers,
        )
