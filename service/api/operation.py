"""How a compute route runs: check the content type, read the body within the
byte limit, then decode, compute and encode, off the event loop when large.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from service.api.decoding import ModelT, RequestBody, decode_request, encode_result
from service.api.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from service.api.limits import ComputeSlots
from service.metrics import record_rejection
from service.settings import Settings

log = logging.getLogger(__name__)

# Where a route leaves the durations of its phases for the Server-Timing header.
TIMINGS_KEY = "lossgrad.timings"
# Where it leaves the number of elements it computed on, for the log and metrics.
ELEMENTS_KEY = "lossgrad.elements"

# The fields holding what a request computes on, one per request model.
_PREDICTION_FIELDS = ("x", "logits", "probabilities")

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
        record_rejection("content_type")
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
            record_rejection("content_type")
            raise UnsupportedMediaTypeError("JSON bodies must be encoded as UTF-8.")


def _too_large(limit: int) -> PayloadTooLargeError:
    record_rejection("max_body_bytes")
    return PayloadTooLargeError(
        f"The body is larger than this service's {limit} bytes."
    )


async def read_body(request: Request, limit: int) -> bytearray:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before any byte is
    read; a chunked body is counted as it arrives and never held whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # Note: one growing buffer rather than a list of chunks joined at the end.
    # Thousands of 64 KiB chunks held at once would grow the heap by the size of
    # the body, and that memory would stay resident, unused, through the parse.
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise _too_large(limit)
        body += chunk
    return body


def prediction_elements(request: BaseModel) -> int:
    """The number of elements of the array ``request`` computes on."""
    for name in _PREDICTION_FIELDS:
        value = getattr(request, name, None)
        if isinstance(value, np.ndarray):
            return int(value.size)
    return 0


def offloads(body_bytes: int, settings: Settings) -> bool:
    """Whether a body this large is processed in a worker thread."""
    return body_bytes >= _MIN_BYTES_PER_ELEMENT * settings.offload_min_elements


def _respond(
    body: RequestBody,
    model: type[ModelT],
    compute: Compute[ModelT],
    settings: Settings,
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
    del request  # its input arrays are not needed while the result is encoded
    return Response(encode_result(result), media_type="application/json")


async def run_operation(
    request: Request, model: type[ModelT], compute: Compute[ModelT]
) -> Response:
    """Answer ``request`` with ``compute`` applied to its body as a ``model``."""
    settings: Settings = request.app.state.settings
    require_json(request.headers.get("content-type"))
    timings = request.scope.setdefault(TIMINGS_KEY, {})
    scope = request.scope

    def counted(parsed: ModelT) -> Mapping[str, object]:
        scope[ELEMENTS_KEY] = prediction_elements(parsed)
        return compute(parsed)

    started = time.perf_counter()
    body = RequestBody(await read_body(request, settings.max_body_bytes))
    received = time.perf_counter()
    timings["read"] = received - started
    try:
        if offloads(len(body), settings):
            slots: ComputeSlots = request.app.state.compute_slots
            return await slots.run(_respond, body, model, counted, settings)
        return _respond(body, model, counted, settings)
    finally:
        timings["process"] = time.perf_counter() - received
