"""The outermost layer of the app: timing, the access log, the 500 fallback.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which
would put every response through an extra stream and task.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import internal_error_response
from service.api.operation import TIMINGS_KEY

access_log = logging.getLogger("lossgrad.access")
error_log = logging.getLogger("lossgrad.error")

# The status nginx logs for a client that went away before the response.
CLIENT_CLOSED_REQUEST = 499


class RequestMiddleware:
    """Adds ``Server-Timing``, logs one line per request, and turns any
    exception that escaped the error handlers into a bare 500.

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
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        except ClientDisconnect:
            # Nobody is left to answer; 499 marks it in the access log only.
            status = status or CLIENT_CLOSED_REQUEST
        except Exception:
            error_log.exception(
                "unhandled error",
                extra={"method": scope["method"], "path": scope["path"]},
            )
            if status:
                raise  # the response has started; only dropping the connection is left
            await internal_error_response()(scope, receive, send_with_timing)
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1e3, 3),
                },
            )
