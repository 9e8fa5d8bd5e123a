"""BERT: a bidirectional Transformer encoder, pretrained as a masked language model.

Devlin et al. (2018), layer for layer as Hugging Face's ``BertModel``, ``BertForMaskedLM``
and ``BertForSequenceClassification``, so their weights load into these classes
(``tinylm.pretrained.load``) and give the same outputs::

    x = LN(word_embedding[ids] + token_type_embedding[types] + position_embedding[0..T-1])
    each layer, post-norm (as the original Transformer):
        x = LN(x + Dropout(Attention(x)))               not causal: every token sees every other
        x = LN(x + Dropout(W₂ GELU(W₁ x + b₁) + b₂))    W₁ (I, E), W₂ (E, I); the exact (erf) GELU
    hidden states x: (B, T, E)

LN is a LayerNorm with eps 1e-12 (BERT's). The heads on top:

* masked LM: logits = LN(GELU(x W_tᵀ + b_t)) Wᵀ + b: W is the word embedding itself (tied:
  the same matrix reads words in and scores them out), b a bias of its own (V,);
* sequence classification: pooled = tanh(x[:, 0] W_pᵀ + b_p), the first token's ([CLS])
  vector through the "pooler"; logits = Dropout(pooled) W_cᵀ + b_c.

Against ``nn.GPT``: the same parts (``MultiheadAttention``, ``LayerNorm``, the MLP), but
each LayerNorm comes *after* its residual sum (post-norm), no causal mask, token types
(which of two segments a token belongs to), and the exact GELU instead of the tanh one.

**Padding.** ``attention_mask`` (B, T) is 1 for a real token and 0 for padding, as in
Hugging Face: no token attends to a padded one. The padded positions still get outputs
(computed from the real tokens); ignore them. Each sequence needs one real token at least.

**Dropout.** Hugging Face also drops attention weights while training
(``attention_probs_dropout_prob``); tinylm's fused attention has no dropout on its
weights, so here only the hidden states are dropped (embeddings, both sub-layers' outputs,
the pooled vector). In eval mode the two compute the same function.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..ops import ShapeError
from ..tensor import Tensor
from . import init
from .attention import LearnedPositionalEncoding, MultiheadAttention
from .linear import GELU, Dropout, Embedding, Linear, check_token_ids
from .module import Module, Sequential
from .normalization import LayerNorm


class BertLayer(Module):
    """One post-norm encoder layer: x (B, T, E) -> (B, T, E).

        x = attention_norm(x + Dropout(Attention(x)))
        x = mlp_norm(x + Dropout(MLP(x)))             MLP = Linear(E, I) → GELU → Linear(I, E)

    The parts and names of ``nn.TransformerBlock``, in the other order.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_dim: int,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.1,
        approximate: str = "none",
        dtype=None,
        device: str = "cpu",
    ):
        self.attention = MultiheadAttention(embed_dim, num_heads, dtype=dtype, device=device)
        self.attention_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.mlp = Sequential(
            Linear(embed_dim, mlp_dim, dtype=dtype, device=device),
            GELU(approximate),
            Linear(mlp_dim, embed_dim, dtype=dtype, device=device),
        )
        self.mlp_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, padding=None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """(output, attention weights (B, H, T, T) or None). ``padding``: bool (B, T), True = a padded key."""
        attended, weights = self.attention(
            x, key_padding_mask=padding, need_weights=need_weights, average_attn_weights=False
        )
        x = self.attention_norm(x + self.dropout(attended))
        return self.mlp_norm(x + self.dropout(self.mlp(x))), weights


