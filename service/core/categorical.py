"""Categorical cross-entropy on logits and on probabilities.

Shapes: ``logits`` and ``probabilities`` are ``(N, C)``; targets are either
class indices ``labels`` of shape ``(N,)`` or ``target_probabilities`` of shape
``(N, C)``; ``class_weights`` is ``(C,)``.

Every variant is written as ``ℓ_n = Σ_c a_{n,c}·(-log p_{n,c})`` with per-class
coefficients ``a`` that carry the options exactly as PyTorch's
``F.cross_entropy`` defines them:

- labels ``y``: ``a_{n,c} = (1 - ε)·w_{y_n}·[c = y_n] + ε/C·w_c``, and rows whose
  label equals ``ignore_index`` have ``a = 0``;
- target probabilities ``t``: ``a_{n,c} = w_c·((1 - ε)·t_{n,c} + ε/C)``.

``mean`` divides by ``Σ_n w_{y_n}`` over rows not ignored (labels) or by ``N``
(target probabilities); when that divisor is 0 the loss is 0 with zero
derivatives, where PyTorch returns NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from service.core._result import (
    Array,
    LossResult,
    Reduction,
    as_float_array,
    check_label_smoothing,
    check_reduction,
    empty_aligned,
    reduce_losses,
    reduction_scale,
)
from service.core.binary import LOG_FLOOR, RECIPROCAL_CAP
from service.core.softmax import (
    UNCOMPENSATED_SPREAD,
    check_logits,
    per_row,
    row_blocks,
    shift_logits,
    two_sum_error,
)

IntArray = npt.NDArray[np.int64]

# The rows of the label-shifted kernel that need no compensation (see
# _label_shift_block): rest = Σ_{c≠y} exp(z_c - z_y) within these bounds, or 0.
_REST_MAX = math.exp(UNCOMPENSATED_SPREAD)
_REST_MIN = math.exp(-40.0)


@dataclass(frozen=True, slots=True)
class _Targets:
    """The coefficients of one call, sparse for plain labels, dense otherwise.

    With plain labels (no label smoothing) only ``a_{n, y_n} = row_weight_n`` is
    non-zero, and ``coefficients`` is ``None``.
    """

    n: int
    c: int
    labels: IntArray | None  # safe to index with: ignored rows point at class 0
    row_weight: Array  # Σ_c a_{n,c}
    coefficients: Array | None
    divisor: float
    uniform: bool = False  # every row weight is 1: plain labels, nothing ignored

    def select(self, rows: slice | npt.NDArray[np.bool_]) -> _Targets:
        """The targets of some rows only (``n`` and ``divisor`` stay the whole's)."""
        return replace(
            self,
            labels=None if self.labels is None else self.labels[rows],
            row_weight=self.row_weight[rows],
            coefficients=None if self.coefficients is None else self.coefficients[rows],
        )


@dataclass(frozen=True, slots=True)
class _Block:
    """A block of rows: its logits, targets and the reduction's scale, and the
    slices of the results that its kernel fills in."""

    z: Array
    targets: _Targets
    scale: float
    losses: Array
    gradient: Array
    hess: Array | None

    def rows(self, rows: npt.NDArray[np.bool_]) -> _Block:
        """Some of the rows, with arrays of their own for the results."""
        count, classes = int(np.count_nonzero(rows)), self.z.shape[1]
        return _Block(
            self.z[rows],
            self.targets.select(rows),
            self.scale,
            np.empty(count),
            np.empty((count, classes)),
            None if self.hess is None else np.empty((count, classes)),
        )

    def put(self, rows: npt.NDArray[np.bool_], part: _Block) -> None:
        """Copy the results of ``part``, made by :meth:`rows`, into those rows."""
        self.losses[rows] = part.losses
        self.gradient[rows] = part.gradient
        if self.hess is not None:
            self.hess[rows] = part.hess


def _prepare(
    inputs: npt.ArrayLike,
    input_name: str,
    labels: npt.ArrayLike | None,
    target_probabilities: npt.ArrayLike | None,
    class_weights: npt.ArrayLike | None,
    ignore_index: int | None,
    label_smoothing: float,
) -> tuple[Array, _Targets]:
    x = check_logits(inputs, input_name)
    c = x.shape[1]
    eps = check_label_smoothing(label_smoothing)
    weights = None
    if class_weights is not None:
        weights = as_float_array(class_weights, "class_weights", 1)
        if weights.shape[0] != c:
            raise ValueError(
                f"class_weights has {weights.shape[0]} entries "
                f"but {input_name} has {c} classes"
            )

    if (labels is None) == (target_probabilities is None):
        raise ValueError("give exactly one of labels or target_probabilities")
    if labels is not None:
        return x, _label_coefficients(x, input_name, labels, weights, ignore_index, eps)
    if ignore_index is not None:
        raise ValueError(
            "ignore_index applies to labels only, not to target_probabilities"
        )
    assert target_probabilities is not None
    return x, _probability_coefficients(
        x, input_name, target_probabilities, weights, eps
    )


def _label_coefficients(
    x: Array,
    input_name: str,
    labels: npt.ArrayLike,
    weights: Array | None,
    ignore_index: int | None,
    eps: float,
) -> _Targets:
    n, c = x.shape
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"labels must have shape ({n},) to match {input_name}; got {y.shape}"
        )
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {y.dtype}")
    y = y.astype(np.int64, copy=False)

    ignored = None if ignore_index is None else y == int(ignore_index)
    out_of_range = (y < 0) | (y >= c)
    if ignored is not None:
        out_of_range &= ~ignored
    if out_of_range.any():
        first = int(np.argmax(out_of_range))
        raise ValueError(f"labels[{first}] = {int(y[first])} is outside [0, {c})")
    if ignored is not None and ignored.any():
        y = np.where(ignored, 0, y)

    label_weight = np.ones(n) if weights is None else weights[y]
    if ignored is not None:
        label_weight[ignored] = 0.0
    divisor = float(label_weight.sum())

    if eps == 0.0:
        uniform = weights is None and (ignored is None or not ignored.any())
        return _Targets(n, c, y, label_weight, None, divisor, uniform)

    # a = ε/C·w_c on every class, plus (1 - ε)·w_y on the label.
    class_w = np.ones(c) if weights is None else weights
    coefficients = np.empty((n, c))
    coefficients[...] = (eps / c) * class_w
    if ignored is not None:
        coefficients[ignored] = 0.0
    coefficients[np.arange(n), y] += (1.0 - eps) * label_weight
    return _Targets(n, c, y, coefficients.sum(axis=1), coefficients, divisor)


