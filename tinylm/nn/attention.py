"""Attention layers: multi-head attention, positional encodings, additive (Bahdanau) attention."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .. import functional as F
from ..functional.attention import additive_mask
from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .kv_cache import LayerCache
from .linear import Linear
from .module import Module
from .rotary import RotaryEmbedding


def _blocked_to_additive(mask, dtype, xp):
    """A PyTorch-style MultiheadAttention mask (bool True = blocked, or float added) as 0/-∞ floats."""
    mask = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if mask.dtype == np.bool_:
        return xp.where(mask, xp.asarray(-np.inf, dtype), xp.zeros((), dtype))
    return mask.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """Multi-head attention: ``num_heads`` attentions of size D = E/num_heads side by side.

        Q = query W_qᵀ + b_q                                        (B, L, H·D = E)
        K = key W_kᵀ + b_k,  V = value W_vᵀ + b_v                    (B, S, H_kv·D)
        split the features into heads:  Q (B, H, L, D),  K and V (B, H_kv, S, D)
        headₕ = softmax(Qₕ K_g(h)ᵀ / √D + mask) V_g(h)               (B, H, L, D)
        output = concat(head₁ … head_H) W_oᵀ + b_o                    (B, L, E)

    H_kv is ``num_kv_heads``, by default H: every query head has keys and values of its
    own, g(h) = h, the attention of "Attention Is All You Need".

    **Grouped-query attention** (GQA; Ainslie et al. 2023, used by LLaMA 2 70B and LLaMA 3):
    with H_kv < H, the query heads come in H_kv groups of G = H / H_kv neighbours, and the
    heads of group g(h) = h // G share one key head and one value head. K and V, and so the
    key-value cache that generation keeps, shrink by the factor G (multi-query attention
    is H_kv = 1); the queries keep all their heads. It is computed without copying K and V:
    the queries are viewed as (B, H_kv, G, L, D), the keys and values as (B, H_kv, 1, S, D),
    and attention broadcasts over the group axis, so the backward sums the gradients of a
    shared head over its G queries. With H_kv = H that axis has size 1.

    **Rotary positions** (``rotary=True``; the formula is in tinylm/functional/rotary.py):
    after the head split, each query and key is turned by its position's angle, so that
    the scores depend on how far apart two tokens are. The positions are ``positions``
    when given, else 0 … L-1, or, with a ``cache`` that holds P positions, P … P+L-1; the
    keys go into the cache already turned. The cos/sin tables hold ``max_positions``
    positions. Rotary attention is self-attention (a query's and a key's positions must
    belong to one sequence).

    **Parameters** as PyTorch's ``nn.MultiheadAttention``, so its state dict loads:
    ``in_proj_weight`` = [W_q; W_k; W_v] stacked by rows, (E + 2·H_kv·D, E), which is
    PyTorch's (3E, E) when H_kv = H; ``in_proj_bias`` the same way; ``out_proj.weight``
    (E, E), ``out_proj.bias`` (E,). With ``bias=False`` none of the four projections has a
    bias. GQA keeps this one packed matrix, with shorter K and V blocks, rather than
    separate ``q_proj``/``k_proj``/``v_proj`` layers (Hugging Face's LLaMA layout): one
    layout and one code path for every setting, exactly PyTorch's and GPT-2's (its
    ``c_attn`` is the same packed matrix) when the options are off; the three blocks are
    row ranges of it, so a loader of separate matrices stacks them. Initialised as PyTorch:
    Xavier-uniform in_proj_weight (bound √(6 / (rows + E))), zero biases.

    **Batch first**: inputs are (B, L, E), like the rest of tinylm. PyTorch's default
    is ``batch_first=False``, (L, B, E); compare with ``nn.MultiheadAttention(...,
    batch_first=True)``.

    **Masks follow PyTorch's MultiheadAttention, not F.scaled_dot_product_attention**:
    a bool ``attn_mask`` or ``key_padding_mask`` marks with True the keys that may NOT
    be attended to (a float mask is added to the scores).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
        num_kv_heads: int | None = None,
        rotary: bool = False,
        rotary_theta: float = 10000.0,
        max_positions: int = 2048,
        dtype=None,
        device: str = "cpu",
    ):
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if not 0 < num_kv_heads <= num_heads or num_heads % num_kv_heads != 0:
            raise ValueError(
                f"MultiheadAttention: num_kv_heads must divide num_heads ({num_heads}), each key-value head "
                f"serving a group of query heads; got num_kv_heads={num_kv_heads}"
            )
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        rows = embed_dim + 2 * num_kv_heads * self.head_dim
        self.in_proj_weight = init.uniform((rows, embed_dim), math.sqrt(6.0 / (rows + embed_dim)), dtype, device)
        self.in_proj_bias = init.constant((rows,), 0.0, dtype, device) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype, device=device)
        if bias:
            self.out_proj.bias = init.constant((embed_dim,), 0.0, dtype, device)
        self.rotary = RotaryEmbedding(self.head_dim, max_positions, rotary_theta, dtype, device) if rotary else None

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, T, heads·D) -> (B, heads, T, D)."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, -1, self.head_dim).transpose(0, 2, 1, 3)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q (B, H, L, D), K and V (B, H_kv, S, D), each from its block of rows of in_proj_weight.

        Self-attention as well: slicing the weight, not one (B, T, rows) product, keeps the
        backward of the slices (a scatter into zeros) on the small weight.
        """
        E, kv_rows = self.embed_dim, self.num_kv_heads * self.head_dim
        blocks = ((query, 0, E), (key, E, kv_rows), (value, E + kv_rows, kv_rows))  # (input, first row, rows)
        b = self.in_proj_bias
        return tuple(
            self._split_heads(F.linear(x, self.in_proj_weight[start : start + rows], None if b is None else b[start : start + rows]))
            for x, start, rows in blocks
        )

    def _group(self, x):
        """Heads (B, H|H_kv|1, T, ·) -> (B, H_kv|1, G|1, T, ·): each key-value head beside
        the G query heads it serves (a Tensor, or a mask array)."""
        if x.shape[1] == 1:
            return x.reshape(x.shape[0], 1, 1, *x.shape[2:])
        return x.reshape(x.shape[0], self.num_kv_heads, x.shape[1] // self.num_kv_heads, *x.shape[2:])

    def _check(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.ndim != 3 or x.shape[-1] != self.embed_dim:
                raise ShapeError(f"MultiheadAttention: {name} must be (batch, length, embed_dim={self.embed_dim}), got shape {x.shape}")
        if key.shape[:2] != value.shape[:2] or query.shape[0] != key.shape[0]:
            raise ShapeError(f"MultiheadAttention: query {query.shape}, key {key.shape}, value {value.shape}: batch sizes and key/value lengths must agree")

    def _mask(self, attn_mask, key_padding_mask, batch: int, L: int, S: int, dtype, xp):
        """attn_mask ((L, S) or (B·H, L, S)) and key_padding_mask ((B, S)) as one additive (B|1, H|1, L, S) mask."""
        mask = None
        if attn_mask is not None:
            mask = _blocked_to_additive(attn_mask, dtype, xp)
            if mask.shape not in ((L, S), (batch * self.num_heads, L, S)):
                raise ShapeError(f"MultiheadAttention: attn_mask must be ({L}, {S}) or ({batch * self.num_heads}, {L}, {S}) (L, S or B·heads, L, S), got {mask.shape}")
            if mask.ndim == 3:
                mask = mask.reshape(batch, self.num_heads, L, S)
        if key_padding_mask is not None:
            padding = _blocked_to_additive(key_padding_mask, dtype, xp)
            if padding.shape != (batch, S):
                raise ShapeError(f"MultiheadAttention: key_padding_mask must be (batch, S) = ({batch}, {S}), got {padding.shape}")
            padding = padding[:, None, None, :]
            mask = padding if mask is None else mask + padding
        return mask

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        cache: LayerCache | None = None,
        positions=None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` (B, L, E) to ``key`` (B, S, E) / ``value`` (B, S, E).

        ``key`` and ``value`` default to ``query`` (self-attention). ``is_causal``: query i
        sees keys 0..i only. Returns (output (B, L, E), weights): the weights are
        (B, L, S) averaged over heads, (B, H, L, S) per head with
        ``average_attn_weights=False``, or None without ``need_weights``. They are for
        plotting and carry no gradient.

        ``cache`` (self-attention while generating, see ``nn.kv_cache``): the L new
        positions' keys and values (H_kv heads) are appended to it, and the queries attend
        to every position it holds; with ``is_causal`` new query i, at position
        ``cache.length + i``, sees the keys up to its own.

        ``positions`` (rotary attention only): the integer position of each of the L tokens,
        (L,) or (B, 1, L) for one offset per sequence; default 0 … L-1, after a cache's.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check(query, key, value)
        if self.rotary is None and positions is not None:
            raise ValueError("MultiheadAttention: positions turn rotary queries and keys; this attention has rotary=False")
        if self.rotary is not None and not (key is query and value is query):
            raise ValueError("MultiheadAttention: rotary positions are for self-attention: give the query only (no separate key or value)")
        batch, L, S = query.shape[0], query.shape[1], key.shape[1]
        xp = backend.array_module(query.data)
        if cache is not None and (attn_mask is not None or key_padding_mask is not None):
            raise ValueError("MultiheadAttention: with a cache, only is_causal masks the keys (no attn_mask or key_padding_mask)")
        mask = self._mask(attn_mask, key_padding_mask, batch, L, S, query.dtype, xp)
        if is_causal and mask is not None:
            mask = mask + additive_mask(None, True, L, S, query.dtype, xp)
            is_causal = False
        q, k, v = self._project(query, key, value)
        start = 0 if cache is None else cache.length
        if self.rotary is not None:
            positions = xp.arange(start, start + L) if positions is None else positions
            q, k = self.rotary(q, positions), self.rotary(k, positions)
        if cache is not None:
            k, v = cache.append(k, v)
            if is_causal and start > 0:  # query i, at position start + i, sees keys 0 .. start + i
                mask = None if L == 1 else xp.tri(L, start + L, start, dtype=bool)
                is_causal = False
        if mask is not None and mask.ndim == 4:
            mask = self._group(mask)
        result = F.scaled_dot_product_attention(
            self._group(q), self._group(k), self._group(v), attn_mask=mask, is_causal=is_causal, return_weights=need_weights
        )
        heads, weights = result if need_weights else (result, None)
        heads = heads.reshape(batch, self.num_heads, L, self.head_dim)
        out = self.out_proj(heads.transpose(0, 2, 1, 3).reshape(batch, L, self.embed_dim))
        if weights is not None:
            weights = weights.reshape(batch, self.num_heads, L, weights.shape[-1])
            if average_attn_weights:
                weights = weights.mean(axis=1)
        return out, weights

    def extra_repr(self) -> str:
        grouped = "" if self.num_kv_heads == self.num_heads else f", num_kv_heads={self.num_kv_heads}"
        rotary = "" if self.rotary is None else f", rotary=True, max_positions={self.rotary.max_positions}"
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}{grouped}{rotary}"


def sinusoidal_table(length: int, dim: int, dtype=np.float64) -> np.ndarray:
    """The (length, dim) table of "Attention Is All You Need":

        PE[t, 2i] = sin(t / 10000^(2i/dim)),   PE[t, 2i+1] = cos(t / 10000^(2i/dim)).

    Each pair of features is a clock of its own frequency, so a fixed offset between two
    positions is a rotation that attention can learn to read.
    """
    positions = np.arange(length)[:, None]
    frequencies = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies)[:, : dim // 2]
    return table.astype(dtype)


class SinusoidalPositionalEncoding(Module):
    """x + PE[:T] for x (B, T, dim): fixed sine/cosine position codes (no parameters)."""

    def __init__(self, max_length: int, dim: int, dtype=None, device: str = "cpu"):
        self.max_length, self.dim = max_length, dim
        table = sinusoidal_table(max_length, dim, backend.get_default_dtype() if dtype is None else dtype)
        self.table = backend.to_device(table, device)

    def forward(self, x: Tensor) -> Tensor:
        return x + Tensor._from_op(self.table[: _checked_length(x, self.max_length, self.dim)], False)

    def _moved(self, target) -> None:
        if isinstance(target, str):
            self.table = backend.to_device(self.table, target)
        else:
            self.table = self.table.astype(np.dtype(target))

    def extra_repr(self) -> str:
        return f"max_length={self.max_length}, dim={self.dim}"


class LearnedPositionalEncoding(Module):
    """x + weight[start : start + T] for x (B, T, dim): one learned vector per position, as GPT-2.

    ``weight`` (max_length, dim) starts from N(0, 0.02²), GPT-2's choice. ``start`` is the
    position of the first of the T vectors (a decoder with a cache feeds the positions
    after those it holds).
    """

    def __init__(self, max_length: int, dim: int, dtype=None, device: str = "cpu"):
        self.max_length, self.dim = max_length, dim
        self.weight = init.normal((max_length, dim), 0.02, dtype, device)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        length = _checked_length(x, self.max_length, self.dim)
        if start + length > self.max_length:
            raise ShapeError(
                f"positional encoding: positions {start}..{start + length - 1} go past the last one it has, {self.max_length - 1}"
            )
        return x + self.weight[start : start + length]

    def extra_repr(self) -> str:
        return f"max_length={self.max_length}, dim={self.dim}"


def _checked_length(x: Tensor, max_length: int, dim: int) -> int:
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ShapeError(f"positional encoding: expected input (..., T, {dim}), got shape {x.shape}")
    if x.shape[-2] > max_length:
        raise ShapeError(f"positional encoding: sequence of length {x.shape[-2]} is longer than max_length {max_length}")
    return x.shape[-2]


class AdditiveAttention(Module):
    """Additive (Bahdanau) attention, the score is a small neural network:

        score(q, kⱼ) = vᵀ tanh(W_q q + W_k kⱼ)          weights = softmax over j
        context = Σⱼ weightⱼ · valueⱼ

    Shapes: query (B, L, query_size), keys (B, S, key_size), values (B, S, Ev) ->
    context (B, L, Ev), weights (B, L, S). The decoder of a seq2seq model calls it once per
    step with L = 1. ``mask``: bool, True = may attend (as F.scaled_dot_product_attention),
    broadcastable to (B, L, S); e.g. ``(B, 1, S)`` to skip padding.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int, dtype=None, device: str = "cpu"):
        self.query_proj = Linear(query_size, hidden_size, bias=False, dtype=dtype, device=device)
        self.key_proj = Linear(key_size, hidden_size, bias=False, dtype=dtype, device=device)
        self.score = Linear(hidden_size, 1, bias=False, dtype=dtype, device=device)

    def project_keys(self, keys: Tensor) -> Tensor:
        """W_k kⱼ for every key (B, S, hidden): computed once when the keys stay the same."""
        return self.key_proj(keys)

    def attend(self, query: Tensor, projected_keys: Tensor, values: Tensor, mask=None) -> tuple[Tensor, Tensor]:
        """Like ``forward``, with the keys already passed through ``project_keys``."""
        if query.ndim != 3 or projected_keys.ndim != 3 or values.ndim != 3 or values.shape[:2] != projected_keys.shape[:2]:
            raise ShapeError(
                f"AdditiveAttention: expected query (B, L, Q), keys (B, S, K), values (B, S, Ev), "
                f"got query {query.shape}, projected keys {projected_keys.shape}, values {values.shape}"
            )
        hidden = (self.query_proj(query)[:, :, None, :] + projected_keys[:, None, :, :]).tanh()
        scores = self.score(hidden).reshape(hidden.shape[:3])
        weights = F.masked_softmax(scores, mask)
        return weights @ values, weights

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask=None) -> tuple[Tensor, Tensor]:
        """(context (B, L, Ev), weights (B, L, S)); the weights are part of the graph."""
        return self.attend(query, self.project_keys(keys), values, mask)
