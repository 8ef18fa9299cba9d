"""POST /v1/losses/binary-cross-entropy and /v1/losses/cross-entropy."""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter, Request, Response

from service import core
from service.api.arrays import Float64Array, Int64Array
from service.api.models import (
    BinaryCrossEntropyRequest,
    BinaryCrossEntropyResponse,
    CrossEntropyRequest,
    CrossEntropyResponse,
    ReductionName,
)
from service.api.operation import run_operation
from service.api.spec import COMPUTE_PROBLEMS, json_body

router = APIRouter(prefix="/v1/losses", tags=["losses"])


class BinaryOptions(TypedDict):
    """Keyword options of the core's binary cross-entropies."""

    weights: Float64Array | None
    pos_weight: float | Float64Array | None
    label_smoothing: float
    reduction: ReductionName
    hessian: bool


class CategoricalOptions(TypedDict):
    """Keyword options of the core's cross-entropies."""

    labels: Int64Array | None
    target_probabilities: Float64Array | None
    class_weights: Float64Array | None
    ignore_index: int | None
    label_smoothing: float
    reduction: ReductionName
    hessian: bool


def _payload(result: core.LossResult) -> dict[str, object]:
    return {
        "loss": None if result.loss is None else float(result.loss),
        "losses": result.losses,
        "gradient": result.gradient,
        "hessian": result.hessian,
        "clamped": int(result.clamped),
    }


def _binary_cross_entropy(request: BinaryCrossEntropyRequest) -> dict[str, object]:
    options = BinaryOptions(
        weights=request.weights,
        pos_weight=request.pos_weight,
        label_smoothing=request.label_smoothing,
        reduction=request.reduction,
        hessian=request.hessian,
    )
    if request.logits is not None:
        result = core.binary_cross_entropy_with_logits(
            request.logits, request.targets, **options
        )
    elif request.probabilities is not None:
        result = core.binary_cross_entropy(
            request.probabilities, request.targets, **options
        )
    else:
        raise AssertionError("the model lets no request through without inputs")
    return _payload(result)


def _cross_entropy(request: CrossEntropyRequest) -> dict[str, object]:
    options = CategoricalOptions(
        labels=request.labels,
        target_probabilities=request.target_probabilities,
        class_weights=request.class_weights,
        ignore_index=request.ignore_index,
        label_smoothing=request.label_smoothing,
        reduction=request.reduction,
        hessian=request.hessian,
    )
    if request.logits is not None:
        result = core.cross_entropy_with_logits(request.logits, **options)
    elif request.probabilities is not None:
        result = core.cross_entropy(request.probabilities, **options)
    else:
        raise AssertionError("the model lets no request through without inputs")
    return _payload(result)


@router.post(
    "/binary-cross-entropy",
    operation_id="binary_cross_entropy",
    response_description="Loss, per-element losses, gradient and Hessian.",
    summary="Binary cross-entropy",
    response_model=BinaryCrossEntropyResponse,
    responses=COMPUTE_PROBLEMS,
    openapi_extra=json_body(BinaryCrossEntropyRequest),
)
async def binary_cross_entropy(request: Request) -> Response:
    """Binary cross-entropy of logits or probabilities, with gradient and Hessian."""
    return await run_operation(
        request, BinaryCrossEntropyRequest, _binary_cross_entropy
    )


@router.post(
    "/cross-entropy",
    operation_id="cross_entropy",
    response_description="Loss, per-sample losses, gradient and Hessian.",
    summary="Cross-entropy",
    response_model=CrossEntropyResponse,
    responses=COMPUTE_PROBLEMS,
    openapi_extra=json_body(CrossEntropyRequest),
)
async def cross_entropy(request: Request) -> Response:
    """Softmax cross-entropy against labels or distributions, with derivatives."""
    return await run_operation(request, CrossEntropyRequest, _cross_entropy)
