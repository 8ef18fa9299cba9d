"""The logistic sigmoid, its logarithm and its first two derivatives.

Every function takes an array-like ``x`` of any shape and returns a new float64
array of the same shape.

Note: all of them are built from ``q = σ(-|x|) = e / (1 + e)`` with
``e = exp(-|x|)``, which never overflows and is accurate to a few ulps for every
finite ``x``.  From ``q`` and ``h = [x >= 0]``:

- σ(x) = h - sign(x)·q is ``1 - q`` or ``q``, neither of which cancels;
- σ'(x) = σ(x)·σ(-x) = q·(1 - q), accurate where σ(x) itself rounds to 1 (the
  naive ``σ(x)·(1 - σ(x))`` returns 0 from x ≈ 37 on);
- σ''(x) = σ'(x)·(1 - 2σ(x)) = -σ'(x)·tanh(x/2), because 1 - 2σ(x) cancels near
  x = 0 while tanh does not.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.core._result import Array


def _q_and_sign(x: Array) -> tuple[Array, Array]:
    """Return ``q = σ(-|x|)`` and ``copysign(1, x)``."""
    e = np.copysign(x, -1.0)
    np.exp(e, out=e)
    q = np.add(e, 1.0)
    np.divide(e, q, out=q)
    return q, np.copysign(1.0, x)


def _sigmoid_from(q: Array, sign: Array) -> Array:
    # h = [x >= 0] = (sign + 1) / 2 exactly, so σ(x) = h - sign·q.
    value = np.multiply(sign, 0.5)
    value += 0.5
    value -= sign * q
    return value


def _derivative_from(q: Array) -> Array:
    derivative = np.subtract(1.0, q)
    derivative *= q
    return derivative


def _second_derivative_from(x: Array, derivative: Array) -> Array:
    second = np.multiply(x, 0.5)
    np.tanh(second, out=second)
    second *= derivative
    np.subtract(0.0, second, out=second)  # σ''(0) = +0.0, not -0.0
    return second


def sigmoid(x: npt.ArrayLike) -> Array:
    r"""Logistic sigmoid :math:`σ(x) = 1 / (1 + e^{-x})`.

    Examples
    --------
    >>> sigmoid([0.0, 40.0, -40.0]).tolist()
    [0.5, 1.0, 4.248354255291589e-18]
    """
    q, sign = _q_and_sign(np.asarray(x, dtype=np.float64))
    return _sigmoid_from(q, sign)


def log_sigmoid(x: npt.ArrayLike) -> Array:
    r"""Logarithm of the sigmoid, :math:`\log σ(x) = \min(x, 0) - \log(1 + e^{-|x|})`.

    Both tails keep full relative accuracy: ``log_sigmoid(40)`` is ``-4.2e-18``,
    not 0, and ``log_sigmoid(-1e300)`` is ``-1e300``, not ``-inf``.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.copysign(x, -1.0)
    np.exp(e, out=e)
    np.log1p(e, out=e)
    value: Array = np.minimum(x, 0.0)
    value -= e
    return value


def sigmoid_derivative(x: npt.ArrayLike) -> Array:
    r"""First derivative :math:`σ'(x) = σ(x)\,(1 - σ(x))`, exact for large ``|x|``."""
    q, _ = _q_and_sign(np.asarray(x, dtype=np.float64))
    return _derivative_from(q)


def sigmoid_second_derivative(x: npt.ArrayLike) -> Array:
    r"""Second derivative :math:`σ''(x) = σ'(x)\,(1 - 2σ(x))`, accurate near 0."""
    x = np.asarray(x, dtype=np.float64)
    q, _ = _q_and_sign(x)
    return _second_derivative_from(x, _derivative_from(q))


def sigmoid_family(
    x: npt.ArrayLike, order: int
) -> tuple[Array, Array | None, Array | None]:
    """Return σ(x) and, up to ``order`` (0, 1 or 2), its derivatives, from one exp.

    Returns
    -------
    value, derivative, second_derivative : ndarray or None
        ``derivative`` is ``None`` when ``order`` is 0, ``second_derivative``
        unless ``order`` is 2.
    """
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2; got {order!r}")
    x = np.asarray(x, dtype=np.float64)
    q, sign = _q_and_sign(x)
    value = _sigmoid_from(q, sign)
    if order == 0:
        return value, None, None
    derivative = _derivative_from(q)
    if order == 1:
        return value, derivative, None
    return value, derivative, _second_derivative_from(x, derivative)