def _probability_coefficients(
    x: Array,
    input_name: str,
    target_probabilities: npt.ArrayLike,
    weights: Array | None,
    eps: float,
) -> _Targets:
    n, c = x.shape
    t = as_float_array(target_probabilities, "target_probabilities", 2)
    if t.shape != x.shape:
        raise ValueError(
            f"target_probabilities has shape {t.shape} but {input_name} has {x.shape}"
        )
    coefficients = t * (1.0 - eps) if eps else t.copy()
    if eps:
        coefficients += eps / c
    if weights is not None:
        coefficients *= weights
    return _Targets(n, c, None, coefficients.sum(axis=1), coefficients, float(n))


def cross_entropy_with_logits(
    logits: npt.ArrayLike,
    *,
    labels: npt.ArrayLike | None = None,
    target_probabilities: npt.ArrayLike | None = None,
    class_weights: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    hessian: bool = False,
) -> LossResult:
    r"""Softmax cross-entropy of ``logits``, with its gradient and Hessian diagonal.

    .. math::
        ℓ_n &= \sum_c a_{n,c}\,(\operatorname{lse}(z_n) - z_{n,c}) \\
        ∂ℓ_n/∂z_{n,c} &= p_{n,c} \sum_k a_{n,k} - a_{n,c} \\
        ∂²ℓ_n/∂z_{n,c}² &= p_{n,c}\,(1 - p_{n,c}) \sum_k a_{n,k}

    where ``p = softmax(z)``; for one-hot targets the gradient is ``p - t``.

    Parameters
    ----------
    logits : array_like of shape (N, C)
    labels : array_like of int, shape (N,), optional
        Class indices in [0, C), or ``ignore_index``.
    target_probabilities : array_like of shape (N, C), optional
        Give exactly one of ``labels`` and ``target_probabilities``.
    class_weights : array_like of shape (C,), optional
    ignore_index : int, optional
        Rows whose label equals it have loss, gradient and Hessian 0.  Labels
        only; by default no label is ignored.
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum", "none"}
    hessian : bool

    Returns
    -------
    LossResult
        ``gradient`` and ``hessian`` have shape (N, C); ``clamped`` is 0.

    Examples
    --------
    >>> r = cross_entropy_with_logits([[0.0, 0.0]], labels=[1], reduction="sum")
    >>> round(r.loss, 12), r.gradient.tolist()
    (0.69314718056, [[0.5, -0.5]])
    """
    reduction = check_reduction(reduction)
    z, targets = _prepare(
        logits,
        "logits",
        labels,
        target_probabilities,
        class_weights,
        ignore_index,
        label_smoothing,
    )
    n, c = z.shape
    if n == 0:
        return _empty(targets, reduction, hessian)
    scale = reduction_scale(reduction, targets.divisor)
    losses = empty_aligned(n)
    gradient = empty_aligned((n, c))
    hess = empty_aligned((n, c)) if hessian else None
    compensate = False
    for part in row_blocks(z):
        block = _Block(
            z[part],
            targets.select(part),
            scale,
            losses[part],
            gradient[part],
            None if hess is None else hess[part],
        )
        if targets.coefficients is None:
            compensate = _labels_block(block, compensate)
        else:
            _max_shift_block(block)
    return _finish(losses, gradient, hess, 0, targets, reduction)