class BertModel(Module):
    """The BERT encoder: token ids (B, T) -> hidden states (B, T, E).

    Sizes (Hugging Face's config names in brackets; the defaults are BERT-base's):
    ``vocab_size`` [vocab_size], ``context_length`` [max_position_embeddings] = 512,
    ``embed_dim`` [hidden_size] = 768, ``num_heads`` [num_attention_heads] = 12,
    ``num_layers`` [num_hidden_layers] = 12, ``mlp_dim`` [intermediate_size] = 3072,
    ``type_vocab_size`` = 2, ``layer_norm_eps`` = 1e-12, ``dropout`` [hidden_dropout_prob] = 0.1,
    ``approximate`` ("none": the exact GELU [hidden_act "gelu"]; "tanh" [hidden_act "gelu_new"]),
    ``pad_token_id`` = 0: the padding id, whose embedding row never gets a gradient (as HF's).

    Weights start as BERT's: N(0, 0.02²) for every matrix, zero biases, LayerNorms at 1/0.
    Unlike Hugging Face's ``BertModel``, it has no pooler: that belongs to the
    classification head (``BertForSequenceClassification.pooler``).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 512,
        embed_dim: int = 768,
        num_heads: int = 12,
        num_layers: int = 12,
        mlp_dim: int = 3072,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.1,
        approximate: str = "none",
        pad_token_id: int | None = 0,
        dtype=None,
        device: str = "cpu",
    ):
        self.vocab_size, self.context_length, self.embed_dim = vocab_size, context_length, embed_dim
        self.layer_norm_eps, self.approximate = layer_norm_eps, approximate
        self.token_embedding = Embedding(vocab_size, embed_dim, padding_idx=pad_token_id, dtype=dtype, device=device)
        self.position_embedding = LearnedPositionalEncoding(context_length, embed_dim, dtype=dtype, device=device)
        self.token_type_embedding = Embedding(type_vocab_size, embed_dim, dtype=dtype, device=device)
        self.embedding_norm = LayerNorm(embed_dim, eps=layer_norm_eps, dtype=dtype, device=device)
        self.dropout = Dropout(dropout)
        self.layers = [
            BertLayer(embed_dim, num_heads, mlp_dim, layer_norm_eps, dropout, approximate, dtype=dtype, device=device)
            for _ in range(num_layers)
        ]
        init.normal_matrices_zero_biases(self)
        if pad_token_id is not None:
            self.token_embedding.weight.data[pad_token_id] = 0

    def _check(self, ids, token_type_ids) -> tuple[int, int]:
        """The shape (B, T) of the ids (a Tensor, an array or nested lists), which the token types must share."""
        shape = check_token_ids(ids, self.context_length, "BertModel")
        if token_type_ids is not None and np.shape(token_type_ids) != shape:
            raise ShapeError(
                f"BertModel: token_type_ids must have the shape of the ids {shape}, got {np.shape(token_type_ids)}"
            )
        return shape

    def _padding(self, attention_mask, shape: tuple[int, int]):
        """Hugging Face's attention_mask (1 = real token, 0 = padding) as MultiheadAttention's
        key_padding_mask (True = padded), on the model's device; None stays None."""
        if attention_mask is None:
            return None
        xp = backend.array_module(self.embedding_norm.weight.data)
        mask = attention_mask.data if isinstance(attention_mask, Tensor) else xp.asarray(attention_mask)
        if tuple(mask.shape) != shape:
            raise ShapeError(
                f"BertModel: attention_mask must have the shape of the ids {shape} (1 = real token, 0 = padding), "
                f"got {tuple(mask.shape)}"
            )
        return mask == 0

    def forward(self, ids, token_type_ids=None, attention_mask=None, return_attention: bool = False):
        """Hidden states (B, T, E) of ids (B, T).

        ``token_type_ids`` (B, T): the segment of each token (default: all 0).
        ``attention_mask`` (B, T): 1 = real token, 0 = padding (default: all real).
        With ``return_attention``: (hidden states, [each layer's attention weights (B, H, T, T)]).
        """
        shape = self._check(ids, token_type_ids)
        types = np.zeros(shape, dtype=np.int64) if token_type_ids is None else token_type_ids
        x = self.position_embedding(self.token_embedding(ids) + self.token_type_embedding(types))
        x = self.dropout(self.embedding_norm(x))
        padding = self._padding(attention_mask, shape)
        attention = []
        for layer in self.layers:
            x, weights = layer(x, padding, need_weights=return_attention)
            attention.append(weights)
        return (x, attention) if return_attention else x

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, context_length={self.context_length}, approximate={self.approximate!r}"


