"""Property tests: finite outputs on the whole valid domain, non-negative losses,
and reductions that agree with the "none" output.

The valid domain is every finite input whose exact results are representable:
logits up to 1e300 in magnitude (so that a loss of pos_weight * weight * |z| summed
over a few samples cannot legitimately overflow), any probability in [0, 1]
including 0, 1 and subnormals, weights and pos_weight in [0, 1e3].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_logits,
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_derivative,
    sigmoid_family,
    sigmoid_second_derivative,
    softmax,
    softmax_and_log_softmax,
)

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False)
LOGIT = st.floats(-1e300, 1e300, allow_nan=False)
PROBABILITY = st.floats(0.0, 1.0)
FACTOR = st.floats(0.0, 1e3)
SMOOTHING = st.floats(0.0, 1.0)
# Class weights 0, or large enough that the "mean" divisor (a sum of them) cannot
# push a gradient of at most 1e12 per entry past the float range.
CLASS_WEIGHT = st.one_of(st.just(0.0), st.floats(1e-3, 10.0))

# Loose bounds that still catch a wrong divisor or lost samples; the sum of a few
# non-negative floats is accurate to a few ulps.
REDUCTION_RTOL = 1e-12
TINY = 1e-300


def assert_all_finite(result: Any, what: str) -> None:
    assert np.all(np.isfinite(result.losses)), (what, result.losses)
    assert np.all(np.isfinite(result.gradient)), (what, result.gradient)
    if result.hessian is not None:
        assert np.all(np.isfinite(result.hessian)), (what, result.hessian)
    if result.loss is not None:
        assert math.isfinite(result.loss), (what, result.loss)


def check_reductions(
    function: Any,
    x: np.ndarray,
    divisor: float,
    gradient_scale: np.ndarray | float,
    **options: Any,
) -> None:
    """Finite, non-negative, and sum / mean consistent with "none".

    A gradient entry can be the difference of two terms of size gradient_scale
    (e.g. (1 - t) sigma(z) - pw t sigma(-z)); an implementation that folds the
    divisor in before subtracting rounds differently, by ulps of those terms.
    """
    out = {
        r: function(x.copy(), reduction=r, hessian=True, **options)
        for r in ("none", "sum", "mean")
    }
    for r, result in out.items():
        assert_all_finite(result, r)
        assert np.all(result.losses >= 0.0), (r, result.losses)
    none = out["none"]
    assert none.loss is None
    losses = none.losses
    total = math.fsum(losses.tolist())

    # The per-sample losses are the same whatever the reduction.
    for r in ("sum", "mean"):
        np.testing.assert_allclose(out[r].losses, losses, rtol=1e-15, atol=0)

    assert out["sum"].loss is not None
    assert math.isclose(out["sum"].loss, total, rel_tol=REDUCTION_RTOL, abs_tol=TINY)
    assert_gradient_close(out["sum"].gradient, none.gradient, gradient_scale)
    np.testing.assert_allclose(out["sum"].hessian, none.hessian, rtol=1e-14, atol=TINY)

    mean = out["mean"]
    assert mean.loss is not None
    if divisor == 0.0:
        # Where PyTorch's mean is 0/0, the core returns 0 and zero derivatives.
        assert mean.loss == 0.0
        assert np.all(mean.gradient == 0.0)
        assert np.all(mean.hessian == 0.0)
        return
    assert math.isclose(
        mean.loss, total / divisor, rel_tol=REDUCTION_RTOL, abs_tol=TINY
    )
    assert_gradient_close(
        mean.gradient, none.gradient / divisor, np.divide(gradient_scale, divisor)
    )
    np.testing.assert_allclose(
        mean.hessian, none.hessian / divisor, rtol=1e-13, atol=TINY
    )


def assert_gradient_close(
    got: np.ndarray, expected: np.ndarray, scale: np.ndarray | float
) -> None:
    error = np.abs(got - expected)
    bound = 1e-13 * np.abs(expected) + 1e-14 * np.asarray(scale) + TINY
    assert np.all(error <= bound), (got, expected, scale)


# --- elementwise functions ---------------------------------------------------------


@PROPERTY_SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 20), elements=ANY_FINITE))
def test_sigmoid_family_is_finite_and_bounded(x: np.ndarray) -> None:
    s = sigmoid(x.copy())
    ls = log_sigmoid(x.copy())
    d1 = sigmoid_derivative(x.copy())
    d2 = sigmoid_second_derivative(x.copy())
    for v in (s, ls, d1, d2):
        assert v.shape == x.shape
        assert np.all(np.isfinite(v))
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert np.all(ls <= 0.0)
    # sigma' < 1/4 away from 0; an answer within the 1e-14 accuracy bar may round
    # up to a few ulps above it.
    assert np.all((d1 >= 0.0) & (d1 <= 0.25 * (1 + 1e-14)))
    # max |sigma''| = 1 / (6 sqrt 3) ~ 0.0962, at x = +-log(2 + sqrt 3)
    assert np.all(np.abs(d2) <= 1.0 / (6.0 * math.sqrt(3.0)) * (1 + 1e-14))
    # sigma'' has the sign of -x.
    assert np.all(d2 * x <= 0.0)
    value, first, second = sigmoid_family(x.copy(), 2)
    assert first is not None
    assert second is not None
    for v in (value, first, second):
        assert np.all(np.isfinite(v))


# Rows whose max - min stays finite: |z| <= 8e307.
ROW_LOGIT = st.floats(-8e307, 8e307, allow_nan=False)


@PROPERTY_SETTINGS
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        elements=ROW_LOGIT,
    )
)
def test_softmax_is_finite_and_normalised(z: np.ndarray) -> None:
    p = softmax(z.copy())
    logp = log_softmax(z.copy())
    p2, logp2 = softmax_and_log_softmax(z.copy())
    for v in (p, logp, p2, logp2):
        assert v.shape == z.shape
        assert np.all(np.isfinite(v))
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert np.all(logp <= 0.0)
    # Each row sums to 1 up to the rounding of a few terms.
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-14 * z.shape[1])


# --- binary cross-entropy ----------------------------------------------------------


@st.composite
def bce_cases(draw: st.DrawFn, element: st.SearchStrategy[float]) -> dict[str, Any]:
    n = draw(st.integers(1, 12))
    x = draw(hnp.arrays(np.float64, n, elements=element))
    targets = draw(hnp.arrays(np.float64, n, elements=PROBABILITY))
    weights = draw(st.none() | hnp.arrays(np.float64, n, elements=FACTOR))
    pos_weight = draw(st.none() | FACTOR | hnp.arrays(np.float64, n, elements=FACTOR))
    # eps = 1 (every target 1/2) is pinned separately in test_core_semantics.
    eps = draw(st.just(0.0) | st.floats(0.0, 1.0, exclude_max=True))
    return {
        "x": x,
        "targets": targets,
        "weights": weights,
        "pos_weight": pos_weight,
        "label_smoothing": eps,
    }


def bce_term_scale(
    case: dict[str, Any], r_pos: np.ndarray, r_neg: np.ndarray
) -> np.ndarray:
    """w (pw t' r_pos + (1 - t') r_neg): the size of the gradient's two terms."""
    eps = case["label_smoothing"]
    t = case["targets"] * (1.0 - eps) + eps / 2.0
    w = 1.0 if case["weights"] is None else case["weights"]
    pw = 1.0 if case["pos_weight"] is None else case["pos_weight"]
    return np.asarray(w * (pw * t * r_pos + (1.0 - t) * r_neg))


