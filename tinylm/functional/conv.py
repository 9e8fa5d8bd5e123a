"""One-dimensional convolution and max-pooling over time, as PyTorch's ``conv1d`` / ``max_pool1d``.

Shapes (PyTorch's): input x (B, C, L), weight W (O, C, K), bias b (O,), output (B, O, L_out)

    x_pad = x with ``padding`` zeros on both ends of the time axis        (B, C, L + 2p)
    L_out = ⌊(L + 2p - d·(K - 1) - 1) / s⌋ + 1
    y[b, o, t] = b[o] + Σ_c Σ_k W[o, c, k] · x_pad[b, c, s·t + d·k]

with stride s, dilation d and padding p. (Like PyTorch this is a cross-correlation: the
kernel is not flipped.)

**im2col.** Gather, for every output position t, the C·K input values it reads into one
column: ``cols[b, c, k, t] = x_pad[b, c, s·t + d·k]``. Row k of the kernel reads the
strided slice ``x_pad[:, :, d·k : d·k + s·(L_out - 1) + 1 : s]``, so the columns are
built with one slice per kernel tap (K slices, no loop over positions). Then the
convolution is one matrix product:

    y = W₂ @ cols₂ + b          W₂ = W reshaped (O, C·K),  cols₂ = cols reshaped (B, C·K, L_out)

and its backward is the matrix-product rule followed by "col2im", the reverse of the
gather: each tap's slice of the column gradient is added back onto the positions it read.
"""
from __future__ import annotations

from .. import backend
from ..ops import Function, ShapeError
from ..tensor import Tensor, concat, zeros


def conv1d_output_length(length: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """L_out = ⌊(L + 2p - d·(K - 1) - 1) / s⌋ + 1 (may be < 1 when the kernel does not fit)."""
    return (length + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _tap_slice(tap: int, stride: int, dilation: int, out_length: int) -> slice:
    """The positions of x_pad that kernel tap ``tap`` reads, one per output position."""
    start = tap * dilation
    return slice(start, start + stride * (out_length - 1) + 1, stride)


def _pad_time(x, padding: int, fill: float):
    if padding == 0:
        return x
    xp = backend.array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (padding, padding)), constant_values=fill)


class Conv1d(Function):
    """y = W₂ @ im2col(x) + b  (see the module docstring for the shapes).

    Backward, with g = dL/dy (B, O, L_out) and cols₂ (B, C·K, L_out):

        dL/dW₂ = Σ_b g[b] @ cols₂[b]ᵀ                (O, C·K), reshaped to (O, C, K)
        dL/db  = Σ_b Σ_t g[b, :, t]                   (O,)
        dL/dcols₂ = W₂ᵀ @ g                           (B, C·K, L_out)
        dL/dx_pad[:, :, slice of tap k] += dL/dcols[:, :, k, :]     for each tap k (col2im)
        dL/dx = dL/dx_pad without the padding
    """

    def forward(self, x, weight, bias=None, *, stride: int, padding: int, dilation: int):
        xp = backend.array_module(x)
        batch, channels, length = x.shape
        out_channels, _, kernel_size = weight.shape
        out_length = conv1d_output_length(length, kernel_size, stride, padding, dilation)
        x_pad = _pad_time(x, padding, 0.0)
        cols = xp.empty((batch, channels, kernel_size, out_length), dtype=x.dtype)
        for tap in range(kernel_size):
            cols[:, :, tap, :] = x_pad[:, :, _tap_slice(tap, stride, dilation, out_length)]
        self.cols = cols.reshape(batch, channels * kernel_size, out_length)
        self.weight_2d = weight.reshape(out_channels, channels * kernel_size)
        self.settings = (x.shape, weight.shape, x_pad.shape, stride, padding, dilation)
        out = self.weight_2d @ self.cols
        return out if bias is None else out + bias[:, None]

    def backward(self, grad):
        x_shape, weight_shape, padded_shape, stride, padding, dilation = self.settings
        xp = backend.array_module(grad)
        batch, channels, length = x_shape
        out_channels, _, kernel_size = weight_shape
        grad_x = grad_weight = grad_bias = None
        if self.needs_grad(0):
            grad_cols = (self.weight_2d.T @ grad).reshape(batch, channels, kernel_size, grad.shape[-1])
            grad_x_pad = xp.zeros(padded_shape, dtype=grad.dtype)
            for tap in range(kernel_size):
                grad_x_pad[:, :, _tap_slice(tap, stride, dilation, grad.shape[-1])] += grad_cols[:, :, tap, :]
            grad_x = grad_x_pad[:, :, padding : padding + length]
        if self.needs_grad(1):
            # fold batch and time into one axis: a single (O, B·L_out) @ (B·L_out, C·K) product
            grad_2d = grad.transpose(1, 0, 2).reshape(out_channels, -1)
            cols_2d = self.cols.transpose(0, 2, 1).reshape(-1, channels * kernel_size)
            grad_weight = (grad_2d @ cols_2d).reshape(weight_shape)
        if len(self.inputs) == 3 and self.needs_grad(2):
            grad_bias = grad.sum(axis=(0, 2))
        return grad_x, grad_weight, grad_bias


def _check_settings(name: str, kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    for setting, value, lowest in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, int) or value < lowest:
            raise ValueError(f"{name}: {setting} must be an integer >= {lowest}, got {value!r}")
    if kernel_size < 1:
        raise ValueError(f"{name}: kernel_size must be >= 1, got {kernel_size}")


