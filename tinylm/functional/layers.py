"""The functional forms of the basic layers: linear, embedding, dropout."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import DeviceError
from ..ops import Function, ShapeError
from ..tensor import Tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b.

    Shapes: x (..., in), weight (out, in) as in PyTorch, bias (out,) -> y (..., out).
    Gradients (from the matmul and add rules): dx = dy W, dW = dyᵀ x (summed over the
    leading axes), db = Σ dy.
    """
    if weight.ndim != 2:
        raise ShapeError(f"linear: the weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.shape[-1:] != weight.shape[1:]:
        raise ShapeError(
            f"linear: input has {x.shape[-1] if x.ndim else 'no'} features (shape {x.shape}), "
            f"but the weight {weight.shape} expects {weight.shape[1]}"
        )
    y = x @ weight.T
    return y if bias is None else y + bias


class EmbeddingLookup(Function):
    """y = W[ids]: row ``ids[...]`` of the table W (num_embeddings, dim).

    Backward: dW[i] = Σ over the positions where ids == i of dy — a scatter-add, since
    an id that occurs several times collects the gradient of every occurrence. The row
    ``padding_idx`` (when given) gets no gradient at all.
    """

    def forward(self, weight, ids, padding_idx=None):
        self.ids, self.weight_shape, self.padding_idx = ids, weight.shape, padding_idx
        return weight[ids]

    def backward(self, grad):
        xp = backend.array_module(grad)
        grad_weight = xp.zeros(self.weight_shape, dtype=grad.dtype)
        backend.scatter_add(grad_weight, self.ids.reshape(-1), grad.reshape(-1, self.weight_shape[1]))
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        return grad_weight


def integer_array(values, like: Tensor, function: str, name: str, like_name: str):
    """Integer ``values`` as an array on ``like``'s device: a Tensor already there, or a list
    or array (put there for you); else an error naming ``function`` and ``name``."""
    if isinstance(values, Tensor):
        if values.device != like.device:
            raise DeviceError(
                f"{function}: {name} are on {values.device!r} but {like_name} is on {like.device!r}; "
                f"move them first, e.g. {name}.to({like.device!r})"
            )
        values = values.data
    else:
        values = backend.array_module(like.data).asarray(values)
    if values.dtype.kind not in "iu":
        raise TypeError(f"{function}: {name} must be integers, got dtype {values.dtype}")
    return values


def embedding(ids, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim) for integer ``ids`` (...) -> (..., dim).

    ``ids`` may be a Tensor on the weight's device, or a list or array (put there for you).
    ``padding_idx``: the id of padding, whose row never gets a gradient (so training never
    moves it), as PyTorch's.
    """
    ids = integer_array(ids, weight, "embedding", "ids", "the weight")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= weight.shape[0]):
        raise IndexError(
            f"embedding: ids must lie in [0, {weight.shape[0] - 1}] (num_embeddings={weight.shape[0]}), "
            f"got values from {int(ids.min())} to {int(ids.max())}"
        )
    if padding_idx is not None and not 0 <= padding_idx < weight.shape[0]:
        raise IndexError(f"embedding: padding_idx must lie in [0, {weight.shape[0] - 1}], got {padding_idx}")
    return EmbeddingLookup.apply(weight, ids=ids, padding_idx=padding_idx)


def check_dropout_probability(p: float) -> None:
    """Raise a ValueError unless 0 <= p <= 1 (NaN fails too)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    y = x · m / (1 - p) with m ~ Bernoulli(1 - p) per element, so E[y] = x and
    evaluation (``training=False``) is simply the identity. Gradient: dy/dx = m / (1 - p),
    the same mask and scale. p = 1 zeroes everything (and every gradient).
    """
    check_dropout_probability(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # drawn in float32 whatever x's dtype, so a seed gives the same mask in float32 and float64
    keep = backend.generator(x.device).random(x.shape, dtype=np.float32) >= p
    return x * Tensor(keep.astype(x.dtype) / (1.0 - p))
