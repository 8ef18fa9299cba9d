"""Softmax and log-softmax over the last axis, with a compensated log-sum-exp.

Shapes: ``logits`` is ``(N, C)``; every result is ``(N, C)`` or ``(N,)``.

Note: the usual max-shifted log-sum-exp computes ``d = z - max`` in floating
point, and ``exp`` turns the rounding error of ``d`` (up to ``|d|·2⁻⁵³``) into a
relative error of the same size, 8e-14 at ``|d| = 700``.  Here the rounding
error of every subtraction is recovered exactly (Knuth's two-sum) and folded
back in as ``exp(d + err) ≈ exp(d)·(1 + err)``, and the terms other than the
row maximum are summed apart from it so that ``log1p`` sees them unrounded.

Note: the kernels work on blocks of rows.  numpy reduces and broadcasts along
short rows slowly (its inner loop would run over C = 10 elements), so for few
classes the row maxima are taken column by column and every per-row value is
repeated out to a flat array, keeping each pass one long contiguous loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.core._result import Array, as_float_array

# Rows are processed in blocks of about this many elements (1 MiB of float64
# per temporary, as binary cross-entropy's chunks), so a block's temporaries
# stay in cache and are recycled by the allocator instead of being faulted in
# afresh.  Each block also pays a few dozen numpy calls of fixed cost: measured
# here, cross-entropy with labels on 1e4 rows took 5.3 np.exp passes at C = 10
# and 3.5 at C = 1000 with blocks of 1 << 15, 4.3 and 2.7 with 1 << 17, and no
# less with 1 << 18; softmax and the other cross-entropies gained or held.
BLOCK_ELEMENTS = 1 << 17

# Below this many classes, per-row values are repeated out to full rows and row
# maxima are taken column by column (measured: 4x faster than axis=1 at C = 10).
FEW_CLASSES = 64

# When no logit of a block lies more than this below its row's maximum, the
# rounding error of z - max is at most 32·2⁻⁵³ = 3.6e-15 relative, well inside
# the 1e-14 accuracy bar, and the two-sum compensation is skipped.
UNCOMPENSATED_SPREAD = 32.0


@dataclass(frozen=True, slots=True)
class ShiftedLogits:
    """The pieces of a compensated log-sum-exp of each row of a block.

    ``z[n, c] - max_n == shifted[n, c] + error[n, c]`` (``error`` is ``None``
    where it is negligible, see :data:`UNCOMPENSATED_SPREAD`), and
    ``lse_n - z[n, c] == log1p_rest[n] - shifted[n, c] - error[n, c]``.

    Attributes
    ----------
    shifted : ndarray of shape (rows, C)
        ``fl(z - max)``, all ``<= 0``.
    error : ndarray of shape (rows, C) or None
        The rounding error of each subtraction.
    exp_shifted : ndarray of shape (rows, C)
        ``exp(shifted + error)``; exactly 1 at the row's maximum.
    rest : ndarray of shape (rows,)
        Sum of ``exp_shifted`` over the row, less one for the maximum.
    log1p_rest : ndarray of shape (rows,)
        ``log1p(rest)``, that is ``lse - max``.
    """

    shifted: Array
    error: Array | None
    exp_shifted: Array
    rest: Array
    log1p_rest: Array


def per_row(values: Array, classes: int) -> Array:
    """``values`` (rows,) made broadcastable against a (rows, C) block."""
    if classes < FEW_CLASSES:
        return np.repeat(values, classes).reshape(-1, classes)
    return values[:, None]


def _row_max(logits: Array) -> Array:
    classes = logits.shape[1]
    if classes >= FEW_CLASSES:
        return np.max(logits, axis=1, out=np.empty(logits.shape[0]))
    row_max = logits[:, 0].copy()
    for c in range(1, classes):
        np.maximum(row_max, logits[:, c], out=row_max)
    return row_max


def shift_logits(logits: Array) -> ShiftedLogits:
    """Compute the log-sum-exp pieces of each row of a ``(rows, C)`` block."""
    classes = logits.shape[1]
    row_max = per_row(_row_max(logits), classes)
    with np.errstate(over="ignore", invalid="ignore"):
        # Logits ~1e308 apart overflow to -inf here; exp(-inf) = 0 is right.
        shifted = np.subtract(logits, row_max)
    error = None
    if shifted.min() < -UNCOMPENSATED_SPREAD:
        error = two_sum_error(logits, row_max, shifted)

    exp_shifted = np.exp(shifted)
    if error is not None:
        exp_shifted += exp_shifted * error

    # exp_shifted is exactly 1 at a maximum and below 1 elsewhere (a value
    # that rounds to 1 is within 1e-16 of it), so floor() picks out the
    # maxima: rest = Σ fractional parts + (number of maxima - 1).
    whole = np.floor(exp_shifted)
    fraction = np.subtract(exp_shifted, whole)
    ones = np.ones(classes)
    extra_maxima = whole @ ones
    extra_maxima -= 1.0  # exact small integers, added after: tiny rests survive
    rest = fraction @ ones
    rest += extra_maxima
    return ShiftedLogits(shifted, error, exp_shifted, rest, np.log1p(rest))


def two_sum_error(a: Array, shift: Array, s: Array) -> Array:
    """Exact rounding error of ``s = fl(a - shift)`` (Knuth's two-sum)."""
    with np.errstate(over="ignore", invalid="ignore"):
        # With b = -shift: err = (a - (s - b')) + (b - b'), b' = s - a.
        virtual_b = np.subtract(s, a)
        error = np.subtract(s, virtual_b)
        np.subtract(a, error, out=error)
        virtual_b += shift
        error -= virtual_b
    # Where s overflowed, error is NaN; exp(s) = 0 there and needs none.
    if not np.isfinite(s).all():
        np.nan_to_num(error, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return error


def row_blocks(logits: Array) -> Iterator[slice]:
    """Slices of about :data:`BLOCK_ELEMENTS` elements' worth of rows."""
    n, c = logits.shape
    block = max(1, BLOCK_ELEMENTS // c)
    for start in range(0, n, block):
        yield slice(start, min(start + block, n))


def check_logits(logits: npt.ArrayLike, name: str = "logits") -> Array:
    """Convert ``logits`` to a float64 ``(N, C)`` array with ``C >= 1``."""
    array = as_float_array(logits, name, 2)
    if array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one class (C >= 1)")
    return array


def softmax_and_log_softmax(logits: npt.ArrayLike) -> tuple[Array, Array]:
    r"""Return ``softmax(logits)`` and ``log_softmax(logits)`` from one exp pass.

    .. math::  p_c = e^{z_c} / \sum_k e^{z_k},\qquad
               \log p_c = z_c - \log\sum_k e^{z_k}

    Examples
    --------
    >>> p, log_p = softmax_and_log_softmax([[0.0, 0.0]])
    >>> p.tolist(), log_p.tolist()
    ([[0.5, 0.5]], [[-0.6931471805599453, -0.6931471805599453]])
    """
    array = check_logits(logits)
    probabilities = np.empty_like(array)
    log_probabilities = np.empty_like(array)
    classes = array.shape[1]
    for part in row_blocks(array):
        pieces = shift_logits(array[part])
        scale = np.add(pieces.rest, 1.0)
        np.divide(1.0, scale, out=scale)
        np.multiply(
            pieces.exp_shifted, per_row(scale, classes), out=probabilities[part]
        )
        log_p = pieces.shifted
        if pieces.error is not None:
            log_p += pieces.error
        np.subtract(
            log_p, per_row(pieces.log1p_rest, classes), out=log_probabilities[part]
        )
    return probabilities, log_probabilities


def softmax(logits: npt.ArrayLike) -> Array:
    """Softmax over the last axis of an ``(N, C)`` array, max-shifted."""
    return softmax_and_log_softmax(logits)[0]


def log_softmax(logits: npt.ArrayLike) -> Array:
    """Log-softmax over the last axis of an ``(N, C)`` array, compensated."""
    return softmax_and_log_softmax(logits)[1]