def _batched(x: Tensor, name: str) -> tuple[Tensor, bool]:
    """x as (B, C, L); a single (C, L) sequence gets a batch axis of 1 (as PyTorch allows)."""
    if x.ndim == 2:
        return x.reshape(1, *x.shape), True
    if x.ndim != 3:
        raise ShapeError(
            f"{name}: expected input of shape (batch, channels, length) or (channels, length), got {x.shape}"
        )
    return x, False


def _checked_output_length(name: str, length: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    out_length = conv1d_output_length(length, kernel_size, stride, padding, dilation)
    if out_length < 1:
        raise ShapeError(
            f"{name}: the input is too short: length {length} with padding {padding} on each side is "
            f"{length + 2 * padding}, but the kernel spans {dilation * (kernel_size - 1) + 1} positions "
            f"(kernel_size={kernel_size}, dilation={dilation})"
        )
    return out_length


def conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1
) -> Tensor:
    """1-D convolution (cross-correlation) over the last axis, as ``torch.nn.functional.conv1d``.

    x (B, C, L) or (C, L), weight (O, C, K), bias (O,) -> (B, O, L_out) or (O, L_out), with
    L_out = ⌊(L + 2·padding - dilation·(K - 1) - 1) / stride⌋ + 1.
    """
    x, unbatched = _batched(x, "conv1d")
    if weight.ndim != 3:
        raise ShapeError(f"conv1d: the weight must be 3-D (out_channels, in_channels, kernel_size), got {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"conv1d: the input has {x.shape[1]} channels (shape {x.shape}), "
            f"but the weight {weight.shape} expects {weight.shape[1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv1d: the bias must have shape ({weight.shape[0]},), got {bias.shape}")
    _check_settings("conv1d", weight.shape[2], stride, padding, dilation)
    _checked_output_length("conv1d", x.shape[2], weight.shape[2], stride, padding, dilation)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = Conv1d.apply(*inputs, stride=stride, padding=padding, dilation=dilation)
    return out.reshape(out.shape[1:]) if unbatched else out


def conv1d_composed(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1
) -> Tensor:
    """The same convolution from primitive ops (padding by concat, slices, matmul), so that
    autograd derives its backward: the reference that ``Conv1d`` is tested equal to.

        y = Σ_k W[:, :, k] @ x_pad[:, :, tap k's slice]   (+ b)
    """
    batch, channels, length = x.shape
    out_length = conv1d_output_length(length, weight.shape[2], stride, padding, dilation)
    if padding:
        edge = zeros(batch, channels, padding, dtype=x.dtype, device=x.device)
        x = concat([edge, x, edge], axis=2)
    out = None
    for tap in range(weight.shape[2]):
        term = weight[:, :, tap] @ x[:, :, _tap_slice(tap, stride, dilation, out_length)]
        out = term if out is None else out + term
    return out if bias is None else out + bias.reshape(-1, 1)


class MaxPool1d(Function):
    """y[b, c, t] = max over k of x_pad[b, c, s·t + d·k]  (padding with -∞, as PyTorch).

    Backward: the gradient of each output goes to the input position that held the maximum
    (the first one, when several tie, as PyTorch). Windows overlap when stride < kernel_size,
    so the tap slices are added back one tap at a time.
    """

    def forward(self, x, kernel_size: int, stride: int, padding: int, dilation: int):
        xp = backend.array_module(x)
        out_length = conv1d_output_length(x.shape[2], kernel_size, stride, padding, dilation)
        x_pad = _pad_time(x, padding, -xp.inf)
        windows = xp.stack([x_pad[:, :, _tap_slice(k, stride, dilation, out_length)] for k in range(kernel_size)])
        self.winner = windows.argmax(axis=0)  # (B, C, L_out): which tap held the maximum
        self.settings = (x.shape, x_pad.shape, kernel_size, stride, padding, dilation)
        return xp.take_along_axis(windows, self.winner[None], axis=0)[0]

    def backward(self, grad):
        x_shape, padded_shape, kernel_size, stride, padding, dilation = self.settings
        xp = backend.array_module(grad)
        grad_x_pad = xp.zeros(padded_shape, dtype=grad.dtype)
        zero = xp.zeros((), dtype=grad.dtype)
        for tap in range(kernel_size):
            read = _tap_slice(tap, stride, dilation, grad.shape[-1])
            grad_x_pad[:, :, read] += xp.where(self.winner == tap, grad, zero)
        return grad_x_pad[:, :, padding : padding + x_shape[2]]


def max_pool1d(
    x: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0, dilation: int = 1
) -> Tensor:
    """Max over sliding windows of the last axis, as ``torch.nn.functional.max_pool1d``.

    x (B, C, L) or (C, L) -> (B, C, L_out) or (C, L_out); ``stride`` defaults to ``kernel_size``.
    Max-pooling *over time* (one value per channel, as a text CNN uses) is
    ``max_pool1d(x, x.shape[-1])``, the same as ``x.max(axis=-1, keepdims=True)``.
    """
    stride = kernel_size if stride is None else stride
    x, unbatched = _batched(x, "max_pool1d")
    _check_settings("max_pool1d", kernel_size, stride, padding, dilation)
    if padding > kernel_size // 2:
        raise ValueError(
            f"max_pool1d: padding must be at most half the kernel size ({kernel_size // 2}), got {padding}"
        )
    _checked_output_length("max_pool1d", x.shape[2], kernel_size, stride, padding, dilation)
    out = MaxPool1d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    return out.reshape(out.shape[1:]) if unbatched else out
