"""Large inputs, which an implementation may process in chunks or blocks.

Most entries are moderate, where a plain float64 formula written here is accurate
to a few ulps and serves as the reference; extreme entries are planted at and
around power-of-two offsets (where chunks of 2**k elements or rows would end) and
checked against mpmath. Any entry computed from the wrong chunk, buffer or
block-level code path shows up as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np
from core_reference import (
    assert_mixed,
    assert_relative,
    ce_coefficients,
    fsum_mp,
    mp_bce_logits,
    mp_bce_probabilities,
    mp_ce_logits_row,
)

from service.core import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy_with_logits,
)

N = 5 * (1 << 16) + 7


def boundary_positions(n: int) -> np.ndarray:
    """0, n - 1, and k - 1, k, k + 1 for every power of two k below n."""
    marks = {0, n - 1}
    k = 1
    while k < n:
        marks.update({k - 1, k, k + 1})
        k *= 2
    return np.array(sorted(m for m in marks if m < n))


def test_bce_logits_large_array() -> None:
    rng = np.random.default_rng(41)
    z = rng.uniform(-30.0, 30.0, N)
    t = rng.uniform(0.0, 1.0, N)
    t[rng.random(N) < 0.3] = 1.0
    t[rng.random(N) < 0.3] = 0.0
    w = rng.uniform(0.5, 2.0, N)
    pw = rng.uniform(0.5, 2.0, N)
    special = boundary_positions(N)
    extremes = [1e300, -1e300, 700.0, -700.0, 40.0, -40.0, 37.0, -37.0, 1e-300]
    z[special] = [extremes[i % len(extremes)] for i in range(special.size)]
    t[special] = [(0.0, 1.0, 0.5)[i % 3] for i in range(special.size)]

    for weights, pos_weight in [(None, None), (w, pw)]:
        result = binary_cross_entropy_with_logits(
            z, t, weights=weights, pos_weight=pos_weight, reduction="none", hessian=True
        )
        assert result.hessian is not None
        ww = np.ones(N) if weights is None else weights
        pp = np.ones(N) if pos_weight is None else pos_weight

        # Plain formulas, accurate for |z| <= 30 (exp neither over- nor
        # underflows and log1p keeps the small tail).
        moderate = np.ones(N, dtype=bool)
        moderate[special] = False
        zm, tm, wm, pm = z[moderate], t[moderate], ww[moderate], pp[moderate]
        loss = wm * (pm * tm * np.log1p(np.exp(-zm)) + (1 - tm) * np.log1p(np.exp(zm)))
        grad = wm * ((1 - tm) / (1 + np.exp(-zm)) - pm * tm / (1 + np.exp(zm)))
        hess = (
            wm
            * (pm * tm + 1 - tm)
            * np.exp(-np.abs(zm))
            / (1 + np.exp(-np.abs(zm))) ** 2
        )
        np.testing.assert_allclose(result.losses[moderate], loss, rtol=1e-13)
        np.testing.assert_allclose(
            result.gradient[moderate], grad, rtol=1e-13, atol=1e-14
        )
        np.testing.assert_allclose(result.hessian[moderate], hess, rtol=1e-13)

        exact = [
            mp_bce_logits(float(z[i]), float(t[i]), float(ww[i]), float(pp[i]))
            for i in special
        ]

        def describe(k: int) -> str:
            i = int(special[k])
            return f"index {i}: z={z[i]!r}, t={t[i]!r}"

        assert_relative(result.losses[special], [e[0] for e in exact], "loss", describe)
        assert_relative(
            result.hessian[special], [e[2] for e in exact], "Hessian", describe
        )
        assert_mixed(
            result.gradient[special], [e[1] for e in exact], "gradient", describe, 4e-15
        )

        mean = binary_cross_entropy_with_logits(
            z, t, weights=weights, pos_weight=pos_weight, reduction="mean"
        )
        total = math.fsum(loss.tolist()) + float(fsum_mp(e[0] for e in exact))
        assert mean.loss is not None
        assert math.isclose(mean.loss, total / N, rel_tol=1e-13)
        np.testing.assert_allclose(
            mean.gradient[moderate], grad / N, rtol=1e-13, atol=1e-19
        )


def test_bce_probabilities_large_array() -> None:
    rng = np.random.default_rng(42)
    p = rng.uniform(1e-3, 1.0 - 1e-3, N)
    t = rng.uniform(0.0, 1.0, N)
    t[rng.random(N) < 0.3] = 1.0
    t[rng.random(N) < 0.3] = 0.0
    special = boundary_positions(N)
    extremes = [0.0, 1.0, 1e-20, 1.0 - 1e-13, 5e-324, 1e-300, 0.5]
    p[special] = [extremes[i % len(extremes)] for i in range(special.size)]
    t[special] = [(1.0, 0.0, 0.5, 1.0)[i % 4] for i in range(special.size)]

    result = binary_cross_entropy(p, t, reduction="none", hessian=True)
    assert result.hessian is not None
    moderate = np.ones(N, dtype=bool)
    moderate[special] = False
    pm, tm = p[moderate], t[moderate]
    loss = -(tm * np.log(pm) + (1 - tm) * np.log1p(-pm))
    grad = -tm / pm + (1 - tm) / (1 - pm)
    hess = tm / pm**2 + (1 - tm) / (1 - pm) ** 2
    np.testing.assert_allclose(result.losses[moderate], loss, rtol=1e-13)
    np.testing.assert_allclose(result.gradient[moderate], grad, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(result.hessian[moderate], hess, rtol=1e-13)

    exact = [mp_bce_probabilities(float(p[i]), float(t[i])) for i in special]

    def describe(k: int) -> str:
        i = int(special[k])
        return f"index {i}: p={p[i]!r}, t={t[i]!r}"

    assert_mixed(result.losses[special], [e[0] for e in exact], "loss", describe)
    assert_mixed(result.gradient[special], [e[1] for e in exact], "gradient", describe)
    assert_mixed(result.hessian[special], [e[2] for e in exact], "Hessian", describe)
    assert result.clamped == sum(e[3] for e in exact)


def test_ce_logits_large_array() -> None:
    # Rows within 20 of their maximum except for a few planted ones, so that
    # some blocks of rows hold only moderate rows and others mix both kinds.
    rng = np.random.default_rng(43)
    classes = 4
    rows = 3 * (1 << 15) + 5
    z = rng.uniform(-10.0, 10.0, (rows, classes))
    labels = rng.integers(0, classes, rows)
    weights = np.array([0.5, 2.0, 1.0, 3.0])
    special = boundary_positions(rows)
    planted = special[(special > 1 << 14) & (special < 1 << 16)]
    # With their labels: None keeps the random one. The last two need the
    # rounding of z - z_y recovered (a label ~700 below two near-tied classes,
    # a label 700 above the rest) and sit among thousands of rows that do not.
    spread_rows = [
        ([1e-10, -700.0, 0.0, 3.0], None),
        ([1e300, -1e300, 0.0, 1.0], None),
        ([-745.0, 0.0, 1e-300, -36.0], None),
        ([700.3, 700.1, 1e-10, 1.0], 2),
        ([1e-10, -700.0, -700.2, -745.0], 0),
    ]
    for k, i in enumerate(planted):
        row, label = spread_rows[k % len(spread_rows)]
        z[i] = row
        if label is not None:
            labels[i] = label

    result = cross_entropy_with_logits(
        z,
        labels=labels,
        class_weights=weights,
        ignore_index=3,
        reduction="none",
        hessian=True,
    )
    assert result.hessian is not None
    kept = labels != 3

    # Moderate rows: -log p_y = (max - z_y) + log1p(sum of the other exps), which
    # a row spread by at most 20 gives to a few ulps.
    moderate = np.ones(rows, dtype=bool)
    moderate[planted] = False
    zm, ym = z[moderate], labels[moderate]
    top = zm.argmax(axis=1)
    shifted = zm - zm.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    e_rest = e.copy()
    e_rest[np.arange(zm.shape[0]), top] = 0.0
    rest = e_rest.sum(axis=1)
    neg_log_p_y = -shifted[np.arange(zm.shape[0]), ym] + np.log1p(rest)
    row_weight = np.where(ym == 3, 0.0, weights[ym])
    p = e / (1.0 + rest)[:, None]
    onehot = np.eye(classes)[ym]
    np.testing.assert_allclose(
        result.losses[moderate], row_weight * neg_log_p_y, rtol=1e-13
    )
    np.testing.assert_allclose(
        result.gradient[moderate],
        row_weight[:, None] * (p - onehot),
        rtol=1e-13,
        atol=1e-15,
    )
    # 1 - p cancels where p is near 1, in this reference and in any float64
    # evaluation, hence the absolute term (the bound is 1e-14·|x| + 1e-15).
    np.testing.assert_allclose(
        result.hessian[moderate],
        row_weight[:, None] * p * (1 - p),
        rtol=1e-12,
        atol=1e-15,
    )

    exact = []
    for i in planted:
        y = int(labels[i])
        a = ce_coefficients(classes, label=y, class_weights=weights.tolist())
        if y == 3:
            a = [0 * v for v in a]
        exact.append(mp_ce_logits_row(z[i].tolist(), a))

    def describe_row(k: int) -> str:
        i = int(planted[k])
        return f"row {i}: {z[i].tolist()}, label {labels[i]}"

    def describe_entry(k: int) -> str:
        return describe_row(k // classes) + f", class {k % classes}"

    assert_relative(result.losses[planted], [x[0] for x in exact], "loss", describe_row)
    assert_mixed(
        result.gradient[planted],
        [g for x in exact for g in x[1]],
        "gradient",
        describe_entry,
        3e-15,
    )
    assert_mixed(
        result.hessian[planted],
        [h for x in exact for h in x[2]],
        "Hessian",
        describe_entry,
        3e-15,
    )

    mean = cross_entropy_with_logits(
        z, labels=labels, class_weights=weights, ignore_index=3, reduction="mean"
    )
    total = math.fsum((row_weight * neg_log_p_y).tolist()) + float(
        fsum_mp(x[0] for x in exact)
    )
    divisor = math.fsum(weights[labels[kept]].tolist())
    assert mean.loss is not None
    assert math.isclose(mean.loss, total / divisor, rel_tol=1e-13)
