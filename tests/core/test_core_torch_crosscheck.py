"""Optional cross-check against PyTorch in float64, on moderate inputs.

Skipped unless torch is importable; nothing else depends on it. PyTorch is
right on moderate inputs, so loss, gradient (autograd) and Hessian diagonal
(autograd twice) must agree to rounding.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from service.core import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy_with_logits,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-12
ATOL = 1e-14
REDUCTIONS = ["none", "sum", "mean"]

rng = np.random.default_rng(51)
N = 7
LOGITS = rng.uniform(-4.0, 4.0, N)
PROBABILITIES = rng.uniform(0.2, 0.8, N)
TARGETS = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.8, 0.5])
WEIGHTS = rng.uniform(0.5, 2.0, N)
POS_WEIGHTS = rng.uniform(0.5, 3.0, N)


def leaf(values: np.ndarray) -> Any:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def torch_derivatives(loss: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian diagonal of an elementwise loss (summed if a vector)."""
    total = loss.sum()
    (grad,) = torch.autograd.grad(total, x, create_graph=True)
    # Each element's loss depends on its own input only, so the Hessian is
    # diagonal and the gradient of sum(grad) is that diagonal.
    (hess,) = torch.autograd.grad(grad.sum(), x)
    return grad.detach().numpy(), hess.numpy()


def assert_matches_torch(
    ours: Any, loss: Any, grad: Any, hess: Any, reduction: str, hessian_rtol: float
) -> None:
    """Our reduced (or per-element) loss, gradient and Hessian against torch's."""
    if reduction == "none":
        np.testing.assert_allclose(ours.losses, loss.detach().numpy(), RTOL, ATOL)
    else:
        np.testing.assert_allclose(ours.loss, loss.item(), RTOL, ATOL)
    np.testing.assert_allclose(ours.gradient, grad, RTOL, ATOL)
    np.testing.assert_allclose(ours.hessian, hess, hessian_rtol, ATOL)


@pytest.mark.parametrize(
    ("weighted", "pos_weight", "reduction"),
    list(itertools.product([False, True], [None, "scalar", "array"], REDUCTIONS)),
)
def test_bce_with_logits_matches_torch(
    weighted: bool, pos_weight: str | None, reduction: str
) -> None:
    pw = {None: None, "scalar": 2.5, "array": POS_WEIGHTS}[pos_weight]
    x = leaf(LOGITS)
    loss = F.binary_cross_entropy_with_logits(
        x,
        torch.tensor(TARGETS),
        weight=torch.tensor(WEIGHTS) if weighted else None,
        pos_weight=None if pw is None else torch.tensor(pw, dtype=torch.float64),
        reduction=reduction,
    )
    grad, hess = torch_derivatives(loss, x)
    ours = binary_cross_entropy_with_logits(
        LOGITS,
        TARGETS,
        weights=WEIGHTS if weighted else None,
        pos_weight=pw,
        reduction=reduction,
        hessian=True,
    )
    assert_matches_torch(ours, loss, grad, hess, reduction, hessian_rtol=RTOL)


@pytest.mark.parametrize(
    ("weighted", "reduction"), list(itertools.product([False, True], REDUCTIONS))
)
def test_bce_on_probabilities_matches_torch(weighted: bool, reduction: str) -> None:
    x = leaf(PROBABILITIES)
    loss = F.binary_cross_entropy(
        x,
        torch.tensor(TARGETS),
        weight=torch.tensor(WEIGHTS) if weighted else None,
        reduction=reduction,
    )
    grad, hess = torch_derivatives(loss, x)
    ours = binary_cross_entropy(
        PROBABILITIES,
        TARGETS,
        weights=WEIGHTS if weighted else None,
        reduction=reduction,
        hessian=True,
    )
    # PyTorch differentiates its own backward, (p - t) / max(p (1 - p), 1e-12),
    # whose guard shifts its Hessian by ~1e-11 relative; ours is the exact
    # t/p² + (1 - t)/(1 - p)² (checked against mpmath elsewhere).
    assert_matches_torch(ours, loss, grad, hess, reduction, hessian_rtol=1e-10)


ROWS, CLASSES = 5, 3
CE_LOGITS = rng.uniform(-3.0, 3.0, (ROWS, CLASSES))
CE_LABELS = np.array([0, 2, 1, 2, 1])
CE_TARGETS = rng.dirichlet(np.ones(CLASSES), ROWS)
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.25])
CE_TARGET_KINDS = ["labels", "labels+ignore_index", "target_probabilities"]


@pytest.mark.parametrize(
    ("target_kind", "weighted", "eps", "reduction"),
    list(itertools.product(CE_TARGET_KINDS, [False, True], [0.0, 0.2], REDUCTIONS)),
)
def test_cross_entropy_matches_torch(
    target_kind: str, weighted: bool, eps: float, reduction: str
) -> None:
    if target_kind == "target_probabilities":
        torch_target = torch.tensor(CE_TARGETS)
        options: dict[str, Any] = {"target_probabilities": CE_TARGETS}
        ignore_index = -100  # torch's default, which no label uses
    else:
        torch_target = torch.tensor(CE_LABELS, dtype=torch.int64)
        options = {"labels": CE_LABELS}
        ignore_index = 2 if target_kind == "labels+ignore_index" else -100
        if target_kind == "labels+ignore_index":
            options["ignore_index"] = 2
    weight = torch.tensor(CLASS_WEIGHTS) if weighted else None

    def torch_loss(flat: Any) -> Any:
        loss = F.cross_entropy(
            flat.reshape(ROWS, CLASSES),
            torch_target,
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=eps,
        )
        return loss.sum()

    x = leaf(CE_LOGITS.ravel())
    (grad,) = torch.autograd.grad(torch_loss(x), x)
    hess = torch.autograd.functional.hessian(torch_loss, x.detach())
    ours = cross_entropy_with_logits(
        CE_LOGITS,
        **options,
        class_weights=CLASS_WEIGHTS if weighted else None,
        label_smoothing=eps,
        reduction=reduction,
        hessian=True,
    )
    expected_loss = torch_loss(x).item()
    got_loss = ours.losses.sum() if reduction == "none" else ours.loss
    np.testing.assert_allclose(got_loss, expected_loss, RTOL, ATOL)
    np.testing.assert_allclose(ours.gradient.ravel(), grad.numpy(), RTOL, ATOL)
    np.testing.assert_allclose(
        ours.hessian.ravel(), torch.diagonal(hess).numpy(), RTOL, ATOL
    )