@PROPERTY_SETTINGS
@given(bce_cases(LOGIT))
def test_bce_logits_properties(case: dict[str, Any]) -> None:
    x = case.pop("x")
    check_reductions(
        binary_cross_entropy_with_logits,
        x,
        float(x.size),
        bce_term_scale(case, np.ones_like(x), np.ones_like(x)),
        **case,
    )


@PROPERTY_SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(1, 12), elements=ANY_FINITE),
    st.data(),
)
def test_bce_logits_unit_weights_any_finite_logit(x: np.ndarray, data: Any) -> None:
    # With unit weights the exact loss is at most |z| + log 2, so even the largest
    # floats give finite per-sample results.
    targets = data.draw(hnp.arrays(np.float64, x.size, elements=PROBABILITY))
    result = binary_cross_entropy_with_logits(
        x.copy(), targets, reduction="none", hessian=True
    )
    assert_all_finite(result, "none")
    assert np.all(result.losses >= 0.0)


@PROPERTY_SETTINGS
@given(bce_cases(PROBABILITY))
def test_bce_probabilities_properties(case: dict[str, Any]) -> None:
    x = case.pop("x")
    with np.errstate(divide="ignore", over="ignore"):
        # The gradient's reciprocals, capped as the policy caps them.
        r_pos = np.minimum(1.0 / x, 1e12)
        r_neg = np.minimum(1.0 / (1.0 - x), 1e12)
    check_reductions(
        binary_cross_entropy,
        x,
        float(x.size),
        bce_term_scale(case, r_pos, r_neg),
        **case,
    )