def _labels_block(block: _Block, compensate: bool) -> bool:
    """Loss and derivatives of a block of rows with plain labels.

    The rows are shifted by their label's logit instead of their maximum:
    ``s = z - z_y`` is exactly 0 at the label, so ``-log p_y = log1p(rest)``
    with ``rest = Σ_{c≠y} exp(s_c)``: no row maximum to find, and a confident
    row's small loss comes out of ``log1p`` unrounded.

    Rounding ``s`` moves ``exp(s)`` by up to ``|s|·2⁻⁵³`` relative, which
    only shows in some rows.  With ``rest <= e³²`` no ``s`` exceeds 32, and a
    term with ``s < -32`` has ``p < e⁻³²``, far below the absolute bound.
    With ``rest >= e⁻⁴⁰`` the terms that make up ``rest`` lie, weighted by
    size, within ``40 + ln C`` below the label, so ``rest`` and the loss are
    within 6e-15 relative for ``C <= 1e5``.  ``rest = 0`` means every other
    term is below the smallest float64.  The other rows, rare outside
    overconfident or wrong predictions, are computed with the rounding of
    ``s`` recovered (all of the block's rows, when they are many, or when
    ``compensate`` says the previous block's were), and rows where ``exp``
    overflows (a label ~709 below another logit) by :func:`_max_shift_block`.

    Returns whether most rows needed the recovery: a hint for the next block.
    """
    rest = _label_shift(block, compensate)
    unsure = (rest < _REST_MIN) | (rest > _REST_MAX) | np.isnan(rest)
    unsure &= rest != 0.0
    count = int(np.count_nonzero(unsure))
    many = 4 * count > len(rest)  # then gathering the rows would cost more
    if compensate or many:
        if count and not compensate:
            rest = _label_shift(block, True)
        overflowed = ~np.isfinite(rest)
    else:
        overflowed = np.zeros(len(rest), dtype=bool)
        if count:
            part = block.rows(unsure)
            overflowed[unsure] = ~np.isfinite(_label_shift(part, True))
            block.put(unsure, part)
    if overflowed.any():
        part = block.rows(overflowed)
        _max_shift_block(part)
        block.put(overflowed, part)
    targets = block.targets
    if not targets.uniform:
        _zero_unweighted(block.losses, targets.row_weight == 0.0)
    return many


