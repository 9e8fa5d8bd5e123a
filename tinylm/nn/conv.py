"""Convolution and pooling layers over a time axis: ``Conv1d`` and ``MaxPool1d``."""
from __future__ import annotations

from ..functional.conv import conv1d, max_pool1d
from ..tensor import Tensor
from . import init
from .module import Module


class Conv1d(Module):
    """A 1-D convolution over the last axis: x (B, C_in, L) -> (B, C_out, L_out), as PyTorch.

    weight (out_channels, in_channels, kernel_size), bias (out_channels,), both initialised
    as PyTorch: U(-1/√fan_in, 1/√fan_in) with fan_in = in_channels · kernel_size.
    See ``tinylm.functional.conv`` for the formula and L_out.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
        dtype=None,
        device: str = "cpu",
    ):
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation
        fan_in = in_channels * kernel_size
        self.weight = init.fan_in_uniform((out_channels, in_channels, kernel_size), fan_in, dtype, device)
        self.bias = init.fan_in_uniform((out_channels,), fan_in, dtype, device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}"
        )


class MaxPool1d(Module):
    """Max over sliding windows of the last axis, as ``torch.nn.MaxPool1d`` (no parameters)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, dilation: int = 1):
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    def forward(self, x: Tensor) -> Tensor:
        return max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"
