"""Tensor: an array that remembers how it was made, so gradients can flow back.

A ``Tensor`` wraps a NumPy or CuPy array (``.data``). When an operation runs on tensors
that require gradients, the result keeps a reference to the ``Function`` that made it
(``._ctx``), and that function keeps its inputs. Calling ``loss.backward()`` walks this
graph from the loss back to the leaves, applying the chain rule at every node:

    dL/d(input) = backward_of_op( dL/d(output) )

The walk is iterative (no recursion, so a 100,000-op chain is fine), visits every node
once, in topological order (a node only after every node that uses it), and adds up the
gradients of tensors that are used more than once. Afterwards the graph is freed unless
``retain_graph=True``.

The graph points backwards only (output -> function -> inputs), so when the last
reference to the output goes away, Python frees the whole graph at once.

A function keeps its input *arrays* by reference, not copies. If one of them is
overwritten between forward and backward (``optimizer.step()`` updates the parameters in
place), backward would compute the gradient of values the forward pass never saw. So
every tensor carries a **version**, a count that each in-place write through the library
bumps (optimizer steps, ``load_state_dict``, ``clip_grad_norm_``); a function whose
backward reads its inputs records their versions in forward, and backward refuses to
run if one has changed, as PyTorch's version counters do.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import numpy as np

from . import backend

Shape = tuple[int, ...]


class GradMode:
    """Whether operations record the graph. Switched off inside ``with tl.no_grad():``."""

    enabled = True


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) in which no graph is recorded.

    Use it for evaluation and for parameter updates: it saves the memory and time that
    recording would cost.
    """

    def __enter__(self) -> None:
        self.previous = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc_info) -> None:
        GradMode.enabled = self.previous


def _check_floating(dtype: np.dtype, requires_grad: bool) -> None:
    if requires_grad and dtype.kind not in "fc":
        raise TypeError(
            f"only floating-point tensors can require gradients, but this one has dtype {dtype}. "
            "Pass dtype=np.float32 (or float64), or leave requires_grad=False for indices and labels."
        )


