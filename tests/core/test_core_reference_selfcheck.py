"""Checks of the mpmath references themselves, independent of service.core.

The references avoid cancellation by identities and adaptive precision; here they
are compared with the plain textbook definitions evaluated at 1000 digits (enough
to absorb every cancellation on these inputs), and their derivative formulas with
mpmath's own high-precision numerical differentiation.
"""

from __future__ import annotations

import mpmath
import pytest
from core_reference import (
    ce_coefficients,
    mp_bce_logits,
    mp_bce_probabilities,
    mp_ce_logits_row,
    mp_ce_probabilities_row,
    mp_log_sigmoid,
    mp_row_log_softmax,
    mp_sigmoid,
    mp_sigmoid_derivative,
    mp_sigmoid_second_derivative,
)
from mpmath import mp, mpf

AGREEMENT = mpf("1e-30")
POINTS = [0.0, 1e-300, -1e-300, 1e-10, -1e-10, 1.0, -17.0, 36.0, -37.0, 700.0, -700.0]


def agree(a: mpf, b: mpf) -> bool:
    return abs(a - b) <= AGREEMENT * abs(b) + mpf("1e-700")


@pytest.mark.parametrize("x", POINTS)
def test_sigmoid_family_against_textbook_definitions(x: float) -> None:
    with mp.workdps(1000):
        xm = mpf(x)
        s = 1 / (1 + mpmath.exp(-xm))
        naive = {
            "sigmoid": s,
            "log_sigmoid": mpmath.log(s),
            "d1": s * (1 - s),
            "d2": s * (1 - s) * (1 - 2 * s),
        }
    assert agree(mp_sigmoid(x), naive["sigmoid"])
    assert agree(mp_log_sigmoid(x), naive["log_sigmoid"])
    assert agree(mp_sigmoid_derivative(x), naive["d1"])
    assert agree(mp_sigmoid_second_derivative(x), naive["d2"])


def test_sigmoid_family_beyond_any_fixed_precision() -> None:
    # At 1e300 no working precision holds 1 - sigma; the closed forms do:
    # log sigma(x) = -log(1 + e^-x) = -e^-x (1 + O(e^-x)), sigma'(x) ~ e^-x,
    # sigma''(x) ~ -e^-x, and sigma(-x) = e^-x (1 + O(e^-x)).
    with mp.workdps(40):
        tail = mpmath.exp(-mpf(1e300))
        minus_tail = -tail
    assert agree(mp_log_sigmoid(1e300), minus_tail)
    assert agree(mp_sigmoid(-1e300), tail)
    assert agree(mp_sigmoid_derivative(1e300), tail)
    assert agree(mp_sigmoid_second_derivative(1e300), minus_tail)
    assert agree(mp_log_sigmoid(-1e300), mpf(-1e300))


@pytest.mark.parametrize(
    "row",
    [[1e-10, -700.0], [700.0, -700.0, 0.0], [3.0, 1.0, 2.0], [5.0, 5.0, -36.0]],
)
def test_log_softmax_against_textbook_definition(row: list[float]) -> None:
    neg_log_p, p, one_minus, log_p = mp_row_log_softmax(row)
    with mp.workdps(1000):
        z = [mpf(v) for v in row]
        total = mpmath.fsum(mpmath.exp(v) for v in z)
        for c, zc in enumerate(z):
            pc = mpmath.exp(zc) / total
            assert agree(neg_log_p[c], -mpmath.log(pc))
            assert agree(log_p[c], mpmath.log(pc))
            assert agree(p[c], pc)
            assert agree(one_minus[c], 1 - pc)


@pytest.mark.parametrize(
    ("z", "t", "w", "pw", "eps"),
    [
        (0.3, 1.0, 1.0, 1.0, 0.0),
        (-1.7, 0.0, 2.0, 1.0, 0.0),
        (2.2, 0.35, 0.5, 3.0, 0.0),
        (-0.4, 1.0, 1.5, 0.25, 0.1),
    ],
)
def test_bce_logits_derivatives_are_derivatives_of_the_loss(
    z: float, t: float, w: float, pw: float, eps: float
) -> None:
    with mp.workdps(50):
        _, grad, hess = mp_bce_logits(z, t, w, pw, eps)

        def f(x: mpf) -> mpf:
            return mp_bce_logits(x, t, w, pw, eps)[0]

        assert agree(grad, mpmath.diff(f, mpf(z)))
        assert agree(hess, mpmath.diff(f, mpf(z), 2))


