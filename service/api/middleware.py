"""The outermost layer of the app: request id, timing, metrics, the access
log, the 500 fallback.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which
would put every response through an extra stream and task.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import internal_error_response
from service.api.operation import ELEMENTS_KEY, TIMINGS_KEY
from service.log import current_request_id
from service.metrics import IN_FLIGHT, UNMATCHED_ROUTE, record_request

access_log = logging.getLogger("lossgrad.access")
error_log = logging.getLogger("lossgrad.error")

# The status nginx logs for a client that went away before the response.
CLIENT_CLOSED_REQUEST = 499

REQUEST_ID_HEADER = "X-Request-ID"
# An id a client or proxy sends is kept if it is short and made of characters
# that need no escaping anywhere (UUIDs, hex, base64, trace ids); anything else
# is replaced, so that a log line never carries what a client chose to inject.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._~:+/=-]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The request's valid ``X-Request-ID``, or a new uuid4 in hex."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _VALID_REQUEST_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return uuid.uuid4().hex


def _route_of(scope: Scope, path: str, root_path: str) -> Any:
    """The route that served the request, as the router left it in the scope;
    for a request refused before routing (by a limit, say) or served by a
    mount, the route its path as it arrived matches."""
    route = scope.get("route")
    if route is not None:
        return route
    router = getattr(scope.get("app"), "router", None)
    # A mount rewrites the paths of the scope it passes on.
    arrival = {**scope, "path": path, "root_path": root_path}
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches(arrival)
        if match is not Match.NONE:
            return candidate
    return None


def route_template(route: Any) -> str:
    """The route's path template, the same for every request it serves."""
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestMiddleware:
    """Adds ``Server-Timing`` and ``X-Request-ID``, counts each request in the
    metrics, logs one line per request, and turns any exception that escaped
    the error handlers into a bare 500.

    ``app`` runs from the request's arrival at the app to the start of the
    response.  Compute routes add ``read``, the time spent receiving the body
    (which includes waiting for the client to send it), and ``process``, the
    time spent parsing, validating, computing and encoding.  All in ms.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        status = 0
        request_id = request_id_of(scope)
        token = current_request_id.set(request_id)
        path, root_path = scope["path"], scope.get("root_path", "")
        IN_FLIGHT.inc()

        async def send_with_timing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                metrics = [("app", time.perf_counter() - start)]
                metrics += scope.get(TIMINGS_KEY, {}).items()
                headers = MutableHeaders(scope=message)
                headers.append(
                    "Server-Timing",
                    ", ".join(f"{name};dur={s * 1e3:.3f}" for name, s in metrics),
                )
                headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        except ClientDisconnect:
            # Nobody is left to answer; 499 marks it in the access log only.
            status = status or CLIENT_CLOSED_REQUEST
        except Exception:
            error_log.exception(
                "unhandled error",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "request_id": request_id,
                },
            )
            if status:
                raise  # the response has started; only dropping the connection is left
            await internal_error_response()(scope, receive, send_with_timing)
        finally:
            seconds = time.perf_counter() - start
            IN_FLIGHT.dec()
            route = _route_of(scope, path, root_path)
            template = route_template(route)
            elements = scope.get(ELEMENTS_KEY)
            record_request(
                scope["method"],
                template,
                status,
                seconds,
                getattr(route, "operation_id", None),
                elements,
            )
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "route": template,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1e3, 3),
                    "elements": elements,
                    "request_id": request_id,
                },
            )
            current_request_id.reset(token)
