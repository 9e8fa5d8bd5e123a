"""Scaled dot-product attention: every query takes a weighted average of the values.

For queries Q (L, E), keys K (S, E) and values V (S, Ev):

    scores  A = scale · Q Kᵀ + M          (L, S)    scale = 1/√E unless given
    weights P = softmax(A) along each row  (L, S)    row i: how much query i looks at each key
    output  O = P V                        (L, Ev)

M is the mask: 0 where query i may attend to key j, -∞ where it may not (so that
weight is exactly 0), or any float added to the scores. Leading axes (batch, heads)
broadcast as in matmul.

Two implementations that the tests hold equal:

* ``scaled_dot_product_attention``: one fused ``Function`` whose backward is worked out
  by hand (see ``ScaledDotProductAttention``). It keeps only P and O for backward and
  does its element-wise work in place: the fast path.
* ``scaled_dot_product_attention_composed``: the same formula from primitive tensor ops,
  so autograd derives the backward. Slower, but every step is visible.

A query row whose keys are *all* masked has no distribution to take: softmax would be
0/0 = NaN. tinylm defines its weights as 0, so its output is 0 and no gradient flows
through it (as PyTorch 2.5+ does), and no NaN escapes into the output or the gradients.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops import Function, ShapeError, unbroadcast
from ..tensor import Tensor


def _broadcast_leading(name_a: str, a: tuple, name_b: str, b: tuple) -> tuple:
    """The broadcast of the leading (batch) axes of two shapes, or an error naming both."""
    try:
        return np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        raise ShapeError(f"scaled_dot_product_attention: the leading axes of {name_a} {a} and {name_b} {b} do not broadcast") from None


def _check_shapes(q: Tensor, k: Tensor, v: Tensor, attn_mask, is_causal: bool) -> None:
    """Check q (..., L, E), k (..., S, E), v (..., S, Ev) and that the mask fits the scores (..., L, S)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim < 2:
            raise ShapeError(f"scaled_dot_product_attention: {name} must have at least 2 axes (..., length, features), got shape {t.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"scaled_dot_product_attention: q {q.shape} and k {k.shape} must have the same feature size E (last axis): {q.shape[-1]} != {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: k {k.shape} and v {v.shape} must have the same number of keys S (second-to-last axis): {k.shape[-2]} != {v.shape[-2]}")
    if q.dtype != k.dtype or q.dtype != v.dtype:
        raise TypeError(f"scaled_dot_product_attention: q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    scores_shape = _broadcast_leading("q", q.shape, "k", k.shape) + (q.shape[-2], k.shape[-2])
    _broadcast_leading("scores", scores_shape, "v", v.shape)
    if attn_mask is None:
        return
    if is_causal:
        raise ValueError("scaled_dot_product_attention: give either attn_mask or is_causal=True, not both (as PyTorch); fold the causal mask into attn_mask to combine them")
    if attn_mask.dtype != np.bool_ and attn_mask.dtype.kind != "f":
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be bool (True = may attend) or float (added to the scores), got dtype {attn_mask.dtype}")
    try:
        fits = np.broadcast_shapes(attn_mask.shape, scores_shape) == scores_shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"scaled_dot_product_attention: attn_mask of shape {attn_mask.shape} does not broadcast to the scores' shape (..., L, S) = {scores_shape}")


def causal_mask(L: int, S: int, xp=np):
    """Bool (L, S): query i may attend to key j when j <= i (top-left aligned, as PyTorch)."""
    return xp.tri(L, S, dtype=bool)


def additive_mask(attn_mask, is_causal: bool, L: int, S: int, dtype, xp=np):
    """The mask as an array M to add to the scores (0 = may attend, -∞ = may not), or None.

    ``attn_mask`` is an array: bool becomes 0/-∞, float is used as it is (cast to the
    scores' dtype). ``is_causal`` builds the causal mask instead.
    """
    if is_causal:
        attn_mask = causal_mask(L, S, xp)
    if attn_mask is None:
        return None
    if attn_mask.dtype == np.bool_:
        return xp.where(attn_mask, xp.zeros((), dtype), xp.asarray(-np.inf, dtype))
    return attn_mask.astype(dtype, copy=False)


def _prepare(q: Tensor, k: Tensor, v: Tensor, attn_mask, is_causal: bool, scale):
    """Check the inputs; return the scale and the additive mask (or None)."""
    xp = backend.array_module(q.data)
    if attn_mask is not None:
        attn_mask = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
    _check_shapes(q, k, v, attn_mask, is_causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return scale, additive_mask(attn_mask, is_causal, q.shape[-2], k.shape[-2], q.dtype, xp)


class ScaledDotProductAttention(Function):
    """O = softmax(scale·Q Kᵀ + M) V, forward and backward worked out by hand.

    Forward (per leading index):  Q̃ = scale·Q,  A = Q̃ Kᵀ + M,  P = softmax(A),  O = P V.
    Each row of A has its maximum subtracted before exp (softmax does not change, and
    exp cannot overflow). Rows that are entirely -∞ get P = 0.

    Backward, given G = dL/dO (L, Ev):

        dL/dV = Pᵀ G                                  (S, Ev)
        dL/dP = G Vᵀ                                  (L, S)
        dL/dA = P ⊙ (dL/dP − D),   Dᵢ = Σⱼ Pᵢⱼ (dL/dP)ᵢⱼ = Gᵢ · Oᵢ
        dL/dQ = scale · (dL/dA) K                     (L, E)
        dL/dK = (dL/dA)ᵀ Q̃                            (S, E)

    The softmax step is its Jacobian-vector product: for one row p = softmax(a),
    ∂pⱼ/∂aₘ = pⱼ(δⱼₘ − pₘ), so (dL/da)ₘ = Σⱼ gⱼ pⱼ(δⱼₘ − pₘ) = pₘ(gₘ − Σⱼ gⱼpⱼ) with
    g = dL/dp. The (L, S) Jacobian of each row is never built. D is computed as
    Σ Gᵢₖ Oᵢₖ over the Ev columns of O instead of over the S columns of P (the same number,
    since Oᵢ = Σⱼ Pᵢⱼ Vⱼ), which reads a smaller array. A fully masked row has P = 0, so
    its dL/dA is 0 as well. Broadcast leading axes are summed back (``unbroadcast``).
    """

    def forward(self, q, k, v, scale: float, mask, keep_weights: list | None = None):
        """``keep_weights``: a list that receives P, for callers that plot it."""
        xp = backend.array_module(q)
        self.q_scaled = q * scale
        self.k, self.v, self.scale = k, v, scale
        scores = self.q_scaled @ k.swapaxes(-1, -2)
        if mask is not None:
            scores += mask
        row_max = scores.max(axis=-1, keepdims=True)
        row_max[~xp.isfinite(row_max)] = 0  # a fully masked row: exp(-∞ - 0) = 0, not NaN
        scores -= row_max
        weights = xp.exp(scores, out=scores)
        total = weights.sum(axis=-1, keepdims=True)
        total[total == 0] = 1  # a fully masked row keeps its weights at 0
        weights /= total
        self.weights = weights
        if keep_weights is not None:
            keep_weights.append(weights)
        self.out = weights @ v
        return self.out

    def backward(self, grad):
        weights = self.weights
        grad_v = unbroadcast(weights.swapaxes(-1, -2) @ grad, self.v.shape) if self.needs_grad(2) else None
        if not (self.needs_grad(0) or self.needs_grad(1)):
            return None, None, grad_v
        grad_scores = grad @ self.v.swapaxes(-1, -2)
        grad_scores -= (grad * self.out).sum(axis=-1, keepdims=True)
        grad_scores *= weights
        grad_q = grad_k = None
        if self.needs_grad(0):
            grad_q = grad_scores @ self.k
            grad_q *= self.scale
            grad_q = unbroadcast(grad_q, self.q_scaled.shape)
        if self.needs_grad(1):
            grad_k = unbroadcast(grad_scores.swapaxes(-1, -2) @ self.q_scaled, self.k.shape)
        return grad_q, grad_k, grad_v


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask=None,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
):
    """softmax(scale · q kᵀ + mask) v, with PyTorch's semantics (the fused, fast path).

    Args:
        q: queries (..., L, E).  k: keys (..., S, E).  v: values (..., S, Ev).
            Leading axes (batch, heads) broadcast against each other.
        attn_mask: bool (True = may attend) or float (added to the scores), of a shape
            that broadcasts to (..., L, S). It is a constant: no gradient flows into it.
        is_causal: query i attends to keys 0..i only (top-left aligned when L != S, as
            PyTorch). Not together with ``attn_mask``.
        scale: multiplies q kᵀ; 1/√E when None.
        return_weights: also return the weights P (..., L, S) for plotting (without a
            graph: gradients flow through the output only).
    Returns:
        output (..., L, Ev), or (output, weights). A query whose keys are all masked gets
        weights 0 and output 0.
    """
    scale, mask = _prepare(q, k, v, attn_mask, is_causal, scale)
    if not return_weights:
        return ScaledDotProductAttention.apply(q, k, v, scale=scale, mask=mask)
    weights: list = []
    out = ScaledDotProductAttention.apply(q, k, v, scale=scale, mask=mask, keep_weights=weights)
    return out, Tensor._from_op(weights[0], False)


def masked_softmax(scores: Tensor, mask=None) -> Tensor:
    """softmax(scores + M) along the last axis, built from primitive ops.

    ``mask`` is bool (True = may attend) or float (added), broadcastable to ``scores``.
    The row maximum is subtracted as a constant: softmax does not change under a shift,
    so no gradient is lost by not differentiating through it. A row that is entirely
    masked gets weights 0 (its sum is 0 and is divided by 1 instead).
    """
    xp = backend.array_module(scores.data)
    if mask is not None:
        mask = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
        scores = scores + Tensor(additive_mask(mask, False, 0, 0, scores.dtype, xp))
    row_max = scores.data.max(axis=-1, keepdims=True)
    row_max = xp.where(xp.isfinite(row_max), row_max, xp.zeros((), scores.dtype))
    exps = (scores - Tensor(row_max)).exp()
    total = exps.sum(axis=-1, keepdims=True)
    return exps / (total + Tensor((total.data == 0).astype(scores.dtype)))


def scaled_dot_product_attention_composed(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask=None,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
):
    """The same attention from primitive ops (matmul, exp, sum, divide); autograd does backward.

    Same arguments and results as ``scaled_dot_product_attention``, except that the
    returned weights are part of the graph.
    """
    scale, mask = _prepare(q, k, v, attn_mask, is_causal, scale)
    weights = masked_softmax((q * scale) @ k.swapaxes(-1, -2), mask)
    out = weights @ v
    return (out, weights) if return_weights else out
