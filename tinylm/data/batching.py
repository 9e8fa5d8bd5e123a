"""Batches for language models: inputs and the targets one token later.

A language model learns p(next token | tokens so far), so every batch is a pair
``x (B, T)``, ``y (B, T)`` with ``y[b, t] = x[b, t + 1]`` in the underlying text.

Two ways to cut a long stream of ids into batches:

* ``ContiguousBatches`` (for recurrent models, truncated backpropagation through time):
  the stream is split into B rows laid side by side, and batch k holds columns
  k·T .. (k+1)·T of every row. Row b of batch k+1 continues exactly where row b of batch k
  stopped, so the hidden state at the end of one batch is the right start for the next:
  carry it over (detached, so the gradient stops at the batch boundary).
* ``random_windows`` (for Transformers, which see a fixed context and keep no state):
  B windows of T + 1 tokens at random offsets, drawn from tl's seeded generator.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import backend


def train_val_split(ids: Sequence[int], val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The first (1 - val_fraction) of the stream for training, the rest for validation.

    A contiguous split (not a shuffled one): validation text is text the model has not seen,
    not sentences interleaved with the ones it trained on.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    ids = np.asarray(ids, dtype=np.int64)
    split = int(round(len(ids) * (1.0 - val_fraction)))
    if split < 2 or len(ids) - split < 2:
        raise ValueError(
            f"a corpus of {len(ids)} tokens is too short to split with val_fraction={val_fraction}: "
            "each part needs at least 2 tokens"
        )
    return ids[:split], ids[split:]


def batch_shape_that_fits(num_tokens: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """The (rows, row length) that ``ContiguousBatches`` can cut from ``num_tokens`` tokens:
    ``(batch_size, seq_len)`` when the text is long enough, else fewer rows, and for a text
    shorter than one row of ``seq_len + 1`` tokens, one shorter row.

    Evaluation on a short held-out text uses it, so a few kilobytes can still be measured.
    """
    if num_tokens < 2:
        raise ValueError(f"a batch needs at least 2 tokens (an input and its target), but the text has only {num_tokens}")
    rows = min(batch_size, (num_tokens - 1) // seq_len)
    return (rows, seq_len) if rows >= 1 else (1, num_tokens - 1)


def _check_length(num_tokens: int, needed: int, what: str) -> None:
    if num_tokens < needed:
        raise ValueError(f"{what} needs at least {needed} tokens, but the text has only {num_tokens}")


class ContiguousBatches:
    """Consecutive (x, y) batches from B side-by-side rows of the stream, for truncated BPTT.

    ``next_batch()`` returns ``(x, y, new_pass)``; ``new_pass`` is True when the batch starts
    a new pass over the rows, where a carried hidden state must be reset. ``position`` is
    the whole state of the iteration (a checkpoint stores it to resume exactly).
    """

    def __init__(self, ids: Sequence[int], batch_size: int, seq_len: int):
        ids = np.asarray(ids, dtype=np.int64)
        _check_length(len(ids), batch_size * seq_len + 1, f"batch_size={batch_size} x seq_len={seq_len}")
        row_length = (len(ids) - 1) // batch_size
        self.inputs = ids[: row_length * batch_size].reshape(batch_size, row_length)
        self.targets = ids[1 : row_length * batch_size + 1].reshape(batch_size, row_length)
        self.seq_len = seq_len
        self.batches_per_pass = row_length // seq_len
        self.position = 0

    def __len__(self) -> int:
        return self.batches_per_pass

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of a pass: columns index·T .. (index+1)·T of every row."""
        columns = slice(index * self.seq_len, (index + 1) * self.seq_len)
        return self.inputs[:, columns], self.targets[:, columns]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray, bool]:
        index = self.position % self.batches_per_pass
        self.position += 1
        return (*self.batch(index), index == 0)

    def __iter__(self):
        """One pass over the rows, from the start (for evaluation)."""
        return (self.batch(index) for index in range(self.batches_per_pass))


def random_windows(ids: Sequence[int], batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """B windows of T tokens at random offsets (tl's CPU generator): x (B, T) and y = x shifted by one."""
    ids = np.asarray(ids, dtype=np.int64)
    _check_length(len(ids), seq_len + 1, f"a window of seq_len={seq_len}")
    starts = backend.generator("cpu").integers(0, len(ids) - seq_len, size=batch_size)
    offsets = starts[:, None] + np.arange(seq_len + 1)
    windows = ids[offsets]
    return windows[:, :-1], windows[:, 1:]
