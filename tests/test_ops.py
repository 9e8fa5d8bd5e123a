"""Every primitive op, driven by one table: forward against NumPy, gradcheck, PyTorch.

Each row of ``OPS`` names an op, how to call it (on tinylm tensors; the same call works on
NumPy arrays and PyTorch tensors unless the row gives its own), a hypothesis strategy
that draws the input shapes and settings, and the domain of each input (``log`` wants
positive numbers, ``relu`` and ``max`` want their kinks avoided). Three tests run every
row: forward equals NumPy (float32 and float64), ``tl.gradcheck`` passes in float64 on
every device, and forward and gradients equal PyTorch's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinylm as tl

from assertions import assert_close

MAX_SIDE = 4
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------- input domains
# Each draws float64 values of a shape from a seeded generator.


def real(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    """|x| in [0.1, 2]: no kink of relu (or pole of 1/x) within reach of the finite differences."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def distinct(rng, shape):
    """Values about 0.1 apart (never closer than 0.09), so max() has one winner even after a nudge of ε."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 - size * 0.05 + rng.uniform(0, 0.01, size)).reshape(shape)


# ---------------------------------------------------------------- shape strategies
# Each returns (input shapes, keyword settings for the op).

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=MAX_SIDE)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=MAX_SIDE)


def unary(**setting_strategies):
    """One input of any shape; each keyword draws one setting (e.g. the exponent)."""
    return st.tuples(shapes.map(lambda s: [s]), st.fixed_dictionaries(setting_strategies))


def broadcast():
    """Two shapes that broadcast together, with size-1 and missing axes (as NumPy allows)."""
    drawn = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=MAX_SIDE)
    return drawn.map(lambda b: (list(b.input_shapes), {}))


# NumPy's matmul signature (n?,k),(k,m?)->(n?,m?) with up to 2 batch axes: 1-D and 2-D
# operands, batched ones, and batches that broadcast against each other
matmul_shapes = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=MAX_SIDE).map(
    lambda b: (list(b.input_shapes), {})
)


@st.composite
def reduction(draw):
    shape = draw(shapes)
    ndim = len(shape)
    axis = draw(st.none() if ndim == 0 else st.one_of(
        st.none(), st.integers(-ndim, ndim - 1), hnp.valid_tuple_axes(ndim, min_size=1)
    ))
    return [shape], {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def reshape(draw):
    shape = draw(shapes)
    target = list(draw(st.permutations(shape)))
    target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return [shape], {"shape": tuple(target)}


@st.composite
def transpose(draw):
    shape = draw(shapes)
    return [shape], {"axes": tuple(draw(st.permutations(range(len(shape)))))}


@st.composite
def basic_index(draw):
    """Ints (negative too), slices with steps, None and ... over a prefix of the axes."""
    shape = draw(nonscalar_shapes)
    items = []
    for size in shape[: draw(st.integers(1, len(shape)))]:
        items.append(draw(st.one_of(
            st.integers(-size, size - 1),
            st.builds(slice, st.none() | st.integers(-size, size), st.none() | st.integers(-size, size), st.integers(1, 2)),
        )))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()):
        items.append(Ellipsis)
    return [shape], {"index": tuple(items)}


@st.composite
def integer_array_index(draw):
    """An integer list with a repeated row (its gradients must add up), maybe a second axis."""
    shape = draw(nonscalar_shapes)
    rows = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5))
    rows.append(rows[0])
    if len(shape) >= 2 and draw(st.booleans()):
        cols = draw(st.lists(st.integers(0, shape[1] - 1), min_size=len(rows), max_size=len(rows)))
        return [shape], {"index": (rows, cols)}
    return [shape], {"index": rows}


@st.composite
def concat(draw):
    """1 to 3 shapes that differ only along ``axis``."""
    base = list(draw(nonscalar_shapes))
    axis = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    position = axis % len(base)
    return [tuple(base[:position] + [n] + base[position + 1:]) for n in sizes], {"axis": axis}


@st.composite
def stack(draw):
    shape = draw(shapes)
    count = draw(st.integers(1, 3))
    return [shape] * count, {"axis": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def where(draw):
    condition_shape, a_shape, b_shape = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=MAX_SIDE)
    ).input_shapes
    return [a_shape, b_shape], {"condition": draw(hnp.arrays(np.bool_, condition_shape))}


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Op:
    """One row of the table: an op, how to call it, and what inputs it accepts."""

    name: str
    fn: Callable                    # fn(*tensors, **settings) on tinylm tensors
    examples: st.SearchStrategy     # draws (input shapes, settings)
    domains: tuple = (real,)        # one per input (the last one repeats)
    numpy: Callable | None = None   # the NumPy reference, when fn itself does not run on arrays
    torch: Callable | None = None   # fn(torch_module, *tensors, **settings), when fn does not run on torch tensors

    def domain(self, position: int) -> Callable:
        return self.domains[min(position, len(self.domains) - 1)]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _torch_amax(torch, x, axis, keepdims):
    return torch.amax(x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)


OPS = [
    Op("add", lambda a, b: a + b, broadcast()),
    Op("sub", lambda a, b: a - b, broadcast()),
    Op("mul", lambda a, b: a * b, broadcast()),
    Op("div", lambda a, b: a / b, broadcast(), (real, away_from_zero)),
    Op("add_scalar", lambda x: x + 1.5, unary()),
    Op("rsub_scalar", lambda x: 2.0 - x, unary()),
    Op("mul_scalar", lambda x: x * 3, unary()),
    Op("rdiv_scalar", lambda x: 2.0 / x, unary(), (away_from_zero,)),
    Op("pow_scalar", lambda x, exponent: x**exponent, unary(exponent=st.sampled_from([2, 3, 0.5, -1, -1.5])), (positive,)),
    Op("pow_tensor", lambda a, b: a**b, broadcast(), (positive, real)),
    Op("rpow_scalar", lambda x: 2.0**x, unary()),
    Op("matmul", lambda a, b: a @ b, matmul_shapes),
    Op("neg", lambda x: -x, unary()),
    Op("exp", lambda x: x.exp(), unary(), numpy=np.exp),
    Op("log", lambda x: x.log(), unary(), (positive,), numpy=np.log),
    Op("tanh", lambda x: x.tanh(), unary(), numpy=np.tanh),
    Op("sigmoid", lambda x: x.sigmoid(), unary(), numpy=_sigmoid),
    Op("relu", lambda x: x.relu(), unary(), (away_from_zero,), numpy=lambda x: np.maximum(x, 0)),
    Op("sum", lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), reduction()),
    Op("mean", lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), reduction()),
    Op("max", lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), reduction(), (distinct,), torch=_torch_amax),
    Op("reshape", lambda x, shape: x.reshape(shape), reshape()),
    Op("transpose", lambda x, axes: x.transpose(*axes), transpose(), torch=lambda torch, x, axes: x.permute(axes)),
    Op("T", lambda x: x.T, unary(), torch=lambda torch, x: x.permute(tuple(reversed(range(x.ndim))))),
    Op("getitem_basic", lambda x, index: x[index], basic_index()),
    Op("getitem_integer_array", lambda x, index: x[index], integer_array_index()),
    Op("concat", lambda *xs, axis: tl.concat(xs, axis=axis), concat(),
       numpy=lambda *xs, axis: np.concatenate(xs, axis=axis), torch=lambda torch, *xs, axis: torch.cat(xs, dim=axis)),
    Op("stack", lambda *xs, axis: tl.stack(xs, axis=axis), stack(),
       numpy=lambda *xs, axis: np.stack(xs, axis=axis), torch=lambda torch, *xs, axis: torch.stack(xs, dim=axis)),
    Op("where", lambda a, b, condition: tl.where(condition, a, b), where(),
       numpy=lambda a, b, condition: np.where(condition, a, b),
       torch=lambda torch, a, b, condition: torch.where(torch.from_numpy(condition), a, b)),
]

OPS_BY_NAME = {op.name: op for op in OPS}
by_name = pytest.mark.parametrize("op", OPS, ids=list(OPS_BY_NAME))


def draw_case(data, op: Op) -> tuple[list[np.ndarray], dict]:
    """Draw shapes and settings, then float64 inputs from a generator seeded by a drawn seed."""
    input_shapes, op_settings = data.draw(op.examples, label="shapes, settings")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    arrays = [np.asarray(op.domain(i)(rng, shape)) for i, shape in enumerate(input_shapes)]
    return arrays, op_settings


# ---------------------------------------------------------------- the three checks


def check_forward(op: Op, arrays: list[np.ndarray], op_settings: dict, dtype, device: str) -> None:
    """tinylm on ``device`` in ``dtype`` equals NumPy on the same values (and dtype)."""
    arrays = [a.astype(dtype) for a in arrays]
    out = op.fn(*[tl.tensor(a, device=device) for a in arrays], **op_settings)
    expected = np.asarray((op.numpy or op.fn)(*arrays, **op_settings))
    assert out.device == device
    assert out.dtype == expected.dtype, f"{op.name}: dtype {out.dtype}, NumPy gives {expected.dtype}"
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert_close(out, expected, **tolerance, name=f"{op.name} forward")


def check_gradients(op: Op, arrays: list[np.ndarray], op_settings: dict, device: str) -> None:
    inputs = [tl.tensor(a, device=device, requires_grad=True) for a in arrays]
    assert tl.gradcheck(lambda *xs: op.fn(*xs, **op_settings), inputs)


def check_against_torch(torch, op: Op, arrays: list[np.ndarray], op_settings: dict) -> None:
    """Run ``op`` in tinylm and PyTorch on the same float64 inputs and the same upstream
    gradient; forward and every input's gradient must agree (the failing one is named)."""
    ours = [tl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = op.fn(*ours, **op_settings)
    expected = op.torch(torch, *theirs, **op_settings) if op.torch else op.fn(*theirs, **op_settings)
    assert_close(out, expected, rtol=1e-10, atol=1e-12, name=f"{op.name} forward vs PyTorch")
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for i, (x, t) in enumerate(zip(ours, theirs)):
        assert_close(x.grad, t.grad, rtol=1e-10, atol=1e-12, name=f"{op.name} gradient of input {i} vs PyTorch")


@by_name
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@SETTINGS
@given(data=st.data())
def test_forward_matches_numpy(op, dtype, device, data):
    check_forward(op, *draw_case(data, op), dtype, device)


@by_name
@SETTINGS
@given(data=st.data())
def test_gradcheck(op, device, data):
    check_gradients(op, *draw_case(data, op), device)


@by_name
@SETTINGS
@given(data=st.data())
def test_matches_torch(op, torch, data):
    check_against_torch(torch, op, *draw_case(data, op))


# ---------------------------------------------------------------- what the table does not cover


@pytest.mark.parametrize("shapes", [
    [(3,), (3,)], [(3,), (3, 4)], [(2, 3), (3,)], [(2, 3), (3, 4)],
    [(5, 2, 3), (3, 4)], [(3,), (5, 3, 4)], [(5, 1, 2, 3), (4, 3, 2)],
], ids=["vector@vector", "vector@matrix", "matrix@vector", "matrix@matrix", "batch@matrix", "vector@batch",
        "broadcast-batches"])
def test_every_kind_of_matmul(shapes, device, torch):
    """The drawn shapes cover these too; listing them makes sure every kind runs every time."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    for dtype in (np.float32, np.float64):
        check_forward(OPS_BY_NAME["matmul"], arrays, {}, dtype, device)
    check_gradients(OPS_BY_NAME["matmul"], arrays, {}, device)
    check_against_torch(torch, OPS_BY_NAME["matmul"], arrays, {})


def test_max_shares_the_gradient_among_ties(torch):
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_against_torch(torch, OPS_BY_NAME["max"], [ties], {"axis": 1, "keepdims": False})


def test_matmul_rejects_mismatched_inner_axes():
    with pytest.raises(tl.ShapeError, match=r"matmul \(2, 3\) @ \(4, 5\): the last axis of the left \(3\) must equal "
                                            r"the second-to-last axis of the right \(4\)"):
        tl.ones(2, 3) @ tl.ones(4, 5)
    with pytest.raises(tl.ShapeError, match=r"at least 1 dimension, got shapes \(\) @ \(3,\)"):
        tl.tensor(2.0) @ tl.ones(3)


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(tl.ShapeError, match=r"Add got inputs of shapes \(2, 3\), \(4,\)"):
        tl.ones(2, 3) + tl.ones(4)


def test_bad_reshape_transpose_index_and_axis_say_what_was_expected():
    x = tl.ones(2, 3)
    with pytest.raises(tl.ShapeError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"transpose\(0, 0\): expected a permutation of 2 axes for shape \(2, 3\)"):
        x.transpose(0, 0)
    with pytest.raises(IndexError, match=r"does not fit a tensor of shape \(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimensions"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"concat\(\) needs at least one tensor"):
        tl.concat([])