def _label_shift(block: _Block, compensate: bool) -> Array:
    """The label-shifted kernel of :func:`_labels_block`; returns ``rest``.

    With ``compensate``, the rounding error of each ``s`` is recovered exactly
    (Knuth's two-sum) and folded in as ``exp(s + err) ≈ exp(s)·(1 + err)``.
    """
    z, targets, scale = block.z, block.targets, block.scale
    losses, gradient, hess = block.losses, block.gradient, block.hess
    assert targets.labels is not None
    classes = z.shape[1]
    # Flat indices of the labels: 1-d fancy indexing is ~3x faster than
    # indexing with (rows, labels).
    at_label = np.arange(0, z.size, classes)
    at_label += targets.labels
    z_label = per_row(z.ravel()[at_label], classes)
    # Logits ~1e308 apart overflow z - z_y, and a label ~709 below another
    # logit overflows exp: the NaN and inf that follow stay in their rows,
    # which the caller redoes.
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = np.subtract(z, z_label)
        error = two_sum_error(z, z_label, shifted) if compensate else None
        # exp(s) goes straight into the gradient's memory, which becomes p and
        # then the gradient in place.
        exp_shifted = np.exp(shifted, out=gradient)
        if error is not None:
            error *= exp_shifted
            exp_shifted += error
        exp_shifted.reshape(-1)[at_label] = 0.0  # a view: the block is contiguous
        rest = exp_shifted @ np.ones(classes)
        np.log1p(rest, out=losses)
        if not targets.uniform:
            losses *= targets.row_weight

        # p_c = exp(s_c) / (1 + rest) off the label, and at the label
        # p_y - 1 = -rest / (1 + rest) without cancellation.
        inverse = np.add(rest, 1.0)
        np.divide(1.0, inverse, out=inverse)
        weight = scale if targets.uniform else targets.row_weight * scale
        if hess is None:
            row_factor = np.multiply(inverse, weight)
            gradient *= per_row(row_factor, classes)
        else:
            probabilities = gradient
            probabilities *= per_row(inverse, classes)
            np.subtract(1.0, probabilities, out=hess)
            hess *= probabilities
            # p_y·(1 - p_y) = rest / (1 + rest)².
            hess.reshape(-1)[at_label] = rest * inverse * inverse
            _scale_rows(hess, weight)
            _scale_rows(gradient, weight)
            row_factor = np.multiply(inverse, weight)
        # 0 - x rather than -x, so that a zero gradient is +0.0, not -0.0.
        gradient.reshape(-1)[at_label] = np.subtract(0.0, rest * row_factor)
    return rest


def _scale_rows(values: Array, weight: Array | float) -> None:
    """Multiply each row of ``values`` by its ``weight`` (or all by one number)."""
    if isinstance(weight, float):
        if weight != 1.0:
            values *= weight
    else:
        values *= per_row(weight, values.shape[1])


def _max_shift_block(block: _Block) -> None:
    """Loss and derivatives of a block of rows, shifted by their maxima."""
    z, targets, scale = block.z, block.targets, block.scale
    losses, gradient, hess = block.losses, block.gradient, block.hess
    pieces = shift_logits(z)
    classes = z.shape[1]
    row_weight = targets.row_weight
    uniform = targets.uniform

    # -log p = lse - z = log1p(rest) - shifted - error: non-negative terms
    # (shifted <= 0), with the rounding of z - max undone.
    if targets.coefficients is None:
        assert targets.labels is not None
        at_label = np.arange(0, z.size, classes)
        at_label += targets.labels
        np.subtract(pieces.log1p_rest, pieces.shifted.ravel()[at_label], out=losses)
        if pieces.error is not None:
            losses -= pieces.error.ravel()[at_label]
        if not uniform:
            with np.errstate(invalid="ignore"):
                losses *= row_weight
            _zero_unweighted(losses, row_weight == 0.0)
    else:
        coefficients = targets.coefficients
        neg_log_p = pieces.shifted
        if pieces.error is not None:
            neg_log_p += pieces.error
        np.subtract(per_row(pieces.log1p_rest, classes), neg_log_p, out=neg_log_p)
        with np.errstate(invalid="ignore"):
            neg_log_p *= coefficients
        np.dot(neg_log_p, np.ones(classes), out=losses)
        if np.isnan(losses).any():
            # -log p overflowed to inf where a = 0 (logits ~1e308 apart).
            np.copyto(neg_log_p, 0.0, where=coefficients == 0.0)
            np.dot(neg_log_p, np.ones(classes), out=losses)

    # p = exp_shifted / (1 + rest); gradient = Σa·p - a; Hessian = Σa·p·(1 - p).
    inverse = np.add(pieces.rest, 1.0)
    np.divide(1.0, inverse, out=inverse)
    if hess is not None:
        probabilities = pieces.exp_shifted
        probabilities *= per_row(inverse, classes)
        np.subtract(1.0, probabilities, out=hess)
        hess *= probabilities
        if not uniform:
            hess *= per_row(row_weight, classes)
            np.multiply(probabilities, per_row(row_weight, classes), out=gradient)
        else:
            gradient[...] = probabilities
    else:
        if not uniform:
            inverse *= row_weight
        np.multiply(pieces.exp_shifted, per_row(inverse, classes), out=gradient)
    if targets.coefficients is None:
        flat = gradient.reshape(-1)  # a view: a block of rows is contiguous
        flat[at_label] -= 1.0 if uniform else row_weight
    else:
        gradient -= targets.coefficients
    if scale != 1.0:
        gradient *= scale
        if hess is not None:
            hess *= scale


