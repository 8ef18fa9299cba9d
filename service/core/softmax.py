"""Softmax and log-softmax over the last axis, with a compensated log-sum-exp.

Shapes: ``logits`` is ``(N, C)``; every result is ``(N, C)`` or ``(N,)``.

Note: the usual max-shifted log-sum-exp computes ``d = z - max`` in floating
point, and ``exp`` turns the rounding error of ``d`` (up to ``|d|·2⁻⁵³``) into a
relative error of the same size, 8e-14 at ``|d| = 700``.  Here the rounding
error of every subtraction is recovered exactly (Knuth's two-sum) and folded
back in as ``exp(d + err) ≈ exp(d)·(1 + err)``, and the terms other than the
row maximum are summed apart from it so that ``log1p`` sees them unrounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.core._result import Array, as_float_array


@dataclass(frozen=True, slots=True)
class ShiftedLogits:
    """The pieces of a compensated log-sum-exp of each row of ``z``.

    ``z[n, c] - max_n == shifted[n, c] + error[n, c]`` exactly, and
    ``lse_n - z[n, c] == log1p_rest[n] - shifted[n, c] - error[n, c]``.

    Attributes
    ----------
    shifted : ndarray of shape (N, C)
        ``fl(z - max)``, all ``<= 0``.
    error : ndarray of shape (N, C)
        The rounding error of each subtraction.
    exp_shifted : ndarray of shape (N, C)
        ``exp(shifted + error)``; 1 at the row's maximum.
    rest : ndarray of shape (N,)
        Sum of ``exp_shifted`` over the row, without the (first) maximum.
    log1p_rest : ndarray of shape (N,)
        ``log1p(rest)``, that is ``lse - max``.
    """

    shifted: Array
    error: Array
    exp_shifted: Array
    rest: Array
    log1p_rest: Array


def shift_logits(logits: Array) -> ShiftedLogits:
    """Compute the compensated log-sum-exp pieces of each row of ``logits``."""
    n = logits.shape[0]
    rows = np.arange(n)
    argmax = np.argmax(logits, axis=1)
    row_max = logits[rows, argmax]

    # Two-sum of a + b with a = z, b = -max: s + err == a + b exactly.  Rows
    # whose logits are ~1e308 apart overflow here; they are mended below.
    b = -row_max[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = logits + b
        virtual_b = shifted - logits
        error = logits - (shifted - virtual_b)
        error += b - virtual_b

    exp_shifted = np.exp(shifted)
    correction = exp_shifted * error
    exp_shifted += correction

    # The maximum contributes exactly 1; the rest is summed without it.
    exp_shifted[rows, argmax] = 0.0
    rest = exp_shifted.sum(axis=1)
    if np.isnan(rest).any():
        # z - max overflowed to -inf (logits ~1e308 apart), so error is NaN;
        # exp(-inf) = 0 needs no correction.  Checked on N sums, not N·C terms.
        np.nan_to_num(error, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.exp(shifted, out=exp_shifted)
        exp_shifted += exp_shifted * error
        exp_shifted[rows, argmax] = 0.0
        rest = exp_shifted.sum(axis=1)
    exp_shifted[rows, argmax] = 1.0
    return ShiftedLogits(shifted, error, exp_shifted, rest, np.log1p(rest))


def _check_logits(logits: npt.ArrayLike) -> Array:
    array = as_float_array(logits, "logits", 2)
    if array.shape[1] == 0:
        raise ValueError("logits must have at least one class (C >= 1)")
    return array


def softmax_and_log_softmax(logits: npt.ArrayLike) -> tuple[Array, Array]:
    r"""Return ``softmax(logits)`` and ``log_softmax(logits)`` from one exp pass.

    .. math::  p_c = e^{z_c} / \sum_k e^{z_k},\qquad \log p_c = z_c - \log\sum_k e^{z_k}

    Examples
    --------
    >>> p, log_p = softmax_and_log_softmax([[0.0, 0.0]])
    >>> p.tolist(), log_p.tolist()
    ([[0.5, 0.5]], [[-0.6931471805599453, -0.6931471805599453]])
    """
    array = _check_logits(logits)
    if array.shape[0] == 0:
        return np.empty_like(array), np.empty_like(array)
    pieces = shift_logits(array)
    probabilities = pieces.exp_shifted
    probabilities /= (1.0 + pieces.rest)[:, None]
    log_probabilities = pieces.shifted
    log_probabilities += pieces.error
    log_probabilities -= pieces.log1p_rest[:, None]
    return probabilities, log_probabilities


def softmax(logits: npt.ArrayLike) -> Array:
    """Softmax over the last axis of an ``(N, C)`` array, max-shifted."""
    return softmax_and_log_softmax(logits)[0]


def log_softmax(logits: npt.ArrayLike) -> Array:
    """Log-softmax over the last axis of an ``(N, C)`` array, compensated."""
    return softmax_and_log_softmax(logits)[1]
