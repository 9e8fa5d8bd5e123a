"""Linear and Embedding layers, Dropout, and activations as modules."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional.activations import check_approximation
from ..functional.layers import check_dropout_probability
from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .module import Module


class Linear(Module):
    """y = x Wᵀ + b, with weight (out_features, in_features) and bias (out_features,).

    Input (..., in_features) -> output (..., out_features).
    Initialised as PyTorch: W and b from U(-1/√in_features, 1/√in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None, device: str = "cpu"):
        self.in_features, self.out_features = in_features, out_features
        self.weight = init.fan_in_uniform((out_features, in_features), in_features, dtype, device)
        self.bias = init.fan_in_uniform((out_features,), in_features, dtype, device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``: integer ids (...) ->
    their rows (..., embedding_dim). The weight's gradient adds up every use of a row.

    Initialised as PyTorch: N(0, 1). ``padding_idx`` (optional, as PyTorch's): the id of
    padding; its row starts at zero and never gets a gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype=None, device: str = "cpu"):
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = init.normal((num_embeddings, embedding_dim), 1.0, dtype, device)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"


def check_token_ids(ids, context_length: int, model: str) -> tuple[int, int]:
    """The shape (batch, time) of the token ids a model reads (a Tensor, an array or nested
    lists), or a ShapeError naming ``model``: ids must be 2-D and at most ``context_length``
    long (the positions the model has)."""
    shape = np.shape(ids)
    if len(shape) != 2:
        raise ShapeError(f"{model}: expected token ids of shape (batch, time), got shape {shape}")
    if shape[1] > context_length:
        raise ShapeError(
            f"{model}: a sequence of {shape[1]} tokens is longer than the model's context_length {context_length}; "
            f"crop the input to its last {context_length} tokens"
        )
    return shape


class Dropout(Module):
    """Zero each element with probability p while training (inverted dropout); identity in eval()."""

    def __init__(self, p: float = 0.5):
        check_dropout_probability(p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0), element-wise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    """tanh(x), element-wise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e⁻ˣ), element-wise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class GELU(Module):
    """GELU, with the tanh approximation (the default, GPT-2's) or exact (BERT's):

        approximate="tanh":  gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        approximate="none":  gelu(x) = ½x(1 + erf(x/√2))

    These are PyTorch's ``nn.GELU(approximate="tanh")`` and ``nn.GELU()``: note that
    PyTorch's default is the exact form, tinylm's the tanh one. The two differ by less
    than 1e-3. Computed by the fused ``F.gelu`` (its derivatives in
    tinylm/functional/activations.py).
    """

    def __init__(self, approximate: str = "tanh"):
        check_approximation(approximate)
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """SiLU (also called swish), x·σ(x), element-wise, as PyTorch's ``nn.SiLU``. Computed by
    the fused ``F.silu`` (its derivative in tinylm/functional/activations.py)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)
