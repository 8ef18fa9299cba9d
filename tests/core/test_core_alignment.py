"""The core's large outputs start on 64-byte boundaries, whatever numpy's
allocator gives."""

from __future__ import annotations

import numpy as np
import pytest

from service.core import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy_with_logits,
)
from service.core._result import ALIGNED_FROM, ALIGNMENT, empty_aligned


@pytest.mark.parametrize(
    "shape",
    [ALIGNED_FROM, ALIGNED_FROM + 1, 131_073, (ALIGNED_FROM // 8, 8), (1000, 10)],
)
def test_empty_aligned_has_the_shape_and_alignment(
    shape: int | tuple[int, ...],
) -> None:
    # Allocate in between, so that successive buffers start at various offsets.
    for filler in range(1, 9):
        np.empty(filler)
        array = empty_aligned(shape)
        assert array.ctypes.data % ALIGNMENT == 0
        assert array.shape == ((shape,) if isinstance(shape, int) else shape)
        assert array.dtype == np.float64
        assert array.flags.c_contiguous and array.flags.writeable


@pytest.mark.parametrize("shape", [1, 7, ALIGNED_FROM - 1, (3, 5)])
def test_small_arrays_have_the_shape(shape: int | tuple[int, ...]) -> None:
    array = empty_aligned(shape)
    assert array.shape == ((shape,) if isinstance(shape, int) else shape)
    assert array.dtype == np.float64 and array.flags.c_contiguous


def test_loss_outputs_are_aligned() -> None:
    rng = np.random.default_rng(7)
    n = ALIGNED_FROM + 1001
    z = rng.normal(size=n)
    t = rng.random(n)
    results = [
        binary_cross_entropy_with_logits(z, t, hessian=True),
        binary_cross_entropy(1 / (1 + np.exp(-z)), t, hessian=True),
        cross_entropy_with_logits(
            rng.normal(size=(n, 7)), labels=rng.integers(0, 7, n), hessian=True
        ),
    ]
    for result in results:
        for array in (result.losses, result.gradient, result.hessian):
            assert array is not None
            assert array.ctypes.data % ALIGNMENT == 0
