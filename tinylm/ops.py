"""Primitive operations: each a small Function with its forward and backward side by side.

A Function works on raw arrays (NumPy or CuPy, whichever its inputs hold):

* ``forward(*arrays, **params)`` computes the output and saves what backward needs;
* ``backward(grad_output)`` receives dL/d(output) and returns dL/d(input) for each input
  (one array, or a tuple with one entry per input; ``None`` where no gradient is needed).

``Function.apply(*tensors, **params)`` runs forward on the tensors' arrays and, when
gradients are being recorded, links the output tensor to the function (``out._ctx``).

Saved arrays are references, not copies. A function whose backward reads its input
arrays (``saves_inputs``, true unless a class says otherwise) records the inputs'
versions (``Tensor.version``) in forward; backward raises if one has been written in
place since, instead of computing the gradient of values the forward pass never saw.
A function that saves only its shapes, its output or arrays it computed itself sets
``saves_inputs = False`` and costs nothing here.

Broadcasting: when an input was broadcast to a larger shape in forward, the gradient
arriving in backward has the larger shape; ``unbroadcast`` sums it back over the axes
that were stretched, because each input element was used once per copy.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import backend
from .tensor import GradMode, Tensor, _shares_version_if_view, versions_of


class ShapeError(ValueError):
    """Tensors whose shapes do not fit the operation."""


class Function:
    """Base class of every differentiable operation."""

    inputs: tuple[Tensor, ...] | None = ()
    saves_inputs = True  # backward reads input arrays: their versions are checked
    may_return_view = False  # the output may be a view of input 0 (then it shares its version)
    saved_versions: list[int] | None = None  # the inputs' versions in forward, when checked

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        first = inputs[0].data.__class__
        for other in inputs[1:]:
            if other.data.__class__ is not first:
                _raise_device_mismatch(cls.__name__, inputs)
        function = cls()
        try:
            out = function.forward(*[t.data for t in inputs], **params)
        except ValueError as error:
            if isinstance(error, ShapeError):
                raise
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ShapeError(f"{cls.__name__} got inputs of shapes {shapes}: {error}") from None
        requires_grad = False
        if GradMode.enabled:
            for t in inputs:
                if t.requires_grad:
                    requires_grad = True
                    break
        out = Tensor._from_op(out, requires_grad)
        if cls.may_return_view:
            _shares_version_if_view(out, inputs[0])
        if requires_grad:
            function.inputs = inputs
            if cls.saves_inputs:
                function.saved_versions = versions_of(inputs)
            out._ctx = function
        return out

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def needs_grad(self, position: int) -> bool:
        """Whether input ``position`` wants a gradient (skip costly work when it does not)."""
        return self.inputs[position].requires_grad

    def release(self) -> None:
        """Drop the inputs and saved arrays once backward has used them (frees memory)."""
        self.__dict__.clear()
        self.inputs = None


def _raise_device_mismatch(name: str, inputs) -> None:
    devices = [t.device for t in inputs]
    raise backend.DeviceError(
        f"{name}: all inputs must be on the same device, got {devices}. "
        "Move them first, e.g. x.to('cuda') or model.to('cuda')"
    )


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting prepends axes and stretches size-1 axes; the gradient of a stretched
    element is the sum of the gradients of all its copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    stretched = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)


# ---------------------------------------------------------------- arithmetic


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1 (then unbroadcast)."""

    saves_inputs = False  # backward reads shapes only

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    saves_inputs = False  # backward reads shapes only

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(-grad, self.b_shape)


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        grad_a = unbroadcast(grad * self.b, self.a.shape) if self.needs_grad(0) else None
        grad_b = unbroadcast(grad * self.a, self.b.shape) if self.needs_grad(1) else None
        return grad_a, grad_b


class Div(Function):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        grad_a = grad / self.b
        grad_b = unbroadcast(-grad_a * self.a / self.b, self.b.shape) if self.needs_grad(1) else None
        return unbroadcast(grad_a, self.a.shape), grad_b


class Neg(Function):
    """z = -x;  dz/dx = -1."""

    saves_inputs = False  # backward reads nothing

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class PowScalar(Function):
    """z = x^p for a constant number p;  dz/dx = p·x^(p-1), and 0 for p = 0 (x⁰ = 1 for
    every x, where 0·x⁻¹ would give NaN at x = 0; as PyTorch)."""

    def forward(self, x, exponent: float):
        self.x, self.exponent = x, exponent
        return x**exponent

    def backward(self, grad):
        if self.exponent == 0:
            return backend.array_module(grad).zeros_like(grad)
        return grad * self.exponent * self.x ** (self.exponent - 1)


