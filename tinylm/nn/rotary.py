"""Rotary position embeddings as a layer: the cos/sin tables computed once, then looked up."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..backend import DeviceError
from ..functional.rotary import RotatePairs, check_rotary_input, checked_positions, checked_theta, rotary_tables
from ..ops import ShapeError
from ..tensor import Tensor
from .module import Module


class RotaryEmbedding(Module):
    """Rotate the interleaved feature pairs of queries or keys x (..., T, head_dim) by their
    positions' angles: ``F.rotary_embedding`` (the formula, the pairing convention and the
    gradient are in tinylm/functional/rotary.py) with cos(p·θᵢ) and sin(p·θᵢ) computed once
    for every position 0 … max_positions - 1 instead of on every call.

    ``forward(x, positions=None)``: positions default to 0 … T-1; give them explicitly for
    an offset, e.g. ``[t]`` for one new token at position t when earlier keys are cached,
    or (B, 1, T) for x (B, H, T, D) with a position per sequence. A position at or past
    ``max_positions`` is an error (the tables are not grown behind your back).

    No parameters. The tables are buffers: they follow ``.to(device)``, and ``.to(dtype)``
    recomputes them in the new dtype (a float64 table is never a float32 one cast up, which
    would spoil a float64 gradient check); the input must have the tables' dtype.
    """

    def __init__(self, head_dim: int, max_positions: int = 2048, theta: float = 10000.0, dtype=None, device: str = "cpu"):
        for name, value in (("head_dim", head_dim), ("max_positions", max_positions)):
            if not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"RotaryEmbedding: {name} must be a positive int, got {value!r}")
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even (features are rotated in pairs), got {head_dim}")
        self.head_dim, self.max_positions = int(head_dim), int(max_positions)
        self.theta = checked_theta(theta, "RotaryEmbedding")
        self._build_tables(backend.get_default_dtype() if dtype is None else np.dtype(dtype), device)

    def _build_tables(self, dtype: np.dtype, device: str) -> None:
        positions = backend.module_for_device(device).arange(self.max_positions)
        self.cos, self.sin = rotary_tables(positions, self.head_dim, self.theta, dtype)  # (max_positions, D/2)

    def forward(self, x: Tensor, positions=None) -> Tensor:
        check_rotary_input(x, "RotaryEmbedding")
        if x.shape[-1] != self.head_dim:
            raise ShapeError(f"RotaryEmbedding: expected x (..., T, {self.head_dim}), got shape {x.shape}")
        if x.dtype != self.cos.dtype:
            raise TypeError(
                f"RotaryEmbedding: the tables are {self.cos.dtype} but x is {x.dtype}; "
                f"convert the layer (or the model holding it) with .to({x.dtype.name!r})"
            )
        if x.device != backend.device_of(self.cos):
            raise DeviceError(
                f"RotaryEmbedding: the tables are on {backend.device_of(self.cos)!r} but x is on {x.device!r}; "
                f"move the layer (or the model holding it) with .to({x.device!r})"
            )
        if positions is None:
            positions = backend.array_module(self.cos).arange(x.shape[-2])
        else:
            positions = checked_positions(positions, x, "RotaryEmbedding")
        if positions.size and int(positions.max()) >= self.max_positions:
            raise IndexError(
                f"RotaryEmbedding: positions must lie in [0, {self.max_positions - 1}] (max_positions="
                f"{self.max_positions}), got {int(positions.max())}; make a RotaryEmbedding with a larger max_positions"
            )
        return RotatePairs.apply(x, cos=self.cos[positions], sin=self.sin[positions])

    def _moved(self, target) -> None:
        if isinstance(target, str):
            self.cos, self.sin = backend.to_device(self.cos, target), backend.to_device(self.sin, target)
        else:
            self._build_tables(np.dtype(target), backend.device_of(self.cos))

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, max_positions={self.max_positions}, theta={self.theta}"