class BertForMaskedLM(Module):
    """BERT with its masked-LM head: ids (B, T) -> logits (B, T, V) of the word at every position.

        h = transform_norm(GELU(transform(x)))      x the encoder's hidden states
        logits = h Wᵀ + decoder_bias                W = bert.token_embedding.weight (tied)

    With ``positions`` (flat indices into the B·T positions) only those rows get logits,
    (len(positions), V): training needs the ~15% masked positions only, and the head is the
    costliest product of the model (E·V per position). Built on an encoder:
    ``BertForMaskedLM(BertModel(vocab_size, ...))``; the head starts as BERT's.
    """

    def __init__(self, bert: BertModel):
        self.bert = bert
        weight = bert.embedding_norm.weight
        self.transform = Linear(bert.embed_dim, bert.embed_dim, dtype=weight.dtype, device=weight.device)
        self.transform_norm = LayerNorm(bert.embed_dim, eps=bert.layer_norm_eps, dtype=weight.dtype, device=weight.device)
        self.decoder_bias = init.constant((bert.vocab_size,), 0.0, weight.dtype, weight.device)
        init.normal_matrices_zero_biases(self.transform)

    @property
    def vocab_size(self) -> int:
        return self.bert.vocab_size

    @property
    def context_length(self) -> int:
        return self.bert.context_length

    def forward(self, ids, token_type_ids=None, attention_mask=None, positions=None) -> Tensor:
        hidden = self.bert(ids, token_type_ids, attention_mask)
        if positions is not None:
            hidden = hidden.reshape(-1, self.bert.embed_dim)[positions]
        h = self.transform_norm(F.gelu(self.transform(hidden), self.bert.approximate))
        return F.linear(h, self.bert.token_embedding.weight, self.decoder_bias)


class BertForSequenceClassification(Module):
    """BERT with a classification head: ids (B, T) -> logits (B, num_labels).

        pooled = tanh(pooler(x[:, 0]))              the first token's ([CLS]) hidden state
        logits = classifier(Dropout(pooled))

    Built on an encoder, which it shares (not copies): to fine-tune a pretrained BERT,
    ``BertForSequenceClassification(masked_lm.bert, num_labels=2)``. The pooler and the
    classifier start as BERT's (N(0, 0.02²), zero biases). ``dropout``: Hugging Face's
    classifier_dropout (default hidden_dropout_prob, 0.1).
    """

    def __init__(self, bert: BertModel, num_labels: int, dropout: float = 0.1):
        self.bert, self.num_labels = bert, num_labels
        weight = bert.embedding_norm.weight
        self.pooler = Linear(bert.embed_dim, bert.embed_dim, dtype=weight.dtype, device=weight.device)
        self.dropout = Dropout(dropout)
        self.classifier = Linear(bert.embed_dim, num_labels, dtype=weight.dtype, device=weight.device)
        init.normal_matrices_zero_biases(self.pooler)
        init.normal_matrices_zero_biases(self.classifier)

    def features(self, ids, token_type_ids=None, attention_mask=None) -> Tensor:
        """The pooled vector (B, E) that the classifier reads."""
        return self.pooler(self.bert(ids, token_type_ids, attention_mask)[:, 0]).tanh()

    def forward(self, ids, token_type_ids=None, attention_mask=None) -> Tensor:
        return self.classifier(self.dropout(self.features(ids, token_type_ids, attention_mask)))

    def extra_repr(self) -> str:
        return f"num_labels={self.num_labels}"
