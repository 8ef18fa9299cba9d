"""The OpenAPI document: request bodies, problem responses and components.

The compute routes read their body themselves (see :mod:`service.api.operation`),
so FastAPI does not see a body parameter; each route declares its request body
with :func:`json_body`, and :func:`build_openapi` adds the request models and
the problem document to the components.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.api.errors import PROBLEM_MEDIA_TYPE
from service.api.limits import HEALTH_PATHS
from service.api.models import REQUEST_MODELS, Problem

_REF = "#/components/schemas/{model}"

TAGS: list[dict[str, Any]] = [
    {"name": "functions", "description": "Sigmoid and softmax with derivatives."},
    {"name": "losses", "description": "Cross-entropies with gradients and Hessians."},
    {"name": "info", "description": "The service's version, limits and losses."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=model.__name__)}
                }
            },
        }
    }


def problem(description: str) -> dict[str, Any]:
    """A response whose body is a problem document."""
    return {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}
        },
    }


COMPUTE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem("The body is not valid JSON."),
    413: problem("The body, its numbers or its classes exceed the limits."),
    415: problem("The body is not sent as application/json."),
    422: problem("The body breaks the schema or a rule between fields."),
}


SECURITY_SCHEME = "ApiKey"

_API_KEY = {
    "type": "http",
    "scheme": "bearer",
    "description": "One of the keys in LOSSGRAD_API_KEYS, as Authorization: Bearer "
    "<key>. Only when the service runs with keys; the health routes never need one.",
}


def _guarded(description: str, header: str, header_description: str) -> dict[str, Any]:
    response = problem(description)
    response["headers"] = {
        header: {
            "description": header_description,
            "required": True,
            "schema": {"type": "string"},
        }
    }
    return response


# Every route but the health routes may answer these, whatever its own problems.
GUARD_PROBLEMS: dict[str, dict[str, Any]] = {
    "401": _guarded(
        "The service runs with API keys, and the request has none or a wrong one.",
        "WWW-Authenticate",
        'Bearer realm="lossgrad", with error="invalid_token" for a wrong key.',
    ),
    "503": _guarded(
        "The worker is at its limit of requests in flight, or it shut down before "
        "the request was complete.",
        "Retry-After",
        "Seconds to wait before trying again.",
    ),
}


def _document_guards(spec: dict[str, Any]) -> None:
    """Declare the optional API key and the 401/503 of every guarded route."""
    spec["components"]["securitySchemes"] = {SECURITY_SCHEME: _API_KEY}
    for path, operations in spec.get("paths", {}).items():
        if path in HEALTH_PATHS:
            continue
        for operation in operations.values():
            # {} : a service without keys takes requests without credentials.
            operation["security"] = [{SECURITY_SCHEME: []}, {}]
            for status, response in GUARD_PROBLEMS.items():
                operation["responses"].setdefault(status, deepcopy(response))


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with request models and the problem schema."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    _, extra = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS]
        + [(Problem, "serialization")],
        ref_template=_REF,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("$defs", {}).items():
        if name in schemas and schemas[name] != schema:
            raise RuntimeError(f"two different schemas are both named {name}")
        schemas[name] = schema
    spec["components"]["schemas"] = dict(sorted(schemas.items()))
    _document_guards(spec)
    return spec
