"""The Transformer block and GPT: a decoder-only language model (GPT-2's architecture)."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import ShapeError
from ..tensor import Tensor
from .attention import LearnedPositionalEncoding, MultiheadAttention
from .kv_cache import KVCache, LayerCache
from .linear import GELU, Dropout, Embedding, Linear
from .module import Module, Sequential
from .normalization import LayerNorm


class TransformerBlock(Module):
    """A pre-norm Transformer block (as GPT-2):

        x = x + Dropout(Attention(LayerNorm(x)))
        x = x + Dropout(MLP(LayerNorm(x)))          MLP = Linear(E, 4E) → GELU → Linear(4E, E)

    Normalising *before* each sub-layer leaves the residual path x → x + … untouched
    from the input to the output, so gradients reach the first block undiminished.
    Shapes: x (B, T, E) -> (B, T, E).
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, layer_norm_eps: float = 1e-5, dtype=None, device: str = "cpu"
    ):
        self.attention_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.attention = MultiheadAttention(embed_dim, num_heads, dtype=dtype, device=device)
        self.mlp_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.mlp = Sequential(
            Linear(embed_dim, 4 * embed_dim, dtype=dtype, device=device),
            GELU(),
            Linear(4 * embed_dim, embed_dim, dtype=dtype, device=device),
        )
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, is_causal: bool = False, attn_mask=None, cache: LayerCache | None = None) -> Tensor:
        """``is_causal``, ``attn_mask`` (PyTorch MHA masks: True = blocked) and ``cache`` go to the attention."""
        normed = self.attention_norm(x)
        attended, _ = self.attention(normed, need_weights=False, attn_mask=attn_mask, is_causal=is_causal, cache=cache)
        x = x + self.dropout(attended)
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class GPT(Module):
    """A GPT-style language model: ids (B, T) -> logits (B, T, vocab_size) for the next token.

        x = token_embedding[ids] + position_embedding[0..T-1]       (B, T, E)
        x = block_N(… block_1(x))                                    causal: token t sees 0..t
        logits = final_norm(x) Wᵀ                                    (B, T, V)

    W is ``head.weight`` (V, E), or the token embedding itself with ``tie_weights=True``
    (the same matrix reads tokens in and writes them out; fewer parameters).
    Weights start as GPT-2's: N(0, 0.02²) for every matrix, zero biases, LayerNorms at 1/0.

    **This is GPT-2.** With ``tie_weights=True`` and GPT-2's sizes (12 layers, width 768,
    12 heads, vocabulary 50,257, context 1,024 for the smallest) it computes exactly what
    Hugging Face's ``GPT2LMHeadModel`` computes: learned positions, pre-norm blocks, a
    bias in every linear layer and LayerNorm, the tanh-approximated GELU, LayerNorm eps
    ``layer_norm_eps`` (GPT-2's ``layer_norm_epsilon``, 1e-5). ``tinylm.pretrained.load``
    fills it with GPT-2's weights. It is one class and not a second ``GPT2`` beside it
    because the differences are settings, not structure: the small GPT a student trains
    in the Transformer chapter and the 124M-parameter GPT-2 run the same lines of code.

    Generation passes a ``KVCache`` (``new_cache``): each call then feeds only the new
    tokens, at the positions after those the cache holds (see ``nn.kv_cache``).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        embed_dim: int = 128,
        num_heads: int = 4,
        num_layers: int = 4,
        dropout: float = 0.0,
        tie_weights: bool = False,
        layer_norm_eps: float = 1e-5,
        dtype=None,
        device: str = "cpu",
    ):
        self.vocab_size, self.context_length, self.tie_weights = vocab_size, context_length, tie_weights
        self.token_embedding = Embedding(vocab_size, embed_dim, dtype=dtype, device=device)
        self.position_embedding = LearnedPositionalEncoding(context_length, embed_dim, dtype=dtype, device=device)
        self.dropout = Dropout(dropout)
        self.blocks = [
            TransformerBlock(embed_dim, num_heads, dropout, layer_norm_eps, dtype=dtype, device=device) for _ in range(num_layers)
        ]
        self.final_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.head = None if tie_weights else Linear(embed_dim, vocab_size, bias=False, dtype=dtype, device=device)
        self._init_like_gpt2()

    def _init_like_gpt2(self) -> None:
        for name, parameter in self.named_parameters():
            if parameter.ndim == 2:
                generator = backend.generator(parameter.device)
                noise = generator.standard_normal(parameter.shape, dtype=np.float64) * 0.02
                parameter.data = noise.astype(parameter.dtype)
            elif name.endswith("bias"):
                parameter.data[...] = 0

    def new_cache(self, capacity: int | None = None) -> KVCache:
        """An empty key-value cache for this model, with room for ``capacity`` positions
        at first (default: the whole context)."""
        return KVCache(len(self.blocks), capacity or self.context_length)

    def forward(self, ids, cache: KVCache | None = None) -> Tensor:
        """Logits (B, T, V) of the next token at every position (of the new ones, with a cache)."""
        weight = self.token_embedding.weight if self.tie_weights else self.head.weight
        return self.features(ids, cache) @ weight.T

    def features(self, ids, cache: KVCache | None = None) -> Tensor:
        """The hidden states (B, T, E) after the final norm: what the output head reads.

        With a ``cache`` holding P positions, ``ids`` are the tokens at positions P..P+T-1,
        and their keys and values join the cache.
        """
        ids_shape = tuple(ids.shape)
        if len(ids_shape) != 2:
            raise ShapeError(f"GPT: expected token ids of shape (batch, time), got shape {ids_shape}")
        if ids_shape[1] > self.context_length:
            raise ShapeError(
                f"GPT: sequence of length {ids_shape[1]} is longer than the model's context_length "
                f"{self.context_length}; crop the input to its last {self.context_length} tokens"
            )
        start = 0 if cache is None else cache.length
        if start + ids_shape[1] > self.context_length:
            raise ShapeError(
                f"GPT: the cache holds {start} positions, and {ids_shape[1]} more would go past the model's "
                f"context_length {self.context_length}; clear the cache and feed the last {self.context_length} tokens"
            )
        x = self.dropout(self.position_embedding(self.token_embedding(ids), start))
        for i, block in enumerate(self.blocks):
            x = block(x, is_causal=True, cache=None if cache is None else cache.layers[i])
        return self.final_norm(x)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, context_length={self.context_length}, tie_weights={self.tie_weights}"
