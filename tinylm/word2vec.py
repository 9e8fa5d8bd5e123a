"""word2vec: word vectors learned by telling real (word, context) pairs from made-up ones.

Two tasks (Mikolov et al., 2013), each with an input table W_in (V, D) and an output
table W_out (V, D):

* **skip-gram**: the centre word predicts each word within ``window`` of it:
  v = W_in[centre], target = a context word.
* **CBOW** (continuous bag of words): the context predicts the centre:
  v = mean of W_in[context words], target = the centre word.

**Negative sampling** replaces a softmax over the whole vocabulary by K binary decisions:
the target is a real pair, K words drawn from the noise distribution P(w) ∝ count(w)^0.75
are fake ones (the 0.75 power gives rare words more chances than their counts would).
For one example, with u = W_out[target] and n₁…n_K = W_out[noise words]:

    loss = -log σ(u·v) - Σ_k log σ(-n_k·v)

**Subsampling**: very frequent words ("the", "a") say little about their neighbours, so each
occurrence of a word with frequency f is dropped with probability 1 - √(t/f) (t ~ 1e-3).

Trained vectors (W_in) place words used in similar contexts close together by cosine
similarity: ``WordVectors.most_similar`` and ``WordVectors.analogy`` query them.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import backend, nn, optim
from . import functional as F
from .ops import Function, ShapeError
from .tensor import Tensor, no_grad, tensor

MODES = ("skipgram", "cbow")


def corpus_words(text: str) -> list[str]:
    """The words of a text: runs of letters, lower-cased (numbers and punctuation dropped)."""
    return re.findall(r"[a-z]+", text.lower())


# ---------------------------------------------------------------- vocabulary


@dataclass(repr=False)
class Vocabulary:
    """Words (most frequent first) and how often each occurred in the training text."""

    words: list[str]
    counts: np.ndarray

    @classmethod
    def build(cls, words: Sequence[str], min_count: int = 5, max_size: int | None = None) -> "Vocabulary":
        """The words occurring at least ``min_count`` times (at most ``max_size``, the most frequent)."""
        kept = [(word, count) for word, count in Counter(words).most_common(max_size) if count >= min_count]
        if not kept:
            raise ValueError(f"no word occurs at least min_count={min_count} times in {len(words)} words")
        return cls([word for word, _ in kept], np.array([count for _, count in kept], dtype=np.int64))

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words: {', '.join(self.words[:5])}, ...)"

    def encode(self, words: Sequence[str]) -> np.ndarray:
        """Ids of the words that are in the vocabulary (the others are skipped)."""
        return np.array([self.index[w] for w in words if w in self.index], dtype=np.int64)

    def id_of(self, word: str) -> int:
        if word not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self)} words (too rare, or never seen)")
        return self.index[word]

    def to_dict(self) -> dict:
        """Plain data for ``tl.save``."""
        return {"words": list(self.words), "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        return cls(list(data["words"]), np.asarray(data["counts"], dtype=np.int64))


def subsample(ids: np.ndarray, counts: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """Drop each occurrence of word w with probability 1 - √(threshold / f(w)), f = its frequency.

    Words rarer than ``threshold`` are always kept; ``threshold=0`` keeps everything.
    """
    if threshold <= 0:
        return ids
    frequency = counts / counts.sum()
    keep_probability = np.minimum(1.0, np.sqrt(threshold / frequency))
    return ids[rng.random(len(ids)) < keep_probability[ids]]


class NegativeSampler:
    """Draws noise words from P(w) ∝ count(w)^power, never the example's own target word."""

    def __init__(self, counts: np.ndarray, power: float = 0.75):
        weights = np.asarray(counts, dtype=np.float64) ** power
        self.cumulative = np.cumsum(weights / weights.sum())
        if len(self.cumulative) < 2:
            raise ValueError("negative sampling needs a vocabulary of at least 2 words (a noise word ≠ the target)")

    def probabilities(self) -> np.ndarray:
        return np.diff(self.cumulative, prepend=0.0)

    def _draw(self, shape, rng: np.random.Generator) -> np.ndarray:
        ids = np.searchsorted(self.cumulative, rng.random(shape), side="right")
        return np.minimum(ids, len(self.cumulative) - 1)  # guards against rounding at the top end

    def sample(self, targets: np.ndarray, num_negatives: int, rng: np.random.Generator) -> np.ndarray:
        """Noise ids (N, num_negatives), redrawn wherever a draw equals its row's target."""
        noise = self._draw((len(targets), num_negatives), rng)
        clash = noise == targets[:, None]
        while clash.any():
            noise[clash] = self._draw(int(clash.sum()), rng)
            clash = noise == targets[:, None]
        return noise


