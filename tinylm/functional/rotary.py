"""Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer"): a position is a rotation.

Instead of adding a position vector to each token, RoPE turns each pair of features of a
query or a key by an angle that grows with the token's position. For x (..., T, D) with D
even, the pair i = (x[2i], x[2i+1]), i = 0 … D/2 - 1, of the token at position p becomes

    θᵢ = theta^(-2i/D)                    (theta = 10000: pair 0 turns 1 radian per position,
    a = p · θᵢ                             the last pair about 1/theta radian)
    y[2i]   = x[2i] cos a - x[2i+1] sin a
    y[2i+1] = x[2i] sin a + x[2i+1] cos a

or, reading the pair as one complex number, y₂ᵢ + i·y₂ᵢ₊₁ = (x₂ᵢ + i·x₂ᵢ₊₁) · e^{i·p·θᵢ}.

Why it works: a query rotated for position m and a key rotated for position n have the dot
product Re Σᵢ q̃ᵢ conj(k̃ᵢ) e^{i(m-n)θᵢ} (q̃, k̃ the complex pairs): it depends on the two
positions only through m - n. Attention sees relative positions, with no parameter.

**Pairing convention.** tinylm pairs *interleaved* neighbours (x[2i], x[2i+1]), as the
RoFormer paper and Meta's original LLaMA code do. Hugging Face's LLaMA ("rotate_half")
pairs the two halves, (x[i], x[i + D/2]), with the same angle pθᵢ. The two differ only by
a permutation of the features: with perm = [0, 2, 4, …, D-2, 1, 3, …, D-1],

    half_split_rope(x[..., perm]) = rotary_embedding(x)[..., perm],

and since a dot product is unchanged when both vectors are permuted alike, q·k and so the
attention weights are the same either way. (Hugging Face's conversion of Meta's LLaMA
weights applies perm to the rows of W_q and W_k, head by head; to use half-split weights
with interleaved RoPE, apply the inverse permutation to those rows.)

**Gradient.** Each pair is multiplied by the rotation matrix R(a), which is orthogonal:
R(a)ᵀ = R(-a). So dL/dx = R(a)ᵀ dL/dy = R(-a) dL/dy: backward rotates the gradient back
by the same angle. The positions are integers and get no gradient.

Two implementations that the tests hold equal:

* ``rotary_embedding``: one fused ``Function`` (``RotatePairs``): the fast path.
* ``rotary_embedding_composed``: the same formula from primitive tensor ops (indexing,
  products, a stack), so autograd derives the backward.

``tinylm.nn.RotaryEmbedding`` computes the cos/sin tables once and looks positions up.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import Function, ShapeError
from ..tensor import Tensor, stack
from .layers import integer_array


class RotatePairs(Function):
    """y = each pair (x[2i], x[2i+1]) of the last axis turned by the angle a whose cos and
    sin are given: (x₂ᵢ cos a - x₂ᵢ₊₁ sin a,  x₂ᵢ sin a + x₂ᵢ₊₁ cos a).

    Shapes: x (..., T, D); cos, sin (..., T, D/2), broadcastable to x's leading axes.
    Backward: the same turn by -a (cos stays, sin flips sign), since R(a)ᵀ = R(-a).
    """

    def forward(self, x, cos, sin):
        self.cos, self.sin = cos, sin
        return _rotate_pairs(x, cos, sin)

    def backward(self, grad):
        return _rotate_pairs(grad, self.cos, -self.sin)


def _rotate_pairs(x, cos, sin):
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    out = backend.array_module(x).empty_like(pairs)
    out[..., 0] = even * cos - odd * sin
    out[..., 1] = even * sin + odd * cos
    return out.reshape(x.shape)


def rotary_tables(positions, dim: int, theta: float, dtype):
    """cos(p·θᵢ) and sin(p·θᵢ), each (..., D/2) for integer ``positions`` (...), with
    θᵢ = theta^(-2i/D). Computed in float64 on the positions' device, then cast to
    ``dtype``: a float32 table is float64 values rounded once, not float32 arithmetic."""
    xp = backend.array_module(positions)
    frequencies = theta ** (-xp.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = positions[..., None].astype(np.float64) * frequencies
    return xp.cos(angles).astype(dtype), xp.sin(angles).astype(dtype)


def check_rotary_input(x: Tensor, function: str) -> None:
    """x floating, (..., T, D) with D even, or an error naming ``function``."""
    if x.dtype.kind != "f":
        raise TypeError(f"{function} needs a floating-point input, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ShapeError(
            f"{function}: expected x (..., T, D) with an even number of features D (they are rotated in pairs), "
            f"got shape {x.shape}"
        )


def checked_positions(positions, x: Tensor, function: str):
    """``positions`` as an integer array on x's device, (T,) or broadcastable to x's
    (..., T), non-negative; or an error naming ``function`` and what arrived."""
    positions = integer_array(positions, x, function, "positions", "x")
    leading = x.shape[:-1]
    fits = positions.ndim >= 1 and positions.shape[-1] == leading[-1]
    if fits:
        try:
            fits = np.broadcast_shapes(positions.shape, leading) == leading
        except ValueError:
            fits = False
    if not fits:
        raise ShapeError(
            f"{function}: positions must be (T,) = ({leading[-1]},) or broadcastable to x's (..., T) = {leading} "
            f"(e.g. (B, 1, T) for x (B, H, T, D)), got shape {positions.shape}"
        )
    if positions.size and int(positions.min()) < 0:
        raise ValueError(f"{function}: positions must be >= 0, got {int(positions.min())}")
    return positions


def checked_theta(theta: float, function: str) -> float:
    """``theta`` as a float, or a ValueError naming ``function`` unless it is positive."""
    if not theta > 0:
        raise ValueError(f"{function}: theta must be a positive number (10000.0 in RoFormer and LLaMA), got {theta}")
    return float(theta)


def _checked_tables(x: Tensor, positions, theta: float):
    check_rotary_input(x, "rotary_embedding")
    positions = checked_positions(positions, x, "rotary_embedding")
    return rotary_tables(positions, x.shape[-1], checked_theta(theta, "rotary_embedding"), x.dtype)


def rotary_embedding(x: Tensor, positions, theta: float = 10000.0) -> Tensor:
    """Rotate each interleaved pair of features of ``x`` (..., T, D) by its position's angle.

    ``positions``: the integer position of each token, (T,) for all rows alike or
    broadcastable to (..., T), e.g. (B, 1, T) for x (B, H, T, D); a list, an array or a
    Tensor on x's device. With a cache of keys, a new token at position t is ``[t]``.
    The fused fast path; the convention and the gradient are in this module's docstring.
    """
    cos, sin = _checked_tables(x, positions, theta)
    return RotatePairs.apply(x, cos=cos, sin=sin)


def rotary_embedding_composed(x: Tensor, positions, theta: float = 10000.0) -> Tensor:
    """``rotary_embedding`` from primitive tensor ops: autograd derives the backward."""
    cos, sin = (Tensor(table) for table in _checked_tables(x, positions, theta))
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    return stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1).reshape(x.shape)
