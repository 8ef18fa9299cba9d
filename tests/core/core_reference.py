"""Independent mpmath references for the core tests, and the tolerance checks.

Every reference converts its float64 inputs to mpmath exactly (``mpf(float)`` is
exact) and evaluates the textbook definition of the quantity at a precision where
that evaluation cannot cancel:

- differences ``1 - sigmoid(x)`` are written as ``sigmoid(-x)`` (an identity, not an
  approximation), and ``z_c - max(z)`` is formed with ``exact=True``;
- where a definition subtracts nearly equal numbers (``1 - 2 sigmoid(x)`` near 0,
  ``log(1 + u)`` for small ``u``) the working precision grows with the number of
  digits the subtraction loses, so 1e-300 is evaluated at more than 300 digits;
- ``log(1 + u)`` for ``u`` far below the working precision is ``u`` to every digit
  (the next term is ``u**2 / 2``), which is how ``exp(-1e300)`` is handled.

Nothing here calls ``service.core``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import mpmath
import numpy as np
from mpmath import mp, mpf

SMALLEST_NORMAL = 2.2250738585072014e-308

#: Digits carried by every evaluation that has no cancellation; far more than the
#: 17 that separate two float64 values, so rounding in the reference is invisible.
BASE_DPS = 40

#: The logit grid named by the acceptance criteria.
NAMED_GRID = [
    0.0,
    *[
        s * v
        for v in (1e-300, 1e-10, 1.0, 17.0, 36.0, 37.0, 40.0, 700.0, 1e300)
        for s in (1.0, -1.0)
    ],
]

#: Further awkward points: the smallest subnormal and normal numbers, where the
#: naive sigma' already fails (33.5), the exp overflow threshold (709.78) and where
#: sigma(-x) becomes subnormal (745).
EXTRA_GRID = [
    5e-324,
    -5e-324,
    SMALLEST_NORMAL,
    -SMALLEST_NORMAL,
    33.5,
    -33.5,
    709.78,
    -709.78,
    745.0,
    -745.0,
]


def random_logits(seed: int) -> list[float]:
    """Seeded logits of every scale: unit normal, hundreds, and 1e-300..1e300."""
    rng = np.random.default_rng(seed)
    moderate = rng.normal(0.0, 5.0, 12)
    hundreds = rng.uniform(-800.0, 800.0, 12)
    magnitudes = 10.0 ** rng.uniform(-300.0, 300.0, 12)
    signs = rng.choice([-1.0, 1.0], 12)
    return [float(v) for v in np.concatenate([moderate, hundreds, signs * magnitudes])]


def logit_rows(seed: int) -> list[np.ndarray]:
    """Rows of 2, 3 and 5 logits; many differ by hundreds, some by 2e300."""
    rng = np.random.default_rng(seed)
    pairs = [np.array([a, b]) for a in NAMED_GRID[::2] for b in NAMED_GRID]
    threes = [
        np.array([1e-10, -700.0, 0.0]),
        np.array([700.0, -700.0, 0.0]),
        np.array([1e300, -1e300, 0.0]),
        np.array([-1e300, -1e300, -1e300]),
        np.array([5.0, 5.0, 5.0]),
        np.array([0.0, 0.0, -800.0]),
        np.array([-745.0, 0.0, 1e-300]),
        np.array([-36.0, -37.0, 1e-10]),
        *rng.uniform(-800.0, 800.0, (10, 3)),
    ]
    fives = [*rng.normal(0.0, 3.0, (8, 5)), *rng.normal(0.0, 300.0, (8, 5))]
    return [np.asarray(r, dtype=np.float64) for r in (*pairs, *threes, *fives)]


def moderate_spread_rows(seed: int) -> list[np.ndarray]:
    """Rows whose logits lie within 32 of their maximum.

    An implementation may skip compensating z - max when the spread is small
    (the rounding is then at most 32 * 2**-53 relative), so these rows are also
    evaluated in calls of their own, apart from rows spread by hundreds.
    """
    rng = np.random.default_rng(seed)
    fixed = [
        [1e-10, -31.9, 0.0],
        [31.5, 0.0, -1e-300],
        [1e-300, -32.0, -5e-324],
        [0.3, -31.7, 0.1],
        [17.0, -15.0, 1.0],
        [-36.0, -37.0, -40.0],
        [700.0, 690.0, 699.5],
        [1e300, 1e300, 1e300],
        [-1e300, -1e300, -1e300],
        [1.0, 1.0 - 2.0**-52, 1.0 - 2.0**-53],
        [0.0, -1e-10, 1e-10],
    ]
    return [np.asarray(r, dtype=np.float64) for r in fixed] + list(
        rng.uniform(-16.0, 16.0, (12, 3))
    )


def hundreds_spread_rows(seed: int) -> list[np.ndarray]:
    """Rows spread by 33 to 745 (and nothing larger), for calls of their own."""
    rng = np.random.default_rng(seed)
    fixed = [
        [1e-10, -700.0, 0.0],
        [0.1, -33.3, 0.0],
        [-745.0, 0.0, -1e-300],
        [36.0, -37.0, 1e-10],
        [-700.0, 1e-10, -699.9],
    ]
    return [np.asarray(r, dtype=np.float64) for r in fixed] + list(
        rng.uniform(-350.0, 350.0, (12, 3))
    )


def mp_exact(value: float) -> mpf:
    """The float64 value as an mpmath number, exactly."""
    return mpf(float(value))


# --- sigmoid family ----------------------------------------------------------------


def _dps(extra: int = 0) -> int:
    """BASE_DPS, or more when the caller already works at a higher precision
    (mpmath.diff does, to differentiate these functions)."""
    return max(BASE_DPS, mp.dps + 10) + extra


def _extra_digits(x: mpf) -> int:
    """Digits lost by 1 - 2 sigmoid(x) ~ -x/2 when |x| is small."""
    if x == 0:
        return 0
    return max(0, -int(mpmath.floor(mpmath.log10(abs(x)))))


def mp_sigmoid(x: float | mpf) -> mpf:
    """1 / (1 + exp(-x)); no subtraction, so the base precision suffices."""
    with mp.workdps(_dps()):
        return 1 / (1 + mpmath.exp(-mpf(x)))


def mp_log1p(u: mpf) -> mpf:
    """log(1 + u) for u >= 0 without cancellation.

    The working precision is raised by the digits that 1 + u hides; once u is
    below 10**-(2 * digits), log(1 + u) equals u to more than the working digits.
    """
    if u == 0:
        return mpf(0)
    lost = max(0, -int(mpmath.floor(mpmath.log10(u))))
    if lost > 2 * _dps():
        return u
    with mp.workdps(_dps(lost + 10)):
        return mpmath.log(1 + u)


def mp_softplus(x: float | mpf) -> mpf:
    """log(1 + exp(x)) = -log sigmoid(-x)."""
    x = mpf(x)
    with mp.workdps(_dps()):
        if x > 0:
            # log(1 + e^x) = x + log(1 + e^-x): both terms positive.
            return x + mp_log1p(mpmath.exp(-x))
        return mp_log1p(mpmath.exp(x))


def mp_log_sigmoid(x: float | mpf) -> mpf:
    # Every operation stays inside a raised precision: outside one, even a
    # negation rounds to mpmath's default 53 bits.
    with mp.workdps(_dps()):
        return -mp_softplus(-mpf(x))


def mp_sigmoid_derivative(x: float | mpf) -> mpf:
    """sigma(x) (1 - sigma(x)) written as sigma(x) sigma(-x)."""
    x = mpf(x)
    with mp.workdps(_dps()):
        return mp_sigmoid(x) * mp_sigmoid(-x)


def mp_sigmoid_second_derivative(x: float | mpf) -> mpf:
    """sigma(x) sigma(-x) (sigma(-x) - sigma(x)), the last factor being 1 - 2 sigma(x).

    Near 0 that factor cancels about -log10|x| digits, so they are added to the
    working precision (more than 300 for x = 1e-300).
    """
    x = mpf(x)
    with mp.workdps(_dps(_extra_digits(x) + 10)):
        s = 1 / (1 + mpmath.exp(-x))
        s_neg = 1 / (1 + mpmath.exp(x))
        return s * s_neg * (s_neg - s)


# --- binary cross-entropy ----------------------------------------------------------


def mp_bce_logits(
    z: float, t: float, w: float = 1.0, pw: float = 1.0, eps: float = 0.0
) -> tuple[mpf, mpf, mpf]:
    """Loss, d/dz and d2/dz2 of w [-pw t' log s(z) - (1 - t') log s(-z)].

    t' = t (1 - eps) + eps / 2. The gradient (pw t' + 1 - t') s(z) - pw t' is
    rearranged with s(z) - 1 = -s(-z) into (1 - t') s(z) - pw t' s(-z), whose terms
    are exact, so for t' in {0, 1} it is a single product.
    """
    with mp.workdps(_dps()):
        z_, w_, pw_ = mpf(z), mpf(w), mpf(pw)
        eps_ = mpf(eps)
        t_ = mpf(t) * (1 - eps_) + eps_ / 2
        loss = w_ * (pw_ * t_ * mp_softplus(-z_) + (1 - t_) * mp_softplus(z_))
        grad = w_ * ((1 - t_) * mp_sigmoid(z_) - pw_ * t_ * mp_sigmoid(-z_))
        hess = w_ * (pw_ * t_ + 1 - t_) * mp_sigmoid_derivative(z_)
        return loss, grad, hess


with mp.workdps(BASE_DPS):
    # 10**24 needs 56 bits: computed at the default 53 it would be rounded.
    LOG_CLAMP = mpf(-100)
    RECIPROCAL_CAP = mpf(10) ** 12
    HESSIAN_CAP = mpf(10) ** 24


def _neg_log_clamped(q: mpf) -> tuple[mpf, bool]:
    """-max(log q, -100) and whether the clamp acted."""
    if q == 0:
        return -LOG_CLAMP, True
    value = mpmath.log(q)
    if value < LOG_CLAMP:
        return -LOG_CLAMP, True
    return -value, False


def _capped_reciprocal(q: mpf) -> tuple[mpf, mpf, bool]:
    """min(1/q, 1e12), min(1/q**2, 1e24) and whether a cap acted."""
    if q == 0 or 1 / q > RECIPROCAL_CAP:
        return RECIPROCAL_CAP, HESSIAN_CAP, True
    return 1 / q, 1 / q**2, False


def mp_bce_probabilities(
    p: float, t: float, w: float = 1.0, pw: float = 1.0, eps: float = 0.0
) -> tuple[mpf, mpf, mpf, bool]:
    """Loss, d/dp, d2/dp2 under the clamp/cap policy, and whether it acted."""
    with mp.workdps(_dps()):
        p_, w_, pw_, eps_ = mpf(p), mpf(w), mpf(pw), mpf(eps)
        t_ = mpf(t) * (1 - eps_) + eps_ / 2
        a_pos, a_neg = pw_ * t_, 1 - t_
        loss = grad = hess = mpf(0)
        clamped = False
        # A term whose coefficient is exactly 0 contributes exactly 0.
        if a_pos != 0:
            nl, c1 = _neg_log_clamped(p_)
            r, r2, c2 = _capped_reciprocal(p_)
            loss += a_pos * nl
            grad -= a_pos * r
            hess += a_pos * r2
            clamped = clamped or c1 or c2
        if a_neg != 0:
            q = 1 - p_  # exact: p is a float in [0, 1] and BASE_DPS >> 53 bits
            nl, c1 = _neg_log_clamped(q)
            r, r2, c2 = _capped_reciprocal(q)
            loss += a_neg * nl
            grad += a_neg * r
            hess += a_neg * r2
            clamped = clamped or c1 or c2
        return w_ * loss, w_ * grad, w_ * hess, clamped


# --- categorical cross-entropy -----------------------------------------------------


def mp_row_log_softmax(
    row: Sequence[float],
) -> tuple[list[mpf], list[mpf], list[mpf], list[mpf]]:
    """(-log p_c, p_c, 1 - p_c, log p_c) for one logit row, without cancellation.

    With m = max(z) and d_c = z_c - m formed exactly, -log p_c =
    (m - z_c) + log(1 + S) where S sums exp(d_c) over every class but one argmax:
    two non-negative terms. 1 - p_c is the sum of the other probabilities.
    """
    with mp.workdps(_dps()):
        z = [mp_exact(v) for v in row]
        top = max(range(len(z)), key=lambda c: z[c])
        d = [mpmath.fsub(zc, z[top], exact=True) for zc in z]
        e = [mpf(1) if c == top else mpmath.exp(d[c]) for c in range(len(z))]
        rest = mpmath.fsum(e[c] for c in range(len(z)) if c != top)
        log_norm = mp_log1p(rest)
        neg_log_p = [-d[c] + log_norm for c in range(len(z))]
        total = 1 + rest
        p = [e[c] / total for c in range(len(z))]
        one_minus = [
            mpmath.fsum(e[k] for k in range(len(z)) if k != c) / total
            for c in range(len(z))
        ]
        return neg_log_p, p, one_minus, [-v for v in neg_log_p]


def ce_coefficients(
    num_classes: int,
    *,
    label: int | None = None,
    target: Sequence[float] | None = None,
    class_weights: Sequence[float] | None = None,
    eps: float = 0.0,
) -> list[mpf]:
    """a_c of loss = sum_c a_c (-log p_c), as F.cross_entropy defines it."""
    with mp.workdps(_dps()):
        w = (
            [mpf(1)] * num_classes
            if class_weights is None
            else [mp_exact(v) for v in class_weights]
        )
        eps_ = mpf(eps)
        if label is not None:
            a = [eps_ / num_classes * w[c] for c in range(num_classes)]
            a[label] += (1 - eps_) * w[label]
            return a
        assert target is not None
        return [
            w[c] * ((1 - eps_) * mp_exact(target[c]) + eps_ / num_classes)
            for c in range(num_classes)
        ]


def mp_ce_logits_row(
    row: Sequence[float], a: Sequence[mpf]
) -> tuple[mpf, list[mpf], list[mpf]]:
    """Loss, gradient softmax * sum(a) - a, Hessian diagonal sum(a) p (1 - p)."""
    neg_log_p, p, one_minus, _ = mp_row_log_softmax(row)
    with mp.workdps(_dps()):
        total = mpmath.fsum(a)
        loss = mpmath.fsum(a[c] * neg_log_p[c] for c in range(len(row)))
        grad = [p[c] * total - a[c] for c in range(len(row))]
        hess = [total * p[c] * one_minus[c] for c in range(len(row))]
        return loss, grad, hess


def mp_ce_probabilities_row(
    row: Sequence[float], a: Sequence[mpf]
) -> tuple[mpf, list[mpf], list[mpf], int]:
    """Loss, gradient -a/p, Hessian a/p**2 under the clamp/cap policy."""
    with mp.workdps(_dps()):
        loss = mpf(0)
        grad, hess = [], []
        clamped = 0
        for c, value in enumerate(row):
            if a[c] == 0:
                grad.append(mpf(0))
                hess.append(mpf(0))
                continue
            nl, c1 = _neg_log_clamped(mp_exact(value))
            r, r2, c2 = _capped_reciprocal(mp_exact(value))
            loss += a[c] * nl
            grad.append(-a[c] * r)
            hess.append(a[c] * r2)
            clamped += int(c1 or c2)
        return loss, grad, hess, clamped


# --- tolerance checks --------------------------------------------------------------


def _describe(index: tuple[int, ...] | int, inputs: Callable[[int], str] | None) -> str:
    flat = index if isinstance(index, int) else index[0]
    return inputs(flat) if inputs is not None else f"index {index}"


def _check(
    got: np.ndarray,
    exact: Iterable[mpf],
    tolerance: Callable[[mpf], mpf],
    what: str,
    inputs: Callable[[int], str] | None,
) -> None:
    got_flat = np.asarray(got, dtype=np.float64).ravel()
    exact_flat = list(exact)
    assert got_flat.size == len(exact_flat), (what, got_flat.size, len(exact_flat))
    failures = []
    with mp.workdps(_dps()):
        for i, (g, e) in enumerate(zip(got_flat, exact_flat, strict=True)):
            g_mp = mpf(float(g))  # NaN and inf propagate and fail the comparison
            error = abs(g_mp - e)
            if not error <= tolerance(e):
                failures.append(
                    f"{_describe(i, inputs)}: got {float(g)!r}, "
                    f"exact {mpmath.nstr(e, 20)}, error {mpmath.nstr(error, 3)}"
                )
    assert not failures, f"{what}: {len(failures)} out of tolerance\n" + "\n".join(
        failures[:20]
    )


def assert_relative(
    got: np.ndarray,
    exact: Iterable[mpf],
    what: str,
    inputs: Callable[[int], str] | None = None,
) -> None:
    """|err| <= 1e-14 |exact| where |exact| is normal, |err| <= 1e-300 below."""
    rel, floor = mpf("1e-14"), mpf("1e-300")
    normal = mpf(SMALLEST_NORMAL)

    def tolerance(e: mpf) -> mpf:
        return rel * abs(e) if abs(e) >= normal else floor

    _check(got, exact, tolerance, what, inputs)


def assert_mixed(
    got: np.ndarray,
    exact: Iterable[mpf],
    what: str,
    inputs: Callable[[int], str] | None = None,
    absolute: float = 1e-15,
) -> None:
    """|err| <= 1e-14 |exact| + 1e-15.

    ``absolute`` replaces the 1e-15 when weights scale the outputs.
    """
    rel, floor = mpf("1e-14"), mpf(absolute)

    def tolerance(e: mpf) -> mpf:
        return rel * abs(e) + floor

    _check(got, exact, tolerance, what, inputs)


def fsum_mp(values: Iterable[mpf], divisor: float = 1.0) -> mpf:
    """sum(values) / divisor at the reference precision."""
    with mp.workdps(_dps()):
        return mpmath.fsum(values) / mpf(divisor)
