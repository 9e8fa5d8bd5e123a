"""The ops against PyTorch on awkward inputs, drawn by hypothesis.

``test_ops.py`` draws friendly inputs: no empty axes, values away from kinks, one float
dtype at a time. Here every example may hold what real programs meet sooner or later:

* zero-size axes and 0-d tensors;
* non-contiguous inputs: transposed and strided views, made by tinylm's own ops from a
  contiguous tensor, so that the gradients flow back through the views as well;
* float16, float32 and float64, and integer/float mixes;
* NaN, ±inf and ±0 among the values, and ties (values from a small set, so ``max`` has
  several winners);
* repeated integer indices, alone or beside slices.

Values and gradients must equal PyTorch's (NaN where PyTorch has NaN, the same infinities).
Where tinylm's rule differs from PyTorch's on purpose (dtype promotion follows NumPy, see
``Tensor._operand``; ``max`` of an empty axis), the test asserts tinylm's documented rule.

The examples are derandomized, so every run (and CI) draws the same ones; values come
from hypothesis itself, never from a global random generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinylm as tl
import tinylm.functional as F

from assertions import assert_close

# NumPy warns of the NaN, inf and empty means these inputs make on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLOATS = [np.float16, np.float32, np.float64]
MAX_SIDE = 3

# ---------------------------------------------------------------- values

ORDINARY = st.floats(-3, 3, width=16)  # exact in float16, so every dtype sees the same numbers
TIES = st.sampled_from([-1.0, 0.0, 1.0, 2.0])
SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])
VALUES = {"ordinary": ORDINARY, "ties": TIES, "special": st.one_of(ORDINARY, SPECIAL)}


# ---------------------------------------------------------------- layouts
# A layout makes an input of a given shape from a contiguous "base" tensor: the base
# itself, a transposed view of it, or every other row of it. The same view is taken in
# tinylm and in PyTorch, and the gradients compared are those of the bases.


def base_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "transposed":
        return tuple(reversed(shape))
    if layout == "strided":
        return (2 * shape[0],) + shape[1:]
    return shape


def view(base, layout: str):
    """The input from its base (the same code for tinylm and PyTorch tensors)."""
    if layout == "transposed":
        return base.permute(*reversed(range(base.ndim))) if hasattr(base, "permute") else base.T
    if layout == "strided":
        return base[::2]
    return base


def usable_layouts(shape) -> list[str]:
    return ["contiguous"] + (["strided"] if len(shape) >= 1 else []) + (["transposed"] if len(shape) >= 2 else [])


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Op:
    """An op, the same op in PyTorch, and a strategy drawing (input shapes, settings)."""

    name: str
    ours: Callable
    examples: st.SearchStrategy
    theirs: Callable | None = None  # theirs(torch, *tensors, **settings) when ``ours`` does not run on torch tensors


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=MAX_SIDE)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=MAX_SIDE)


def unary(**setting_strategies):
    return st.tuples(shapes.map(lambda s: [s]), st.fixed_dictionaries(setting_strategies))


broadcast = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=MAX_SIDE).map(
    lambda b: (list(b.input_shapes), {})
)
matmul_shapes = hnp.mutually_broadcastable_shapes(
    signature=np.matmul.signature, max_dims=2, min_side=0, max_side=MAX_SIDE
).map(lambda b: (list(b.input_shapes), {}))


@st.composite
def reduction(draw):
    shape = draw(shapes)
    ndim = len(shape)
    axis = draw(st.none() if ndim == 0 else st.one_of(st.none(), st.integers(-ndim, ndim - 1), hnp.valid_tuple_axes(ndim, min_size=1)))
    return [shape], {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def class_axis(draw):
    shape = draw(nonscalar_shapes)
    return [shape], {"axis": draw(st.integers(-len(shape), len(shape) - 1))}


@st.composite
def reshape(draw):
    shape = draw(shapes)
    return [shape], {"shape": tuple(draw(st.permutations(shape)))}


@st.composite
def repeated_index(draw):
    """Integer rows with repeats (their gradients add up), maybe beside a slice or a second array."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=MAX_SIDE))
    rows = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=0, max_size=5))
    rows = rows + rows[:1] * 2
    if len(shape) >= 2:
        second = draw(st.sampled_from(["slice", "array", "none"]))
        if second == "slice":
            return [shape], {"index": (rows, slice(None, None, 2))}
        if second == "array" and rows:
            cols = draw(st.lists(st.integers(-shape[1], shape[1] - 1), min_size=len(rows), max_size=len(rows)))
            return [shape], {"index": (rows, cols)}
    return [shape], {"index": rows}


