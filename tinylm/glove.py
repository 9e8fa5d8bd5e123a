"""GloVe: word vectors fitted to the logarithm of how often words occur together.

Pennington, Socher and Manning (2014). First count, once, over the whole corpus:

    X[i, j] = Σ over the occurrences of word j within ``window`` words of word i of 1/distance

(a neighbour 2 words away counts ½, as in the GloVe code). Then fit vectors w_i, context
vectors w̃_j and biases b_i, b̃_j to every non-zero count by weighted least squares:

    J = Σ_{i,j: X_ij > 0} f(X_ij) · (w_iᵀ w̃_j + b_i + b̃_j - log X_ij)²

    f(x) = (x / x_max)^α for x < x_max, else 1          (x_max = 100, α = 3/4 in the paper)

f keeps the many tiny, noisy counts from dominating and stops the few huge ones ("of
the") from swamping the rest. Where word2vec streams over the text, GloVe sees only the
count table: training is over the V² (mostly empty) table's non-zero entries, not the text.
The word vectors are w + w̃ (the paper's choice: the two are symmetric up to noise).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import nn, optim
from .ops import ShapeError
from .tensor import Tensor, tensor
from .word2vec import Vocabulary, WordVectors


def cooccurrence_matrix(ids: np.ndarray, vocab_size: int, window: int = 5) -> np.ndarray:
    """X (V, V), symmetric: each pair of words at distance d ≤ window adds 1/d to both X[i, j] and X[j, i]."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.float64)
    for distance in range(1, window + 1):
        left, right = ids[:-distance], ids[distance:]
        np.add.at(counts, (left, right), 1.0 / distance)
        np.add.at(counts, (right, left), 1.0 / distance)
    return counts


def weighting(counts: np.ndarray, x_max: float = 100.0, alpha: float = 0.75) -> np.ndarray:
    """f(x) = min(1, (x / x_max)^α)."""
    return np.minimum(1.0, (counts / x_max) ** alpha)


def glove_loss(
    w: Tensor, w_context: Tensor, b: Tensor, b_context: Tensor, log_counts: Tensor, weights: Tensor
) -> Tensor:
    """The mean over a batch of N pairs of  f · (wᵀw̃ + b + b̃ - log X)².

    Shapes: w, w_context (N, D); b, b_context, log_counts, weights (N,). Built from
    primitive ops; with e = wᵀw̃ + b + b̃ - log X the gradients are dJ/dw = 2f·e·w̃/N,
    dJ/dw̃ = 2f·e·w/N and dJ/db = dJ/db̃ = 2f·e/N.
    """
    per_pair = (b, b_context, log_counts, weights)
    if w.ndim != 2 or w_context.shape != w.shape or any(t.shape != w.shape[:1] for t in per_pair):
        raise ShapeError(
            "glove_loss: expected w and w_context (N, D) and b, b_context, log_counts, weights (N,), got "
            f"{w.shape}, {w_context.shape}, {b.shape}, {b_context.shape}, {log_counts.shape}, {weights.shape}"
        )
    error = (w * w_context).sum(axis=-1) + b + b_context - log_counts
    return (weights * error * error).mean()


class GloVe(nn.Module):
    """Word and context tables (V, D) and their biases (V,), small uniform at the start
    (U(±0.5/D), as the GloVe code)."""

    def __init__(self, vocab_size: int, embed_dim: int, dtype=None, device: str = "cpu"):
        bound = 0.5 / embed_dim
        self.word_vectors = nn.init.uniform((vocab_size, embed_dim), bound, dtype, device)
        self.context_vectors = nn.init.uniform((vocab_size, embed_dim), bound, dtype, device)
        self.word_bias = nn.init.uniform((vocab_size,), bound, dtype, device)
        self.context_bias = nn.init.uniform((vocab_size,), bound, dtype, device)

    def forward(self, rows, columns, log_counts: Tensor, weights: Tensor) -> Tensor:
        """The loss of a batch of (row, column) entries of the count table."""
        return glove_loss(
            self.word_vectors[rows], self.context_vectors[columns], self.word_bias[rows],
            self.context_bias[columns], log_counts, weights,
        )

    def vectors(self) -> np.ndarray:
        """w + w̃: the word vectors GloVe reports."""
        return (self.word_vectors + self.context_vectors).numpy()


def train_glove(
    words: Sequence[str],
    embed_dim: int = 50,
    window: int = 5,
    min_count: int = 5,
    max_vocab: int | None = None,
    x_max: float = 100.0,
    alpha: float = 0.75,
    epochs: int = 10,
    batch_size: int = 4096,
    lr: float = 0.05,
    seed: int = 0,
) -> tuple[GloVe, Vocabulary, list[float]]:
    """Count co-occurrences in ``words`` and fit GloVe with Adam. Returns (model, vocabulary,
    mean loss per epoch); ``WordVectors(model.vectors(), vocabulary)`` queries the result."""
    vocabulary = Vocabulary.build(words, min_count, max_vocab)
    counts = cooccurrence_matrix(vocabulary.encode(words), len(vocabulary), window)
    rows, columns = np.nonzero(counts)
    log_counts, weights = np.log(counts[rows, columns]), weighting(counts[rows, columns], x_max, alpha)
    model = GloVe(len(vocabulary), embed_dim)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(rows))
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            dtype = model.word_bias.dtype
            batch_log_counts, batch_weights = tensor(log_counts[batch], dtype=dtype), tensor(weights[batch], dtype=dtype)
            loss = model(rows[batch], columns[batch], batch_log_counts, batch_weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.append(total / len(order))
    return model, vocabulary, history


def neighbour_overlap(first: WordVectors, second: WordVectors, words: Sequence[str], k: int = 10) -> dict[str, float]:
    """For each word, the share of its k nearest neighbours that the two sets of vectors agree on.

    1.0: the same k neighbours (in any order); for unrelated random vectors about k / V.
    Both must know every word (e.g. word2vec and GloVe trained on the same text).
    """
    overlap = {}
    for word in words:
        ours = {w for w, _ in first.most_similar(word, k)}
        theirs = {w for w, _ in second.most_similar(word, k)}
        overlap[word] = len(ours & theirs) / k
    return overlap