# --- categorical cross-entropy -----------------------------------------------------


@st.composite
def ce_cases(draw: st.DrawFn, probabilities: bool) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    c = draw(st.integers(2, 5))
    if probabilities:
        raw = draw(hnp.arrays(np.float64, (n, c), elements=PROBABILITY))
        raw[raw.sum(axis=1) == 0.0, 0] = 1.0
        x = raw / raw.sum(axis=1, keepdims=True)
    else:
        x = draw(hnp.arrays(np.float64, (n, c), elements=LOGIT))
    class_weights = draw(st.none() | hnp.arrays(np.float64, c, elements=CLASS_WEIGHT))
    eps = draw(st.sampled_from([0.0, 1.0]) | SMOOTHING)
    case: dict[str, Any] = {
        "x": x,
        "class_weights": class_weights,
        "label_smoothing": eps,
    }
    w = np.ones(c) if class_weights is None else class_weights
    if draw(st.booleans()):
        labels = draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
        ignore_index = draw(st.none() | st.integers(0, c - 1))
        case["labels"] = labels
        case["ignore_index"] = ignore_index
        kept = labels if ignore_index is None else labels[labels != ignore_index]
        # PyTorch: the mean divides by the weights of the labels of kept rows.
        case["divisor"] = math.fsum(w[kept].tolist())
    else:
        raw = draw(hnp.arrays(np.float64, (n, c), elements=PROBABILITY))
        raw[raw.sum(axis=1) == 0.0, 0] = 1.0
        case["target_probabilities"] = raw / raw.sum(axis=1, keepdims=True)
        case["divisor"] = float(n)
    return case


@PROPERTY_SETTINGS
@given(ce_cases(probabilities=False))
def test_ce_logits_properties(case: dict[str, Any]) -> None:
    x = case.pop("x")
    divisor = case.pop("divisor")
    # softmax * sum(a) - a: both terms at most sum(a) <= max(w) (1 + eps).
    weights = case["class_weights"]
    scale = 2.0 * (1.0 if weights is None else float(np.max(weights)))
    check_reductions(cross_entropy_with_logits, x, divisor, scale, **case)


@PROPERTY_SETTINGS
@given(ce_cases(probabilities=True))
def test_ce_probabilities_properties(case: dict[str, Any]) -> None:
    x = case.pop("x")
    divisor = case.pop("divisor")
    # -a / p is a single term per entry: nothing cancels.
    check_reductions(cross_entropy, x, divisor, 0.0, **case)
