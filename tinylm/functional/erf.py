"""The error function, erf(x) = 2/√π ∫₀ˣ e^(-t²) dt, for the exact GELU (BERT's).

    d/dx erf(x) = 2/√π · e^(-x²)

NumPy has no erf (SciPy has, but tinylm does not depend on SciPy; and ``math.erf``
applied element by element is far too slow for a layer's activations). So tinylm
computes it with W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
approximations for the error function", Math. Comp. 23, 1969; the coefficients of his
CALERF routine, as in netlib's specfun), accurate to about one unit in the last place
of a float64::

    |x| ≤ 0.46875:      erf(x)    = x · P₁(x²) / Q₁(x²)
    0.46875 < |x| ≤ 4:  erfc(|x|) = e^(-x²) · P₂(|x|) / Q₂(|x|)
    |x| > 4:            erfc(|x|) = e^(-x²) / |x| · (1/√π + z · P₃(z) / Q₃(z)),  z = 1/x²

(the last is the asymptotic series' shape; Cody writes it 1/√π - z·P/Q with his signs),
and ``erf(x) = sign(x) · (1 - erfc(|x|))`` outside the first interval. (Cody splits e^(-x²)
in two factors to keep erfc's *relative* error small where erfc is tiny; erf = 1 - erfc
only needs erfc's absolute error small, which the plain e^(-x²) gives.)

The formulas are element-wise arithmetic, so the same code runs on NumPy and CuPy arrays
(one code path; CuPy's own ``cupyx.scipy.special.erf`` would be one kernel instead of a
few dozen, but only on the GPU).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import backend
from ..ops import Function
from ..tensor import Tensor

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
ONE_OVER_SQRT_PI = 1.0 / math.sqrt(math.pi)
SMALL, MIDDLE = 0.46875, 4.0  # the interval boundaries
LARGEST = 26.543  # erfc(x) underflows to 0 beyond this: erf(x) = ±1 in float64
BLOCK = 1 << 16  # elements per pass (see erf_values)

# Cody's coefficients, highest power first (each denominator's leading 1 written out).
P1 = (1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2, 3.20937758913846947e3)
Q1 = (1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3)
P2 = (
    2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1, 2.98635138197400131e2,
    8.81952221241769090e2, 1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3,
)
Q2 = (
    1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2, 1.62138957456669019e3,
    3.29079923573345963e3, 4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3,
)
P3 = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)
Q3 = (1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3)


def _polynomial(z, coefficients: Sequence[float]):
    """c₀ zⁿ + c₁ zⁿ⁻¹ + … + cₙ by Horner's rule."""
    result = backend.array_module(z).full_like(z, coefficients[0])
    for coefficient in coefficients[1:]:
        result *= z
        result += coefficient
    return result


def _erf_of_block(x):
    """Cody's erf for a 1-D floating array; the dtype is kept (float32 stays float32).

    Every interval's formula is evaluated on every element and ``where`` picks, which
    is faster than gathering each interval's elements (boolean indexing costs more than the
    arithmetic). Each formula reads |x| clipped to its own interval, so the values it is not
    picked for stay finite (no overflow, no 0/0).
    """
    xp = backend.array_module(x)
    y = xp.minimum(xp.abs(x), LARGEST)  # erfc is 0 beyond LARGEST, in float64 and float32
    z = xp.minimum(y, SMALL) ** 2
    small = xp.minimum(y, SMALL) * _polynomial(z, P1) / _polynomial(z, Q1)
    gaussian = xp.exp(-y * y)
    t = xp.minimum(y, MIDDLE)
    erfc_middle = gaussian * _polynomial(t, P2) / _polynomial(t, Q2)
    t = xp.maximum(y, MIDDLE)
    z = 1 / (t * t)
    erfc_large = gaussian * (ONE_OVER_SQRT_PI - z * _polynomial(z, P3) / _polynomial(z, Q3)) / t
    value = xp.where(y <= SMALL, small, 1 - xp.where(y <= MIDDLE, erfc_middle, erfc_large))  # erf(|x|); NaN stays NaN
    return xp.copysign(value, x)  # erf is odd


def erf_values(x):
    """erf of every element of a floating array (NumPy or CuPy; a new array of the same dtype).

    BLOCK elements at a time: the formula's twenty-odd temporary arrays then stay in the
    CPU's cache (twice as fast as whole-array passes on a large input).
    """
    flat = x.reshape(-1)
    result = backend.array_module(x).empty_like(flat)
    for start in range(0, flat.size, BLOCK):
        result[start : start + BLOCK] = _erf_of_block(flat[start : start + BLOCK])
    return result.reshape(x.shape)


class Erf(Function):
    """z = erf(x), element-wise;  dz/dx = 2/√π · e^(-x²)."""

    def forward(self, x):
        self.x = x
        return erf_values(x)

    def backward(self, grad):
        xp = backend.array_module(grad)
        slope = self.x * self.x
        xp.negative(slope, out=slope)
        xp.exp(slope, out=slope)
        slope *= TWO_OVER_SQRT_PI
        slope *= grad
        return slope


def erf(x: Tensor) -> Tensor:
    """erf(x) element-wise, differentiable (as ``torch.erf``)."""
    if x.dtype.kind != "f":
        raise TypeError(f"erf needs a floating-point input, got dtype {x.dtype}")
    return Erf.apply(x)
