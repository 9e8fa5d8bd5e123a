"""Softmax and log-softmax: turn a vector of scores (logits) into probabilities.

    softmax(x)ᵢ = e^{xᵢ} / Σⱼ e^{xⱼ}        log_softmax(x)ᵢ = xᵢ - log Σⱼ e^{xⱼ}

Both are computed with the largest score m = maxⱼ xⱼ subtracted first. The result does
not change (the factor e^{-m} cancels), but every exponent is now ≤ 0, so e^{xⱼ - m}
never overflows (float32 overflows at e^{89}), and the largest term is exactly 1, so the
sum never underflows to 0 either. This is the "log-sum-exp trick":

    log Σⱼ e^{xⱼ} = m + log Σⱼ e^{xⱼ - m}
"""
from __future__ import annotations

from .. import backend
from ..ops import Function
from ..tensor import Tensor, _normalize_axis


def _shifted(x, axis: int):
    """x - m, m the largest score along ``axis`` (a fresh array); an empty axis has no m,
    and nothing to shift: it gives an empty result, as in PyTorch."""
    if x.shape[axis] == 0:
        return x.copy()
    return x - x.max(axis=axis, keepdims=True)


def _checked_axis(x: Tensor, axis: int, name: str) -> int:
    """The class axis of ``x`` made non-negative, after checking that ``x`` holds floats."""
    if x.dtype.kind != "f":
        raise TypeError(f"{name} needs floating-point scores, got a tensor of dtype {x.dtype}")
    return _normalize_axis(axis, x.ndim)


class Softmax(Function):
    """y = softmax(x) along ``axis``:  yᵢ = e^{xᵢ - m} / Σⱼ e^{xⱼ - m},  m = maxⱼ xⱼ.

    Shapes: y has the shape of x; every slice along ``axis`` sums to 1.

    Gradient. The Jacobian is ∂yᵢ/∂xⱼ = yᵢ([i = j] - yⱼ), so for an upstream dy
        dxⱼ = Σᵢ dyᵢ yᵢ([i = j] - yⱼ) = yⱼ (dyⱼ - Σᵢ dyᵢ yᵢ),
    that is  dx = y ⊙ (dy - Σ dy ⊙ y), without ever building the C×C Jacobian.
    """

    def forward(self, x, axis: int):
        xp = backend.array_module(x)
        y = _shifted(x, axis)
        xp.exp(y, out=y)  # in place: the shifted copy is not needed any more
        y /= y.sum(axis=axis, keepdims=True)
        self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        y = self.y
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = log_softmax(x) along ``axis``:  yᵢ = (xᵢ - m) - log Σⱼ e^{xⱼ - m},  m = maxⱼ xⱼ.

    Shapes: y has the shape of x; e^y is the softmax.

    Gradient. ∂yᵢ/∂xⱼ = [i = j] - softmax(x)ⱼ, so for an upstream dy
        dx = dy - softmax(x) ⊙ Σ dy,   with softmax(x) = e^y.
    Computing log(softmax(x)) instead would give -inf (and NaN gradients) as soon as a
    probability underflows to 0; this form stays finite.
    """

    def forward(self, x, axis: int):
        xp = backend.array_module(x)
        y = _shifted(x, axis)
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
        self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        xp = backend.array_module(grad)
        return grad - xp.exp(self.y) * grad.sum(axis=self.axis, keepdims=True)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Probabilities along ``axis`` (default: the last): non-negative, summing to 1."""
    return Softmax.apply(x, axis=_checked_axis(x, axis, "softmax"))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Log-probabilities along ``axis`` (default: the last), stable for any finite scores."""
    return LogSoftmax.apply(x, axis=_checked_axis(x, axis, "log_softmax"))