@st.composite
def joined(draw):
    """1 to 3 shapes that differ only along ``axis`` (sizes may be 0)."""
    base = list(draw(nonscalar_shapes))
    axis = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(0, MAX_SIDE), min_size=1, max_size=3))
    position = axis % len(base)
    return [tuple(base[:position] + [n] + base[position + 1:]) for n in sizes], {"axis": axis}


@st.composite
def stacked(draw):
    shape = draw(shapes)
    return [shape] * draw(st.integers(1, 3)), {"axis": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def where(draw):
    condition, a, b = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, min_side=0, max_side=MAX_SIDE)).input_shapes
    return [a, b], {"condition": draw(hnp.arrays(np.bool_, condition))}


def _torch_amax(torch, x, axis, keepdims):
    return torch.amax(x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)


def _torch_reduction(method):
    def reduce(torch, x, axis, keepdims):
        return getattr(x, method)() if axis is None and not keepdims else getattr(x, method)(
            dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims
        )

    return reduce


OPS = [
    Op("add", lambda a, b: a + b, broadcast),
    Op("sub", lambda a, b: a - b, broadcast),
    Op("mul", lambda a, b: a * b, broadcast),
    Op("div", lambda a, b: a / b, broadcast),
    Op("pow", lambda a, b: a**b, broadcast),
    Op("pow_scalar", lambda x, exponent: x**exponent, unary(exponent=st.sampled_from([0, 1, 2, 3, 0.5, -1, -2.5]))),
    Op("matmul", lambda a, b: a @ b, matmul_shapes),
    Op("neg", lambda x: -x, unary()),
    Op("exp", lambda x: x.exp(), unary()),
    Op("log", lambda x: x.log(), unary()),
    Op("tanh", lambda x: x.tanh(), unary()),
    Op("sigmoid", lambda x: x.sigmoid(), unary()),
    Op("relu", lambda x: x.relu(), unary()),
    Op("sum", lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), reduction(), _torch_reduction("sum")),
    Op("mean", lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), reduction(), _torch_reduction("mean")),
    Op("max", lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), reduction(), _torch_amax),
    Op("reshape", lambda x, shape: x.reshape(shape), reshape()),
    Op("getitem_repeated", lambda x, index: x[index], repeated_index(),
       lambda torch, x, index: x[tuple(torch.tensor(i, dtype=torch.int64) if isinstance(i, list) else i for i in index)
                                 if isinstance(index, tuple) else torch.tensor(index, dtype=torch.int64)]),
    Op("concat", lambda *xs, axis: tl.concat(xs, axis=axis), joined(), lambda torch, *xs, axis: torch.cat(xs, dim=axis)),
    Op("stack", lambda *xs, axis: tl.stack(xs, axis=axis), stacked(), lambda torch, *xs, axis: torch.stack(xs, dim=axis)),
    Op("where", lambda a, b, condition: tl.where(condition, a, b), where(),
       lambda torch, a, b, condition: torch.where(torch.from_numpy(condition), a, b)),
    Op("softmax", lambda x, axis: F.softmax(x, axis=axis), class_axis(), lambda torch, x, axis: torch.softmax(x, dim=axis)),
    Op("log_softmax", lambda x, axis: F.log_softmax(x, axis=axis), class_axis(),
       lambda torch, x, axis: torch.log_softmax(x, dim=axis)),
]
by_name = pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])


def tolerance(dtype) -> dict:
    """float16 keeps ~3 digits; sums of a few products lose one more."""
    return {np.float16: {"rtol": 1e-2, "atol": 1e-2}, np.float32: {"rtol": 1e-5, "atol": 1e-5}}.get(
        dtype, {"rtol": 1e-10, "atol": 1e-12}
    )


