"""Binary and categorical cross-entropy against the mpmath references.

Tolerances (issue 2, "How it is checked"):

- BCE on logits (loss and Hessian for every target, gradient for t in {0, 1}) and
  the categorical loss on logits: relative 1e-14 where the exact value is normal,
  absolute 1e-300 below (``assert_relative``);
- everything else: 1e-14 |exact| + 1e-15 (``assert_mixed``).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from core_reference import (
    EXTRA_GRID,
    NAMED_GRID,
    assert_mixed,
    assert_relative,
    ce_coefficients,
    fsum_mp,
    hundreds_spread_rows,
    logit_rows,
    moderate_spread_rows,
    mp_bce_logits,
    mp_bce_probabilities,
    mp_ce_logits_row,
    mp_ce_probabilities_row,
    random_logits,
)
from mpmath import mpf

from service.core import (
    LossResult,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_with_logits,
)

LARGEST = 1.7976931348623157e308

# --- binary cross-entropy on logits ------------------------------------------------

BCE_LOGITS = [*NAMED_GRID, *EXTRA_GRID, *random_logits(seed=5)]
TARGETS = [
    0.0,
    1.0,
    0.5,
    0.25,
    0.75,
    0.1,
    0.9,
    1e-10,
    1.0 - 1e-10,
    1e-300,
    *np.random.default_rng(6).uniform(0.0, 1.0, 3).tolist(),
]
PAIRS = list(itertools.product(BCE_LOGITS, TARGETS))
Z = np.array([z for z, _ in PAIRS])
T = np.array([t for _, t in PAIRS])
HARD = np.isin(T, [0.0, 1.0])

# Unit weights also on the largest floats, where the exact loss is still finite.
Z_UNIT = np.concatenate([Z, [LARGEST, -LARGEST, LARGEST, -LARGEST, LARGEST]])
T_UNIT = np.concatenate([T, [0.0, 1.0, 1.0, 0.0, 0.5]])
HARD_UNIT = np.isin(T_UNIT, [0.0, 1.0])

rng_weights = np.random.default_rng(7)
WEIGHTS = rng_weights.uniform(0.1, 5.0, Z.size)
POS_WEIGHTS = rng_weights.uniform(0.1, 5.0, Z.size)

# (name, weights, pos_weight, label_smoothing)
BCE_VARIANTS = {
    "pos_weight=3": (None, 3.0, 0.0),
    "pos_weight=0.25": (None, 0.25, 0.0),
    "weights": (WEIGHTS, None, 0.0),
    "weights+pos_weight array": (WEIGHTS, POS_WEIGHTS, 0.0),
    "label_smoothing=0.1": (None, None, 0.1),
    "all": (WEIGHTS, POS_WEIGHTS, 0.1),
}


def split(
    values: list[tuple[mpf, ...]], mask: np.ndarray, k: int
) -> tuple[list[mpf], list[mpf]]:
    """The k-th reference output, split into entries where mask holds and not."""
    return (
        [v[k] for v, m in zip(values, mask, strict=True) if m],
        [v[k] for v, m in zip(values, mask, strict=True) if not m],
    )


@functools.cache
def bce_logits_unit_reference() -> list[tuple[mpf, ...]]:
    return [mp_bce_logits(z, t) for z, t in zip(Z_UNIT, T_UNIT, strict=True)]


@functools.cache
def bce_logits_variant_reference(name: str) -> list[tuple[mpf, ...]]:
    weights, pos_weight, eps = BCE_VARIANTS[name]
    out = []
    for i, (z, t) in enumerate(PAIRS):
        w = 1.0 if weights is None else float(weights[i])
        if pos_weight is None:
            pw = 1.0
        elif np.ndim(pos_weight) == 0:
            pw = float(pos_weight)
        else:
            pw = float(pos_weight[i])
        out.append(mp_bce_logits(z, t, w, pw, eps))
    return out


def test_bce_logits_unit_weights_match_mpmath() -> None:
    result = binary_cross_entropy_with_logits(
        Z_UNIT.copy(), T_UNIT.copy(), reduction="none", hessian=True
    )
    exact = bce_logits_unit_reference()

    def describe(i: int) -> str:
        return f"z={Z_UNIT[i]!r}, t={T_UNIT[i]!r}"

    assert result.hessian is not None
    assert_relative(result.losses, [e[0] for e in exact], "BCE loss", describe)
    assert_relative(result.hessian, [e[2] for e in exact], "BCE Hessian", describe)

    hard, soft = split(exact, HARD_UNIT, 1)
    idx_hard = np.flatnonzero(HARD_UNIT)
    idx_soft = np.flatnonzero(~HARD_UNIT)
    assert_relative(
        result.gradient[idx_hard],
        hard,
        "BCE gradient, t in {0, 1}",
        lambda i: describe(int(idx_hard[i])),
    )
    assert_mixed(
        result.gradient[idx_soft],
        soft,
        "BCE gradient, soft t",
        lambda i: describe(int(idx_soft[i])),
    )


@pytest.mark.parametrize("name", sorted(BCE_VARIANTS))
def test_bce_logits_weighted_match_mpmath(name: str) -> None:
    weights, pos_weight, eps = BCE_VARIANTS[name]
    result = binary_cross_entropy_with_logits(
        Z.copy(),
        T.copy(),
        weights=None if weights is None else weights.copy(),
        pos_weight=pos_weight if np.ndim(pos_weight) == 0 else pos_weight.copy(),
        label_smoothing=eps,
        reduction="none",
        hessian=True,
    )
    exact = bce_logits_variant_reference(name)

    def describe(i: int) -> str:
        w = "1" if weights is None else repr(weights[i])
        pw = pos_weight if np.ndim(pos_weight) == 0 else pos_weight[i]
        return f"z={Z[i]!r}, t={T[i]!r}, w={w}, pos_weight={pw!r}, eps={eps}"

    assert result.hessian is not None
    assert_relative(result.losses, [e[0] for e in exact], f"{name} loss", describe)
    assert_relative(result.hessian, [e[2] for e in exact], f"{name} Hessian", describe)

    # With smoothing no target stays in {0, 1}, so every gradient is "soft".
    hard_mask = HARD & (eps == 0.0)
    hard, soft = split(exact, hard_mask, 1)
    idx_hard = np.flatnonzero(hard_mask)
    idx_soft = np.flatnonzero(~hard_mask)
    assert_relative(
        result.gradient[idx_hard],
        hard,
        f"{name} gradient, t in {{0, 1}}",
        lambda i: describe(int(idx_hard[i])),
    )
    # The 1e-15 floor is for unit weights; here it scales with the largest factor.
    scale = 5.0 * 5.0
    assert_mixed(
        result.gradient[idx_soft],
        soft,
        f"{name} gradient, soft t",
        lambda i: describe(int(idx_soft[i])),
        absolute=1e-15 * scale,
    )


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_bce_logits_reduced_loss_matches_mpmath(reduction: str) -> None:
    result = binary_cross_entropy_with_logits(Z.copy(), T.copy(), reduction=reduction)
    divisor = 1.0 if reduction == "sum" else float(Z.size)
    exact = fsum_mp((mp_bce_logits(z, t)[0] for z, t in PAIRS), divisor)
    assert result.loss is not None
    assert_relative(np.array([result.loss]), [exact], f"BCE {reduction} loss")


# --- binary cross-entropy on probabilities -----------------------------------------

# 1/p crosses the 1e12 cap between 2e-12 and 5e-13, and log p the -100 clamp
# (p = 3.7e-44) between 1e-20 and 1e-50; 1 - 1e-13 puts 1 - p under the cap.
BCE_PROBABILITIES = [
    0.0,
    5e-324,
    1e-300,
    1e-50,
    1e-20,
    5e-13,
    2e-12,
    1e-10,
    0.1,
    0.25,
    0.5,
    0.75,
    0.9,
    1.0 - 1e-10,
    1.0 - 1e-13,
    1.0 - 2.0**-53,
    1.0,
    *np.random.default_rng(8).uniform(0.0, 1.0, 4).tolist(),
]
PROB_PAIRS = list(itertools.product(BCE_PROBABILITIES, TARGETS))
P = np.array([p for p, _ in PROB_PAIRS])
TP = np.array([t for _, t in PROB_PAIRS])
WEIGHTS_P = np.random.default_rng(9).uniform(0.1, 5.0, P.size)
POS_WEIGHTS_P = np.random.default_rng(10).uniform(0.1, 5.0, P.size)

BCE_PROB_VARIANTS = {
    "unit": (None, None, 0.0),
    "pos_weight=3": (None, 3.0, 0.0),
    "weights+pos_weight array": (WEIGHTS_P, POS_WEIGHTS_P, 0.0),
    "label_smoothing=0.2": (None, None, 0.2),
}


@functools.cache
def bce_probabilities_reference(name: str) -> list[tuple[mpf, mpf, mpf, bool]]:
    weights, pos_weight, eps = BCE_PROB_VARIANTS[name]
    out = []
    for i, (p, t) in enumerate(PROB_PAIRS):
        w = 1.0 if weights is None else float(weights[i])
        if pos_weight is None:
            pw = 1.0
        elif np.ndim(pos_weight) == 0:
            pw = float(pos_weight)
        else:
            pw = float(pos_weight[i])
        out.append(mp_bce_probabilities(p, t, w, pw, eps))
    return out


@pytest.mark.parametrize("name", sorted(BCE_PROB_VARIANTS))
def test_bce_probabilities_match_mpmath(name: str) -> None:
    weights, pos_weight, eps = BCE_PROB_VARIANTS[name]
    result = binary_cross_entropy(
        P.copy(),
        TP.copy(),
        weights=None if weights is None else weights.copy(),
        pos_weight=pos_weight if np.ndim(pos_weight) == 0 else pos_weight.copy(),
        label_smoothing=eps,
        reduction="none",
        hessian=True,
    )
    exact = bce_probabilities_reference(name)

    def describe(i: int) -> str:
        return f"p={P[i]!r}, t={TP[i]!r}, eps={eps}"

    absolute = 1e-15 if weights is None and pos_weight is None else 25e-15
    assert result.hessian is not None
    assert_mixed(
        result.losses, [e[0] for e in exact], f"{name} loss", describe, absolute
    )
    assert_mixed(
        result.gradient, [e[1] for e in exact], f"{name} gradient", describe, absolute
    )
    assert_mixed(
        result.hessian, [e[2] for e in exact], f"{name} Hessian", describe, absolute
    )
    assert result.clamped == sum(e[3] for e in exact)


# --- categorical cross-entropy on logits -------------------------------------------

CE_ROWS = logit_rows(seed=11)
CE_GROUPS: dict[int, list[np.ndarray]] = {}
for _row in CE_ROWS:
    CE_GROUPS.setdefault(_row.size, []).append(_row)
WIDTHS = sorted(CE_GROUPS)

# (class_weights factory by width, label_smoothing)
CE_VARIANTS = {
    "plain": (False, 0.0),
    "class_weights": (True, 0.0),
    "label_smoothing=0.1": (False, 0.1),
    "class_weights+label_smoothing=0.3": (True, 0.3),
}


def class_weights_for(width: int) -> np.ndarray:
    return np.array([0.5, 2.0, 1.5, 3.0, 0.25][:width])


def soft_targets(rows: int, width: int, seed: int) -> np.ndarray:
    """Random distributions, every third row with some exact zeros."""
    rng = np.random.default_rng(seed)
    targets = rng.dirichlet(np.ones(width), rows)
    targets[::3, 0] = 0.0
    return targets / targets.sum(axis=1, keepdims=True)


@functools.cache
def ce_logits_label_reference(
    width: int, label: int, variant: str
) -> list[tuple[mpf, list[mpf], list[mpf]]]:
    use_weights, eps = CE_VARIANTS[variant]
    cw = class_weights_for(width).tolist() if use_weights else None
    a = ce_coefficients(width, label=label, class_weights=cw, eps=eps)
    return [mp_ce_logits_row(row, a) for row in CE_GROUPS[width]]


@functools.cache
def ce_logits_target_reference(
    width: int, variant: str
) -> list[tuple[mpf, list[mpf], list[mpf]]]:
    use_weights, eps = CE_VARIANTS[variant]
    cw = class_weights_for(width).tolist() if use_weights else None
    targets = soft_targets(len(CE_GROUPS[width]), width, seed=width)
    return [
        mp_ce_logits_row(
            row, ce_coefficients(width, target=t.tolist(), class_weights=cw, eps=eps)
        )
        for row, t in zip(CE_GROUPS[width], targets, strict=True)
    ]


def check_ce_logits(
    result: LossResult,
    exact: list[tuple[mpf, list[mpf], list[mpf]]],
    logits: np.ndarray,
    what: str,
    absolute: float,
) -> None:
    width = logits.shape[1]

    def describe_row(n: int) -> str:
        return f"row={logits[n].tolist()}"

    def describe_entry(k: int) -> str:
        return f"row={logits[k // width].tolist()}, class={k % width}"

    assert_relative(result.losses, [e[0] for e in exact], f"{what} loss", describe_row)
    assert_mixed(
        result.gradient,
        [g for e in exact for g in e[1]],
        f"{what} gradient",
        describe_entry,
        absolute,
    )
    assert_mixed(
        result.hessian,
        [h for e in exact for h in e[2]],
        f"{what} Hessian",
        describe_entry,
        absolute,
    )


@pytest.mark.parametrize("variant", sorted(CE_VARIANTS))
@pytest.mark.parametrize("width", WIDTHS)
def test_ce_logits_labels_match_mpmath(width: int, variant: str) -> None:
    use_weights, eps = CE_VARIANTS[variant]
    logits = np.stack(CE_GROUPS[width])
    for label in range(width):
        result = cross_entropy_with_logits(
            logits.copy(),
            labels=np.full(logits.shape[0], label),
            class_weights=class_weights_for(width) if use_weights else None,
            label_smoothing=eps,
            reduction="none",
            hessian=True,
        )
        check_ce_logits(
            result,
            ce_logits_label_reference(width, label, variant),
            logits,
            f"CE {variant}, label {label}",
            3e-15 if use_weights else 1e-15,
        )


@pytest.mark.parametrize("variant", sorted(CE_VARIANTS))
@pytest.mark.parametrize("width", WIDTHS)
def test_ce_logits_target_probabilities_match_mpmath(width: int, variant: str) -> None:
    use_weights, eps = CE_VARIANTS[variant]
    logits = np.stack(CE_GROUPS[width])
    result = cross_entropy_with_logits(
        logits.copy(),
        target_probabilities=soft_targets(logits.shape[0], width, seed=width),
        class_weights=class_weights_for(width) if use_weights else None,
        label_smoothing=eps,
        reduction="none",
        hessian=True,
    )
    check_ce_logits(
        result,
        ce_logits_target_reference(width, variant),
        logits,
        f"CE {variant}, soft targets",
        3e-15 if use_weights else 1e-15,
    )


# Rows spread by at most 32, and rows spread by hundreds, each set in calls of its
# own: an implementation may choose its algorithm per call or per block.
SEPARATE_ROW_SETS = {
    "spread<=32": np.stack(moderate_spread_rows(seed=13)),
    "spread 33..745": np.stack(hundreds_spread_rows(seed=16)),
}


@functools.cache
def ce_separate_reference(
    row_set: str, label: int | None, variant: str
) -> list[tuple[mpf, list[mpf], list[mpf]]]:
    use_weights, eps = CE_VARIANTS[variant]
    cw = class_weights_for(3).tolist() if use_weights else None
    rows = SEPARATE_ROW_SETS[row_set]
    if label is not None:
        a = ce_coefficients(3, label=label, class_weights=cw, eps=eps)
        return [mp_ce_logits_row(row, a) for row in rows.tolist()]
    targets = soft_targets(rows.shape[0], 3, seed=14)
    return [
        mp_ce_logits_row(
            row, ce_coefficients(3, target=t.tolist(), class_weights=cw, eps=eps)
        )
        for row, t in zip(rows.tolist(), targets, strict=True)
    ]


@pytest.mark.parametrize("variant", sorted(CE_VARIANTS))
@pytest.mark.parametrize("row_set", sorted(SEPARATE_ROW_SETS))
def test_ce_logits_row_sets_in_separate_calls_match_mpmath(
    row_set: str, variant: str
) -> None:
    use_weights, eps = CE_VARIANTS[variant]
    rows = SEPARATE_ROW_SETS[row_set]
    options = {
        "class_weights": class_weights_for(3) if use_weights else None,
        "label_smoothing": eps,
        "reduction": "none",
        "hessian": True,
    }
    n = rows.shape[0]
    for label in [0, 1, 2, None]:
        if label is None:
            targets = {"target_probabilities": soft_targets(n, 3, seed=14)}
        else:
            targets = {"labels": np.full(n, label)}
        result = cross_entropy_with_logits(rows.copy(), **targets, **options)
        check_ce_logits(
            result,
            ce_separate_reference(row_set, label, variant),
            rows,
            f"CE {row_set} {variant}, label {label}",
            3e-15 if use_weights else 1e-15,
        )


def test_ce_logits_row_from_the_issue() -> None:
    # The row the issue names: a plain max-shifted log-sum-exp is ~5x off here.
    logits = np.array([[1e-10, -700.0], [-700.0, 1e-10]])
    result = cross_entropy_with_logits(
        logits, labels=np.array([0, 0]), reduction="none"
    )
    exact = [
        mp_ce_logits_row(row, ce_coefficients(2, label=0))[0] for row in logits.tolist()
    ]
    assert_relative(result.losses, exact, "CE loss on [1e-10, -700]")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ce_logits_reduced_loss_matches_mpmath(reduction: str) -> None:
    logits = np.stack(CE_GROUPS[3])
    labels = np.arange(logits.shape[0]) % 3
    weights = class_weights_for(3)
    result = cross_entropy_with_logits(
        logits.copy(), labels=labels, class_weights=weights, reduction=reduction
    )
    losses = [
        mp_ce_logits_row(
            row, ce_coefficients(3, label=int(y), class_weights=weights.tolist())
        )[0]
        for row, y in zip(logits.tolist(), labels, strict=True)
    ]
    # PyTorch's mean with class weights divides by the weights of the labels
    # (a sum of a few floats of like size: exact enough as a float).
    divisor = math.fsum(weights[labels].tolist()) if reduction == "mean" else 1.0
    exact = fsum_mp(losses, divisor)
    assert result.loss is not None
    assert_relative(np.array([result.loss]), [exact], f"CE {reduction} loss")


# --- categorical cross-entropy on probabilities ------------------------------------


def probability_rows() -> dict[int, np.ndarray]:
    edges = [0.0, 5e-324, 1e-300, 1e-50, 5e-13, 2e-12, 1e-10, 0.25, 0.5]
    pairs = np.array([[x, 1.0 - x] for x in edges] + [[1.0 - x, x] for x in edges])
    rng = np.random.default_rng(12)
    threes = rng.dirichlet(np.ones(3), 10)
    threes = np.vstack([threes, [[0.0, 0.5, 0.5], [1e-300, 1e-20, 1.0], [1.0, 0, 0]]])
    fives = rng.dirichlet(np.full(5, 0.3), 10)
    return {2: pairs, 3: threes, 5: fives}


PROBABILITY_ROWS = probability_rows()


@functools.cache
def ce_probabilities_reference(
    width: int, label: int | None, variant: str
) -> list[tuple[mpf, list[mpf], list[mpf], int]]:
    use_weights, eps = CE_VARIANTS[variant]
    cw = class_weights_for(width).tolist() if use_weights else None
    rows = PROBABILITY_ROWS[width]
    if label is not None:
        a = ce_coefficients(width, label=label, class_weights=cw, eps=eps)
        return [mp_ce_probabilities_row(row, a) for row in rows.tolist()]
    targets = soft_targets(rows.shape[0], width, seed=100 + width)
    return [
        mp_ce_probabilities_row(
            row, ce_coefficients(width, target=t.tolist(), class_weights=cw, eps=eps)
        )
        for row, t in zip(rows.tolist(), targets, strict=True)
    ]


@pytest.mark.parametrize("variant", sorted(CE_VARIANTS))
@pytest.mark.parametrize("width", sorted(PROBABILITY_ROWS))
def test_ce_probabilities_match_mpmath(width: int, variant: str) -> None:
    use_weights, eps = CE_VARIANTS[variant]
    rows = PROBABILITY_ROWS[width]
    absolute = 3e-15 if use_weights else 1e-15
    options = {
        "class_weights": class_weights_for(width) if use_weights else None,
        "label_smoothing": eps,
        "reduction": "none",
        "hessian": True,
    }

    def describe_row(n: int) -> str:
        return f"p={rows[n].tolist()}"

    def describe_entry(k: int) -> str:
        return f"p={rows[k // width].tolist()}, class={k % width}"

    cases = [
        (
            f"label {label}",
            {"labels": np.full(rows.shape[0], label)},
            ce_probabilities_reference(width, label, variant),
        )
        for label in range(width)
    ]
    cases.append(
        (
            "soft targets",
            {"target_probabilities": soft_targets(rows.shape[0], width, 100 + width)},
            ce_probabilities_reference(width, None, variant),
        )
    )
    for what, targets, exact in cases:
        result = cross_entropy(rows.copy(), **targets, **options)
        name = f"CE on probabilities, {variant}, {what}"
        assert result.hessian is not None
        assert_mixed(
            result.losses, [e[0] for e in exact], f"{name} loss", describe_row, absolute
        )
        assert_mixed(
            result.gradient,
            [g for e in exact for g in e[1]],
            f"{name} gradient",
            describe_entry,
            absolute,
        )
        assert_mixed(
            result.hessian,
            [h for e in exact for h in e[2]],
            f"{name} Hessian",
            describe_entry,
            absolute,
        )
        assert result.clamped == sum(e[3] for e in exact), name
