"""Binary cross-entropy on logits and on probabilities.

Shapes: ``logits``, ``probabilities``, ``targets``, ``weights`` and a
per-element ``pos_weight`` are all ``(N,)``; targets may be soft (any value in
[0, 1]).  With pos_weight ``pw``, weight ``w`` and target ``t`` the loss of one
element is

.. math::  ℓ = -w\\,[pw·t·\\log p + (1 - t)·\\log(1 - p)],\\qquad p = σ(z).

``mean`` divides by ``N`` whatever the weights, as PyTorch does.

Note: the work is done in chunks of :data:`CHUNK` elements with scratch buffers
reused from chunk to chunk, so the dozen elementwise passes run in cache instead
of streaming several fresh N-sized temporaries through memory.  Each chunk is
also scaled for the reduction and summed while it is in cache.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    reduce_total,
    reduction_scale,
)

# 128 Ki float64 = 1 MiB per buffer, so the arrays a chunk touches (five on
# logits: two inputs, two outputs, one scratch) stay in the L3 cache.  Measured
# here (bench/core.py, N = 1e5 and 1e6), 1 << 17 beat 1 << 14 to 1 << 16, where
# the fixed cost of a dozen ufunc calls per chunk shows, and 1 << 18 and 1 << 19,
# where the arrays spill out of the cache.
CHUNK = 1 << 17

# The IEEE 754 sign bit of a float64 seen as an int64: OR-ing it in gives -|z|,
# AND-ing it out gives the sign of z, both exactly and in one integer pass.
SIGN_BIT = np.int64(-0x8000000000000000)
# The bits of the float64 1/2: OR-ing a sign bit into them gives ±1/2.
HALF_BITS = np.float64(0.5).view(np.int64)

# PyTorch's documented clamp of log p and log(1 - p) in binary_cross_entropy.
LOG_FLOOR = -100.0
# Caps of 1/p in the gradient and of 1/p² in the Hessian (1e12 squared).
RECIPROCAL_CAP = 1e12


_Chunk = tuple[slice, Array, Array, Array | float | None, Array | None]


class _Inputs:
    """Validated, broadcast-ready arrays of one binary cross-entropy call."""

    def __init__(
        self,
        inputs: npt.ArrayLike,
        input_name: str,
        targets: npt.ArrayLike,
        weights: npt.ArrayLike | None,
        pos_weight: float | npt.ArrayLike | None,
        label_smoothing: float,
        reduction: str,
    ) -> None:
        self.x = as_float_array(inputs, input_name, 1)
        n = self.x.shape[0]
        self.t = as_float_array(targets, "targets", 1)
        if self.t.shape[0] != n:
            raise ValueError(
                f"targets has {self.t.shape[0]} elements but {input_name} has {n}"
            )
        self.w = None if weights is None else as_float_array(weights, "weights", 1)
        if self.w is not None and self.w.shape[0] != n:
            raise ValueError(
                f"weights has {self.w.shape[0]} elements but {input_name} has {n}"
            )
        self.pw = _pos_weight(pos_weight, n, input_name)
        self.reduction = check_reduction(reduction)
        self.eps = check_label_smoothing(label_smoothing)
        self.n = n
        self.scale = reduction_scale(self.reduction, float(n))
        self.total = 0.0  # Σ losses of the chunks closed so far

    def chunks(self) -> Iterator[_Chunk]:
        """Yield ``(slice, x, t, pw, w)`` chunk by chunk, with smoothed targets."""
        smoothed = np.empty(min(CHUNK, self.n))
        for start in range(0, self.n, CHUNK):
            part = slice(start, min(start + CHUNK, self.n))
            t = self.t[part]
            if self.eps:
                # Keras: t' = t·(1 - ε) + ε/2.
                t = np.multiply(t, 1.0 - self.eps, out=smoothed[: t.shape[0]])
                t += 0.5 * self.eps
            pw = self.pw[part] if isinstance(self.pw, np.ndarray) else self.pw
            w = None if self.w is None else self.w[part]
            yield part, self.x[part], t, pw, w

    def close_chunk(
        self, losses: Array, gradient: Array, hessian: Array | None, w: Array | None
    ) -> None:
        """Weight and scale one finished chunk and add its losses to the total."""
        if w is not None:
            losses *= w
            gradient *= w
            if hessian is not None:
                hessian *= w
        if self.scale != 1.0:
            gradient *= self.scale
            if hessian is not None:
                hessian *= self.scale
        if self.reduction != "none":
            self.total += float(np.add.reduce(losses))

    def finish(
        self, losses: Array, gradient: Array, hessian: Array | None, clamped: int
    ) -> LossResult:
        """The result, once every chunk is closed."""
        loss = reduce_total(self.total, self.reduction, float(self.n))
        return LossResult(loss, losses, gradient, hessian, clamped)


def _pos_weight(
    pos_weight: float | npt.ArrayLike | None, n: int, input_name: str
) -> Array | float | None:
    if pos_weight is None:
        return None
    array = np.asarray(pos_weight, dtype=np.float64)
    if array.ndim == 0:
        value = float(array)
        return None if value == 1.0 else value
    array = as_float_array(array, "pos_weight", 1)
    if array.shape[0] != n:
        raise ValueError(
            f"pos_weight has {array.shape[0]} elements but {input_name} has {n}; "
            "give one number or one per element"
        )
    return array


def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    pos_weight: float | npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    hessian: bool = False,
) -> LossResult:
    r"""Binary cross-entropy of ``σ(logits)``, with its gradient and Hessian.

    .. math::
        ℓ &= w\,[pw·t·\mathrm{softplus}(-z) + (1 - t)·\mathrm{softplus}(z)] \\
        ∂ℓ/∂z &= w\,[(1 - t)·σ(z) - pw·t·σ(-z)] \\
        ∂²ℓ/∂z² &= w\,(pw·t + 1 - t)·σ(z)\,σ(-z)

    Parameters
    ----------
    logits, targets : array_like of shape (N,)
    weights : array_like of shape (N,), optional
        Multiplies loss, gradient and Hessian of each element.
    pos_weight : float or array_like of shape (N,), optional
        Weight of the positive term (default 1).
    label_smoothing : float in [0, 1]
        Targets become ``t·(1 - ε) + ε/2``.
    reduction : {"mean", "sum", "none"}
    hessian : bool
        Whether to compute the Hessian diagonal.

    Returns
    -------
    LossResult
        ``clamped`` is always 0.

    Examples
    --------
    >>> r = binary_cross_entropy_with_logits([0.0, 40.0], [1.0, 1.0], reduction="none")
    >>> r.losses.tolist(), r.gradient.tolist()
    ([0.6931471805599453, 4.248354255291589e-18], [-0.5, -4.248354255291589e-18])
    """
    args = _Inputs(
        logits, "logits", targets, weights, pos_weight, label_smoothing, reduction
    )
    losses = empty_aligned(args.n)
    gradient = empty_aligned(args.n)
    hess = empty_aligned(args.n) if hessian else None
    # One scratch chunk: every intermediate lives in it or in the output chunks.
    scratch = empty_aligned(min(CHUNK, args.n))
    scratch_bits = scratch.view(np.int64)
    z_bits_all, gradient_bits = args.x.view(np.int64), gradient.view(np.int64)

    # Note: e lives in the gradient chunk until the division replaces it, so
    # that the output chunks are first written by exp and by log1p, whose
    # arithmetic hides the cost of bringing those lines into the cache, and the
    # scratch is the only other array a chunk touches.
    for part, z, t, pw, w in args.chunks():
        m = z.shape[0]
        s, s_bits = scratch[:m], scratch_bits[:m]
        z_bits, grad_bits = z_bits_all[part], gradient_bits[part]
        loss_, grad_ = losses[part], gradient[part]
        hess_ = None if hess is None else hess[part]

        # e = exp(-|z|); q = e / (1 + e) = σ(-|z|); log1p(e) = softplus(-|z|).
        np.bitwise_or(z_bits, SIGN_BIT, out=s_bits)  # -|z|
        np.exp(s, out=grad_)
        np.log1p(grad_, out=loss_)
        np.add(grad_, 1.0, out=s)
        np.divide(grad_, s, out=grad_)  # q
        if hess_ is not None:
            np.subtract(1.0, grad_, out=hess_)
            hess_ *= grad_  # σ(z)·σ(-z) = q·(1 - q)

        # r = sign(z)·q and h = [z >= 0], both read off the sign bit of z, so
        # that they agree at z = -0.0 too (h = 0, r = -1/2, σ(-0.0) = h - r =
        # 1/2).  h is that sign bit put on 1/2, plus 1/2: exactly 0 or 1, by two
        # passes that cost together half what a comparison and a cast to float do.
        np.bitwise_and(z_bits, SIGN_BIT, out=s_bits)
        np.bitwise_or(grad_bits, s_bits, out=grad_bits)  # r
        np.bitwise_or(s_bits, HALF_BITS, out=s_bits)  # ±1/2
        s += 0.5  # h

        if pw is None:
            # softplus(z) - t·z = log1p(e) + z·(h - t): two terms that never
            # have opposite signs, unlike the textbook max(z, 0) - t·z + log1p(e).
            np.subtract(s, t, out=s)
            # (1 - t)·σ(z) - t·σ(-z) = σ(z) - t = (h - t) - r.
            np.subtract(s, grad_, out=grad_)
            s *= z
            loss_ += s
        else:
            _logits_with_pos_weight(z, t, pw, s, loss_, grad_, hess_)
        args.close_chunk(loss_, grad_, hess_, w)

    return args.finish(losses, gradient, hess, 0)


def _logits_with_pos_weight(
    z: Array,
    t: Array,
    pw: Array | float,
    h: Array,
    loss: Array,
    grad: Array,
    hess: Array | None,
) -> None:
    """Chunk kernel for a pos_weight other than 1.

    On entry ``loss`` holds log1p(e), ``grad`` holds r = sign(z)·σ(-|z|) and
    ``hess`` (if any) σ(z)·σ(-z).
    """
    pwt = np.multiply(pw, t)
    one_minus_t = np.subtract(1.0, t)

    # softplus(z) = max(z, 0) + log1p(e), softplus(-z) = max(-z, 0) + log1p(e).
    relu = np.maximum(z, 0.0)
    relu_neg = np.subtract(relu, z)  # exact: either 0 - z or z - z
    coefficient = np.add(pwt, one_minus_t)
    loss *= coefficient
    relu *= one_minus_t
    relu_neg *= pwt
    loss += relu
    loss += relu_neg

    # σ(z) = h - r and σ(-z) = (1 - h) + r, neither cancelling.
    sigma = np.subtract(h, grad)
    sigma_neg = np.subtract(1.0, h)
    sigma_neg += grad
    np.multiply(one_minus_t, sigma, out=grad)
    sigma_neg *= pwt
    grad -= sigma_neg

    if hess is not None:
        hess *= coefficient


def binary_cross_entropy(
    probabilities: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    pos_weight: float | npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    hessian: bool = False,
) -> LossResult:
    r"""Binary cross-entropy of probabilities, with its gradient and Hessian.

    .. math::
        ℓ &= -w\,[pw·t·\log p + (1 - t)·\log(1 - p)] \\
        ∂ℓ/∂p &= w\,[-pw·t/p + (1 - t)/(1 - p)] \\
        ∂²ℓ/∂p² &= w\,[pw·t/p² + (1 - t)/(1 - p)²]

    Boundary policy, so that every output is finite: each log term is clamped
    at -100 (as PyTorch does), each reciprocal ``1/p``, ``1/(1 - p)`` is capped
    at 1e12 in the gradient and each ``1/p²``, ``1/(1 - p)²`` at 1e24 in the
    Hessian, and a term whose coefficient is exactly 0 contributes exactly 0.
    So the gradient at ``(p = 0, t = 0)`` is +1 and at ``(p = 1, t = 1)`` -1,
    the true derivatives.

    Parameters are those of :func:`binary_cross_entropy_with_logits`, with
    ``probabilities`` in [0, 1] in place of ``logits``.

    Returns
    -------
    LossResult
        ``clamped`` counts the elements where a clamp or cap changed a term
        whose coefficient is not 0.

    Examples
    --------
    >>> r = binary_cross_entropy([0.0, 1.0], [0.0, 1.0], reduction="none")
    >>> r.losses.tolist(), r.gradient.tolist(), r.clamped
    ([0.0, 0.0], [1.0, -1.0], 0)
    """
    args = _Inputs(
        probabilities,
        "probabilities",
        targets,
        weights,
        pos_weight,
        label_smoothing,
        reduction,
    )
    losses = empty_aligned(args.n)
    gradient = empty_aligned(args.n)
    hess = empty_aligned(args.n) if hessian else None
    clamped = 0

    # 1/p overflows for subnormal p and divides by zero at p = 0; both are capped.
    with np.errstate(divide="ignore", over="ignore"):
        for part, p, t, pw, w in args.chunks():
            pos = t if pw is None else np.multiply(pw, t)
            neg = np.subtract(1.0, t)

            # log p and log(1 - p), clamped; log1p keeps 1 - p exact for small p.
            log_p = np.maximum(np.log(p), LOG_FLOOR)
            log_1mp = np.maximum(np.log1p(-p), LOG_FLOOR)
            loss_ = losses[part]
            np.multiply(pos, log_p, out=loss_)
            log_1mp *= neg
            loss_ += log_1mp
            np.subtract(0.0, loss_, out=loss_)  # +0.0, never -0.0

            # 1/p = inf at p = 0 is capped before any product, so 0·cap = 0.
            inv_p = np.reciprocal(p)
            inv_1mp = np.reciprocal(np.subtract(1.0, p))
            capped = (inv_p > RECIPROCAL_CAP) & (pos != 0.0)
            capped |= (inv_1mp > RECIPROCAL_CAP) & (neg != 0.0)
            clamped += int(np.count_nonzero(capped))
            np.minimum(inv_p, RECIPROCAL_CAP, out=inv_p)
            np.minimum(inv_1mp, RECIPROCAL_CAP, out=inv_1mp)

            grad_ = gradient[part]
            np.multiply(neg, inv_1mp, out=grad_)
            grad_ -= pos * inv_p
            hess_ = None if hess is None else hess[part]
            if hess_ is not None:
                np.square(inv_p, out=inv_p)
                np.square(inv_1mp, out=inv_1mp)
                np.multiply(pos, inv_p, out=hess_)
                hess_ += neg * inv_1mp
            args.close_chunk(loss_, grad_, hess_, w)

    return args.finish(losses, gradient, hess, clamped)