def empty_reduction(x_shape, axis) -> bool:
    """Whether ``max`` would reduce over an axis of size 0 (it has no value there)."""
    axes = range(len(x_shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return any(x_shape[a] == 0 for a in axes)


def check_op(torch, op: Op, bases: list[np.ndarray], layouts: list[str], op_settings: dict, seed: int = 0) -> None:
    """Run ``op`` on views of ``bases`` in tinylm and PyTorch; values and the bases' gradients must agree."""
    dtype = bases[0].dtype.type
    ours = [tl.tensor(b, requires_grad=True) for b in bases]
    theirs = [torch.tensor(b, requires_grad=True) for b in bases]
    our_inputs = [view(b, layout) for b, layout in zip(ours, layouts)]
    their_inputs = [view(b, layout) for b, layout in zip(theirs, layouts)]

    if op.name == "max" and empty_reduction(our_inputs[0].shape, op_settings["axis"]):
        with pytest.raises(tl.ShapeError, match=r"max\(\) over an axis of size 0 has no value"):
            op.ours(*our_inputs, **op_settings)
        return  # PyTorch refuses too (max has no identity)

    out = op.ours(*our_inputs, **op_settings)
    expected = (op.theirs or (lambda torch, *xs, **kw: op.ours(*xs, **kw)))(torch, *their_inputs, **op_settings)
    assert out.dtype == np.dtype(str(expected.dtype).removeprefix("torch.")), f"{op.name}: dtype {out.dtype}, PyTorch {expected.dtype}"
    assert_close(out, expected, **tolerance(dtype), name=f"{op.name} forward")

    upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for i, (x, t) in enumerate(zip(ours, theirs)):
        assert x.grad.dtype == x.dtype, f"{op.name}: gradient of input {i} is {x.grad.dtype}, its input {x.dtype}"
        assert_close(x.grad, t.grad, **tolerance(dtype), name=f"{op.name} gradient of input {i} ({layouts[i]})")


@by_name
@FUZZ
@given(data=st.data())
def test_values_and_gradients_match_torch(op, torch, data):
    input_shapes, op_settings = data.draw(op.examples, label="shapes, settings")
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    kind = data.draw(st.sampled_from(sorted(VALUES)), label="values")
    layouts = [data.draw(st.sampled_from(usable_layouts(s)), label=f"layout {i}") for i, s in enumerate(input_shapes)]
    bases = [data.draw(hnp.arrays(np.float64, base_shape(s, layout), elements=VALUES[kind]), label=f"base {i}").astype(dtype)
             for i, (s, layout) in enumerate(zip(input_shapes, layouts))]
    check_op(torch, op, bases, layouts, op_settings, seed=data.draw(st.integers(0, 2**32 - 1), label="upstream seed"))


OP = {op.name: op for op in OPS}
NAN, INF = math.nan, math.inf

# What the fuzzing found, pinned: each of these failed before its fix.
FOUND = {
    "d(a^b)/da at b = 0 is 0, also at a = 0": ("pow", [[0.0, 2.0], [0.0, 0.0]], {}),
    "d(a^b)/db at a = 0, b > 0 is 0": ("pow", [[0.0], [2.0]], {}),
    "d(x^0)/dx at x = 0 is 0": ("pow_scalar", [[0.0, 1.0]], {"exponent": 0}),
    "relu(-inf) is 0, relu(nan) is nan and passes its gradient": ("relu", [[-INF, NAN, 1.0, -1.0]], {}),
    "max over a non-empty axis of an empty tensor": ("max", [np.zeros((0, 3))], {"axis": 1, "keepdims": False}),
    "an empty list of indices": ("getitem_repeated", [[1.0, 2.0]], {"index": []}),
    "an empty list of indices beside a slice": ("getitem_repeated", [np.ones((2, 3))], {"index": ([], slice(None, None, 2))}),
    "softmax over an empty axis": ("softmax", [np.zeros((2, 0))], {"axis": -1}),
    "log_softmax over an empty axis": ("log_softmax", [np.zeros((2, 0))], {"axis": 1}),
}


@pytest.mark.parametrize("name, inputs, op_settings", FOUND.values(), ids=list(FOUND))
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_what_the_fuzzing_found(torch, name, inputs, op_settings, dtype):
    bases = [np.asarray(x, dtype=dtype) for x in inputs]
    check_op(torch, OP[name], bases, ["contiguous"] * len(bases), op_settings)


def test_an_ignored_row_of_nan_logits_adds_nothing_to_the_loss(torch):
    logits = np.array([[NAN, 1.0], [1.0, 2.0]])
    loss = F.cross_entropy(tl.tensor(logits), np.array([-100, 1]), reduction="sum")
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor([-100, 1]), reduction="sum")
    assert_close(loss, expected, name="loss with an ignored row of NaN")


def test_a_python_int_beside_a_bool_tensor_counts_as_an_int():
    mask = tl.tensor([True, False])
    assert (mask + 2).dtype == np.int64 and (mask + 2).tolist() == [3, 2]  # was True + True = True
    assert (mask * 1.5).dtype == np.float64 and (mask * True).dtype == np.bool_


# ---------------------------------------------------------------- cross-entropy


@st.composite
def cross_entropy_case(draw):
    """Logits (..., C) with awkward values, targets with some ignored (-100), a reduction."""
    leading = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=MAX_SIDE))
    classes = draw(st.integers(1, 4))
    targets = draw(hnp.arrays(np.int64, leading, elements=st.sampled_from([-100, *range(classes)])))
    return leading + (classes,), targets, draw(st.sampled_from(["mean", "sum", "none"]))