class VersionCounter:
    """How many times the library has written in place into one block of memory.

    Shared by every tensor that reads that memory (a tensor, its views, its detached
    copies), so a write through any of them is seen by all of them, as in PyTorch.
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Tensor:
    """An n-dimensional array with automatic differentiation.

    Attributes:
        data: the numpy.ndarray (CPU) or cupy.ndarray (GPU) holding the values.
        grad: a Tensor with the gradient of the last ``backward()`` (or None).
        requires_grad: whether gradients are computed for this tensor.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retains_grad", "name", "_version_counter", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None):
        self._version_counter: VersionCounter | None = None  # made on first need (see version)
        if isinstance(data, Tensor):  # the same memory, so the same version
            self._version_counter = data._shared_version_counter()
            data = data.data
        elif not isinstance(data, np.ndarray) and not hasattr(data, "__cuda_array_interface__"):
            data = np.asarray(data)  # a list or a number (arrays of either device are kept as they are)
        _check_floating(data.dtype, requires_grad)
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = requires_grad
        self._ctx = None
        self._retains_grad = False
        self.name = name

    @classmethod
    def _from_op(cls, data, requires_grad: bool) -> "Tensor":
        """The fast constructor used by every operation (no checks: ops produce valid arrays)."""
        if data.__class__ is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy turns 0-d results into scalars; keep arrays
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out.requires_grad = requires_grad
        out._ctx = None
        out._retains_grad = False
        out.name = None
        out._version_counter = None
        return out

    # ------------------------------------------------------------ properties
    @property
    def shape(self) -> Shape:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an operation."""
        return self._ctx is None

    @property
    def version(self) -> int:
        """How many times the library has written into this tensor's memory in place.

        ``optimizer.step()``, ``Module.load_state_dict`` and ``optim.clip_grad_norm_`` (on
        gradients) bump it; backward checks it to refuse stale graphs (see
        ``Function.saves_inputs`` in ops.py). A view (made by ``reshape``, ``transpose``,
        basic indexing, ``detach()``, ``Tensor(x)``, or ``to()`` when nothing had to move)
        shares the version of the tensor whose memory it reads.

        Assigning to ``.data`` or writing into it directly (``x.data[...] = 0``) is not
        counted: that is the escape hatch for work outside autograd, as in PyTorch
        (``tl.gradcheck`` nudges its inputs this way and restores them exactly). Call
        ``bump_version()`` after such a write if a graph may still read the tensor.
        """
        return versions_of((self,))[0]

    def bump_version(self) -> None:
        """Record an in-place write into this tensor's memory (see ``version``)."""
        self._shared_version_counter().count += 1

    def _shared_version_counter(self) -> "VersionCounter":
        """The counter this tensor shares with the tensors that read its memory, made on
        first need: most tensors are never written in place nor viewed, and need none."""
        if self._version_counter is None:
            self._version_counter = VersionCounter()
        return self._version_counter

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .sum(), .max() or compare element by element"
            )
        return bool(self.data)

    # ------------------------------------------------------------ conversions
    def numpy(self) -> np.ndarray:
        """The values as a host numpy array (copied from the GPU when needed)."""
        return backend.to_numpy(self.data)

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> list:
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (no gradient flows through the result).

        The result shares this tensor's memory, and so its version.
        """
        return _shares_version_if_view(Tensor._from_op(self.data, False), self)

    def to(self, target) -> "Tensor":
        """Move to a device (``"cpu"``/``"cuda"``) or cast to a dtype; gradients flow through.

        A leaf stays a leaf: its data and its ``grad`` move, ``requires_grad`` is kept.
        """
        if isinstance(target, str) and target in backend.DEVICES:
            if self._ctx is None:
                moved = Tensor._from_op(backend.to_device(self.data, target), self.requires_grad)
                if self.grad is not None:
                    moved.grad = self.grad.to(target)
                return _shares_version_if_view(moved, self)
            return ops.ToDevice.apply(self, device=target)
        dtype = _as_dtype(target)
        if self._ctx is None:
            moved = Tensor._from_op(self.data.astype(dtype, copy=False), self.requires_grad)
            _check_floating(dtype, self.requires_grad)
            if self.grad is not None:
                moved.grad = self.grad.to(dtype)
            return _shares_version_if_view(moved, self)
        return ops.Cast.apply(self, dtype=dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` for this non-leaf tensor after ``backward()`` (for plots and checks)."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ autograd
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        Args:
            grad: dL/d(self), same shape as self. May be omitted only when self has one
                element (a loss), where it is 1.
            retain_graph: keep the graph so ``backward`` can run through it again.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran inside no_grad())"
            )
        xp = backend.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element tensor (a loss), but this "
                    f"tensor has shape {self.shape}. Reduce it first (e.g. .sum() or .mean()), "
                    "or pass grad= of the same shape"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad has shape {grad.shape}, expected {self.shape}")

        grads: dict[int, Any] = {id(self): grad}
        order = _topological_order(self)
        for node in order:
            node_grad = grads.pop(id(node), None)
            if node_grad is None:
                continue
            function = node._ctx
            if function is None or node._retains_grad:
                _accumulate_grad(node, node_grad)
            if function is None:
                continue
            saved = function.saved_versions
            if saved is not None and saved != versions_of(function.inputs):
                _raise_stale_input(function, node, order)
            input_grads = function.backward(node_grad)
            if not isinstance(input_grads, tuple):  # one input: a bare array
                input_grads = (input_grads,)
            for input_tensor, input_grad in zip(function.inputs, input_grads):
                if input_grad is None or not input_tensor.requires_grad:
                    continue
                if input_grad.shape != input_tensor.data.shape:
                    _raise_wrong_grad_shape(function, input_tensor, input_grad)
                key = id(input_tensor)
                # out of place: a backward may return the very array it was given
                grads[key] = grads[key] + input_grad if key in grads else input_grad
            if not retain_graph:
                function.release()

    # ------------------------------------------------------------ operators
    def _operand(self, other) -> "Tensor":
        """Turn a Python number or array into a tensor that combines with ``self``.

        Mixed dtypes promote as in NumPy 2 (NEP 50), which differs from PyTorch in places:

        * Two tensors give the smallest dtype that holds both exactly: float32 with
          float64 is float64; an integer with a float picks a float wide enough for the
          integers, so int32 or int64 with float16 or float32 is **float64** (PyTorch keeps
          the float tensor's dtype), int16 with float16 is float32, int8 with float16 is
          float16. A 0-d tensor counts like any other (PyTorch lets a dimensioned tensor
          win: float32 (n,) with float64 0-d is float32 there, float64 here).
        * A Python number is "weak": it takes the tensor's dtype when the tensor is of
          its kind or a wider one (bool < integer < float), so ``x * 2.0`` keeps a float32
          ``x`` float32 and ``ids + 1`` keeps int32 ids int32. Otherwise it is int64 (an
          int with a bool tensor) or **float64** (a float with an integer or bool tensor;
          PyTorch gives its default dtype, float32).
        * ``/`` of integers is float64 (PyTorch: float32), the mean of integers is float64
          (PyTorch refuses it), and ``@`` of mixed dtypes promotes (PyTorch refuses it).
        """
        if isinstance(other, Tensor):
            return other
        xp = backend.array_module(self.data)
        if isinstance(other, (bool, int, float)):
            return Tensor._from_op(xp.asarray(other, dtype=_python_number_dtype(other, self.dtype)), False)
        return Tensor._from_op(xp.asarray(other), False)

    def __add__(self, other):
        return ops.Add.apply(self, self._operand(other))

    def __radd__(self, other):
        return ops.Add.apply(self._operand(other), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, self._operand(other))

    def __rsub__(self, other):
        return ops.Sub.apply(self._operand(other), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, self._operand(other))

    def __rmul__(self, other):
        return ops.Mul.apply(self._operand(other), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other):
        return ops.Div.apply(self._operand(other), self)

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float)):
            return ops.PowScalar.apply(self, exponent=exponent)
        return ops.Pow.apply(self, self._operand(exponent))

    def __rpow__(self, base):
        return ops.Pow.apply(self._operand(base), self)

    def __matmul__(self, other):
        return ops.MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(self._operand(other), self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_normalize_index(index, self.data))

    # comparisons give boolean tensors without gradients (for masks and tl.where)
    def __lt__(self, other):
        return Tensor._from_op(self.data < self._operand(other).data, False)

    def __le__(self, other):
        return Tensor._from_op(self.data <= self._operand(other).data, False)

    def __gt__(self, other):
        return Tensor._from_op(self.data > self._operand(other).data, False)

    def __ge__(self, other):
        return Tensor._from_op(self.data >= self._operand(other).data, False)

    def eq(self, other) -> "Tensor":
        """Element-wise equality (``==`` keeps Python's identity meaning, so tensors stay hashable)."""
        return Tensor._from_op(self.data == self._operand(other).data, False)

    __hash__ = object.__hash__

    # ------------------------------------------------------------ methods
    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def relu(self):
        return ops.ReLU.apply(self)

    def sqrt(self):
        return ops.PowScalar.apply(self, exponent=0.5)

    def sum(self, axis=None, keepdims: bool = False):
        return ops.Sum.apply(self, axis=_normalize_axis(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return ops.Mean.apply(self, axis=_normalize_axis(axis, self.ndim), keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return ops.Max.apply(self, axis=_normalize_axis(axis, self.ndim), keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False):
        """Population variance (divides by N, as layer norm uses it)."""
        centered = self - self.mean(axis, keepdims=True)
        return (centered * centered).mean(axis, keepdims=keepdims)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=tuple(shape))

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        """Permute the axes (reverse them when none are given), as ``numpy.transpose``."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"transpose{tuple(axes)}: expected a permutation of {self.ndim} axes for shape {self.shape}")
        return ops.Transpose.apply(self, axes=tuple(a % self.ndim for a in axes))

    def swapaxes(self, axis1: int, axis2: int):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.transpose(*axes)

    @property
    def T(self):
        return self.transpose()


ops: Any = None  # set at the bottom of this file (ops.py needs Tensor first)


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 2}  # bool < integer < float


def _python_number_dtype(number: bool | int | float, dtype: np.dtype) -> np.dtype:
    """The dtype a Python number takes beside a tensor of ``dtype`` (see ``Tensor._operand``)."""
    kind = "b" if isinstance(number, bool) else "i" if isinstance(number, int) else "f"
    if _KIND_RANK[dtype.kind] >= _KIND_RANK[kind]:
        return dtype
    return np.dtype(np.int64 if kind == "i" else np.float64)


def _as_dtype(target) -> np.dtype:
    try:
        return np.dtype(target)
    except TypeError:
        raise TypeError(f"to(): expected a device ('cpu' or 'cuda') or a dtype, got {target!r}") from None


def _normalize_axis(axis, ndim: int):
    """An int or tuple of axes, each checked and made non-negative (None stays None)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    axes = tuple(a % max(ndim, 1) for a in axes)
    return axes[0] if isinstance(axis, int) else axes


def _normalize_index(index, array):
    """Turn tensors and lists inside an index into arrays on the indexed array's device."""
    xp = backend.array_module(array)

    def convert(item):
        if isinstance(item, Tensor):
            return item.data
        if isinstance(item, list):
            array = xp.asarray(item)
            return array.astype(np.int64) if array.size == 0 else array  # [] would be float64
        if isinstance(item, np.ndarray) and xp is not np:
            return xp.asarray(item)
        return item

    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


def _raise_wrong_grad_shape(function, input_tensor: Tensor, input_grad) -> None:
    position = next(i for i, t in enumerate(function.inputs) if t is input_tensor)
    raise RuntimeError(
        f"{type(function).__name__}.backward returned a gradient of shape {input_grad.shape} for "
        f"input {position}, whose shape is {input_tensor.shape}: a gradient always has the shape "
        "of the tensor it belongs to (did a broadcast axis go unsummed, or a transpose go missing?)"
    )


def versions_of(tensors: Sequence[Tensor]) -> list[int]:
    """The version of each tensor (0 until its memory is first written), as ``Function.apply`` records them.

    Written out rather than through the ``version`` property: it runs for most ops, and
    a property call per input would cost more than the rest of the check.
    """
    return [0 if t._version_counter is None else t._version_counter.count for t in tensors]


def _describe(tensor: Tensor) -> str:
    """A tensor in words, for error messages: its name if it has one, its shape and dtype."""
    shape = f"shape {tensor.shape}, {tensor.dtype}"
    return f"'{tensor.name}' ({shape})" if tensor.name else f"a tensor of {shape}"


def _raise_stale_input(function, node: Tensor, order: list[Tensor]) -> None:
    """Explain which saved input of ``function`` was overwritten since forward, and the fix."""
    now = versions_of(function.inputs)
    position = next(i for i, (saved, current) in enumerate(zip(function.saved_versions, now)) if saved != current)
    what = _describe(function.inputs[position])
    made_by_ops = [n for n in order if n._ctx is not None]
    step = next(i for i, n in enumerate(made_by_ops) if n is node) + 1
    raise RuntimeError(
        f"backward through {type(function).__name__} (op {step} of {len(made_by_ops)}, counting back from "
        f"the output) needs its input {position}, {what}, as the forward pass saw it (version "
        f"{function.saved_versions[position]}), but its memory has been written in place since (version now "
        f"{now[position]}), e.g. by optimizer.step() or load_state_dict() (a view such as weight.T shares the "
        "version of the weight it reads). The gradient would belong to values the forward pass never used: "
        "call loss.backward() before optimizer.step(), or compute the loss again after the update"
    )


def _shares_version_if_view(out: Tensor, source: Tensor) -> Tensor:
    """Let ``out`` share ``source``'s version counter if its array reads ``source``'s memory.

    The counter is shared, not ``source`` itself: a reference to ``source`` would keep the
    graph that made it alive for as long as ``out`` lives (``h = h.detach()`` in a loop).
    """
    if _is_view_of(out.data, source.data):
        out._version_counter = source._shared_version_counter()
    return out


def _is_view_of(view, array) -> bool:
    """Whether ``view`` is ``array`` or a view of the same memory (reshape, transpose, slice).

    NumPy and CuPy give a view a ``base``: the array that owns the memory.
    """
    owner = array if array.base is None else array.base
    return view is array or view.base is owner


def _accumulate_grad(node: Tensor, grad) -> None:
    if node.grad is None:
        # a fresh array: backward functions may return shared or read-only views
        node.grad = Tensor._from_op(grad.astype(node.dtype, copy=True), False)
    else:
        node.grad = Tensor._from_op(node.grad.data + grad, False)


def inputs_first(root: Tensor, inputs_of: Callable[[Tensor], Sequence[Tensor]]) -> list[Tensor]:
    """Every tensor reachable from ``root`` through ``inputs_of``, each after all its inputs.

    An iterative depth-first search (no recursion, so any depth works): a node is appended
    once all of its inputs have been. ``root`` comes last.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for input_tensor in reversed(inputs_of(node)):
            if id(input_tensor) not in visited:
                stack.append((input_tensor, False))
    return order


def _inputs_needing_grad(node: Tensor) -> Sequence[Tensor]:
    function = node._ctx
    if function is None:
        return ()
    if function.inputs is None:
        raise RuntimeError(
            f"backward through a graph that was already freed (at the {type(function).__name__} "
            "node): a graph is freed after backward() to save memory. Pass "
            "backward(retain_graph=True) the first time to go through it twice, or recompute "
            "the forward pass"
        )
    return [t for t in function.inputs if t.requires_grad]


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on through tensors requiring grad, root first."""
    order = inputs_first(root, _inputs_needing_grad)
    order.reverse()
    return order


# ------------------------------------------------------------ creation functions


def _shape_from(shape) -> Shape:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _resolve(dtype, device) -> tuple[np.dtype, str]:
    return (backend.get_default_dtype() if dtype is None else np.dtype(dtype)), (device or "cpu")


def tensor(data: Any, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Make a leaf tensor from a list, a number, an array or another tensor.

    Python floats become the default dtype (float32 unless ``set_default_dtype`` changed
    it), Python ints int64; arrays and NumPy scalars keep their dtype (as ``torch.tensor``
    does). ``dtype`` may be a NumPy dtype or its name.
    """
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, np.generic):
        data = np.asarray(data)  # np.float64(0.5) is a float64 value, not a Python float
    array_like = isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")
    source_device = backend.device_of(data) if array_like else "cpu"
    device = backend.check_device(device or source_device)
    xp = backend.module_for_device(device)
    if array_like:
        array = backend.to_device(data, device)
    else:
        not_rectangular = ValueError(f"tl.tensor() needs a rectangular nested list of numbers, got {data!r:.80}")
        try:
            host = np.asarray(data)
        except ValueError:  # NumPy 2 refuses ragged lists itself, in its own words
            raise not_rectangular from None
        if host.dtype == object:
            raise not_rectangular
        if dtype is None and host.dtype.kind == "f":
            host = host.astype(backend.get_default_dtype())
        array = xp.asarray(host)
    if dtype is not None:
        array = array.astype(np.dtype(dtype), copy=False)
    if array_like and array is data:
        array = array.copy()  # a leaf owns its data, as torch.tensor copies
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _resolve(dtype, device)
    return Tensor(backend.module_for_device(device).zeros(_shape_from(shape), dtype), requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _resolve(dtype, device)
    return Tensor(backend.module_for_device(device).ones(_shape_from(shape), dtype), requires_grad)


def full(shape, value: float, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _resolve(dtype, device)
    return Tensor(backend.module_for_device(device).full(_shape_from((shape,)), value, dtype), requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the generator seeded by ``tl.manual_seed``."""
    dtype, device = _resolve(dtype, device)
    if dtype.kind != "f":
        raise TypeError(f"randn needs a floating dtype, got {dtype}")
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float32
    data = backend.generator(device).standard_normal(_shape_from(shape), dtype=draw_dtype)
    return Tensor(data.astype(dtype, copy=False), requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the generator seeded by ``tl.manual_seed``."""
    dtype, device = _resolve(dtype, device)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float32
    data = backend.generator(device).random(_shape_from(shape), dtype=draw_dtype)
    return Tensor(data.astype(dtype, copy=False), requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``arange(n)`` is 0..n-1 (int64 for integer arguments, as PyTorch)."""
    if stop is None:
        start, stop = 0, start
    integral = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
    if dtype is None:
        dtype = np.int64 if integral else backend.get_default_dtype()
    xp = backend.module_for_device(backend.check_device(device or "cpu"))
    return Tensor(xp.arange(start, stop, step, dtype=np.dtype(dtype)), requires_grad)


def zeros_like(x: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(backend.array_module(x.data).zeros_like(x.data), requires_grad)


def ones_like(x: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(backend.array_module(x.data).ones_like(x.data), requires_grad)


# ------------------------------------------------------------ functions over several tensors


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``numpy.concatenate``)."""
    tensors = _as_tensor_list(tensors, "concat")
    return ops.Concat.apply(*tensors, axis=_normalize_axis(axis, tensors[0].ndim))


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along a new axis (``numpy.stack``)."""
    tensors = _as_tensor_list(tensors, "stack")
    return ops.Stack.apply(*tensors, axis=_normalize_axis(axis, tensors[0].ndim + 1))


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` is true, else ``b`` (broadcast); gradients flow to a and b."""
    a = a if isinstance(a, Tensor) else (b._operand(a) if isinstance(b, Tensor) else tensor(a))
    b = a._operand(b)
    condition = condition.data if isinstance(condition, Tensor) else backend.array_module(a.data).asarray(condition)
    return ops.Where.apply(a, b, condition=condition.astype(bool, copy=False))


def _as_tensor_list(tensors, name: str) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}() needs at least one tensor, got an empty sequence")
    return [t if isinstance(t, Tensor) else tensor(t) for t in tensors]


from . import ops  # noqa: E402  (ops.py builds on Tensor, defined above)
