"""Pretraining and fine-tuning: learn from raw text first, then from a few labels.

Labels are scarce, text is not. So train a Transformer on the text alone first, then
put a small classification head on it and fine-tune the whole network on the labels.

* **Masked language model** (BERT's objective): a *bidirectional* encoder (no causal mask,
  every word sees the whole passage) reads a passage in which 15% of the positions were
  chosen for prediction; of those, 80% are replaced by ``[MASK]``, 10% by a random word
  and 10% left as they were (so the model cannot tell from the input which words it will
  be asked about, and must keep a good representation of every word). The loss is the
  cross-entropy at the chosen positions only.
* **Causal language model** (GPT's objective): predict each next word; ``nn.GPT``.

**The labelled task** (derived from the built-in corpus, so it works offline): which of
four sections of the Python reference — ``compound`` (compound statements), ``debugger``
(pdb), ``formatstrings`` (the format mini-language), ``specialnames`` (special method
names) — a passage of 32 consecutive words comes from. The passages are cut
back to back from each section's text. The encoder is pretrained on the whole corpus
(these passages included, without their labels), as a model pretrained on a large
corpus may well have read the text of a later task.

**Features for the head**: the encoder's outputs averaged over the passage ("mean"), or
the output at the first or last position; for the GPT the last position ("last") is the
only one that has seen the whole passage.

**A real BERT** (``nn.BertForMaskedLM``, ``nn.BertForSequenceClassification``, loaded with
``tinylm.pretrained.load``) goes through the same functions: ``pretrain_masked_lm`` (with
its tokenizer's ``mask_id``), ``fine_tune`` and ``predict`` (with the ``attention_mask``
of padded passages, from ``data.WordPieceTokenizer.encode_batch``), and ``mask_tokens``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import backend, nn, optim
from . import functional as F
from .data import random_windows
from .nn.linear import check_token_ids
from .tensor import Tensor, no_grad, tensor
from .word2vec import Vocabulary, corpus_words

SPECIAL_TOKENS = ("[UNK]", "[MASK]")
UNKNOWN, MASK = 0, 1
DEFAULT_TOPICS = ("compound", "debugger", "formatstrings", "specialnames")
POOLINGS = ("mean", "first", "last")
IGNORE = -100  # F.cross_entropy's default ignore_index: positions that are not predicted


# ---------------------------------------------------------------- words and passages


def word_vocabulary(words: Sequence[str], min_count: int = 2, max_words: int | None = None) -> Vocabulary:
    """The words seen at least ``min_count`` times (the ``max_words`` most frequent), after
    the special tokens [UNK] and [MASK]."""
    words_only = Vocabulary.build(words, min_count, max_words)
    counts = np.concatenate([np.zeros(len(SPECIAL_TOKENS), dtype=np.int64), words_only.counts])
    return Vocabulary(list(SPECIAL_TOKENS) + words_only.words, counts)


def encode_words(vocabulary: Vocabulary, words: Sequence[str]) -> np.ndarray:
    """Ids of every word, [UNK] for the words outside the vocabulary."""
    return np.array([vocabulary.index.get(word, UNKNOWN) for word in words], dtype=np.int64)


def topic_passages(
    vocabulary: Vocabulary, length: int = 32, topics: Sequence[str] = DEFAULT_TOPICS
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled task: passages (N, length) of word ids cut back to back from each topic's
    text in ``pydoc_data.topics``, and labels (N,) = the topic's position in ``topics``."""
    from pydoc_data.topics import topics as texts

    missing = [topic for topic in topics if topic not in texts]
    if missing:
        raise KeyError(f"topics {missing} are not in this Python's pydoc_data.topics (it has e.g. {sorted(texts)[:5]})")
    passages, labels = [], []
    for label, topic in enumerate(topics):
        ids = encode_words(vocabulary, corpus_words(texts[topic]))
        count = len(ids) // length
        passages.append(ids[: count * length].reshape(count, length))
        labels.append(np.full(count, label, dtype=np.int64))
    return np.concatenate(passages), np.concatenate(labels)


