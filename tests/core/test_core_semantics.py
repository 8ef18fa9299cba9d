"""PyTorch-compatible semantics pinned by small hand-computed examples.

Every expected number is derived in the comment above it from exact fractions and
math.log; logits of log(k) make sigmoid and softmax rational. Tolerance 1e-14
relative (plus 1e-15 absolute for values that are exactly 0).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from service.core import (
    REDUCTIONS,
    LossResult,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_logits,
    log_sigmoid,
    sigmoid_family,
    softmax_and_log_softmax,
)

LOG2, LOG3, LOG4 = math.log(2.0), math.log(3.0), math.log(4.0)


def close(got: Any, expected: Any) -> None:
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)


# --- binary cross-entropy ----------------------------------------------------------


def test_bce_mean_divides_by_n_whatever_the_weights() -> None:
    # z = 0: sigma = 1/2, each unweighted loss is log 2, gradient sigma - t,
    # Hessian sigma' = 1/4. Weights [2, 1/2] scale each element:
    #   losses   = [2 log 2, log 2 / 2]
    #   mean     = (2 + 1/2) log 2 / N with N = 2 (not / sum(w) = 2.5) = 1.25 log 2
    #   gradient = w (sigma - t) / N = [2 (-1/2), (1/2)(1/2)] / 2 = [-1/2, 1/8]
    #   Hessian  = w / 4 / N = [1/4, 1/16]
    result = binary_cross_entropy_with_logits(
        np.array([0.0, 0.0]),
        np.array([1.0, 0.0]),
        weights=np.array([2.0, 0.5]),
        reduction="mean",
        hessian=True,
    )
    close(result.losses, [2 * LOG2, 0.5 * LOG2])
    close(result.loss, 1.25 * LOG2)
    close(result.gradient, [-0.5, 0.125])
    close(result.hessian, [0.25, 0.0625])


def test_bce_sum_and_none() -> None:
    # Same inputs: sum = 2.5 log 2 with the per-element gradients undivided.
    logits, targets, weights = np.zeros(2), np.array([1.0, 0.0]), np.array([2.0, 0.5])
    total = binary_cross_entropy_with_logits(
        logits, targets, weights=weights, reduction="sum", hessian=True
    )
    close(total.loss, 2.5 * LOG2)
    close(total.gradient, [-1.0, 0.25])
    close(total.hessian, [0.5, 0.125])
    none = binary_cross_entropy_with_logits(
        logits, targets, weights=weights, reduction="none", hessian=True
    )
    assert none.loss is None
    close(none.losses, [2 * LOG2, 0.5 * LOG2])
    close(none.gradient, [-1.0, 0.25])


def test_bce_pos_weight_scalar() -> None:
    # z = log 3: sigma(z) = 3/4, sigma(-z) = 1/4, sigma' = 3/16. pos_weight 2:
    #   t = 1: loss = -2 log(3/4) = 2 log(4/3); gradient (2 + 0) 3/4 - 2 = -1/2;
    #          Hessian 2 * 3/16 = 3/8
    #   t = 0: loss = -log(1/4) = log 4;      gradient 3/4; Hessian 3/16
    result = binary_cross_entropy_with_logits(
        np.full(2, math.log(3.0)),
        np.array([1.0, 0.0]),
        pos_weight=2.0,
        reduction="none",
        hessian=True,
    )
    close(result.losses, [2 * math.log(4 / 3), LOG4])
    close(result.gradient, [-0.5, 0.75])
    close(result.hessian, [3 / 8, 3 / 16])


def test_bce_pos_weight_per_element_with_soft_target() -> None:
    # z = log 3 again. Element 0: t = 1, pw = 2 (as above). Element 1: t = 1/2,
    # pw = 5: loss = -(5/2 log(3/4) + 1/2 log(1/4)) = 5/2 log(4/3) + 1/2 log 4;
    # gradient (5/2 + 1/2) 3/4 - 5/2 = -1/4; Hessian 3 * 3/16 = 9/16.
    result = binary_cross_entropy_with_logits(
        np.full(2, math.log(3.0)),
        np.array([1.0, 0.5]),
        pos_weight=np.array([2.0, 5.0]),
        reduction="none",
        hessian=True,
    )
    close(result.losses, [2 * math.log(4 / 3), 2.5 * math.log(4 / 3) + 0.5 * LOG4])
    close(result.gradient, [-0.5, -0.25])
    close(result.hessian, [3 / 8, 9 / 16])


@pytest.mark.parametrize("zero", [0.0, -0.0])
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_logits_at_signed_zero(zero: float, pos_weight: float | None) -> None:
    # z = ±0: sigma = 1/2 from either side. Targets 0, 1/2, 1 with pos_weight
    # pw (1 when None): loss = (pw·t + 1 - t) log 2; gradient (1 - t)/2 - pw·t/2;
    # Hessian (pw·t + 1 - t)/4.
    pw = 1.0 if pos_weight is None else pos_weight
    t = np.array([0.0, 0.5, 1.0])
    result = binary_cross_entropy_with_logits(
        np.full(3, zero), t, pos_weight=pos_weight, reduction="none", hessian=True
    )
    coefficient = pw * t + 1 - t
    close(result.losses, coefficient * LOG2)
    close(result.gradient, (1 - t) / 2 - pw * t / 2)
    close(result.hessian, coefficient / 4)


def test_bce_pos_weight_on_probabilities() -> None:
    # p = 3/4, t = 1, pw = 2: loss 2 log(4/3); gradient -2 / (3/4) = -8/3;
    # Hessian 2 / (3/4)**2 = 32/9.
    result = binary_cross_entropy(
        np.array([0.75]), np.array([1.0]), pos_weight=2.0, reduction="sum", hessian=True
    )
    close(result.loss, 2 * math.log(4 / 3))
    close(result.gradient, [-8 / 3])
    close(result.hessian, [32 / 9])


def test_bce_label_smoothing_keras() -> None:
    # t' = t (1 - eps) + eps / 2 with eps = 0.2: t = 1 -> 0.9, t = 0 -> 0.1.
    # z = log 3 (sigma = 3/4):
    #   t' = 0.9: loss = 0.9 log(4/3) + 0.1 log 4, gradient 3/4 - 0.9 = -0.15
    #   t' = 0.1: loss = 0.1 log(4/3) + 0.9 log 4, gradient 3/4 - 0.1 = 0.65
    # The Hessian sigma' = 3/16 does not depend on t (pw = 1).
    result = binary_cross_entropy_with_logits(
        np.full(2, math.log(3.0)),
        np.array([1.0, 0.0]),
        label_smoothing=0.2,
        reduction="none",
        hessian=True,
    )
    close(
        result.losses,
        [
            0.9 * math.log(4 / 3) + 0.1 * LOG4,
            0.1 * math.log(4 / 3) + 0.9 * LOG4,
        ],
    )
    close(result.gradient, [-0.15, 0.65])
    close(result.hessian, [3 / 16, 3 / 16])


def test_bce_label_smoothing_one_makes_every_target_one_half() -> None:
    # Keras allows eps in [0, 1]; eps = 1 gives t' = t * 0 + 1/2 = 1/2 for all t.
    # z = log 3: loss = 1/2 log(4/3) + 1/2 log 4 = 1/2 log(16/3), gradient
    # 3/4 - 1/2 = 1/4, for t = 0 and t = 1 alike.
    result = binary_cross_entropy_with_logits(
        np.full(2, math.log(3.0)),
        np.array([1.0, 0.0]),
        label_smoothing=1.0,
        reduction="none",
    )
    close(result.losses, [0.5 * math.log(16 / 3)] * 2)
    close(result.gradient, [0.25, 0.25])


def test_bce_label_smoothing_on_probabilities() -> None:
    # p = 3/4, t = 1, eps = 0.2 -> t' = 0.9: loss as above; gradient
    # -0.9 / (3/4) + 0.1 / (1/4) = -1.2 + 0.4 = -0.8; Hessian 0.9 / (9/16) +
    # 0.1 / (1/16) = 1.6 + 1.6 = 3.2.
    result = binary_cross_entropy(
        np.array([0.75]),
        np.array([1.0]),
        label_smoothing=0.2,
        reduction="none",
        hessian=True,
    )
    close(result.losses, [0.9 * math.log(4 / 3) + 0.1 * LOG4])
    close(result.gradient, [-0.8])
    close(result.hessian, [3.2])


def test_bce_probabilities_boundary_policy() -> None:
    # Per element (reduction "none"):
    #   p=0, t=1: -log 0 clamped at 100 -> loss 100; 1/p capped -> gradient -1e12,
    #             Hessian 1e24; clamped
    #   p=0, t=0: loss -log(1 - 0) = 0; gradient +1/(1 - 0) = +1, Hessian 1; the
    #             1/p term has coefficient 0, so contributes 0 and is no clamp
    #   p=1, t=1: loss 0; gradient -1/1 = -1; Hessian 1; not clamped
    #   p=1, t=0: loss 100; gradient +1e12; Hessian 1e24; clamped
    #   p=1/2, t=1/2: loss log 2; gradient -1 + 1 = 0; Hessian 2 + 2 = 4
    #   p=0, t=1/2: loss 100/2 + 0 = 50; gradient -1e12/2 + 1/2; Hessian 1e24/2 + 1/2;
    #             clamped
    #   p=1e-20, t=1: log p = -46.05 is not clamped, loss 20 log 10; 1/p = 1e20 is
    #             capped -> gradient -1e12, Hessian 1e24; clamped
    #   p=1e-50, t=1: log p = -115 clamped -> 100; gradient -1e12; clamped once
    #   p=1/4, t=1: loss log 4; gradient -4; Hessian 16; not clamped
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.0, 1e-20, 1e-50, 0.25])
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    result = binary_cross_entropy(p, t, reduction="none", hessian=True)
    close(
        result.losses,
        [100.0, 0.0, 0.0, 100.0, LOG2, 50.0, 20 * math.log(10.0), 100.0, LOG4],
    )
    close(
        result.gradient,
        [-1e12, 1.0, -1.0, 1e12, 0.0, -0.5e12 + 0.5, -1e12, -1e12, -4.0],
    )
    close(
        result.hessian,
        [1e24, 1.0, 1.0, 1e24, 4.0, 0.5e24 + 0.5, 1e24, 1e24, 16.0],
    )
    assert result.clamped == 5


def test_bce_probabilities_clamped_counts_for_every_reduction() -> None:
    p = np.array([0.0, 1.0, 0.5])
    t = np.array([1.0, 0.0, 1.0])
    for reduction in ("none", "sum", "mean"):
        result = binary_cross_entropy(p, t, reduction=reduction)
        assert result.clamped == 2, reduction
    assert binary_cross_entropy_with_logits(p, t).clamped == 0


def test_bce_probabilities_mean_boundary() -> None:
    # Mean over N = 2 of the (p=0, t=1) and (p=0, t=0) elements above:
    # loss (100 + 0) / 2 = 50, gradient [-1e12, 1] / 2.
    result = binary_cross_entropy(
        np.array([0.0, 0.0]), np.array([1.0, 0.0]), reduction="mean"
    )
    close(result.loss, 50.0)
    close(result.gradient, [-0.5e12, 0.5])


# --- categorical cross-entropy -----------------------------------------------------

# Row 0: zeros -> p = [1/3, 1/3, 1/3]. Row 1: [log 2, 0, 0] -> p = [1/2, 1/4, 1/4].
TWO_ROWS = np.array([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])
P0 = np.array([1 / 3, 1 / 3, 1 / 3])
P1 = np.array([1 / 2, 1 / 4, 1 / 4])


def test_ce_plain_mean() -> None:
    # Labels [0, 1]: losses [log 3, log 4], mean (log 3 + log 4) / 2;
    # gradient (p - onehot) / 2; Hessian p (1 - p) / 2.
    result = cross_entropy_with_logits(
        TWO_ROWS, labels=np.array([0, 1]), reduction="mean", hessian=True
    )
    close(result.losses, [LOG3, LOG4])
    close(result.loss, (LOG3 + LOG4) / 2)
    close(result.gradient, np.array([P0 - [1, 0, 0], P1 - [0, 1, 0]]) / 2)
    close(result.hessian, np.array([P0 * (1 - P0), P1 * (1 - P1)]) / 2)


def test_ce_mean_with_class_weights_divides_by_label_weights() -> None:
    # class_weights [1, 3, 5], labels [0, 1]: losses [1 log 3, 3 log 4];
    # mean divides by w_0 + w_1 = 4 (not by N = 2):
    #   loss = (log 3 + 3 log 4) / 4
    #   gradient row n = w_{y_n} (p_n - onehot) / 4, Hessian w_{y_n} p (1 - p) / 4
    result = cross_entropy_with_logits(
        TWO_ROWS,
        labels=np.array([0, 1]),
        class_weights=np.array([1.0, 3.0, 5.0]),
        reduction="mean",
        hessian=True,
    )
    close(result.losses, [LOG3, 3 * LOG4])
    close(result.loss, (LOG3 + 3 * LOG4) / 4)
    close(result.gradient, np.array([P0 - [1, 0, 0], 3 * (P1 - [0, 1, 0])]) / 4)
    close(result.hessian, np.array([P0 * (1 - P0), 3 * P1 * (1 - P1)]) / 4)


def test_ce_ignore_index_rows_are_zero() -> None:
    # Labels [0, 1, 1] with ignore_index 1: rows 1 and 2 contribute nothing.
    # Row 0 (p = 1/3 each) with class weight 2: loss 2 log 3; mean divides by the
    # kept labels' weights, 2, so loss = log 3, gradient row 0 = (p - e_0).
    logits = np.vstack([TWO_ROWS, [[7.0, -3.0, 0.5]]])
    result = cross_entropy_with_logits(
        logits,
        labels=np.array([0, 1, 1]),
        class_weights=np.array([2.0, 3.0, 5.0]),
        ignore_index=1,
        reduction="mean",
        hessian=True,
    )
    close(result.losses, [2 * LOG3, 0.0, 0.0])
    close(result.loss, LOG3)
    close(result.gradient[0], P0 - [1, 0, 0])
    close(result.hessian[0], P0 * (1 - P0))
    assert np.all(result.gradient[1:] == 0.0)
    assert np.all(result.hessian[1:] == 0.0)


def test_ce_ignore_index_with_label_smoothing_rows_are_zero() -> None:
    # Smoothing spreads weight over every class, but an ignored row stays 0.
    result = cross_entropy(
        np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]),
        labels=np.array([2, 0]),
        ignore_index=2,
        label_smoothing=0.3,
        reduction="none",
        hessian=True,
    )
    assert result.losses[0] == 0.0
    assert np.all(result.gradient[0] == 0.0)
    assert np.all(result.hessian[0] == 0.0)
    assert result.losses[1] > 0.0


def test_ce_ignore_index_outside_the_class_range() -> None:
    # PyTorch's default ignore_index is -100, a value that is never a class.
    result = cross_entropy_with_logits(
        TWO_ROWS, labels=np.array([-100, 1]), ignore_index=-100, reduction="mean"
    )
    close(result.losses, [0.0, LOG4])
    close(result.loss, LOG4)
    assert np.all(result.gradient[0] == 0.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("function", [cross_entropy_with_logits, cross_entropy])
def test_ce_every_row_ignored(function: Any, reduction: str) -> None:
    # PyTorch's mean is 0/0 = NaN here; the core returns 0 and zero derivatives.
    x = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    result = function(
        x, labels=np.array([2, 2]), ignore_index=2, reduction=reduction, hessian=True
    )
    if reduction == "none":
        assert result.loss is None
    else:
        assert result.loss == 0.0
    assert np.all(result.losses == 0.0)
    assert np.all(result.gradient == 0.0)
    assert np.all(result.hessian == 0.0)


def test_ce_zero_coefficient_rows_ignore_even_overflowing_logits() -> None:
    # A row whose coefficients are all 0 (ignored, or its label's class weight is
    # 0) has loss exactly 0 whatever its logits, even when they are so far apart
    # that z - max overflows to -inf (0 * inf must not leak out as NaN).
    # Likewise a one-hot target puts coefficient 0 on the far class, and the
    # other class is the maximum: loss = log(1 + exp(-3.4e308)) = 0 exactly in
    # float64, gradient p - t = [0, 0].
    z = np.array([[-1.7e308, 1.7e308], [0.0, 0.0]])
    ignored = cross_entropy_with_logits(
        z, labels=np.array([1, 0]), ignore_index=1, reduction="mean", hessian=True
    )
    close(ignored.losses, [0.0, LOG2])
    close(ignored.loss, LOG2)
    # mean divides by the one row not ignored: gradient of row 1 = p - t.
    close(ignored.gradient, [[0.0, 0.0], [-0.5, 0.5]])
    zero_weight = cross_entropy_with_logits(
        z, labels=np.array([0, 0]), class_weights=np.array([0.0, 1.0]), reduction="none"
    )
    close(zero_weight.losses, [0.0, 0.0])
    one_hot = cross_entropy_with_logits(
        z, target_probabilities=np.array([[0.0, 1.0], [0.5, 0.5]]), reduction="none"
    )
    close(one_hot.losses, [0.0, LOG2])
    close(one_hot.gradient, [[0.0, 0.0], [0.0, 0.0]])


def test_ce_label_smoothing_with_class_weights_and_labels() -> None:
    # eps = 0.3, C = 3, w = [1, 2, 3]:
    # loss_n = (1 - eps) w_y (-log p_y) + eps/C sum_c w_c (-log p_c), so the
    # coefficients are a = (1 - eps) w_y e_y + eps/C w.
    # Row 1 (p = [1/2, 1/4, 1/4]), label 0: a = [0.7 + 0.1, 0.2, 0.3], sum(a) = 1.3
    #   loss     = 0.8 log 2 + 0.2 log 4 + 0.3 log 4 = 1.8 log 2
    #   gradient = p sum(a) - a = [0.65 - 0.8, 0.325 - 0.2, 0.325 - 0.3]
    #            = [-0.15, 0.125, 0.025]
    #   Hessian  = sum(a) p (1 - p) = 1.3 [1/4, 3/16, 3/16]
    # Row 0 (p = 1/3 each), label 2: a = [0.1, 0.2, 2.1 + 0.3], sum(a) = 2.7
    #   loss = 2.7 log 3
    # Mean divides by w_2 + w_0 = 4 (PyTorch normalises both parts by the label
    # weights): (2.7 log 3 + 1.8 log 2) / 4.
    result = cross_entropy_with_logits(
        TWO_ROWS,
        labels=np.array([2, 0]),
        class_weights=np.array([1.0, 2.0, 3.0]),
        label_smoothing=0.3,
        reduction="mean",
        hessian=True,
    )
    close(result.losses, [2.7 * LOG3, 1.8 * LOG2])
    close(result.loss, (2.7 * LOG3 + 1.8 * LOG2) / 4)
    close(result.gradient[1], np.array([-0.15, 0.125, 0.025]) / 4)
    close(result.hessian[1], 1.3 * np.array([1 / 4, 3 / 16, 3 / 16]) / 4)
    close(result.gradient[0], (2.7 / 3 - np.array([0.1, 0.2, 2.4])) / 4)


def test_ce_label_smoothing_without_class_weights_mean_divides_by_kept_rows() -> None:
    # eps = 0.3, C = 3, unit weights, labels [0, 1] with ignore_index 1:
    # row 0 (p = 1/3): loss = 0.7 log 3 + 0.1 * 3 log 3 = log 3; row 1 ignored.
    # Mean divides by the one kept row: log 3.
    result = cross_entropy_with_logits(
        TWO_ROWS,
        labels=np.array([0, 1]),
        ignore_index=1,
        label_smoothing=0.3,
        reduction="mean",
    )
    close(result.losses, [LOG3, 0.0])
    close(result.loss, LOG3)


def test_ce_label_smoothing_with_target_probabilities() -> None:
    # t' = (1 - eps) t + eps / C with eps = 0.3, C = 3: t = [0, 1, 0] ->
    # [0.1, 0.8, 0.1]; with w = [1, 2, 3], a = w t' = [0.1, 1.6, 0.3], sum(a) = 2.
    # Row 1 (p = [1/2, 1/4, 1/4]): loss = 0.1 log 2 + 1.6 log 4 + 0.3 log 4
    #   = 3.9 log 2; gradient p sum(a) - a = [1 - 0.1, 0.5 - 1.6, 0.5 - 0.3]
    #   = [0.9, -1.1, 0.2].
    # Row 0 (p = 1/3), t = [1, 0, 0] -> t' = [0.8, 0.1, 0.1], a = [0.8, 0.2, 0.3]:
    #   loss = 1.3 log 3.
    # Mean divides by N = 2 whatever the weights: (1.3 log 3 + 3.9 log 2) / 2.
    result = cross_entropy_with_logits(
        TWO_ROWS,
        target_probabilities=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        class_weights=np.array([1.0, 2.0, 3.0]),
        label_smoothing=0.3,
        reduction="mean",
        hessian=True,
    )
    close(result.losses, [1.3 * LOG3, 3.9 * LOG2])
    close(result.loss, (1.3 * LOG3 + 3.9 * LOG2) / 2)
    close(result.gradient[1], np.array([0.9, -1.1, 0.2]) / 2)
    close(result.hessian[1], 2.0 * np.array([1 / 4, 3 / 16, 3 / 16]) / 2)


def test_ce_soft_targets_not_one_hot() -> None:
    # t = [1/2, 1/2, 0] on p = [1/2, 1/4, 1/4]: loss = (log 2 + log 4) / 2 = 1.5 log 2
    # gradient p * 1 - t = [0, -1/4, 1/4].
    result = cross_entropy_with_logits(
        TWO_ROWS[1:],
        target_probabilities=np.array([[0.5, 0.5, 0.0]]),
        reduction="sum",
    )
    close(result.loss, 1.5 * LOG2)
    close(result.gradient, [[0.0, -0.25, 0.25]])


def test_ce_on_probabilities_with_clamps() -> None:
    # Row [0, 1/4, 3/4], label 0: -log 0 clamped at 100; 1/p capped: gradient
    # [-1e12, 0, 0], Hessian [1e24, 0, 0]; one clamped entry.
    # Row [1/2, 1/4, 1/4] with target probabilities [0, 1/2, 1/2] (second call):
    # loss 1/2 log 4 + 1/2 log 4 = log 4, gradient [0, -2, -2], Hessian [0, 8, 8];
    # the zero-coefficient entry contributes exactly 0.
    labelled = cross_entropy(
        np.array([[0.0, 0.25, 0.75]]),
        labels=np.array([0]),
        reduction="sum",
        hessian=True,
    )
    close(labelled.loss, 100.0)
    close(labelled.gradient, [[-1e12, 0.0, 0.0]])
    close(labelled.hessian, [[1e24, 0.0, 0.0]])
    assert labelled.clamped == 1
    soft = cross_entropy(
        np.array([[0.5, 0.25, 0.25]]),
        target_probabilities=np.array([[0.0, 0.5, 0.5]]),
        reduction="sum",
        hessian=True,
    )
    close(soft.loss, LOG4)
    close(soft.gradient, [[0.0, -2.0, -2.0]])
    close(soft.hessian, [[0.0, 8.0, 8.0]])
    assert soft.clamped == 0


def test_ce_on_probabilities_class_weights_mean() -> None:
    # p rows [1/2, 1/4, 1/4] and [1/4, 1/2, 1/4], labels [0, 1], w = [2, 6, 1]:
    # losses [2 log 2, 6 log 2]; mean divides by 2 + 6 = 8 -> log 2;
    # gradient [-2 * 2, -6 * 2] at the label entries, divided by 8.
    result = cross_entropy(
        np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]),
        labels=np.array([0, 1]),
        class_weights=np.array([2.0, 6.0, 1.0]),
        reduction="mean",
    )
    close(result.losses, [2 * LOG2, 6 * LOG2])
    close(result.loss, LOG2)
    close(result.gradient, [[-0.5, 0.0, 0.0], [0.0, -1.5, 0.0]])


def test_ce_single_class() -> None:
    # C = 1: softmax is 1, so the loss, gradient and Hessian are all 0.
    result = cross_entropy_with_logits(
        np.array([[3.0], [-2.0]]),
        labels=np.array([0, 0]),
        reduction="sum",
        hessian=True,
    )
    close(result.loss, 0.0)
    close(result.gradient, [[0.0], [0.0]])
    close(result.hessian, [[0.0], [0.0]])


# --- errors ------------------------------------------------------------------------

X2 = np.array([[0.2, 0.8], [0.5, 0.5]])
T2 = np.array([[0.0, 1.0], [1.0, 0.0]])
Y2 = np.array([1, 0])


@pytest.mark.parametrize("function", [cross_entropy_with_logits, cross_entropy])
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {"target_probabilities": T2, "ignore_index": 0}, id="ignore+probs"
        ),
        pytest.param({"labels": Y2, "target_probabilities": T2}, id="both"),
        pytest.param({}, id="neither"),
        pytest.param({"labels": np.array([0, 1, 1])}, id="labels-length"),
        pytest.param({"labels": np.array([0, 2])}, id="label-too-large"),
        pytest.param({"labels": np.array([0, -1])}, id="label-negative"),
        pytest.param({"target_probabilities": T2[:, :1]}, id="targets-shape"),
        pytest.param(
            {"labels": Y2, "class_weights": np.ones(3)}, id="class-weights-length"
        ),
    ],
)
def test_ce_rejects_inconsistent_input(function: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        function(X2, **options)
    assert str(info.value)  # a message, not a bare exception


@pytest.mark.parametrize(
    "function", [binary_cross_entropy_with_logits, binary_cross_entropy]
)
@pytest.mark.parametrize(
    ("targets", "options"),
    [
        pytest.param(np.array([0.0, 1.0, 1.0]), {}, id="targets-length"),
        pytest.param(np.array([0.0, 1.0]), {"weights": np.ones(3)}, id="weights"),
        pytest.param(np.array([0.0, 1.0]), {"pos_weight": np.ones(3)}, id="pos_weight"),
    ],
)
def test_bce_rejects_mismatched_shapes(
    function: Any, targets: np.ndarray, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as info:
        function(np.array([0.25, 0.75]), targets, **options)
    assert str(info.value)


# --- floating-point warnings ---------------------------------------------------------


def test_valid_extreme_inputs_raise_no_floating_point_warnings() -> None:
    # Zero, subnormal and unit probabilities, and logits of 1e300, are valid
    # inputs with finite results; numpy's overflow/divide warnings for the
    # intermediate 1/p or exp must not reach the caller (a server would log one
    # per request).
    p = np.array([0.0, 5e-324, 1e-310, 1e-300, 0.5, 1.0 - 2.0**-53, 1.0])
    t = np.array([1.0, 1.0, 0.5, 0.0, 0.5, 1.0, 0.0])
    z = np.array([0.0, 5e-324, -1e300, 1e300, 745.0, -745.0, 1e-300])
    rows = np.array([[5e-324, 1.0, 0.0], [1e-310, 0.5, 0.5]])
    logit_rows = np.array([[1e300, -1e300, 0.0], [-745.0, 0.0, 745.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        binary_cross_entropy(p, t, reduction="none", hessian=True)
        binary_cross_entropy(p, t, pos_weight=2.0, label_smoothing=0.1, hessian=True)
        binary_cross_entropy_with_logits(z, t, hessian=True)
        binary_cross_entropy_with_logits(z, t, pos_weight=2.0, hessian=True)
        cross_entropy(rows, labels=np.array([0, 2]), hessian=True)
        cross_entropy(rows, target_probabilities=rows[::-1], hessian=True)
        cross_entropy_with_logits(logit_rows, labels=np.array([1, 0]), hessian=True)
        cross_entropy_with_logits(
            logit_rows, target_probabilities=np.full((2, 3), 1 / 3), hessian=True
        )
        sigmoid_family(z, 2)
        log_sigmoid(z)
        softmax_and_log_softmax(logit_rows)


@pytest.mark.parametrize(
    ("call", "message_part"),
    [
        pytest.param(
            lambda: binary_cross_entropy_with_logits(
                np.zeros(2), np.zeros(2), reduction="avg"
            ),
            "reduction",
            id="bce-reduction",
        ),
        pytest.param(
            lambda: cross_entropy_with_logits(X2, labels=Y2, reduction="average"),
            "reduction",
            id="ce-reduction",
        ),
        pytest.param(
            lambda: binary_cross_entropy(
                np.zeros(2), np.zeros(2), label_smoothing=-0.1
            ),
            "label_smoothing",
            id="bce-smoothing-negative",
        ),
        pytest.param(
            lambda: cross_entropy(X2, labels=Y2, label_smoothing=1.5),
            "label_smoothing",
            id="ce-smoothing-above-1",
        ),
        pytest.param(lambda: sigmoid_family(np.zeros(2), 3), "order", id="order"),
    ],
)
def test_rejects_invalid_options(call: Any, message_part: str) -> None:
    with pytest.raises(ValueError, match=message_part):
        call()


# --- output types ------------------------------------------------------------------


def all_results() -> list[tuple[str, LossResult, tuple[int, ...]]]:
    out = []
    x1, t1 = np.array([0.1, 0.6, 0.9]), np.array([0.0, 1.0, 0.5])
    x2 = np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    for reduction in REDUCTIONS:
        for hessian in (False, True):
            opts = {"reduction": reduction, "hessian": hessian}
            tag = f"{reduction}, hessian={hessian}"
            out.append(
                (
                    f"bce logits {tag}",
                    binary_cross_entropy_with_logits(x1, t1, **opts),
                    (3,),
                )
            )
            out.append((f"bce probs {tag}", binary_cross_entropy(x1, t1, **opts), (3,)))
            out.append(
                (
                    f"ce logits {tag}",
                    cross_entropy_with_logits(x2, labels=np.array([0, 2]), **opts),
                    (2, 3),
                )
            )
            out.append(
                (
                    f"ce probs {tag}",
                    cross_entropy(x2, target_probabilities=x2[::-1], **opts),
                    (2, 3),
                )
            )
    return out


def test_result_types_and_shapes() -> None:
    assert set(REDUCTIONS) == {"none", "sum", "mean"}
    for name, result, shape in all_results():
        assert isinstance(result, LossResult), name
        assert isinstance(result.losses, np.ndarray), name
        assert result.losses.dtype == np.float64, name
        assert result.losses.shape == shape[:1], name
        assert isinstance(result.gradient, np.ndarray), name
        assert result.gradient.dtype == np.float64, name
        assert result.gradient.shape == shape, name
        if "hessian=True" in name:
            assert isinstance(result.hessian, np.ndarray), name
            assert result.hessian.dtype == np.float64, name
            assert result.hessian.shape == shape, name
        else:
            assert result.hessian is None, name
        if name.split()[2].startswith("none"):
            assert result.loss is None, name
        else:
            assert isinstance(result.loss, float), name
        assert isinstance(result.clamped, int), name


def test_default_reduction_is_mean() -> None:
    # Mean of log 2 and log 2 for z = 0.
    result = binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 1.0]))
    close(result.loss, LOG2)
    ce = cross_entropy_with_logits(TWO_ROWS, labels=np.array([0, 1]))
    close(ce.loss, (LOG3 + LOG4) / 2)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(31)
    x1, t1 = rng.uniform(0.05, 0.95, 50), rng.uniform(0.0, 1.0, 50)
    w1, pw1 = rng.uniform(0.5, 2.0, 50), rng.uniform(0.5, 2.0, 50)
    x2 = rng.dirichlet(np.ones(4), 20)
    t2 = rng.dirichlet(np.ones(4), 20)
    y2, cw = rng.integers(0, 4, 20), rng.uniform(0.5, 2.0, 4)
    arrays = [x1, t1, w1, pw1, x2, t2, y2, cw]
    before = [a.copy() for a in arrays]
    for function in (binary_cross_entropy_with_logits, binary_cross_entropy):
        function(x1, t1, weights=w1, pos_weight=pw1, label_smoothing=0.1, hessian=True)
    for function in (cross_entropy_with_logits, cross_entropy):
        function(x2, labels=y2, class_weights=cw, label_smoothing=0.1, hessian=True)
        function(x2, target_probabilities=t2, class_weights=cw, hessian=True)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_results_do_not_share_buffers_between_calls() -> None:
    # A second call must not overwrite the arrays the first returned.
    first = binary_cross_entropy_with_logits(
        np.zeros(3), np.array([1.0, 0.0, 1.0]), reduction="none", hessian=True
    )
    second = binary_cross_entropy_with_logits(
        np.full(3, 5.0), np.zeros(3), reduction="none", hessian=True
    )
    close(first.losses, [LOG2] * 3)
    close(first.gradient, [-0.5, 0.5, -0.5])
    close(first.hessian, [0.25] * 3)
    assert second.gradient[0] > 0.99
    first_ce = cross_entropy_with_logits(
        TWO_ROWS, labels=np.array([0, 1]), reduction="none", hessian=True
    )
    cross_entropy_with_logits(-TWO_ROWS * 3, labels=np.array([2, 2]), reduction="none")
    close(first_ce.losses, [LOG3, LOG4])
    close(first_ce.gradient, np.array([P0 - [1, 0, 0], P1 - [0, 1, 0]]))