@pytest.mark.parametrize(("p", "t", "pw"), [(0.3, 1.0, 1.0), (0.8, 0.25, 2.0)])
def test_bce_probabilities_derivatives_are_derivatives_of_the_loss(
    p: float, t: float, pw: float
) -> None:
    with mp.workdps(50):
        _, grad, hess, clamped = mp_bce_probabilities(p, t, 1.0, pw)

        def f(x: mpf) -> mpf:
            return mp_bce_probabilities(x, t, 1.0, pw)[0]

        assert not clamped
        assert agree(grad, mpmath.diff(f, mpf(p)))
        assert agree(hess, mpmath.diff(f, mpf(p), 2))


def test_bce_probabilities_boundary_policy_in_the_reference() -> None:
    # (p=0, t=1): loss 100, gradient -1e12, Hessian 1e24, clamped.
    assert mp_bce_probabilities(0.0, 1.0) == (100, -(10**12), 10**24, True)
    # (p=0, t=0): the 1/p term has coefficient 0: gradient +1, not clamped.
    assert mp_bce_probabilities(0.0, 0.0) == (0, 1, 1, False)


@pytest.mark.parametrize(
    ("label", "target", "weights", "eps"),
    [
        (1, None, None, 0.0),
        (0, None, [0.5, 2.0, 1.5], 0.3),
        (None, [0.2, 0.5, 0.3], [0.5, 2.0, 1.5], 0.1),
    ],
)
def test_ce_logits_derivatives_are_derivatives_of_the_loss(
    label: int | None,
    target: list[float] | None,
    weights: list[float] | None,
    eps: float,
) -> None:
    row = [0.4, -1.3, 2.1]
    a = ce_coefficients(3, label=label, target=target, class_weights=weights, eps=eps)
    loss, grad, hess = mp_ce_logits_row(row, a)
    with mp.workdps(50):
        # The loss written directly: sum_c a_c (log sum_k e^z_k - z_c).
        def f(c: int, x: mpf) -> mpf:
            z = [mpf(v) for v in row]
            z[c] = x
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
            return mpmath.fsum(a[k] * (lse - z[k]) for k in range(3))

        assert agree(loss, f(0, mpf(row[0])))
        for c in range(3):
            assert agree(grad[c], mpmath.diff(lambda x, c=c: f(c, x), mpf(row[c])))
            assert agree(hess[c], mpmath.diff(lambda x, c=c: f(c, x), mpf(row[c]), 2))


def test_ce_coefficients_match_pytorch_definition() -> None:
    # labels: (1 - eps) w_y on the label plus eps/C w_c everywhere.
    a = ce_coefficients(3, label=2, class_weights=[1.0, 2.0, 3.0], eps=0.3)
    expected = [mpf("0.1"), mpf("0.2"), mpf("2.4")]
    assert all(abs(x - y) < mpf("1e-15") for x, y in zip(a, expected, strict=True))
    # targets: w_c ((1 - eps) t_c + eps / C).
    a = ce_coefficients(2, target=[1.0, 0.0], class_weights=[2.0, 4.0], eps=0.5)
    expected = [mpf("1.5"), mpf("1.0")]
    assert all(abs(x - y) < mpf("1e-15") for x, y in zip(a, expected, strict=True))


def test_ce_probabilities_reference_policy() -> None:
    a = ce_coefficients(3, label=0)
    loss, grad, hess, clamped = mp_ce_probabilities_row([0.0, 0.5, 0.5], a)
    assert (loss, clamped) == (100, 1)
    assert grad == [-(10**12), 0, 0]
    assert hess == [10**24, 0, 0]