def few_labels_split(labels: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``per_class`` random examples of each class (to train on) and of all the rest (to test on)."""
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)])
    return np.sort(chosen), np.setdiff1d(np.arange(len(labels)), chosen)


def mask_tokens(
    ids: np.ndarray,
    vocab_size: int,
    mask_probability: float = 0.15,
    mask_id: int = MASK,
    first_word_id: int = len(SPECIAL_TOKENS),
    special_ids: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's corruption: (inputs, targets) for a masked-language-model batch.

    Each position is chosen with probability ``mask_probability``; a chosen position's
    target is its word (elsewhere ``IGNORE``) and its input becomes ``mask_id`` (80%), a
    random word from ``first_word_id`` to ``vocab_size - 1`` (10%) or stays (10%). Ids in
    ``special_ids`` are never chosen (a real BERT's [CLS], [SEP], [PAD]: its tokenizer's
    ``special_ids``; its random words come from the whole vocabulary, ``first_word_id=0``,
    as Hugging Face draws them). Random draws from tl's CPU generator (``tl.manual_seed``).
    """
    generator = backend.generator("cpu")
    chosen = (generator.random(ids.shape) < mask_probability) & ~np.isin(ids, special_ids)
    targets = np.where(chosen, ids, IGNORE)
    action = generator.random(ids.shape)
    inputs = np.where(chosen & (action < 0.8), mask_id, ids)
    random_words = generator.integers(first_word_id, vocab_size, size=ids.shape)
    inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_words, inputs)
    return inputs, targets


# ---------------------------------------------------------------- models


