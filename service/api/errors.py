"""The API's errors and the one place that turns them into problem documents.

Every error response is an RFC 9457 problem document (``application/problem+json``)
with ``type``, ``title``, ``status`` and ``detail``; validation errors add an
``errors`` list of ``{loc, msg}`` where ``loc`` is the path of the culprit, such
as ``["body", "targets", 17]``.  ``type`` is always ``about:blank``: the status
code alone says what kind of problem it is, and ``detail`` says what went wrong.

Nothing from the request is echoed beyond field names, indices and the odd
offending number, so a problem document stays small and always encodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_REPORTED_ERRORS = 20

# RFC 9110 reason phrases; Python 3.11's HTTPStatus still has the RFC 7231 ones.
_TITLES = {
    413: "Content Too Large",
    422: "Unprocessable Content",
}

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation error: where (``loc``) and what (``msg``)."""

    loc: Loc
    msg: str


class ApiError(Exception):
    """An error with a status code, mapped to a problem document by one handler."""

    status: ClassVar[int] = 500

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


class MalformedJsonError(ApiError):
    """The body is not JSON at all."""

    status = 400


class PayloadTooLargeError(ApiError):
    """The body has more bytes, numbers or classes than the limits allow."""

    status = 413


class UnsupportedMediaTypeError(ApiError):
    """The body is not declared as ``application/json``."""

    status = 415


class InvalidRequestError(ApiError):
    """The body is JSON but breaks the request schema or a cross-field rule."""

    status = 422

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidRequestError:
        """Wrap Pydantic's errors, with locations prefixed by ``body``."""
        errors = [
            FieldError(("body", *item["loc"]), item["msg"])
            for item in exc.errors(
                include_url=False, include_context=False, include_input=False
            )
        ]
        return cls(_summary(len(errors)), errors)


class NotReadyError(ApiError):
    """The service is shutting down or not yet able to serve."""

    status = 503


class UnauthorizedError(ApiError):
    """The request carries no API key, or one this service does not know."""

    status = 401


class OverloadedError(ApiError):
    """This worker already has as many requests in flight as it may take."""

    status = 503


def _summary(count: int) -> str:
    noun = "problem" if count == 1 else "problems"
    return f"The request body has {count} {noun}; see errors."


def problem_document(
    status: int, detail: str, errors: Sequence[FieldError] = ()
) -> dict[str, Any]:
    """The problem document for ``status``, with at most 20 ``errors``."""
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        if len(errors) > len(shown):
            document["detail"] = f"{detail} (the first {len(shown)} are listed)"
        document["errors"] = [{"loc": list(e.loc), "msg": e.msg} for e in shown]
    return document


def problem_response(
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A complete ``application/problem+json`` response."""
    return Response(
        orjson.dumps(problem_document(status, detail, errors)),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def internal_error_response() -> Response:
    """The answer to an unexpected exception: no message, no trace, no input."""
    return problem_response(500, "The server failed to process the request.")


def error_response(exc: ApiError) -> Response:
    """The problem document for ``exc``, for middleware that answers by itself."""
    return problem_response(exc.status, exc.detail, exc.errors, exc.headers)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = "There is no resource at this path."
    elif exc.status_code == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        detail = f"Method {request.method} is not allowed here; allowed: {allowed}."
    else:
        # Starlette fills detail with the status phrase unless a route chose one.
        detail = str(exc.detail)
    return problem_response(exc.status_code, detail, headers=headers)


async def _request_validation_error(_: Request, exc: Exception) -> Response:
    # Only raised for parameters FastAPI parses itself; bodies are decoded by us.
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(tuple(item["loc"]), str(item["msg"])) for item in exc.errors()]
    return problem_response(422, _summary(len(errors)), errors)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to a problem document."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
