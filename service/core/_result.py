"""The result type shared by every loss, and the reductions.

Conventions for the whole package: inputs are converted to C-contiguous float64
arrays; a batch of ``N`` binary predictions has shape ``(N,)``, a batch of
categorical predictions has shape ``(N, C)``.  Every output is a fresh float64
array that the caller owns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Reduction = Literal["none", "sum", "mean"]
REDUCTIONS: Final[tuple[Reduction, ...]] = ("none", "sum", "mean")

# Note: numpy's allocations start on 16-byte boundaries, so most 64-byte vector
# loads and stores of an AVX-512 loop straddle two cache lines.  Outputs and
# scratch that start on a 64-byte boundary made binary cross-entropy on logits
# 5 % faster at N = 1e5 and 1e6 (bench/core.py, side by side).
ALIGNMENT: Final = 64
# Below this many elements an array is a few cache lines of a call dominated by
# fixed costs, and finding a buffer's address (1 µs through ``ndarray.ctypes``)
# would cost more than the alignment saves: those arrays come from np.empty.
ALIGNED_FROM: Final = 4096


@dataclass(frozen=True, slots=True)
class LossResult:
    """Loss, gradient and (optionally) Hessian diagonal of one batch.

    Attributes
    ----------
    loss : float or None
        The reduced loss; ``None`` when the reduction is ``"none"``.
    losses : ndarray of shape (N,)
        Per-sample losses, weighted, never divided by the mean's divisor.
    gradient : ndarray, same shape as the input
        Derivative of ``loss`` with respect to the input; for ``"none"``, of
        each sample's own loss.
    hessian : ndarray or None, same shape as the input
        Diagonal of the Hessian, same convention as ``gradient``; ``None``
        unless it was asked for.
    clamped : int
        How many input elements a boundary clamp or cap changed (always 0 for
        logits).
    """

    loss: float | None
    losses: Array
    gradient: Array
    hessian: Array | None
    clamped: int


def empty_aligned(shape: int | tuple[int, ...]) -> Array:
    """An uninitialised float64 array whose data starts on an :data:`ALIGNMENT`
    boundary (a view into a buffer at most 56 bytes longer), if it has at least
    :data:`ALIGNED_FROM` elements."""
    dims = (shape,) if isinstance(shape, int) else shape
    count = math.prod(dims)
    if count < ALIGNED_FROM:
        return np.empty(dims)
    buffer = np.empty(count + ALIGNMENT // 8)
    start = (-buffer.ctypes.data % ALIGNMENT) // 8
    return buffer[start : start + count].reshape(dims)


def check_reduction(reduction: str) -> Reduction:
    """Return ``reduction`` if it is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}"
        )
    return reduction


def reduction_scale(reduction: Reduction, divisor: float) -> float:
    """Factor that turns per-sample derivatives into those of the reduced loss.

    A zero divisor (every sample ignored, or all their weights zero) would make
    PyTorch return NaN; here the reduced loss is 0 with zero derivatives.
    """
    if reduction != "mean":
        return 1.0
    return 0.0 if divisor == 0.0 else 1.0 / divisor


def reduce_losses(losses: Array, reduction: Reduction, divisor: float) -> float | None:
    """Reduce per-sample ``losses`` to one number, or ``None`` for ``"none"``."""
    if reduction == "none":
        return None
    return reduce_total(float(np.add.reduce(losses)), reduction, divisor)


def reduce_total(total: float, reduction: Reduction, divisor: float) -> float | None:
    """The reduced loss from the sum of the per-sample losses."""
    if reduction == "none":
        return None
    if reduction == "sum":
        return total
    return 0.0 if divisor == 0.0 else total / divisor


def as_float_array(values: npt.ArrayLike, name: str, ndim: int) -> Array:
    """Convert ``values`` to a C-contiguous float64 array of ``ndim`` dimensions."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension(s); got shape {array.shape}"
        )
    return array


def check_label_smoothing(label_smoothing: float) -> float:
    """Return ``label_smoothing`` as a float after checking it lies in [0, 1]."""
    value = float(label_smoothing)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1]; got {value!r}")
    return value
