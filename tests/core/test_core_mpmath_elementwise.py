"""Sigmoid family, softmax and log-softmax against the mpmath references."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from core_reference import (
    EXTRA_GRID,
    NAMED_GRID,
    assert_mixed,
    assert_relative,
    logit_rows,
    moderate_spread_rows,
    mp_log_sigmoid,
    mp_row_log_softmax,
    mp_sigmoid,
    mp_sigmoid_derivative,
    mp_sigmoid_second_derivative,
    random_logits,
)
from mpmath import mpf

from service.core import (
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_derivative,
    sigmoid_family,
    sigmoid_second_derivative,
    softmax,
    softmax_and_log_softmax,
)

# The sigmoid family is defined for every finite float, so the largest ones too.
LARGEST = 1.7976931348623157e308
POINTS = np.array(
    [*NAMED_GRID, *EXTRA_GRID, LARGEST, -LARGEST, *random_logits(seed=2)],
    dtype=np.float64,
)

REFERENCES = {
    "sigmoid": mp_sigmoid,
    "log_sigmoid": mp_log_sigmoid,
    "sigmoid_derivative": mp_sigmoid_derivative,
    "sigmoid_second_derivative": mp_sigmoid_second_derivative,
}
FUNCTIONS = {
    "sigmoid": sigmoid,
    "log_sigmoid": log_sigmoid,
    "sigmoid_derivative": sigmoid_derivative,
    "sigmoid_second_derivative": sigmoid_second_derivative,
}


@functools.cache
def exact_values(name: str) -> tuple[mpf, ...]:
    return tuple(REFERENCES[name](float(x)) for x in POINTS)


def describe(i: int) -> str:
    return f"x={POINTS[i]!r}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_sigmoid_family_matches_mpmath(name: str) -> None:
    got = FUNCTIONS[name](POINTS.copy())
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float64
    assert got.shape == POINTS.shape
    assert_relative(got, exact_values(name), name, describe)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_sigmoid_family_one_pass_matches_mpmath(order: int) -> None:
    value, first, second = sigmoid_family(POINTS.copy(), order)
    assert_relative(value, exact_values("sigmoid"), "sigmoid_family value", describe)
    if order >= 1:
        assert first is not None
        assert_relative(
            first, exact_values("sigmoid_derivative"), "sigmoid_family d1", describe
        )
    else:
        assert first is None
    if order >= 2:
        assert second is not None
        assert_relative(
            second,
            exact_values("sigmoid_second_derivative"),
            "sigmoid_family d2",
            describe,
        )
    else:
        assert second is None


def test_naive_sigmoid_derivative_would_fail_here() -> None:
    # Guards the grid itself: at x = 37 the naive sigma (1 - sigma) is 0 in float64
    # while the true value is about 8.5e-17, so a naive core cannot pass above.
    s = 1.0 / (1.0 + np.exp(-37.0))
    assert s * (1.0 - s) == 0.0
    assert float(mp_sigmoid_derivative(37.0)) == pytest.approx(8.533047625744066e-17)


# --- softmax and log-softmax -------------------------------------------------------


ROWS = logit_rows(seed=3)


@functools.cache
def softmax_references() -> tuple[tuple[list[mpf], list[mpf]], ...]:
    out = []
    for row in ROWS:
        _, p, _, log_p = mp_row_log_softmax(row)
        out.append((p, log_p))
    return tuple(out)


def rows_by_width() -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(ROWS):
        groups.setdefault(row.size, []).append(i)
    return groups


@pytest.mark.parametrize("width", [2, 3, 5])
def test_softmax_and_log_softmax_match_mpmath(width: int) -> None:
    indices = rows_by_width()[width]
    logits = np.stack([ROWS[i] for i in indices])
    refs = softmax_references()
    exact_p = [v for i in indices for v in refs[i][0]]
    exact_logp = [v for i in indices for v in refs[i][1]]

    def describe_entry(k: int) -> str:
        return f"row={list(logits[k // width])}, class={k % width}"

    for name, got in [
        ("softmax", softmax(logits.copy())),
        ("softmax_and_log_softmax[0]", softmax_and_log_softmax(logits.copy())[0]),
    ]:
        assert got.dtype == np.float64
        assert got.shape == logits.shape
        assert_mixed(got, exact_p, name, describe_entry)
    for name, got in [
        ("log_softmax", log_softmax(logits.copy())),
        ("softmax_and_log_softmax[1]", softmax_and_log_softmax(logits.copy())[1]),
    ]:
        assert got.dtype == np.float64
        assert got.shape == logits.shape
        assert_mixed(got, exact_logp, name, describe_entry)


def test_softmax_moderate_spread_matches_mpmath() -> None:
    # Rows within 32 of their maximum, in a call of their own (see
    # moderate_spread_rows).
    logits = np.stack(moderate_spread_rows(seed=15))
    exact = [mp_row_log_softmax(row) for row in logits]
    p, log_p = softmax_and_log_softmax(logits.copy())

    def describe_entry(k: int) -> str:
        return f"row={list(logits[k // 3])}, class={k % 3}"

    assert_mixed(p, [v for e in exact for v in e[1]], "softmax", describe_entry)
    assert_mixed(log_p, [v for e in exact for v in e[3]], "log_softmax", describe_entry)
