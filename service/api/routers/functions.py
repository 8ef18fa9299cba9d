"""POST /v1/sigmoid and /v1/softmax."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service import core
from service.api.models import (
    SigmoidRequest,
    SigmoidResponse,
    SoftmaxRequest,
    SoftmaxResponse,
)
from service.api.operation import run_operation
from service.api.spec import COMPUTE_PROBLEMS, json_body

router = APIRouter(prefix="/v1", tags=["functions"])


def _sigmoid(request: SigmoidRequest) -> dict[str, object]:
    value, derivative, second = core.sigmoid_family(request.x, request.order)
    return {"value": value, "derivative": derivative, "second_derivative": second}


def _softmax(request: SoftmaxRequest) -> dict[str, object]:
    probabilities, log_probabilities = core.softmax_and_log_softmax(request.logits)
    return {"probabilities": probabilities, "log_probabilities": log_probabilities}


@router.post(
    "/sigmoid",
    operation_id="sigmoid",
    response_description="σ(x) and the requested derivatives.",
    summary="Sigmoid and its derivatives",
    response_model=SigmoidResponse,
    responses=COMPUTE_PROBLEMS,
    openapi_extra=json_body(SigmoidRequest),
)
async def sigmoid(request: Request) -> Response:
    """σ(x) elementwise, with σ'(x) and σ''(x) up to the requested order."""
    return await run_operation(request, SigmoidRequest, _sigmoid)


@router.post(
    "/softmax",
    operation_id="softmax",
    response_description="Probabilities and log-probabilities.",
    summary="Softmax and log-softmax",
    response_model=SoftmaxResponse,
    responses=COMPUTE_PROBLEMS,
    openapi_extra=json_body(SoftmaxRequest),
)
async def softmax(request: Request) -> Response:
    """Softmax and log-softmax of each row of an N×C matrix of logits."""
    return await run_operation(request, SoftmaxRequest, _softmax)