class Pow(Function):
    """z = a^b for tensors;  dz/da = b·a^(b-1),  dz/db = a^b·ln(a)  (needs a > 0).

    Two limits are taken as PyTorch takes them, where the formulas would give NaN:
    dz/da = 0 where b = 0 (a⁰ = 1 for every a), and dz/db = 0 where a = 0 and b ≥ 0
    (0^b stays 0, or 1 at b = 0, on that side: no slope in b).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, grad):
        xp = backend.array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        grad_a = grad_b = None
        if self.needs_grad(0):
            grad_a = unbroadcast(xp.where(self.b == 0, zero, grad * self.b * self.a ** (self.b - 1)), self.a.shape)
        if self.needs_grad(1):
            flat = (self.a == 0) & (self.b >= 0)
            grad_b = unbroadcast(grad * xp.where(flat, zero, self.out * xp.log(self.a)), self.b.shape)
        return grad_a, grad_b


def _rows(x):
    """x (..., k) as a matrix (N, k), N the product of the leading axes."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # not -1, which is ambiguous when empty


def _matmul_folding_rows(a, b):
    """a @ b; for a batch of rows (..., k) @ a matrix (k, m), as one (N, k) @ (k, m) product.

    NumPy would run one small matrix product per batch entry; one large product is the
    same arithmetic and runs about 20% faster in BLAS.
    """
    if b.ndim != 2 or a.ndim <= 2:
        return a @ b
    return (_rows(a) @ b).reshape(*a.shape[:-1], b.shape[-1])


class MatMul(Function):
    """Z = A @ B with NumPy's rules (1-D operands, batched leading axes).

    For matrices A (n, k) and B (k, m):  dL/dA = dL/dZ @ Bᵀ,  dL/dB = Aᵀ @ dL/dZ.
    A 1-D operand is treated as a row (A) or a column (B) and the extra axis removed.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul needs tensors with at least 1 dimension, got shapes {a.shape} @ {b.shape}")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise ShapeError(
                f"matmul {a.shape} @ {b.shape}: the last axis of the left ({a.shape[-1]}) must equal "
                f"the {'only' if b.ndim == 1 else 'second-to-last'} axis of the right ({inner_b})"
            )
        self.a, self.b = a, b
        return _matmul_folding_rows(a, b)

    def backward(self, grad):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # a row vector
        b2 = b[:, None] if b.ndim == 1 else b  # a column vector
        # restore the axes the 1-D operands dropped: the column first, so 1-D @ 1-D (a 0-d grad) works
        if b.ndim == 1:
            grad = grad[..., None]
        if a.ndim == 1:
            grad = grad[..., None, :]
        grad_a = grad_b = None
        if self.needs_grad(0):
            grad_a = _matmul_folding_rows(grad, b2.swapaxes(-1, -2))
            grad_a = unbroadcast(grad_a, a2.shape).reshape(a.shape)
        if self.needs_grad(1):
            if b2.ndim == 2 and a2.ndim > 2:
                # the batch axes folded into the rows: one big matmul instead of a batch + sum
                grad_b = _rows(a2).T @ _rows(grad)
            else:
                grad_b = unbroadcast(a2.swapaxes(-1, -2) @ grad, b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b


# ---------------------------------------------------------------- element-wise functions


class Exp(Function):
    """z = eˣ;  dz/dx = eˣ = z."""

    saves_inputs = False  # backward reads its output

    def forward(self, x):
        self.out = backend.array_module(x).exp(x)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    """z = ln x;  dz/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return backend.array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Tanh(Function):
    """z = tanh x;  dz/dx = 1 - z²."""

    saves_inputs = False  # backward reads its output

    def forward(self, x):
        self.out = backend.array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class Sigmoid(Function):
    """z = σ(x) = 1 / (1 + e⁻ˣ);  dz/dx = z(1 - z).

    Computed as ½·tanh(x/2) + ½, the same function without overflow when x is far from 0.
    """

    saves_inputs = False  # backward reads its output

    def forward(self, x):
        self.out = backend.array_module(x).tanh(x * 0.5) * 0.5 + 0.5
        return self.out

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class ReLU(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0 (0 at the kink x = 0, as PyTorch).

    NaN stays NaN and passes its gradient on, as in PyTorch (``x * (x > 0)`` would also
    turn -inf into NaN, since -inf · 0 is NaN).
    """

    saves_inputs = False  # backward reads a mask it made

    def forward(self, x):
        self.passes = ~(x <= 0)  # x > 0, or NaN
        return backend.array_module(x).maximum(x, 0)

    def backward(self, grad):
        return grad * self.passes


# ---------------------------------------------------------------- reductions


def _keepdims_shape(shape, axis) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` has with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """z = Σ x over ``axis``;  dz/dx = 1: the gradient is copied back to every summed element."""

    saves_inputs = False  # backward reads shapes only

    def forward(self, x, axis, keepdims: bool):
        self.x_shape, self.axis = x.shape, axis
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        grad = grad.reshape(_keepdims_shape(self.x_shape, self.axis))
        return backend.array_module(grad).broadcast_to(grad, self.x_shape)


class Mean(Function):
    """z = (1/N) Σ x over ``axis``;  dz/dx = 1/N."""

    saves_inputs = False  # backward reads shapes only

    def forward(self, x, axis, keepdims: bool):
        self.x_shape, self.axis = x.shape, axis
        out = x.mean(axis=axis, keepdims=keepdims)
        self.count = x.size // max(out.size, 1) if x.size else 0
        return out

    def backward(self, grad):
        grad = grad.reshape(_keepdims_shape(self.x_shape, self.axis)) / self.count
        return backend.array_module(grad).broadcast_to(grad, self.x_shape)


class Max(Function):
    """z = max x over ``axis``;  dz/dx = 1 at the maximum, 0 elsewhere.

    When several elements tie for the maximum, the gradient is shared equally among them
    (as ``torch.amax``), so it still sums to 1.
    """

    saves_inputs = False  # backward reads a mask it made

    def forward(self, x, axis, keepdims: bool):
        reduced = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        if any(x.shape[a] == 0 for a in reduced):
            raise ShapeError(f"max() over an axis of size 0 has no value (shape {x.shape}, axis {axis})")
        out = x.max(axis=axis, keepdims=True)
        self.is_max = x == out
        self.axis = axis
        return out if keepdims else out.squeeze(axis)

    def backward(self, grad):
        shape = _keepdims_shape(self.is_max.shape, self.axis)
        ties = self.is_max.sum(axis=self.axis, keepdims=True)
        return self.is_max * (grad.reshape(shape) / ties)


# ---------------------------------------------------------------- shape and indexing


class Reshape(Function):
    """z = x viewed with another shape (same elements, same order);  dz/dx: reshape back."""

    saves_inputs = False  # backward reads shapes only
    may_return_view = True

    def forward(self, x, shape):
        self.x_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}") from None

    def backward(self, grad):
        return grad.reshape(self.x_shape)


class Transpose(Function):
    """z = x with its axes permuted;  dz/dx: permute back with the inverse permutation."""

    saves_inputs = False  # backward reads the permutation
    may_return_view = True

    def forward(self, x, axes):
        self.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    def backward(self, grad):
        return grad.transpose(self.inverse)


def _is_basic_index(index) -> bool:
    """Basic indexing (ints, slices, None, ...) selects each element at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice, np.integer)) for item in items)


