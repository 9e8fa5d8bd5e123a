"""The gated feed-forward block of LLaMA-style Transformers: SwiGLU."""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .linear import Linear
from .module import Module


class SwiGLU(Module):
    """A feed-forward block with a gate (Shazeer 2020, "GLU Variants Improve Transformer"):

        SwiGLU(x) = W₂ (SiLU(W₁ x) ⊙ W₃ x),      SiLU(u) = u σ(u)

    Shapes: x (..., d_model) -> (..., d_model); W₁ and W₃ (d_ff, d_model), W₂ (d_model, d_ff).
    W₃ x is a second projection that gates the first one, feature by feature: where the
    GPT-2 MLP has one (d_model → d_ff) matrix, SwiGLU has two, so LLaMA takes
    d_ff ≈ (2/3)·4·d_model to keep the parameter count of a 4·d_model MLP.

    Parameters ``w1.weight``, ``w2.weight``, ``w3.weight`` ((out, in), as PyTorch's
    ``nn.Linear``; the names of Meta's LLaMA code), no biases. Initialised as PyTorch's
    ``nn.Linear``: U(-1/√fan_in, 1/√fan_in), fan_in = d_model for w1, w3 and d_ff for w2
    (a model may re-initialise them, as GPT does with N(0, 0.02²)).
    """

    def __init__(self, d_model: int, d_ff: int, dtype=None, device: str = "cpu"):
        self.d_model, self.d_ff = d_model, d_ff
        self.w1 = Linear(d_model, d_ff, bias=False, dtype=dtype, device=device)
        self.w2 = Linear(d_ff, d_model, bias=False, dtype=dtype, device=device)
        self.w3 = Linear(d_model, d_ff, bias=False, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_ff={self.d_ff}"