def skipgram_pairs(ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (centre, context) pair with the context at most ``window`` positions away."""
    centres, contexts = [], []
    for offset in range(1, window + 1):
        centres += [ids[:-offset], ids[offset:]]
        contexts += [ids[offset:], ids[:-offset]]
    return np.concatenate(centres), np.concatenate(contexts)


def cbow_examples(ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(contexts (N, 2·window), centres (N,)) for every position with a full window on both sides."""
    n = len(ids) - 2 * window
    if n < 1:
        return np.zeros((0, 2 * window), dtype=np.int64), np.zeros(0, dtype=np.int64)
    offsets = [o for o in range(-window, window + 1) if o != 0]
    contexts = np.stack([ids[window + o : window + o + n] for o in offsets], axis=1)
    return contexts, ids[window : window + n]


# ---------------------------------------------------------------- the loss


def _log_sigmoid(xp, x):
    """log σ(x) = -log(1 + e⁻ˣ), without overflow for large |x|."""
    return -xp.logaddexp(0.0, -x)


def _sigmoid(xp, x):
    return xp.tanh(x * 0.5) * 0.5 + 0.5


class NegativeSamplingLoss(Function):
    """The mean over N examples of  -log σ(u·v) - Σ_k log σ(-n_k·v).

    Inputs: v (N, D) the input vectors, u (N, D) the target vectors, n (N, K, D) the noise
    vectors. With s = u·v, s_k = n_k·v and σ'(x) = σ(x)(1 - σ(x)), d/dx log σ(x) = 1 - σ(x):

        dL/du   = (σ(s) - 1) · v / N
        dL/dn_k = σ(s_k) · v / N
        dL/dv   = ((σ(s) - 1) · u + Σ_k σ(s_k) · n_k) / N
    """

    def forward(self, v, u, noise):
        xp = backend.array_module(v)
        positive = (u * v).sum(axis=-1)  # (N,)
        negative = (noise @ v[:, :, None])[..., 0]  # (N, K)
        self.v, self.u, self.noise = v, u, noise
        self.positive_coefficient = _sigmoid(xp, positive) - 1  # (N,)
        self.negative_coefficient = _sigmoid(xp, negative)  # (N, K)
        loss = -_log_sigmoid(xp, positive) - _log_sigmoid(xp, -negative).sum(axis=-1)
        return loss.mean()

    def backward(self, grad):
        scale = grad / self.v.shape[0]
        positive = self.positive_coefficient[:, None] * scale
        negative = self.negative_coefficient[:, :, None] * scale
        grad_v = positive * self.u + (negative * self.noise).sum(axis=1)
        grad_u = positive * self.v
        grad_noise = negative * self.v[:, None, :]
        return grad_v, grad_u, grad_noise


def _check_loss_shapes(v: Tensor, u: Tensor, noise: Tensor) -> None:
    if v.ndim != 2 or u.shape != v.shape or noise.ndim != 3 or noise.shape[::2] != v.shape:
        raise ShapeError(
            f"negative_sampling_loss: expected v (N, D), u (N, D) and noise (N, K, D), "
            f"got {v.shape}, {u.shape} and {noise.shape}"
        )


def negative_sampling_loss(v: Tensor, u: Tensor, noise: Tensor) -> Tensor:
    """Mean negative-sampling loss (see ``NegativeSamplingLoss``): v, u (N, D), noise (N, K, D)."""
    _check_loss_shapes(v, u, noise)
    return NegativeSamplingLoss.apply(v, u, noise)


def negative_sampling_loss_composed(v: Tensor, u: Tensor, noise: Tensor) -> Tensor:
    """The same loss from primitive ops, so autograd derives the backward (the reference twin).

    log σ(x) is written as -log(1 + e⁻ˣ): fine for the moderate scores of a test.
    """
    _check_loss_shapes(v, u, noise)
    positive = (u * v).sum(axis=-1)
    negative = (noise @ v.reshape(v.shape[0], v.shape[1], 1)).reshape(noise.shape[:2])
    loss = (1 + (-positive).exp()).log() + (1 + negative.exp()).log().sum(axis=-1)
    return loss.mean()


# ---------------------------------------------------------------- the model


class Word2Vec(nn.Module):
    """The input vectors W_in (V, D) and output vectors W_out (V, D) of skip-gram or CBOW.

    As the original C code: W_in starts uniform in ±0.5/D, W_out at zero (so every score
    starts at 0 and the first loss is (K + 1)·ln 2). W_in are the word vectors one keeps.
    """

    def __init__(self, vocab_size: int, embed_dim: int, mode: str = "skipgram", dtype=None, device: str = "cpu"):
        if mode not in MODES:
            raise ValueError(f"Word2Vec: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.input_vectors = nn.init.uniform((vocab_size, embed_dim), 0.5 / embed_dim, dtype, device)
        self.output_vectors = nn.init.constant((vocab_size, embed_dim), 0.0, dtype, device)

    def input_vector(self, inputs) -> Tensor:
        """v: W_in[centre] (skip-gram), or the mean of W_in over the context words (CBOW)."""
        v = F.embedding(inputs, self.input_vectors)
        return v.mean(axis=1) if self.mode == "cbow" else v

    def forward(self, inputs, targets, negatives) -> Tensor:
        """The loss of a batch. inputs: centre ids (N,) for skip-gram, context ids (N, 2·window)
        for CBOW; targets (N,); negatives (N, K)."""
        u = F.embedding(targets, self.output_vectors)
        noise = F.embedding(negatives, self.output_vectors)
        return negative_sampling_loss(self.input_vector(inputs), u, noise)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class WordVectors:
    """Word vectors (V, D) with their vocabulary: nearest neighbours and analogies by cosine."""

    def __init__(self, vectors, vocabulary: Vocabulary):
        self.vectors = backend.to_numpy(vectors.data if isinstance(vectors, Tensor) else vectors).astype(np.float64)
        self.vocabulary = vocabulary
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.where(norms > 0, norms, 1.0)

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.vocabulary.id_of(word)]

    def similarity(self, a: str, b: str) -> float:
        """cos(a, b) = a·b / (‖a‖‖b‖)."""
        return float(self.unit[self.vocabulary.id_of(a)] @ self.unit[self.vocabulary.id_of(b)])

    def _nearest(self, query: np.ndarray, exclude: set[int], k: int) -> list[tuple[str, float]]:
        scores = self.unit @ (query / max(np.linalg.norm(query), 1e-12))
        scores[list(exclude)] = -np.inf
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.vocabulary.words[i], float(scores[i])) for i in best]

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words with the highest cosine similarity to ``word`` (itself left out)."""
        i = self.vocabulary.id_of(word)
        return self._nearest(self.unit[i], {i}, k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the words nearest b - a + c (unit vectors; a, b, c left out).

        E.g. analogy("man", "king", "woman") ≈ "queen" on a large corpus.
        """
        ids = [self.vocabulary.id_of(w) for w in (a, b, c)]
        query = self.unit[ids[1]] - self.unit[ids[0]] + self.unit[ids[2]]
        return self._nearest(query, set(ids), k)