@FUZZ
@given(data=st.data())
def test_cross_entropy_matches_torch(torch, data):
    shape, targets, reduction = data.draw(cross_entropy_case(), label="shape, targets, reduction")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    kind = data.draw(st.sampled_from(sorted(VALUES)), label="values")
    logits = data.draw(hnp.arrays(np.float64, shape, elements=VALUES[kind]), label="logits").astype(dtype)
    ours, theirs = tl.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, targets, reduction=reduction)
    # tinylm's documented rule: "mean" over no kept target is 0 with zero gradients, as "sum"
    # is (PyTorch's mean is 0/0 = NaN there)
    every_target_ignored = not (targets != -100).any()
    their_reduction = "sum" if reduction == "mean" and every_target_ignored else reduction
    expected = torch.nn.functional.cross_entropy(
        theirs.reshape(-1, shape[-1]), torch.from_numpy(targets.reshape(-1)), reduction=their_reduction
    ).reshape(loss.shape)
    assert_close(loss, expected, **tolerance(dtype), name=f"cross_entropy ({reduction}) forward")
    upstream = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed")).standard_normal(loss.shape)
    loss.backward(upstream.astype(loss.dtype))
    expected.backward(torch.from_numpy(upstream.astype(loss.dtype)))
    assert_close(ours.grad, theirs.grad, **tolerance(dtype), name=f"cross_entropy ({reduction}) gradient")


# ---------------------------------------------------------------- mixed dtypes

MIXED = [np.bool_, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]
SMALL_INTEGERS = st.integers(-3, 3)  # exact in every dtype drawn


def small_values(dtype) -> st.SearchStrategy:
    return st.booleans() if dtype == np.bool_ else SMALL_INTEGERS


BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def _torch_dtype(torch, dtype):
    return getattr(torch, "bool" if dtype == np.bool_ else np.dtype(dtype).name)


def _in_dtype(torch, array: np.ndarray, dtype):
    return torch.tensor(array.astype(dtype))


@FUZZ
@given(data=st.data())
def test_two_tensors_of_mixed_dtypes_promote_as_numpy(torch, data):
    """tinylm's rule (``Tensor._operand``): NumPy's dtype; the values are PyTorch's in that dtype, and so are
    the gradients of float inputs (each in its input's dtype)."""
    operation = data.draw(st.sampled_from(sorted(BINARY) + ["@"]), label="operation")
    left, right = data.draw(st.sampled_from(MIXED), label="left"), data.draw(st.sampled_from(MIXED), label="right")
    if operation == "@":
        shapes_drawn = data.draw(hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=MAX_SIDE))
    else:
        shapes_drawn = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=MAX_SIDE))
    a, b = (data.draw(hnp.arrays(dtype, shape, elements=small_values(dtype)), label=f"operand {i}")
            for i, (dtype, shape) in enumerate(zip((left, right), shapes_drawn.input_shapes)))
    fn = (lambda x, y: x @ y) if operation == "@" else BINARY[operation]
    try:
        with np.errstate(all="ignore"):
            reference = np.asarray(fn(a, b))
    except TypeError:  # NumPy refuses bool - bool: so does tinylm, in NumPy's words
        with pytest.raises(TypeError):
            fn(tl.tensor(a), tl.tensor(b))
        return
    floats = np.dtype(left).kind == np.dtype(right).kind == "f"  # then the gradients are compared too
    ours = [tl.tensor(a, requires_grad=floats), tl.tensor(b, requires_grad=floats)]
    out = fn(*ours)
    name = f"{np.dtype(left)} {operation} {np.dtype(right)}"
    assert out.dtype == reference.dtype, f"{name}: {out.dtype}, NumPy {reference.dtype}"
    if operation == "@" and out.dtype == np.bool_:
        return  # PyTorch has no boolean matmul; NumPy's is an "or" of "and"s
    theirs = [_in_dtype(torch, x, out.dtype).requires_grad_(floats) for x in (a, b)]
    expected = fn(*theirs)
    assert_close(out, expected, **tolerance(out.dtype.type), name=name)
    if floats:
        upstream = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed")).standard_normal(out.shape)
        out.backward(upstream.astype(out.dtype))
        expected.backward(torch.from_numpy(upstream.astype(out.dtype)))
        for i, (x, t) in enumerate(zip(ours, theirs)):
            assert x.grad.dtype == x.dtype, f"{name}: gradient of input {i} is {x.grad.dtype}, its input {x.dtype}"
            expected_grad = t.grad.to(_torch_dtype(torch, x.dtype.type))
            assert_close(x.grad, expected_grad, **tolerance(x.dtype.type), name=f"{name}: gradient of input {i}")


