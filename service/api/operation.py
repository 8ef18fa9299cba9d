"""How a compute route runs: check the content type, read the body within the
byte limit, then decode, compute and encode, off the event loop when large.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from service.api.decoding import ModelT, decode_request, encode_result
from service.api.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from service.settings import Settings

log = logging.getLogger(__name__)

# Where a route leaves the durations of its phases for the Server-Timing header.
TIMINGS_KEY = "lossgrad.timings"

Compute = Callable[[ModelT], Mapping[str, object]]

# Note: the number of elements is unknown until the body is parsed, and parsing
# is part of the work to move off the loop.  A JSON number takes at least two
# bytes with its separator ("0,"), so a body holding offload_min_elements
# numbers has at least twice as many bytes: deciding on the byte count offloads
# every request that reaches the element threshold (and some smaller ones
# written with long numbers, which costs a thread hop of tens of microseconds).
_MIN_BYTES_PER_ELEMENT = 2


def require_json(content_type: str | None) -> None:
    """Accept ``application/json``, with no charset or UTF-8, and nothing else."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            "The body must be sent with Content-Type: application/json."
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip(
            '"'
        ).lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaTypeError("JSON bodies must be encoded as UTF-8.")


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The body is larger than this service's {limit} bytes."
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before any byte is
    read; a chunked body is counted as it arrives and never held whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def offloads(body_bytes: int, settings: Settings) -> bool:
    """Whether a body this large is processed in a worker thread."""
    return body_bytes >= _MIN_BYTES_PER_ELEMENT * settings.offload_min_elements


def _respond(
    body: bytes, model: type[ModelT], compute: Compute[ModelT], settings: Settings
) -> Response:
    request = decode_request(body, model, settings)
    try:
        # encode_result refuses non-finite results; numpy need not warn of them.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = compute(request)
    except ValueError as exc:
        # The models check every rule the core enforces, so this is a gap in
        # the models; the core's message still names the culprit.
        log.warning("core refused a validated request: %s", exc)
        raise InvalidRequestError(str(exc)) from None
    return Response(encode_result(result), media_type="application/json")


async def run_operation(
    request: Request, model: type[ModelT], compute: Compute[ModelT]
) -> Response:
    """Answer ``request`` with ``compute`` applied to its body as a ``model``."""
    settings: Settings = request.app.state.settings
    require_json(request.headers.get("content-type"))
    timings = request.scope.setdefault(TIMINGS_KEY, {})

    started = time.perf_counter()
    body = await read_body(request, settings.max_body_bytes)
    received = time.perf_counter()
    timings["read"] = received - started
    try:
        if offloads(len(body), settings):
            return await run_in_threadpool(_respond, body, model, compute, settings)
        return _respond(body, model, compute, settings)
    finally:
        timings["process"] = time.perf_counter() - received
