"""Layer normalisation and RMSNorm."""
from __future__ import annotations

from typing import Sequence

from .. import functional as F
from ..functional.normalization import normalized_shape_tuple
from ..tensor import Tensor
from . import init
from .module import Module


class LayerNorm(Module):
    """Normalise over the last axes, then scale and shift:

        y = (x - μ) / √(σ² + eps) · weight + bias,

    μ and σ² the mean and (biased, divide-by-N) variance over the last
    ``len(normalized_shape)`` axes, which must equal ``normalized_shape``, as PyTorch.
    weight and bias have shape ``normalized_shape`` and start at 1 and 0; there are none
    with ``elementwise_affine=False``, and no bias with ``bias=False``. Computed by the
    fused ``F.layer_norm`` (its backward derived by hand in tinylm/functional/normalization.py).
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
        self.normalized_shape, self.eps = normalized_shape_tuple(normalized_shape, "layer_norm"), eps
        self.elementwise_affine = elementwise_affine
        self.weight = init.constant(self.normalized_shape, 1.0, dtype, device) if elementwise_affine else None
        self.bias = init.constant(self.normalized_shape, 0.0, dtype, device) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """Rescale to root-mean-square 1 over the last axes, then scale (LLaMA's normalisation):

        y = x / √(mean(x²) + eps) · weight,

    the mean over the last ``len(normalized_shape)`` axes, which must equal
    ``normalized_shape`` (an int for one axis: ``RMSNorm(dim)``). No centring and no bias,
    unlike LayerNorm. ``weight`` has shape ``normalized_shape`` and starts at 1; there is
    none with ``elementwise_affine=False``. Parameters and semantics as PyTorch's
    ``nn.RMSNorm``, but for the default eps: PyTorch's ``eps=None`` is the dtype's machine
    epsilon, tinylm's a fixed 1e-5 (so compare with ``torch.nn.RMSNorm(dim, eps=1e-5)``).
    Computed by the fused ``F.rms_norm`` (its backward derived by hand in
    tinylm/functional/normalization.py).
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        self.normalized_shape, self.eps = normalized_shape_tuple(normalized_shape, "rms_norm"), eps
        self.elementwise_affine = elementwise_affine
        self.weight = init.constant(self.normalized_shape, 1.0, dtype, device) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
