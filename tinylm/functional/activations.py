"""GELU, the Gaussian error linear unit, with the tanh approximation that GPT-2 uses:

    gelu(x) = ½ x (1 + tanh(u)),   u = c (x + a x³),   c = √(2/π),  a = 0.044715

This is PyTorch's ``F.gelu(x, approximate="tanh")``. The exact GELU, x·Φ(x) =
½x(1 + erf(x/√2)) (PyTorch's default), differs from it by less than 1e-3.

Two implementations that the tests hold equal:

* ``gelu``: one fused ``Function`` with the derivative written out (see ``GELU``); it
  keeps x and tanh(u) for backward and works in place: the fast path.
* ``gelu_composed``: the formula from primitive tensor ops (about eight graph nodes), so
  autograd derives the backward.
"""
from __future__ import annotations

import math

from .. import backend
from ..ops import Function
from ..tensor import Tensor

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CUBIC = 0.044715


class GELU(Function):
    """y = ½ x (1 + t),  t = tanh(u),  u = c (x + a x³), element-wise.

    Derivative (product rule, then tanh' = 1 - tanh²):

        dy/dx = ½ (1 + t) + ½ x (1 - t²) · c (1 + 3a x²)
    """

    def forward(self, x):
        xp = backend.array_module(x)
        t = x * x
        t *= CUBIC
        t += 1
        t *= x
        t *= SQRT_2_OVER_PI  # u = c·x·(1 + a x²)
        xp.tanh(t, out=t)
        self.x, self.t = x, t
        y = t + 1
        y *= x
        y *= 0.5
        return y

    def backward(self, grad):
        xp = backend.array_module(grad)
        x, t = self.x, self.t
        slope = x * x
        slope *= 3 * CUBIC
        slope += 1
        slope *= x
        slope *= SQRT_2_OVER_PI  # x · du/dx = c·x·(1 + 3a x²)
        sech2 = t * t
        xp.subtract(1, sech2, out=sech2)  # 1 - t² = tanh'(u)
        slope *= sech2
        slope += t
        slope += 1
        slope *= 0.5  # dy/dx
        slope *= grad
        return slope


def _check(x: Tensor, approximate: str) -> None:
    if approximate != "tanh":
        raise ValueError(f"gelu: tinylm implements approximate='tanh' only (GPT-2's GELU), got approximate={approximate!r}")
    if x.dtype.kind != "f":
        raise TypeError(f"gelu needs a floating-point input, got dtype {x.dtype}")


def gelu(x: Tensor, approximate: str = "tanh") -> Tensor:
    """GELU (tanh approximation), element-wise: the fused fast path."""
    _check(x, approximate)
    return GELU.apply(x)


def gelu_composed(x: Tensor, approximate: str = "tanh") -> Tensor:
    """``gelu`` from primitive tensor ops: autograd derives the backward."""
    _check(x, approximate)
    return 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + CUBIC * x * x * x)).tanh())


# ---------------------------------------------------------------- SiLU


class SiLU(Function):
    """y = x σ(x), element-wise (the "swish" of LLaMA's SwiGLU feed-forward).

    Derivative (product rule, then σ' = σ(1 - σ)):

        dy/dx = σ(x) + x σ(x)(1 - σ(x)) = σ(x) (1 + x (1 - σ(x)))

    σ is computed as ½ tanh(x/2) + ½ (as ``Tensor.sigmoid``), which never overflows.
    """

    def forward(self, x):
        xp = backend.array_module(x)
        s = x * 0.5
        xp.tanh(s, out=s)
        s *= 0.5
        s += 0.5  # σ(x)
        self.x, self.s = x, s
        return x * s

    def backward(self, grad):
        x, s = self.x, self.s
        slope = 1 - s
        slope *= x
        slope += 1
        slope *= s  # σ(x)(1 + x(1 - σ(x)))
        slope *= grad
        return slope


def _check_floating(x: Tensor, function: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {x.dtype}")


def silu(x: Tensor) -> Tensor:
    """SiLU, x·σ(x), element-wise, as PyTorch's ``F.silu``: the fused fast path."""
    _check_floating(x, "silu")
    return SiLU.apply(x)


def silu_composed(x: Tensor) -> Tensor:
    """``silu`` from primitive tensor ops (two graph nodes): autograd derives the backward."""
    _check_floating(x, "silu")
    return x * x.sigmoid()
