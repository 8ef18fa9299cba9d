"""Request and response models of the HTTP API v1.

Request models validate a parsed JSON body completely: field types and ranges
(through the array types of :mod:`service.api.arrays`), then the rules that tie
fields together, each error with the location of the culprit.  Array fields hold
float64 (labels: int64) numpy arrays.  Response models only describe the bytes
the routes write with orjson; they appear in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from service.api.arrays import (
    Float64Array,
    Labels,
    Loc,
    NonNegativeNumbers,
    NumberMatrix,
    Numbers,
    PositiveWeight,
    UnitMatrix,
    UnitNumbers,
    fail,
)

ReductionName = Literal["mean", "sum", "none"]

# How far a row of probabilities may sum from 1: a few float32 ulps, so that
# probabilities produced in single precision still pass.
ROW_SUM_TOLERANCE = 1e-6


def _integral(value: object) -> object:
    # JSON Schema's "integer" includes 2.0, and the schema is the contract; any
    # other float is left for the strict int check to refuse.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Int64 = Annotated[
    int,
    Field(ge=-(2**63), le=2**63 - 1, json_schema_extra={"format": "int64"}),
    BeforeValidator(_integral),
]
"""A 64-bit JSON integer, written with or without a zero fraction (2 or 2.0)."""


def _request_config(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": list(examples)},
    )


_REDUCTION_HELP = '"mean" (default) or "sum" of the per-sample losses, or "none".'
_HESSIAN_HELP = "Also return the diagonal of the Hessian of the loss."


def _exactly_one(
    model: BaseModel, names: tuple[str, str], errors: list[tuple[Loc, str]]
) -> tuple[str, Any] | None:
    """The one field of ``names`` that was given, or None after noting an error."""
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) == 1:
        return given[0], getattr(model, given[0])
    first, second = names
    which = "both were sent" if given else "neither was sent"
    errors.append(((), f"give exactly one of {first} or {second}; {which}"))
    return None


def _check_length(
    errors: list[tuple[Loc, str]],
    name: str,
    array: Float64Array | None,
    reference: str,
    n: int,
) -> None:
    if array is not None and len(array) != n:
        errors.append(((name,), f"has {len(array)} elements, but {reference} has {n}"))


def _first_row_not_summing_to_one(matrix: Float64Array) -> tuple[int, float] | None:
    sums = matrix.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if not off.any():
        return None
    row = int(np.argmax(off))
    return row, float(sums[row])


def _check_rows_sum_to_one(
    errors: list[tuple[Loc, str]], name: str, matrix: Float64Array
) -> None:
    found = _first_row_not_summing_to_one(matrix)
    if found is not None:
        row, total = found
        errors.append(
            (
                (name, row),
                f"must sum to 1 within {ROW_SUM_TOLERANCE:g}; sums to {total!r}",
            )
        )


class SigmoidRequest(BaseModel):
    """The logistic sigmoid σ(x) = 1 / (1 + e^(−x)), elementwise, with derivatives.

    ``order`` 1 adds σ'(x) = σ(x)(1 − σ(x)); ``order`` 2 also adds
    σ''(x) = σ'(x)(1 − 2σ(x)).
    """

    model_config = _request_config({"x": [-2.0, 0.0, 3.0], "order": 2})

    x: Numbers = Field(description="The points, N >= 1 finite numbers.")
    order: Annotated[int, Field(ge=0, le=2), BeforeValidator(_integral)] = Field(
        1, description="0: value only; 1: and σ'; 2: and σ'' too."
    )


class SigmoidResponse(BaseModel):
    """σ(x) and its derivatives, each an array of the length of ``x``."""

    value: list[float] = Field(description="σ(x).")
    derivative: list[float] | None = Field(description="σ'(x); null for order 0.")
    second_derivative: list[float] | None = Field(
        description="σ''(x); null unless order is 2."
    )


class SoftmaxRequest(BaseModel):
    """Softmax and log-softmax of each row of an N×C matrix of logits."""

    model_config = _request_config({"logits": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]})

    logits: NumberMatrix = Field(
        description="N >= 1 rows of the same C >= 1 finite numbers."
    )


class SoftmaxResponse(BaseModel):
    """Softmax probabilities and their logarithms, both N×C."""

    probabilities: list[list[float]] = Field(description="exp(z) / Σ exp(z), by row.")
    log_probabilities: list[list[float]] = Field(
        description="z − log Σ exp(z), by row, computed without taking a log of p."
    )


class BinaryCrossEntropyRequest(BaseModel):
    """Binary cross-entropy of N predictions against targets in [0, 1].

    Send exactly one of ``logits`` (preferred: exact for any size of logit) or
    ``probabilities``.  The loss of element i is
    −w_i [pw_i t_i log p_i + (1 − t_i) log(1 − p_i)] with p = σ(logits).
    Multi-label data is sent flattened (N = samples × labels), with a
    per-element ``pos_weight`` where each label has its own.
    """

    model_config = _request_config(
        {
            "logits": [2.0, -1.0, 0.5],
            "targets": [1.0, 0.0, 1.0],
            "reduction": "mean",
            "hessian": True,
        },
        {
            "probabilities": [0.9, 0.2, 0.6],
            "targets": [1.0, 0.0, 0.5],
            "weights": [1.0, 2.0, 1.0],
            "pos_weight": 3.0,
            "reduction": "none",
        },
    )

    logits: Numbers | None = Field(
        None, description="Raw scores z; p = σ(z). Exclusive with probabilities."
    )
    probabilities: UnitNumbers | None = Field(
        None, description="Predicted probabilities p in [0, 1]. Exclusive with logits."
    )
    targets: UnitNumbers = Field(
        description="Targets t in [0, 1], hard or soft; as many as the predictions."
    )
    weights: NonNegativeNumbers | None = Field(
        None, description="Per-element weights w >= 0 (default 1)."
    )
    pos_weight: PositiveWeight | None = Field(
        None,
        description="Weight of the positive term: one number > 0, or one per element.",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="ε in [0, 1): t becomes t(1 − ε) + ε/2."
    )
    reduction: ReductionName = Field("mean", description=_REDUCTION_HELP)
    hessian: bool = Field(False, description=_HESSIAN_HELP)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        errors: list[tuple[Loc, str]] = []
        given = _exactly_one(self, ("logits", "probabilities"), errors)
        if given is not None:
            name, inputs = given
            n = len(inputs)
            _check_length(errors, "targets", self.targets, name, n)
            _check_length(errors, "weights", self.weights, name, n)
            if isinstance(self.pos_weight, np.ndarray) and len(self.pos_weight) != n:
                errors.append(
                    (
                        ("pos_weight",),
                        f"has {len(self.pos_weight)} elements; give one number, "
                        f"or {n} to match {name}",
                    )
                )
        if errors:
            fail(*errors)
        return self


class BinaryCrossEntropyResponse(BaseModel):
    """The reduced loss, per-element losses, gradient and Hessian diagonal."""

    loss: float | None = Field(description="The reduced loss; null for none.")
    losses: list[float] = Field(description="Per-element losses, weighted.")
    gradient: list[float] = Field(
        description="d loss / d input (for none: of each element's own loss)."
    )
    hessian: list[float] | None = Field(
        description="Diagonal of the Hessian, same convention; null unless asked."
    )
    clamped: int = Field(
        ge=0,
        description="Elements where a clamp at the probability boundary changed a "
        "term; always 0 for logits.",
    )


class CrossEntropyRequest(BaseModel):
    """Softmax cross-entropy of N×C predictions against labels or distributions.

    Send exactly one of ``logits`` (preferred) or ``probabilities``, and exactly
    one of ``labels`` or ``target_probabilities``.  Options follow PyTorch's
    ``F.cross_entropy``; ``ignore_index`` only applies to labels, and when it is
    absent no label is ignored.
    """

    model_config = _request_config(
        {
            "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]],
            "labels": [0, 2],
            "reduction": "mean",
        },
        {
            "probabilities": [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],
            "target_probabilities": [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]],
            "class_weights": [1.0, 2.0, 1.0],
            "label_smoothing": 0.1,
            "reduction": "none",
            "hessian": True,
        },
    )

    logits: NumberMatrix | None = Field(
        None,
        description="N×C raw scores; p = softmax by row. Exclusive with probabilities.",
    )
    probabilities: UnitMatrix | None = Field(
        None,
        description="N×C probabilities, each row summing to 1 within 1e-6. "
        "Exclusive with logits.",
    )
    labels: Labels | None = Field(
        None,
        description="N class indices in [0, C), or equal to ignore_index. "
        "Exclusive with target_probabilities.",
    )
    target_probabilities: UnitMatrix | None = Field(
        None,
        description="N×C target distributions, each row summing to 1 within 1e-6. "
        "Exclusive with labels.",
    )
    class_weights: NonNegativeNumbers | None = Field(
        None, description="C per-class weights >= 0 (default 1)."
    )
    ignore_index: Int64 | None = Field(
        None,
        description="Label value whose rows are ignored (labels only; default: "
        "none is).",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="ε in [0, 1]: the target becomes (1 − ε)·target + ε/C.",
    )
    reduction: ReductionName = Field("mean", description=_REDUCTION_HELP)
    hessian: bool = Field(False, description=_HESSIAN_HELP)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        errors: list[tuple[Loc, str]] = []
        given = _exactly_one(self, ("logits", "probabilities"), errors)
        _exactly_one(self, ("labels", "target_probabilities"), errors)
        if self.ignore_index is not None and self.target_probabilities is not None:
            errors.append((("ignore_index",), "applies to labels only"))
        if given is not None:
            name, inputs = given
            self._check_against(name, inputs, errors)
        if errors:
            fail(*errors)
        return self

    def _check_against(
        self, name: str, inputs: Float64Array, errors: list[tuple[Loc, str]]
    ) -> None:
        n, c = inputs.shape
        if self.probabilities is not None:
            _check_rows_sum_to_one(errors, "probabilities", self.probabilities)
        if self.labels is not None:
            self._check_labels(name, n, c, errors)
        targets = self.target_probabilities
        if targets is not None:
            if targets.shape[0] != n:
                errors.append(
                    (
                        ("target_probabilities",),
                        f"has {targets.shape[0]} rows, but {name} has {n}",
                    )
                )
            elif targets.shape[1] != c:
                errors.append(
                    (
                        ("target_probabilities", 0),
                        f"has {targets.shape[1]} numbers, but rows of {name} have {c}",
                    )
                )
            else:
                _check_rows_sum_to_one(errors, "target_probabilities", targets)
        weights = self.class_weights
        if weights is not None and len(weights) != c:
            errors.append(
                (
                    ("class_weights",),
                    f"has {len(weights)} elements, but {name} has {c} classes",
                )
            )

    def _check_labels(
        self, name: str, n: int, c: int, errors: list[tuple[Loc, str]]
    ) -> None:
        labels = self.labels
        assert labels is not None
        if len(labels) != n:
            errors.append(
                (("labels",), f"has {len(labels)} elements, but {name} has {n}")
            )
            return
        if labels.min() >= 0 and labels.max() < c:
            return
        bad = (labels < 0) | (labels >= c)
        if self.ignore_index is not None:
            bad &= labels != self.ignore_index
        if bad.any():
            index = int(np.argmax(bad))
            allowed = f"[0, {c})"
            if self.ignore_index is not None:
                allowed += f" or equal to ignore_index ({self.ignore_index})"
            errors.append(
                (("labels", index), f"must be in {allowed}; got {int(labels[index])}")
            )


class CrossEntropyResponse(BaseModel):
    """The reduced loss, per-sample losses, N×C gradient and Hessian diagonal."""

    loss: float | None = Field(description="The reduced loss; null for none.")
    losses: list[float] = Field(description="Per-sample losses, weighted.")
    gradient: list[list[float]] = Field(
        description="N×C: d loss / d input (for none: of each sample's own loss)."
    )
    hessian: list[list[float]] | None = Field(
        description="N×C diagonal of the Hessian, same convention; null unless asked."
    )
    clamped: int = Field(
        ge=0,
        description="(n, c) entries where a clamp at the probability boundary "
        "changed a term; always 0 for logits.",
    )


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"] = Field(description='"ok" (live) or "ready".')


class ServiceLimits(BaseModel):
    """The limits this instance enforces."""

    max_body_bytes: int = Field(description="Largest request body, in bytes.")
    max_elements: int = Field(description="Most numbers in one request.")
    max_classes: int = Field(description="Most classes C in one row.")
    offload_min_elements: int = Field(
        description="Requests this large run off the event loop."
    )
    max_in_flight: int = Field(
        description="Most requests one worker takes at once; more get 503."
    )
    compute_threads: int = Field(
        description="Most large requests one worker computes at once; others wait."
    )


class LossInfo(BaseModel):
    """One loss this service computes."""

    name: str = Field(description="The operation's name.")
    path: str = Field(description="Where to POST it.")
    inputs: list[str] = Field(
        description="The prediction fields, one of which to send."
    )
    targets: list[str] = Field(description="The target fields, one of which to send.")


class ServiceInfo(BaseModel):
    """The service's version, limits and losses."""

    name: str = Field(description="Always lossgrad.")
    version: str = Field(description="The service's version.")
    api_version: str = Field(description="The API's major version.")
    limits: ServiceLimits
    losses: list[LossInfo]


class ProblemError(BaseModel):
    """One validation error."""

    loc: list[str | int] = Field(
        description='Path to the culprit: "body", a field name, then indices.'
    )
    msg: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem document (application/problem+json)."""

    type: str = Field(description="Always about:blank: the status says the kind.")
    title: str = Field(description="The status code's phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for a human.")
    errors: list[ProblemError] = Field(
        default_factory=list,
        max_length=20,
        description="Validation errors, at most 20; absent for other problems.",
    )


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    SigmoidRequest,
    SoftmaxRequest,
    BinaryCrossEntropyRequest,
    CrossEntropyRequest,
)
