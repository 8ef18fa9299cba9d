"""Reference endpoints that lossgrad is measured against.

- :data:`straightforward_app` computes binary cross-entropy on logits the way
  a FastAPI user would first write it: FastAPI's default body parsing into a
  Pydantic model of ``list[float]``, the same core maths, and a Pydantic
  response model built from ``.tolist()``.
- :data:`constant_app` returns a constant JSON document from a plain ``def``
  endpoint, which FastAPI runs in its thread pool: the reference of the
  throughput target.
- :data:`async_constant_app` does the same from an ``async def`` endpoint,
  run on the event loop with no thread hop: the ceiling of what FastAPI and
  uvicorn can serve on this machine, reported alongside.

The first reports its own time in a ``Server-Timing`` header, as lossgrad does;
the constant apps have no middleware at all.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from service.core import binary_cross_entropy_with_logits, cross_entropy_with_logits


class BCERequest(BaseModel):
    logits: list[float]
    targets: list[float]
    reduction: Literal["none", "sum", "mean"] = "mean"


class CERequest(BaseModel):
    logits: list[list[float]]
    labels: list[int]
    reduction: Literal["none", "sum", "mean"] = "mean"


class BCEResponse(BaseModel):
    loss: float | None
    losses: list[float]
    gradient: list[float]
    hessian: list[float] | None
    clamped: int


class CEResponse(BaseModel):
    loss: float | None
    losses: list[float]
    gradient: list[list[float]]
    hessian: list[list[float]] | None
    clamped: int


def _timed(app: FastAPI) -> FastAPI:
    @app.middleware("http")
    async def server_timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - start) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.3f}"
        return response

    return app


straightforward_app = _timed(FastAPI())


@straightforward_app.post("/v1/losses/binary-cross-entropy")
def straightforward_bce(request: BCERequest) -> BCEResponse:
    result = binary_cross_entropy_with_logits(
        np.array(request.logits), np.array(request.targets), reduction=request.reduction
    )
    return BCEResponse(
        loss=result.loss,
        losses=result.losses.tolist(),
        gradient=result.gradient.tolist(),
        hessian=None,
        clamped=result.clamped,
    )


@straightforward_app.post("/v1/losses/cross-entropy")
def straightforward_ce(request: CERequest) -> CEResponse:
    result = cross_entropy_with_logits(
        np.array(request.logits),
        labels=np.array(request.labels),
        reduction=request.reduction,
    )
    return CEResponse(
        loss=result.loss,
        losses=result.losses.tolist(),
        gradient=result.gradient.tolist(),
        hessian=None,
        clamped=result.clamped,
    )


@straightforward_app.get("/health/live")
def straightforward_live() -> dict[str, str]:
    return {"status": "ok"}


constant_app = FastAPI()
_CONSTANT = {"loss": 0.6931471805599453, "losses": None, "gradient": None}


@constant_app.post("/v1/losses/binary-cross-entropy")
def constant_bce() -> dict[str, float | None]:
    return _CONSTANT


@constant_app.get("/health/live")
def constant_live() -> dict[str, str]:
    return {"status": "ok"}


async_constant_app = FastAPI()


@async_constant_app.post("/v1/losses/binary-cross-entropy")
async def async_constant_bce() -> dict[str, float | None]:
    return _CONSTANT


@async_constant_app.get("/health/live")
async def async_constant_live() -> dict[str, str]:
    return {"status": "ok"}
