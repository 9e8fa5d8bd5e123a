"""Layer normalisation."""
from __future__ import annotations

import numbers
from typing import Sequence

from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .module import Module


class LayerNorm(Module):
    """Normalise over the last axes, then scale and shift:

        y = (x - μ) / √(σ² + eps) · weight + bias,

    μ and σ² the mean and (biased, divide-by-N) variance over the last
    ``len(normalized_shape)`` axes, which must equal ``normalized_shape``, as PyTorch.
    weight and bias have shape ``normalized_shape`` and start at 1 and 0; there are none
    with ``elementwise_affine=False``, and no bias with ``bias=False``. Built from
    primitive ops, so autograd derives the backward.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
        if not shape or not all(isinstance(n, numbers.Integral) and n > 0 for n in shape):
            raise ValueError(
                f"LayerNorm: normalized_shape must be a positive int or a tuple of them, got {normalized_shape!r}"
            )
        self.normalized_shape, self.eps = tuple(int(n) for n in shape), eps
        self.elementwise_affine = elementwise_affine
        self.weight = init.constant(self.normalized_shape, 1.0, dtype, device) if elementwise_affine else None
        self.bias = init.constant(self.normalized_shape, 0.0, dtype, device) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.normalized_shape)
        if x.shape[-n:] != self.normalized_shape:
            expected = "(..., " + ", ".join(map(str, self.normalized_shape)) + ")"
            raise ShapeError(f"LayerNorm{self.normalized_shape}: expected an input of shape {expected}, got {x.shape}")
        axes = tuple(range(x.ndim - n, x.ndim))
        centered = x - x.mean(axis=axes, keepdims=True)
        variance = (centered * centered).mean(axis=axes, keepdims=True)
        y = centered * (variance + self.eps) ** -0.5
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
