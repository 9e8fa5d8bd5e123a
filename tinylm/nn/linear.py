"""Linear and Embedding layers, and activations as modules."""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module


class Linear(Module):
    """y = x Wᵀ + b, with weight (out_features, in_features) and bias (out_features,).

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
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``; ids -> rows.

    Initialised as PyTorch: N(0, 1).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=None, device: str = "cpu"):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = init.normal((num_embeddings, embedding_dim), 1.0, dtype, device)

    def forward(self, ids) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Zero each element with probability p while training (inverted dropout); identity in eval()."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class GELU(Module):
    """GELU with the tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as GPT-2 uses."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1.0 + (0.7978845608028654 * (x + 0.044715 * x * x * x)).tanh())