class TransformerEncoder(nn.Module):
    """A bidirectional Transformer: ids (B, T) -> one vector per position (B, T, E).

        x = token_embedding[ids] + position_embedding[0..T-1]
        x = block_N(… block_1(x))           no causal mask: every position sees every other
        out = final_norm(x)

    The same blocks as ``nn.GPT`` (pre-norm ``nn.TransformerBlock``), only not causal.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        embed_dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dropout: float = 0.1,
        dtype=None,
        device: str = "cpu",
    ):
        self.vocab_size, self.context_length, self.embed_dim = vocab_size, context_length, embed_dim
        self.token_embedding = nn.Embedding(vocab_size, embed_dim, dtype=dtype, device=device)
        self.position_embedding = nn.LearnedPositionalEncoding(context_length, embed_dim, dtype=dtype, device=device)
        self.dropout = nn.Dropout(dropout)
        self.blocks = [
            nn.TransformerBlock(embed_dim, num_heads, dropout, dtype=dtype, device=device) for _ in range(num_layers)
        ]
        self.final_norm = nn.LayerNorm(embed_dim, dtype=dtype, device=device)

    def forward(self, ids) -> Tensor:
        check_token_ids(ids, self.position_embedding.max_length, "TransformerEncoder")
        x = self.dropout(self.position_embedding(self.token_embedding(ids)))
        for block in self.blocks:
            x = block(x, is_causal=False)
        return self.final_norm(x)


class MaskedLanguageModel(nn.Module):
    """An encoder and a linear head over the vocabulary: ids (B, T) -> logits (B, T, V).

    With ``positions`` (flat indices into the B·T positions) only those rows get logits,
    (len(positions), V): the loss needs the ~15% chosen positions only, and the head is
    the most costly product of the model (E·V per position).
    """

    def __init__(self, encoder: TransformerEncoder):
        self.encoder = encoder
        weight = encoder.final_norm.weight
        self.head = nn.Linear(encoder.embed_dim, encoder.vocab_size, dtype=weight.dtype, device=weight.device)

    @property
    def vocab_size(self) -> int:
        return self.encoder.vocab_size

    @property
    def context_length(self) -> int:
        return self.encoder.context_length

    def forward(self, ids, positions=None) -> Tensor:
        hidden = self.encoder(ids)
        if positions is not None:
            hidden = hidden.reshape(-1, self.encoder.embed_dim)[positions]
        return self.head(hidden)


class GPTBackbone(nn.Module):
    """A ``nn.GPT`` as a backbone: its hidden states (B, T, E), the input of its language-model head.

    The parameters keep their names under ``gpt.``, so a pretrained GPT's state dict loads.
    """

    def __init__(self, gpt: nn.GPT):
        self.gpt = gpt

    def forward(self, ids) -> Tensor:
        return self.gpt.features(ids)


class SequenceClassifier(nn.Module):
    """A backbone (ids -> (B, T, E)), pooling over time, dropout and a linear head -> (B, num_classes).

    pooling: "mean" (average over positions), "first" or "last" (one position's vector).
    """

    def __init__(
        self, backbone: nn.Module, embed_dim: int, num_classes: int, pooling: str = "mean", dropout: float = 0.1
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceClassifier: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.backbone, self.pooling = backbone, pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)

    def features(self, ids) -> Tensor:
        hidden = self.backbone(ids)
        if self.pooling == "mean":
            return hidden.mean(axis=1)
        return hidden[:, 0] if self.pooling == "first" else hidden[:, -1]

    def forward(self, ids) -> Tensor:
        return self.head(self.dropout(self.features(ids)))

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}"


# ---------------------------------------------------------------- training


def _step(optimizer: optim.Optimizer, loss: Tensor) -> float:
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def pretrain_masked_lm(
    model: nn.Module,
    ids: np.ndarray,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    mask_id: int = MASK,
    first_word_id: int = len(SPECIAL_TOKENS),
    window: int | None = None,
) -> list[float]:
    """Masked-LM training on random windows of the id stream. Returns the losses.

    ``model``: a ``MaskedLanguageModel``, or any model with ``vocab_size``, ``context_length``
    and ``model(ids, positions=...)``, such as ``nn.BertForMaskedLM`` (then pass its
    tokenizer's ``mask_id``). ``mask_id``, ``first_word_id``: as ``mask_tokens``.
    ``window``: the windows' length (default: the model's context_length; a real BERT's
    512 is slow on a CPU).
    """
    optimizer = optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        windows, _ = random_windows(ids, batch_size, window or model.context_length)
        inputs, targets = mask_tokens(windows, model.vocab_size, mask_id=mask_id, first_word_id=first_word_id)
        positions = np.flatnonzero(targets != IGNORE)
        logits = model(tensor(inputs), positions=positions)
        losses.append(_step(optimizer, F.cross_entropy(logits, targets.reshape(-1)[positions])))
    return losses


def pretrain_causal_lm(gpt: nn.GPT, ids: np.ndarray, steps: int, batch_size: int = 32, lr: float = 3e-3) -> list[float]:
    """Next-word training of a GPT on random windows of the id stream. Returns the losses."""
    optimizer = optim.AdamW(gpt.parameters(), lr=lr)
    gpt.train()
    losses = []
    for _ in range(steps):
        inputs, targets = random_windows(ids, batch_size, gpt.context_length)
        losses.append(_step(optimizer, F.cross_entropy(gpt(tensor(inputs)), targets)))
    return losses


def _classify(classifier: nn.Module, ids: np.ndarray, attention_mask: np.ndarray | None, rows) -> Tensor:
    """The logits of the passages ``ids[rows]``, with their padding mask when there is one."""
    if attention_mask is None:
        return classifier(tensor(ids[rows]))
    return classifier(tensor(ids[rows]), attention_mask=attention_mask[rows])


def fine_tune(
    classifier: nn.Module,
    ids: np.ndarray,
    labels: np.ndarray,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    attention_mask: np.ndarray | None = None,
) -> list[float]:
    """Train the whole classifier (backbone and head) on labelled passages. Returns the losses.

    ``classifier``: a ``SequenceClassifier`` or an ``nn.BertForSequenceClassification``; for
    padded passages, ``attention_mask`` (N, T): 1 = real token, 0 = padding. A pretrained
    BERT wants a small ``lr`` (2e-5 to 5e-5 in the BERT paper).
    """
    optimizer = optim.AdamW(classifier.parameters(), lr=lr)
    classifier.train()
    generator = backend.generator("cpu")
    losses = []
    for _ in range(steps):
        batch = generator.integers(0, len(ids), size=min(batch_size, len(ids)))
        losses.append(_step(optimizer, F.cross_entropy(_classify(classifier, ids, attention_mask, batch), labels[batch])))
    return losses


@no_grad()
def predict(classifier: nn.Module, ids: np.ndarray, batch_size: int = 256, attention_mask: np.ndarray | None = None) -> np.ndarray:
    """The most likely class of every passage (in eval mode: no dropout); ``attention_mask`` as ``fine_tune``."""
    classifier.eval()
    batches = (slice(start, start + batch_size) for start in range(0, len(ids), batch_size))
    return np.concatenate([_classify(classifier, ids, attention_mask, rows).numpy().argmax(axis=-1) for rows in batches])


# ---------------------------------------------------------------- the few-labels comparison


def few_labels_comparison(
    text: str,
    per_class: int = 8,
    pretrain_steps: int = 300,
    fine_tune_steps: int = 40,
    embed_dim: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
    max_words: int = 1000,
    context_length: int = 32,
    seeds: Sequence[int] = (0, 1, 2, 3),
    fine_tune_lr: float = 1e-3,
) -> list[dict]:
    """Does pretraining help when labels are few? One row per (model, pretrained?, seed).

    The encoder is pretrained as a masked LM and the GPT as a causal LM, each for
    ``pretrain_steps`` on ``text``; then, for every seed, ``per_class`` labelled passages
    per topic are drawn (``few_labels_split``) and four classifiers are fine-tuned the same
    way on them: each model pretrained, and each from a fresh initialisation. Every row
    holds the accuracy and macro-F1 on all the other passages.
    """
    from .metrics import accuracy, f1_score

    words = corpus_words(text)
    vocabulary = word_vocabulary(words, max_words=max_words)
    stream = encode_words(vocabulary, words)
    passages, labels = topic_passages(vocabulary, context_length)
    num_classes = int(labels.max()) + 1
    sizes = dict(embed_dim=embed_dim, num_heads=num_heads, num_layers=num_layers, dropout=0.1)

    def new_backbone(kind: str) -> nn.Module:
        if kind == "encoder":
            return TransformerEncoder(len(vocabulary), context_length, **sizes)
        return GPTBackbone(nn.GPT(len(vocabulary), context_length, **sizes))

    pretrained = {kind: new_backbone(kind) for kind in ("encoder", "gpt")}
    pretrain_masked_lm(MaskedLanguageModel(pretrained["encoder"]), stream, pretrain_steps)
    pretrain_causal_lm(pretrained["gpt"].gpt, stream, pretrain_steps)
    rows = []
    for seed in seeds:
        train, test = few_labels_split(labels, per_class, seed)
        for kind, pooling in (("encoder", "mean"), ("gpt", "last")):
            for start_pretrained in (True, False):
                backbone = new_backbone(kind)
                if start_pretrained:
                    backbone.load_state_dict(pretrained[kind].state_dict())
                classifier = SequenceClassifier(backbone, embed_dim, num_classes, pooling)
                fine_tune(classifier, passages[train], labels[train], fine_tune_steps, lr=fine_tune_lr)
                predictions = predict(classifier, passages[test])
                scores = dict(
                    accuracy=accuracy(labels[test], predictions), macro_f1=f1_score(labels[test], predictions, num_classes)
                )
                rows.append(dict(model=kind, pretrained=start_pretrained, seed=seed, **scores))
    return rows
