"""Normalising feature vectors: layer normalisation, then its modern simplification RMSNorm.

Layer normalisation gives every feature vector mean 0 and variance 1, then scales and shifts.

Over the last axes, those of ``normalized_shape`` (D values in all), for each vector x:

    μ = mean(x),   σ² = mean((x - μ)²)   (biased: divided by D, as PyTorch)
    s = 1 / √(σ² + eps),   x̂ = (x - μ) · s
    y = x̂ ⊙ γ + β          γ (weight) and β (bias) of shape ``normalized_shape``

Two implementations that the tests hold equal:

* ``layer_norm``: one fused ``Function`` whose backward is worked out by hand (see
  ``LayerNorm``). It keeps only x̂ and s for backward and works in place: the fast path.
* ``layer_norm_composed``: the same formula from primitive tensor ops, so autograd
  derives the backward. Slower (about ten graph nodes), but every step is visible.

RMSNorm (Zhang & Sennrich, 2019; LLaMA's normalisation) drops the centring and the shift:
it only rescales each vector to root-mean-square 1, then multiplies by a learned weight,

    rms = √(mean(x²) + eps),   y = x / rms ⊙ w,

with the same two forms, ``rms_norm`` (fused, see ``RMSNorm``) and ``rms_norm_composed``.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

from .. import backend
from ..ops import Function, ShapeError
from ..tensor import Tensor


class LayerNorm(Function):
    """y = x̂ ⊙ γ + β with x̂ = (x - μ)·s over the last D features, backward by hand.

    Shapes: x is viewed as N rows of D (the leading axes folded into N); γ, β (D,) or
    absent. y has the shape of x.

    Backward, given dy. With g = dy ⊙ γ (g = dy without a weight), per row:

        dx = s · (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂))
        dγ = Σ_rows dy ⊙ x̂        dβ = Σ_rows dy

    Why dx: x̂ depends on x directly and through μ and s. ∂μ/∂xⱼ = 1/D and
    ∂s/∂xⱼ = -s³ (xⱼ - μ)/D = -s² x̂ⱼ/D, so ∂x̂ᵢ/∂xⱼ = s(δᵢⱼ - 1/D - x̂ᵢ x̂ⱼ/D), and
    dxⱼ = Σᵢ gᵢ ∂x̂ᵢ/∂xⱼ = s(gⱼ - Σᵢ gᵢ/D - x̂ⱼ Σᵢ gᵢ x̂ᵢ/D). The D×D Jacobian is never built.
    """

    def forward(self, x, *affine, num_axes: int, eps: float, has_weight: bool, has_bias: bool):
        """``affine``: the weight (when ``has_weight``), then the bias (when ``has_bias``)."""
        self.weight = affine[0] if has_weight else None
        self.has_bias = has_bias
        self.x_shape = x.shape
        features = math.prod(x.shape[x.ndim - num_axes :])
        rows = x.reshape(-1, features)
        x_hat = rows - rows.mean(axis=1, keepdims=True)
        self.inv_std = 1 / backend.array_module(x).sqrt((x_hat * x_hat).mean(axis=1, keepdims=True) + eps)
        x_hat *= self.inv_std  # in place: the centred copy becomes x̂
        self.x_hat = x_hat
        y = x_hat if self.weight is None else x_hat * self.weight.reshape(features)
        if self.has_bias:
            y = y + affine[-1].reshape(features)
        return y.reshape(x.shape)

    def backward(self, grad):
        x_hat, weight = self.x_hat, self.weight
        grad = grad.reshape(x_hat.shape)
        affine_grads = []
        if weight is not None:
            affine_grads.append((grad * x_hat).sum(axis=0).reshape(weight.shape) if self.needs_grad(1) else None)
        if self.has_bias:
            affine_grads.append(grad.sum(axis=0).reshape(self.inputs[-1].shape) if self.needs_grad(-1) else None)
        g = grad if weight is None else grad * weight.reshape(-1)
        grad_x = g - g.mean(axis=1, keepdims=True)
        grad_x -= x_hat * (g * x_hat).mean(axis=1, keepdims=True)
        grad_x *= self.inv_std
        return (grad_x.reshape(self.x_shape), *affine_grads)


def normalized_shape_tuple(normalized_shape: int | Sequence[int], function: str) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints, or a ValueError that names ``function``."""
    shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    if not shape or not all(isinstance(n, numbers.Integral) and n > 0 for n in shape):
        raise ValueError(f"{function}: normalized_shape must be a positive int or a tuple of them, got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


def _check(function: str, x: Tensor, shape: tuple[int, ...], **parameters: Tensor | None) -> None:
    """x floating and ending in ``shape``; each given parameter of that shape and x's dtype."""
    if x.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {x.dtype}")
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape) :] != shape:
        expected = "(..., " + ", ".join(map(str, shape)) + ")"
        raise ShapeError(f"{function}: normalized_shape is {shape}, so the input must be {expected}, got {x.shape}")
    for name, parameter in parameters.items():
        if parameter is not None and parameter.shape != shape:
            raise ShapeError(f"{function}: {name} must have the normalized_shape {shape}, got {parameter.shape}")
        if parameter is not None and parameter.dtype != x.dtype:
            raise TypeError(f"{function}: {name} has dtype {parameter.dtype} but the input has {x.dtype}")


