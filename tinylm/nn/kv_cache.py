"""The key-value cache: what a decoder remembers between the tokens it generates.

A decoder that writes one token at a time would, without a cache, run the whole text
through every layer again for each new token, although the keys and values of the
earlier positions have not changed: position t only ever attends to positions 0..t, so
a new token at the end changes nothing before it. The cache keeps each layer's keys and
values; each step then computes the query, key and value of the *new* position only,
appends its key and value, and attends from the one query to all the keys held:

    step without a cache:  T positions through every layer             cost ∝ T
    step with a cache:     1 position; its query against T cached keys  cost ∝ 1 (+ T for the scores)

``KVCache`` holds one ``LayerCache`` per block. Its ``length`` is the number of positions
it holds, which is also the position of the next token: a learned position table reads
row ``length``, a rotary encoding rotates by angle ``length · θ``.

The buffers are allocated at the first append, with the shape the keys arrive in
(batch, heads, ·, head size), for ``capacity`` positions, and grow by doubling when
more arrive; appending writes into them in place, so a step copies one position, never
the whole cache. They are plain arrays, not part of the autograd graph: the cache is
for generation, under ``tl.no_grad()``.
"""
from __future__ import annotations

from .. import backend
from ..ops import ShapeError
from ..tensor import Tensor


class LayerCache:
    """The keys and values (B, H, length, D) one attention layer has seen so far."""

    def __init__(self, capacity: int = 64):
        if capacity < 1:
            raise ValueError(f"a cache needs a capacity of at least one position, got {capacity}")
        self.capacity = capacity
        self.length = 0
        self.keys = self.values = None  # (B, H, capacity, D) buffers, made at the first append

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Store the keys and values (B, H, T, D) of T new positions; return those of every
        position held, old and new: (B, H, length + T, D) views of the buffers."""
        if keys.requires_grad or values.requires_grad:
            raise RuntimeError(
                "the key-value cache is for generation and keeps no graph: run the model under "
                "tl.no_grad() (lm.generate does), or call it without a cache to train"
            )
        if keys.ndim != 4 or keys.shape != values.shape:
            raise ShapeError(f"LayerCache.append: expected keys and values of one shape (B, H, T, D), got {keys.shape} and {values.shape}")
        if self.keys is not None and _without_length(keys.shape) != _without_length(self.keys.shape):
            raise ShapeError(
                f"LayerCache.append: the cache holds (batch, heads, head size) = {_without_length(self.keys.shape)}, "
                f"the new keys are {keys.shape}: start a new cache for another batch or model"
            )
        end = self.length + keys.shape[2]
        if self.keys is None or end > self.keys.shape[2]:
            self._grow(keys.data, end)
        self.keys[:, :, self.length : end] = keys.data
        self.values[:, :, self.length : end] = values.data
        self.length = end
        return Tensor._from_op(self.keys[:, :, :end], False), Tensor._from_op(self.values[:, :, :end], False)

    def _grow(self, like, needed: int) -> None:
        """New buffers for at least ``needed`` positions (twice the old size), the held ones copied."""
        xp = backend.array_module(like)
        size = max(needed, self.capacity if self.keys is None else 2 * self.keys.shape[2])
        batch, heads, _, head_dim = like.shape
        keys, values = (xp.empty((batch, heads, size, head_dim), dtype=like.dtype) for _ in range(2))
        if self.keys is not None:
            keys[:, :, : self.length] = self.keys[:, :, : self.length]
            values[:, :, : self.length] = self.values[:, :, : self.length]
        self.keys, self.values = keys, values

    def clear(self) -> None:
        """Forget every position (the buffers are kept for reuse)."""
        self.length = 0


def _without_length(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(B, H, T, D) -> (B, H, D)."""
    return shape[:2] + shape[3:]


class KVCache:
    """One ``LayerCache`` per attention layer of a decoder, and the count of positions held.

    ``capacity``: positions to allocate room for at first (generation knows how many it
    will need: the prompt plus the new tokens, at most the context length).
    """

    def __init__(self, num_layers: int, capacity: int = 64):
        self.layers = [LayerCache(capacity) for _ in range(num_layers)]

    @property
    def length(self) -> int:
        """Positions held: the position of the next token."""
        return self.layers[0].length

    def clear(self) -> None:
        for layer in self.layers:
            layer.clear()

    def __repr__(self) -> str:
        return f"KVCache(layers={len(self.layers)}, length={self.length})"
