"""Vectorised numpy maths of lossgrad: sigmoid, softmax and cross-entropies.

This package depends on numpy only and can be used as a plain library::

    >>> from service.core import binary_cross_entropy_with_logits
    >>> binary_cross_entropy_with_logits([0.0], [1.0]).loss
    0.6931471805599453

Every function takes array-likes, converts them to float64 and returns new
float64 arrays; losses return a :class:`LossResult`.  Inconsistent shapes or
options raise :class:`ValueError`.
"""

from service.core._result import REDUCTIONS, LossResult, Reduction
from service.core.binary import binary_cross_entropy, binary_cross_entropy_with_logits
from service.core.categorical import cross_entropy, cross_entropy_with_logits
from service.core.sigmoid import (
    log_sigmoid,
    sigmoid,
    sigmoid_derivative,
    sigmoid_family,
    sigmoid_second_derivative,
)
from service.core.softmax import log_softmax, softmax, softmax_and_log_softmax

__all__ = [
    "REDUCTIONS",
    "LossResult",
    "Reduction",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "cross_entropy_with_logits",
    "log_sigmoid",
    "log_softmax",
    "sigmoid",
    "sigmoid_derivative",
    "sigmoid_family",
    "sigmoid_second_derivative",
    "softmax",
    "softmax_and_log_softmax",
]