class GetItem(Function):
    """z = x[index] (basic and integer-array indexing).

    dz/dx scatters the gradient back to the positions that were read. An integer array
    may read one position several times, so its gradients are added (a scatter-add),
    not overwritten.
    """

    saves_inputs = False  # backward reads shapes and the index
    may_return_view = True

    def forward(self, x, index):
        self.x_shape, self.x_dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"index {index!r} does not fit a tensor of shape {x.shape}: {error}") from None

    def backward(self, grad):
        xp = backend.array_module(grad)
        full = xp.zeros(self.x_shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            full[self.index] = grad
        else:
            backend.scatter_add(full, self.index, grad)
        return full


class Concat(Function):
    """z = concatenate(x₁, x₂, …) along ``axis``;  dz/dxᵢ is xᵢ's slice of the gradient."""

    saves_inputs = False  # backward reads where the inputs meet

    def forward(self, *arrays, axis: int):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return backend.array_module(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, grad):
        return tuple(backend.array_module(grad).split(grad, self.bounds, axis=self.axis))


class Stack(Function):
    """z = stack(x₁, x₂, …) along a new ``axis``;  dz/dxᵢ = z's gradient at position i."""

    saves_inputs = False  # backward reads the axis

    def forward(self, *arrays, axis: int):
        self.axis = axis
        return backend.array_module(arrays[0]).stack(arrays, axis=axis)

    def backward(self, grad):
        xp = backend.array_module(grad)
        return tuple(xp.take(grad, i, axis=self.axis) for i in range(grad.shape[self.axis]))


class Where(Function):
    """z = a where condition else b;  dz/da = condition, dz/db = not condition."""

    saves_inputs = False  # backward reads shapes and the condition

    def forward(self, a, b, condition):
        self.a_shape, self.b_shape, self.condition = a.shape, b.shape, condition
        return backend.array_module(a).where(condition, a, b)

    def backward(self, grad):
        xp = backend.array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        grad_a = unbroadcast(xp.where(self.condition, grad, zero), self.a_shape)
        grad_b = unbroadcast(xp.where(self.condition, zero, grad), self.b_shape)
        return grad_a, grad_b


# ---------------------------------------------------------------- dtype and device


class Cast(Function):
    """z = x converted to ``dtype``;  dz/dx = 1 (the gradient is converted back)."""

    saves_inputs = False  # backward reads the input's dtype

    def forward(self, x, dtype):
        self.x_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.x_dtype)


class ToDevice(Function):
    """z = x copied to ``device``;  dz/dx = the gradient copied back."""

    saves_inputs = False  # backward reads the source device only
    may_return_view = True

    def forward(self, x, device: str):
        self.source = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, grad):
        return backend.to_device(grad, self.source)
