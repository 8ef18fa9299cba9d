"""Gradients and Hessian diagonals against 4th-order central finite differences.

For every option combination the returned gradient must be the derivative of the
returned loss: of ``LossResult.loss`` for "sum" and "mean", and of each element's
own entry of ``LossResult.losses`` for "none". Inputs are moderate (logits in
[-3, 3], probabilities in [0.2, 0.8]) so that the stencils' truncation error is far
below the tolerance.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from service.core import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_logits,
)

# Central stencils, error O(h**4): f' from offsets -2..2 over 12 h, f'' over 12 h**2.
FIRST = {-2: 1.0, -1: -8.0, 1: 8.0, 2: -1.0}
SECOND = {-2: -1.0, -1: 16.0, 0: -30.0, 1: 16.0, 2: -1.0}

# Gradient step: truncation ~ h**4 f^(5) / 30 ~ 1e-11 even for -log p at p = 0.2,
# rounding ~ 1e-16 |f| / h ~ 1e-12. Hessian step: rounding ~ 1e-16 |f| / h**2 is
# what limits it, so h is larger, while h**4 f^(6) / 90 at p = 0.2 stays ~ 3e-7
# of f'' = 25.
H_GRADIENT = 1e-3
H_HESSIAN = 2e-3
GRADIENT_TOLERANCE = {"rtol": 1e-8, "atol": 1e-9}
HESSIAN_TOLERANCE = {"rtol": 1e-6, "atol": 1e-7}

REDUCTIONS = ["none", "sum", "mean"]


def directions(shape: tuple[int, ...], reduction: str) -> list[np.ndarray]:
    """Unit perturbations: one per entry when the loss is a scalar.

    For "none" each sample's loss depends only on its own row, so one perturbation
    per column moves every sample at once and each sample's loss sees only its own
    entry move.
    """
    if reduction == "none":
        if len(shape) == 1:
            return [np.ones(shape)]
        masks = []
        for c in range(shape[1]):
            mask = np.zeros(shape)
            mask[:, c] = 1.0
            masks.append(mask)
        return masks
    basis = []
    for i in range(int(np.prod(shape))):
        e = np.zeros(shape)
        e.flat[i] = 1.0
        basis.append(e)
    return basis


def finite_differences(
    loss_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray, reduction: str
) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, Hessian diagonal) of loss_of at x by the stencils above."""
    gradient = np.zeros_like(x)
    hessian = np.zeros_like(x)
    for e in directions(x.shape, reduction):
        d1 = sum(w * loss_of(x + k * H_GRADIENT * e) for k, w in FIRST.items())
        d2 = sum(w * loss_of(x + k * H_HESSIAN * e) for k, w in SECOND.items())
        d1 = d1 / (12 * H_GRADIENT)
        d2 = d2 / (12 * H_HESSIAN**2)
        # For "none" d1 holds one value per sample, in the order of the entries
        # the mask selects (one per row); otherwise it is the single entry's.
        mask = e.astype(bool)
        gradient[mask] = d1
        hessian[mask] = d2
    return gradient, hessian


def check_against_finite_differences(
    function: Callable[..., Any], x: np.ndarray, reduction: str, **options: Any
) -> None:
    result = function(x.copy(), reduction=reduction, hessian=True, **options)

    def loss_of(point: np.ndarray) -> np.ndarray:
        r = function(point, reduction=reduction, **options)
        return np.asarray(r.losses if reduction == "none" else r.loss, dtype=float)

    fd_gradient, fd_hessian = finite_differences(loss_of, x, reduction)
    np.testing.assert_allclose(
        result.gradient, fd_gradient, err_msg="gradient", **GRADIENT_TOLERANCE
    )
    np.testing.assert_allclose(
        result.hessian, fd_hessian, err_msg="Hessian", **HESSIAN_TOLERANCE
    )
    # Guard against a vacuous pass: the derivatives checked are not all zero.
    assert np.any(np.abs(fd_gradient) > 1e-3)


# --- binary cross-entropy ----------------------------------------------------------

N = 6
_rng = np.random.default_rng(21)
BCE_LOGITS = _rng.uniform(-3.0, 3.0, N)
BCE_PROBABILITIES = _rng.uniform(0.2, 0.8, N)
BCE_TARGETS = np.array([0.0, 1.0, 0.3, 0.7, 1.0, 0.0])
BCE_WEIGHTS = _rng.uniform(0.5, 2.0, N)
BCE_POS_WEIGHTS = _rng.uniform(0.5, 3.0, N)

BCE_FUNCTIONS = {
    "logits": (binary_cross_entropy_with_logits, BCE_LOGITS),
    "probabilities": (binary_cross_entropy, BCE_PROBABILITIES),
}
POS_WEIGHT_CHOICES = {"none": None, "scalar": 2.5, "array": BCE_POS_WEIGHTS}


@pytest.mark.parametrize(
    ("kind", "weighted", "pos_weight", "eps", "reduction"),
    list(
        itertools.product(
            sorted(BCE_FUNCTIONS),
            [False, True],
            sorted(POS_WEIGHT_CHOICES),
            [0.0, 0.1],
            REDUCTIONS,
        )
    ),
)
def test_bce_derivatives_match_finite_differences(
    kind: str, weighted: bool, pos_weight: str, eps: float, reduction: str
) -> None:
    function, x = BCE_FUNCTIONS[kind]
    check_against_finite_differences(
        function,
        x,
        reduction,
        targets=BCE_TARGETS,
        weights=BCE_WEIGHTS if weighted else None,
        pos_weight=POS_WEIGHT_CHOICES[pos_weight],
        label_smoothing=eps,
    )


# --- categorical cross-entropy -----------------------------------------------------

ROWS, CLASSES = 5, 3
CE_LOGITS = _rng.uniform(-3.0, 3.0, (ROWS, CLASSES))
# Each p_c is an independent input, so rows need not sum to 1 (and would not
# while perturbed).
CE_PROBABILITIES = _rng.uniform(0.2, 0.8, (ROWS, CLASSES))
CE_LABELS = np.array([0, 2, 1, 2, 1])
CE_TARGETS = _rng.dirichlet(np.ones(CLASSES), ROWS)
CE_TARGETS[0] = [1.0, 0.0, 0.0]
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.25])

CE_FUNCTIONS = {
    "logits": (cross_entropy_with_logits, CE_LOGITS),
    "probabilities": (cross_entropy, CE_PROBABILITIES),
}
CE_TARGET_KINDS = {
    "labels": {"labels": CE_LABELS},
    "labels+ignore_index": {"labels": CE_LABELS, "ignore_index": 2},
    "target_probabilities": {"target_probabilities": CE_TARGETS},
}


@pytest.mark.parametrize(
    ("kind", "target_kind", "weighted", "eps", "reduction"),
    list(
        itertools.product(
            sorted(CE_FUNCTIONS),
            sorted(CE_TARGET_KINDS),
            [False, True],
            [0.0, 0.2],
            REDUCTIONS,
        )
    ),
)
def test_ce_derivatives_match_finite_differences(
    kind: str, target_kind: str, weighted: bool, eps: float, reduction: str
) -> None:
    function, x = CE_FUNCTIONS[kind]
    check_against_finite_differences(
        function,
        x,
        reduction,
        **CE_TARGET_KINDS[target_kind],
        class_weights=CLASS_WEIGHTS if weighted else None,
        label_smoothing=eps,
    )
