"""GELU, the Gaussian error linear unit: x weighted by Φ(x), the probability that a
standard normal variable falls below x. Two forms, chosen by ``approximate``:

* ``"tanh"`` (tinylm's default; GPT-2's): the tanh approximation

      gelu(x) = ½ x (1 + tanh(u)),   u = c (x + a x³),   c = √(2/π),  a = 0.044715

  PyTorch's ``F.gelu(x, approximate="tanh")``.
* ``"none"`` (BERT's; PyTorch's default, ``F.gelu(x)``): the exact form

      gelu(x) = x Φ(x) = ½ x (1 + erf(x/√2))

  with erf from tinylm/functional/erf.py.

The two differ by less than 1e-3. Each form has two implementations that the tests hold equal:

* ``gelu``: one fused ``Function`` with the derivative written out (``GELU``,
  ``ExactGELU``); it keeps what backward needs and works in place: the fast path.
* ``gelu_composed``: the formula from primitive tensor ops, so autograd derives the backward.

SiLU, x·σ(x) (LLaMA's SwiGLU uses it), follows in the same two forms: ``silu`` and
``silu_composed``.
"""
from __future__ import annotations

import math

from .. import backend
from ..ops import Function
from ..tensor import Tensor
from .erf import erf, erf_values

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CUBIC = 0.044715
ONE_OVER_SQRT_2 = 1.0 / math.sqrt(2.0)
ONE_OVER_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
APPROXIMATIONS = ("tanh", "none")


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


class ExactGELU(Function):
    """y = x Φ(x),  Φ(x) = ½ (1 + erf(x/√2)), element-wise.

    Derivative (product rule; Φ' is the standard normal density φ):

        dy/dx = Φ(x) + x φ(x),   φ(x) = e^(-x²/2) / √(2π)
    """

    def forward(self, x):
        cdf = erf_values(x * ONE_OVER_SQRT_2)
        cdf += 1
        cdf *= 0.5  # Φ(x)
        self.x, self.cdf = x, cdf
        return x * cdf

    def backward(self, grad):
        xp = backend.array_module(grad)
        x = self.x
        slope = x * x
        slope *= -0.5
        xp.exp(slope, out=slope)
        slope *= ONE_OVER_SQRT_2PI  # φ(x)
        slope *= x
        slope += self.cdf  # dy/dx
        slope *= grad
        return slope


def check_approximation(approximate: str) -> None:
    """Raise a ValueError unless ``approximate`` names one of the two forms."""
    if approximate not in APPROXIMATIONS:
        raise ValueError(
            "gelu: approximate must be 'tanh' (the tanh approximation, GPT-2's) or 'none' "
            f"(the exact erf form, BERT's), got approximate={approximate!r}"
        )


def _check_floating(x: Tensor, function: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {x.dtype}")


def _check(x: Tensor, approximate: str) -> None:
    check_approximation(approximate)
    _check_floating(x, "gelu")


def gelu(x: Tensor, approximate: str = "tanh") -> Tensor:
    """GELU element-wise, ``approximate="tanh"`` or ``"none"`` (exact): the fused fast path."""
    _check(x, approximate)
    return GELU.apply(x) if approximate == "tanh" else ExactGELU.apply(x)


def gelu_composed(x: Tensor, approximate: str = "tanh") -> Tensor:
    """``gelu`` from primitive tensor ops: autograd derives the backward."""
    _check(x, approximate)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + CUBIC * x * x * x)).tanh())
    return 0.5 * x * (1.0 + erf(x * ONE_OVER_SQRT_2))


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


def silu(x: Tensor) -> Tensor:
    """SiLU, x·σ(x), element-wise, as PyTorch's ``F.silu``: the fused fast path."""
    _check_floating(x, "silu")
    return SiLU.apply(x)


def silu_composed(x: Tensor) -> Tensor:
    """``silu`` from primitive tensor ops (two graph nodes): autograd derives the backward."""
    _check_floating(x, "silu")
    return x * x.sigmoid()