def training_examples(ids: np.ndarray, mode: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of every example in ``ids``: skip-gram pairs or CBOW windows."""
    return cbow_examples(ids, window) if mode == "cbow" else skipgram_pairs(ids, window)


def train_word2vec(
    words: Sequence[str],
    mode: str = "skipgram",
    embed_dim: int = 50,
    window: int = 2,
    num_negatives: int = 5,
    min_count: int = 5,
    max_vocab: int | None = None,
    subsample_threshold: float = 1e-3,
    epochs: int = 1,
    batch_size: int = 512,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[Word2Vec, Vocabulary, list[float]]:
    """Train word2vec on a list of words with Adam. Returns (model, vocabulary, loss per step).

    Each epoch subsamples the text afresh, builds its examples, shuffles them and draws new
    noise words for every batch. ``WordVectors(model.input_vectors, vocabulary)`` queries
    the result.
    """
    vocabulary = Vocabulary.build(words, min_count, max_vocab)
    ids = vocabulary.encode(words)
    rng = np.random.default_rng(seed)
    sampler = NegativeSampler(vocabulary.counts)
    model = Word2Vec(len(vocabulary), embed_dim, mode)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        inputs, targets = training_examples(subsample(ids, vocabulary.counts, subsample_threshold, rng), mode, window)
        order = rng.permutation(len(targets))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            negatives = sampler.sample(targets[batch], num_negatives, rng)
            loss = model(tensor(inputs[batch]), tensor(targets[batch]), tensor(negatives))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return model, vocabulary, losses


@no_grad()
def pair_scores(model: Word2Vec, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """σ(u·v) for each (input, target): the model's probability that the pair is real."""
    u = F.embedding(targets, model.output_vectors)
    return (u * model.input_vector(inputs)).sum(axis=-1).sigmoid().numpy()