def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise ``x`` over its last axes (``normalized_shape``), then scale by ``weight``
    and shift by ``bias`` (each optional, of shape ``normalized_shape``), as PyTorch's
    ``F.layer_norm``. The fused fast path."""
    shape = normalized_shape_tuple(normalized_shape, "layer_norm")
    _check("layer_norm", x, shape, weight=weight, bias=bias)
    affine = [parameter for parameter in (weight, bias) if parameter is not None]
    return LayerNorm.apply(
        x, *affine, num_axes=len(shape), eps=float(eps), has_weight=weight is not None, has_bias=bias is not None
    )


def layer_norm_composed(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``layer_norm`` from primitive tensor ops: autograd derives the backward."""
    shape = normalized_shape_tuple(normalized_shape, "layer_norm")
    _check("layer_norm", x, shape, weight=weight, bias=bias)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    y = centered * (variance + eps) ** -0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# ---------------------------------------------------------------- RMSNorm


class RMSNorm(Function):
    """y = x̂ ⊙ w with x̂ = x · s, s = 1 / √(mean(x²) + eps) over the last D features,
    backward by hand.

    Shapes: x is viewed as N rows of D (the leading axes folded into N); w (D,) or
    absent. y has the shape of x.

    Backward, given dy. With g = dy ⊙ w (g = dy without a weight), per row:

        dx = s · (g - x̂ ⊙ mean(g ⊙ x̂))
        dw = Σ_rows dy ⊙ x̂

    Why dx: x̂ᵢ = xᵢ s depends on x directly and through s = (mean(x²) + eps)^(-½), whose
    derivative is ∂s/∂xⱼ = -½ s³ · 2xⱼ/D = -s² x̂ⱼ/D. So ∂x̂ᵢ/∂xⱼ = s δᵢⱼ + xᵢ ∂s/∂xⱼ =
    s(δᵢⱼ - x̂ᵢ x̂ⱼ/D), and dxⱼ = Σᵢ gᵢ ∂x̂ᵢ/∂xⱼ = s(gⱼ - x̂ⱼ Σᵢ gᵢ x̂ᵢ/D): layer norm's
    formula without the "- mean(g)" term, since nothing is centred.
    """

    def forward(self, x, *weight, num_axes: int, eps: float):
        """``weight``: one array (D values in ``normalized_shape``), or none."""
        self.weight = weight[0] if weight else None
        self.x_shape = x.shape
        features = math.prod(x.shape[x.ndim - num_axes :])
        rows = x.reshape(-1, features)
        self.inv_rms = 1 / backend.array_module(x).sqrt((rows * rows).mean(axis=1, keepdims=True) + eps)
        self.x_hat = rows * self.inv_rms
        y = self.x_hat if self.weight is None else self.x_hat * self.weight.reshape(features)
        return y.reshape(x.shape)

    def backward(self, grad):
        x_hat, weight = self.x_hat, self.weight
        grad = grad.reshape(x_hat.shape)
        g = grad if weight is None else grad * weight.reshape(-1)
        grad_x = g - x_hat * (g * x_hat).mean(axis=1, keepdims=True)
        grad_x *= self.inv_rms
        if weight is None:
            return grad_x.reshape(self.x_shape)
        grad_weight = (grad * x_hat).sum(axis=0).reshape(weight.shape) if self.needs_grad(1) else None
        return grad_x.reshape(self.x_shape), grad_weight


def rms_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Rescale ``x`` to root-mean-square 1 over its last axes (``normalized_shape``), then
    multiply by ``weight`` (optional, of shape ``normalized_shape``). The fused fast path.

    As PyTorch's ``F.rms_norm``, except for the default eps: PyTorch's ``eps=None``
    means the machine epsilon of the dtype (about 1.2e-7 in float32, 2.2e-16 in float64);
    tinylm's default is a fixed 1e-5 (LLaMA's value), the same in every dtype. To compare,
    pass eps to PyTorch: ``torch.nn.functional.rms_norm(x, shape, weight, eps=1e-5)``.
    """
    shape = normalized_shape_tuple(normalized_shape, "rms_norm")
    _check("rms_norm", x, shape, weight=weight)
    return RMSNorm.apply(x, *([] if weight is None else [weight]), num_axes=len(shape), eps=float(eps))


def rms_norm_composed(
    x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """``rms_norm`` from primitive tensor ops: autograd derives the backward."""
    shape = normalized_shape_tuple(normalized_shape, "rms_norm")
    _check("rms_norm", x, shape, weight=weight)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = x * ((x * x).mean(axis=axes, keepdims=True) + eps) ** -0.5
    return y if weight is None else y * weight