@FUZZ
@given(data=st.data())
def test_python_numbers_are_weak_beside_tensors(torch, data):
    """The documented rule: the tensor's dtype if it is of the number's kind or wider, else int64/float64."""
    dtype = data.draw(st.sampled_from(MIXED), label="tensor dtype")
    number = data.draw(st.one_of(st.booleans(), SMALL_INTEGERS, st.floats(-3, 3, width=16)), label="number")
    operation = data.draw(st.sampled_from(sorted(BINARY)), label="operation")
    number_first = data.draw(st.booleans(), label="number first")
    array = data.draw(hnp.arrays(dtype, data.draw(shapes, label="shape"), elements=small_values(dtype)))
    fn = BINARY[operation]
    call = (lambda x: fn(number, x)) if number_first else (lambda x: fn(x, number))
    kind = "b" if isinstance(number, bool) else "i" if isinstance(number, int) else "f"
    rank = {"b": 0, "u": 1, "i": 1, "f": 2}
    promoted = np.dtype(dtype) if rank[np.dtype(dtype).kind] >= rank[kind] else np.dtype(np.int64 if kind == "i" else np.float64)
    try:
        with np.errstate(all="ignore"):
            reference = np.asarray(call(array))
    except TypeError:  # bool - bool
        with pytest.raises(TypeError):
            call(tl.tensor(array))
        return
    out = call(tl.tensor(array))
    expected_dtype = np.dtype(np.float64) if operation == "/" and promoted.kind in "bi" else promoted
    assert out.dtype == expected_dtype == reference.dtype, f"{np.dtype(dtype)} {operation} {number!r}: {out.dtype}"
    their_number = promoted.type(number).item()  # PyTorch refuses e.g. int8 - False; the same number in the promoted kind
    their_call = (lambda x: fn(their_number, x)) if number_first else (lambda x: fn(x, their_number))
    expected = their_call(_in_dtype(torch, array, promoted)).to(_torch_dtype(torch, out.dtype.type))
    assert_close(out, expected, **tolerance(out.dtype.type), name=f"{np.dtype(dtype)} {operation} {number!r}")


@FUZZ
@given(data=st.data())
def test_reductions_of_integers_and_bools(torch, data):
    """sum and max keep NumPy's dtypes (int64 for sums of small integers and bools); mean is float64 (PyTorch refuses)."""
    dtype = data.draw(st.sampled_from(MIXED[:4]), label="dtype")
    (shape,), settings_drawn = data.draw(reduction(), label="shape, axis, keepdims")
    array = data.draw(hnp.arrays(dtype, shape, elements=small_values(dtype)), label="values")
    for name in ("sum", "mean", "max"):
        if name == "max" and empty_reduction(array.shape, settings_drawn["axis"]):
            continue
        out = getattr(tl.tensor(array), name)(**settings_drawn)
        with np.errstate(all="ignore"):
            reference = np.asarray(getattr(array, name)(**settings_drawn))
        assert out.dtype == reference.dtype, f"{name} of {np.dtype(dtype)}: {out.dtype}, NumPy {reference.dtype}"
        theirs = _in_dtype(torch, array, np.float64 if name == "mean" else dtype)
        reduce = _torch_amax if name == "max" else _torch_reduction(name)
        assert_close(out, reduce(torch, theirs, **settings_drawn), name=f"{name} of {np.dtype(dtype)}")
