"""The Transformer block and GPT: a decoder-only language model, GPT-2's recipe or LLaMA's."""
from __future__ import annotations

from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .attention import LearnedPositionalEncoding, MultiheadAttention
from .feedforward import SwiGLU
from .kv_cache import KVCache, LayerCache
from .linear import GELU, Dropout, Embedding, Linear, check_token_ids
from .module import Module, Sequential
from .normalization import LayerNorm, RMSNorm

NORMS = ("layer", "rms")
MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rope")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A ValueError naming the setting, its choices and what arrived, unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"GPT: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def default_mlp_dim(embed_dim: int, mlp: str) -> int:
    """The width of the feed-forward block when none is given.

    "gelu": 4E (GPT-2). "swiglu": LLaMA's rule, 2/3 · 4E, rounded up to a multiple of 8.
    SwiGLU has three E × F matrices where the GELU MLP has two, so F = 2/3 · 4E keeps its
    parameter count, 8E². (LLaMA rounds up to a multiple of 256, 11,008 for E = 4,096; at
    the widths of a CPU model that would add up to half again, so tinylm rounds to 8.)
    """
    if mlp == "gelu":
        return 4 * embed_dim
    return -(-int(2 * 4 * embed_dim / 3) // 8) * 8


def normalization(norm: str, embed_dim: int, eps: float, bias: bool, dtype, device: str) -> Module:
    """LayerNorm (with a bias unless ``bias`` is False) or RMSNorm (never one) over the E features."""
    if norm == "rms":
        return RMSNorm(embed_dim, eps=eps, dtype=dtype, device=device)
    return LayerNorm(embed_dim, eps=eps, bias=bias, dtype=dtype, device=device)


def feed_forward(mlp: str, embed_dim: int, mlp_dim: int, bias: bool, dtype, device: str) -> Module:
    """GPT-2's Linear(E, F) → GELU → Linear(F, E) (parameters ``0.*``, ``2.*``), or SwiGLU
    (``w1``, ``w2``, ``w3``, never a bias)."""
    if mlp == "swiglu":
        return SwiGLU(embed_dim, mlp_dim, dtype=dtype, device=device)
    return Sequential(
        Linear(embed_dim, mlp_dim, bias=bias, dtype=dtype, device=device),
        GELU(),
        Linear(mlp_dim, embed_dim, bias=bias, dtype=dtype, device=device),
    )


class TransformerBlock(Module):
    """A pre-norm Transformer block (as GPT-2 and LLaMA):

        x = x + Dropout(Attention(Norm(x)))
        x = x + Dropout(MLP(Norm(x)))

    Normalising *before* each sub-layer leaves the residual path x → x + … untouched
    from the input to the output, so gradients reach the first block undiminished.
    Shapes: x (B, T, E) -> (B, T, E).

    The parts, GPT-2's by default (see ``GPT`` for the recipes):
    ``norm`` "layer" (LayerNorm) or "rms" (RMSNorm), both with ``eps``; ``mlp`` "gelu"
    (Linear(E, F) → GELU → Linear(F, E)) or "swiglu" (``nn.SwiGLU``), F = ``mlp_dim``
    (default: ``default_mlp_dim``); ``bias``: biases in the attention, the GELU MLP and
    the LayerNorms; ``num_kv_heads`` (grouped-query attention), ``rotary`` (rotary
    positions for ``max_positions`` positions, ``rotary_theta``) go to the attention.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        norm: str = "layer",
        mlp: str = "gelu",
        mlp_dim: int | None = None,
        bias: bool = True,
        num_kv_heads: int | None = None,
        rotary: bool = False,
        rotary_theta: float = 10000.0,
        max_positions: int = 2048,
        dtype=None,
        device: str = "cpu",
    ):
        check_choice("norm", norm, NORMS)
        check_choice("mlp", mlp, MLPS)
        mlp_dim = default_mlp_dim(embed_dim, mlp) if mlp_dim is None else mlp_dim
        self.attention_norm = normalization(norm, embed_dim, layer_norm_eps, bias, dtype, device)
        self.attention = MultiheadAttention(
            embed_dim, num_heads, bias, num_kv_heads, rotary, rotary_theta, max_positions, dtype=dtype, device=device
        )
        self.mlp_norm = normalization(norm, embed_dim, layer_norm_eps, bias, dtype, device)
        self.mlp = feed_forward(mlp, embed_dim, mlp_dim, bias, dtype, device)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, is_causal: bool = False, attn_mask=None, cache: LayerCache | None = None) -> Tensor:
        """``is_causal``, ``attn_mask`` (PyTorch MHA masks: True = blocked) and ``cache`` go to the attention."""
        normed = self.attention_norm(x)
        attended, _ = self.attention(normed, need_weights=False, attn_mask=attn_mask, is_causal=is_causal, cache=cache)
        x = x + self.dropout(attended)
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class GPT(Module):
    """A GPT-style language model: ids (B, T) -> logits (B, T, vocab_size) for the next token.

        x = token_embedding[ids] (+ position_embedding[0..T-1])      (B, T, E)
        x = block_N(… block_1(x))                                    causal: token t sees 0..t
        logits = final_norm(x) Wᵀ                                    (B, T, V)

    W is ``head.weight`` (V, E), or the token embedding itself with ``tie_weights=True``
    (the same matrix reads tokens in and writes them out; fewer parameters).
    Weights start as GPT-2's: N(0, 0.02²) for every matrix, zero biases, norms at 1 (and 0).

    **Two recipes, one class.** Each option swaps one part; the defaults are GPT-2's:

    ============  ==========================  ======================================
    option        GPT-2 (default)             LLaMA
    ============  ==========================  ======================================
    norm          "layer": LayerNorm          "rms": RMSNorm (no centring, no bias)
    mlp           "gelu": 4E, GELU            "swiglu": SwiGLU, F = 2/3 · 4E
    positions     "learned": a table (C, E)   "rope": rotary queries and keys
    bias          True: in every linear       False: none anywhere
    num_kv_heads  None (= num_heads)          fewer, for grouped-query attention
    ============  ==========================  ======================================

    ``mlp_dim`` sets the feed-forward width F (default ``default_mlp_dim``: 4E for GELU,
    8E/3 rounded up to a multiple of 8 for SwiGLU, so both blocks have about 8E²
    parameters); ``layer_norm_eps`` is the eps of every norm (LayerNorm or RMSNorm);
    ``rope_theta`` the base of the rotary frequencies (θᵢ = rope_theta^(-2i/D)); the rotary
    tables cover the ``context_length`` positions. With ``positions="rope"`` there is no
    position table: positions enter only through the rotations inside attention.

    **This is GPT-2.** With the defaults, ``tie_weights=True`` and GPT-2's sizes (12
    layers, width 768, 12 heads, vocabulary 50,257, context 1,024 for the smallest) it
    computes exactly what Hugging Face's ``GPT2LMHeadModel`` computes: learned positions,
    pre-norm blocks, a bias in every linear layer and LayerNorm, the tanh-approximated
    GELU, LayerNorm eps ``layer_norm_eps`` (GPT-2's ``layer_norm_epsilon``, 1e-5).
    ``tinylm.pretrained.load`` fills it with GPT-2's weights. It is one class and not a
    second ``GPT2`` (or ``Llama``) beside it because the differences are settings, not
    structure: the small GPT a student trains in the Transformer chapter, the 124M-parameter
    GPT-2 and a LLaMA-style model run the same lines of code.

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
        norm: str = "layer",
        mlp: str = "gelu",
        positions: str = "learned",
        bias: bool = True,
        num_kv_heads: int | None = None,
        mlp_dim: int | None = None,
        rope_theta: float = 10000.0,
        dtype=None,
        device: str = "cpu",
    ):
        check_choice("positions", positions, POSITIONS)
        self.vocab_size, self.context_length, self.tie_weights = vocab_size, context_length, tie_weights
        self.token_embedding = Embedding(vocab_size, embed_dim, dtype=dtype, device=device)
        learned = positions == "learned"
        self.position_embedding = LearnedPositionalEncoding(context_length, embed_dim, dtype=dtype, device=device) if learned else None
        self.dropout = Dropout(dropout)
        self.blocks = [
            TransformerBlock(
                embed_dim, num_heads, dropout, layer_norm_eps, norm, mlp, mlp_dim, bias, num_kv_heads,
                rotary=not learned, rotary_theta=rope_theta, max_positions=context_length, dtype=dtype, device=device,
            )
            for _ in range(num_layers)
        ]
        self.final_norm = normalization(norm, embed_dim, layer_norm_eps, bias, dtype, device)
        self.head = None if tie_weights else Linear(embed_dim, vocab_size, bias=False, dtype=dtype, device=device)
        init.normal_matrices_zero_biases(self)

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
        _, length = check_token_ids(ids, self.context_length, "GPT")
        start = 0 if cache is None else cache.length
        if start + length > self.context_length:
            raise ShapeError(
                f"GPT: the cache holds {start} positions, and {length} more would go past the model's "
                f"context_length {self.context_length}; clear the cache and feed the last {self.context_length} tokens"
            )
        x = self.token_embedding(ids)
        if self.position_embedding is not None:
            x = self.position_embedding(x, start)
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x, is_causal=True, cache=None if cache is None else cache.layers[i])
        return self.final_norm(x)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, context_length={self.context_length}, tie_weights={self.tie_weights}"
