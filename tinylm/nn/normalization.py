"""Layer normalisation."""
from __future__ import annotations

from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .module import Module


class LayerNorm(Module):
    """Normalise over the last axes, then scale and shift:

        y = (x - μ) / √(σ² + eps) · weight + bias,

    μ and σ² the mean and (biased, divide-by-N) variance over ``normalized_shape``,
    as PyTorch. weight starts at 1, bias at 0. Built from primitive ops, so autograd
    derives the backward.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, dtype=None, device="cpu"):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = init.constant(shape, 1.0, dtype, device) if elementwise_affine else None
        self.bias = init.constant(shape, 0.0, dtype, device) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.normalized_shape)
        if x.shape[x.ndim - n:] != self.normalized_shape:
            raise ShapeError(f"LayerNorm{self.normalized_shape}: input of shape {x.shape} does not end in {self.normalized_shape}")
        axes = tuple(range(x.ndim - n, x.ndim))
        centered = x - x.mean(axis=axes, keepdims=True)
        variance = (centered * centered).mean(axis=axes, keepdims=True)
        y = centered * (variance + self.eps) ** -0.5
        return y if self.weight is None else y * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
