"""A convolutional network for sentence classification (Kim, 2014).

    ids (B, T) → embedding (B, T, E) → transpose to channels first (B, E, T)
    for each width w in kernel_sizes:  relu(Conv1d(E, F, w)) (B, F, T - w + 1) → max over time (B, F)
    concatenate the widths (B, F·len(kernel_sizes)) → dropout → Linear → logits (B, num_classes)

A filter of width w is an n-gram detector: it fires on the w consecutive words it has
learned to match. Max over time keeps, for every filter, how strongly it fired anywhere in
the sentence, so the features do not depend on where the n-gram was, nor on the length.
"""
from __future__ import annotations

from typing import Sequence

from . import nn
from .ops import ShapeError
from .tensor import Tensor, concat


class TextCNN(nn.Module):
    """Embedding, one Conv1d per kernel width, max over time, dropout, a linear classifier.

    Input ids (B, T) with T >= max(kernel_sizes) (pad short sentences) -> logits (B, num_classes).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_classes: int,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        num_filters: int = 100,
        dropout: float = 0.5,
        dtype=None,
        device: str = "cpu",
    ):
        self.kernel_sizes = tuple(kernel_sizes)
        self.embedding = nn.Embedding(vocab_size, embed_dim, dtype=dtype, device=device)
        self.convs = [nn.Conv1d(embed_dim, num_filters, width, dtype=dtype, device=device) for width in self.kernel_sizes]
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_filters * len(self.kernel_sizes), num_classes, dtype=dtype, device=device)

    def features(self, ids) -> Tensor:
        """The max-over-time feature vector of each sentence (B, num_filters · len(kernel_sizes))."""
        if ids.ndim != 2:
            raise ShapeError(f"TextCNN: expected token ids of shape (batch, time), got shape {tuple(ids.shape)}")
        if ids.shape[1] < max(self.kernel_sizes):
            raise ShapeError(
                f"TextCNN: sentences of length {ids.shape[1]} are shorter than the widest filter "
                f"({max(self.kernel_sizes)}); pad them to at least that length"
            )
        x = self.embedding(ids).transpose(0, 2, 1)  # (B, E, T): Conv1d wants channels before time
        return concat([conv(x).relu().max(axis=-1) for conv in self.convs], axis=1)

    def forward(self, ids) -> Tensor:
        return self.classifier(self.dropout(self.features(ids)))