def _zero_unweighted(losses: Array, unweighted: npt.NDArray[np.bool_]) -> None:
    """Set to 0 the losses of rows whose weight is 0.

    Their -log p can overflow to inf (logits ~1e308 apart), and 0·inf is NaN.
    """
    if unweighted.any():
        losses[unweighted] = 0.0


def cross_entropy(
    probabilities: npt.ArrayLike,
    *,
    labels: npt.ArrayLike | None = None,
    target_probabilities: npt.ArrayLike | None = None,
    class_weights: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    hessian: bool = False,
) -> LossResult:
    r"""Cross-entropy of class probabilities, each ``p_{n,c}`` an independent input.

    .. math::
        ℓ_n = -\sum_c a_{n,c} \log p_{n,c},\qquad
        ∂ℓ_n/∂p_{n,c} = -a_{n,c}/p_{n,c},\qquad
        ∂²ℓ_n/∂p_{n,c}² = a_{n,c}/p_{n,c}²

    The boundary policy is that of
    :func:`service.core.binary.binary_cross_entropy`: ``log p`` clamped at -100,
    ``1/p`` capped at 1e12 and ``1/p²`` at 1e24, and terms with ``a = 0``
    contribute exactly 0.  ``clamped`` counts the ``(n, c)`` entries with
    ``a ≠ 0`` that a clamp or cap changed.

    Parameters are those of :func:`cross_entropy_with_logits`, with
    ``probabilities`` of shape (N, C) in place of ``logits``.

    Examples
    --------
    >>> r = cross_entropy([[0.25, 0.75]], labels=[1], reduction="none")
    >>> r.losses.tolist(), r.gradient.tolist()
    ([0.2876820724517809], [[0.0, -1.3333333333333333]])
    """
    reduction = check_reduction(reduction)
    p, targets = _prepare(
        probabilities,
        "probabilities",
        labels,
        target_probabilities,
        class_weights,
        ignore_index,
        label_smoothing,
    )
    if targets.n == 0:
        return _empty(targets, reduction, hessian)
    coefficients = targets.coefficients
    if coefficients is None:
        coefficients = np.zeros(p.shape)
        coefficients[np.arange(targets.n), targets.labels] = targets.row_weight

    # 1/p overflows for subnormal p and divides by zero at p = 0; both are capped.
    with np.errstate(divide="ignore", over="ignore"):
        log_p = np.log(p)
        inverse = np.reciprocal(p)
    np.maximum(log_p, LOG_FLOOR, out=log_p)
    log_p *= coefficients
    # 0 - x rather than -x, so that a zero loss or gradient is +0.0, not -0.0.
    losses = np.subtract(0.0, log_p.sum(axis=1))

    active = coefficients != 0.0
    clamped = int(np.count_nonzero(active & (inverse > RECIPROCAL_CAP)))
    np.minimum(inverse, RECIPROCAL_CAP, out=inverse)

    hess = None
    if hessian:
        hess = np.square(inverse)
        hess *= coefficients
    gradient = inverse
    gradient *= coefficients
    np.subtract(0.0, gradient, out=gradient)
    scale = reduction_scale(reduction, targets.divisor)
    if scale != 1.0:
        gradient *= scale
        if hess is not None:
            hess *= scale
    return _finish(losses, gradient, hess, clamped, targets, reduction)


def _empty(targets: _Targets, reduction: Reduction, hessian: bool) -> LossResult:
    shape = (0, targets.c)
    return _finish(
        np.zeros(0),
        np.zeros(shape),
        np.zeros(shape) if hessian else None,
        0,
        targets,
        reduction,
    )


def _finish(
    losses: Array,
    gradient: Array,
    hess: Array | None,
    clamped: int,
    targets: _Targets,
    reduction: Reduction,
) -> LossResult:
    """The result, from per-sample derivatives already scaled for ``reduction``."""
    loss = reduce_losses(losses, reduction, targets.divisor)
    return LossResult(loss, losses, gradient, hess, clamped)
