"""Tensor: creation, dtype rules, conversions, and autograd (backward, the graph, no_grad, memory)."""
from __future__ import annotations

import gc
import resource
import weakref

import numpy as np
import pytest

import tinylm as tl
from tinylm import nn, optim
from tinylm.ops import Function

from assertions import assert_close

# ---------------------------------------------------------------- creation


def test_python_floats_default_to_float32_ints_to_int64(device):
    assert tl.tensor([1.0, 2.5], device=device).dtype == np.float32
    assert tl.tensor(3.0, device=device).dtype == np.float32
    assert tl.tensor([1, 2], device=device).dtype == np.int64
    assert tl.tensor([True, False], device=device).dtype == np.bool_


def test_arrays_and_numpy_scalars_keep_their_dtype():
    assert tl.tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert tl.tensor(np.zeros(2, dtype=np.float16)).dtype == np.float16
    assert tl.tensor(np.float64(0.5)).dtype == np.float64


def test_dtype_argument_accepts_a_dtype_or_its_name(device):
    assert tl.tensor([1, 2], dtype="float64", device=device).dtype == np.float64
    assert tl.tensor([1.5], dtype=np.int32, device=device).dtype == np.int32
    assert tl.zeros(2, dtype="float16", device=device).dtype == np.float16


def test_tensor_copies_the_array_it_is_given():
    source = np.ones(3, dtype=np.float32)
    x = tl.tensor(source)
    source[0] = 5.0
    assert x.numpy()[0] == 1.0


def test_tensor_rejects_ragged_lists():
    for ragged in ([[1.0, 2.0], [3.0]], [1.0, None]):
        with pytest.raises(ValueError, match="needs a rectangular nested list of numbers"):
            tl.tensor(ragged)


@pytest.mark.parametrize("make, value", [(tl.zeros, 0.0), (tl.ones, 1.0)], ids=["zeros", "ones"])
def test_zeros_and_ones_take_a_shape_as_arguments_or_a_tuple(device, make, value):
    for x in (make(2, 3, device=device), make((2, 3), device=device)):
        assert x.shape == (2, 3) and x.dtype == np.float32 and x.device == device
        np.testing.assert_array_equal(x.numpy(), np.full((2, 3), value))
    assert make(2, requires_grad=True).requires_grad


def test_randn_rand_full_arange(device):
    assert tl.randn(4, 5, device=device).shape == (4, 5)
    values = tl.rand(1000, device=device).numpy()
    assert values.dtype == np.float32 and 0.0 <= values.min() and values.max() < 1.0
    np.testing.assert_array_equal(tl.full((2, 2), 7.0, device=device).numpy(), np.full((2, 2), 7.0, np.float32))
    counted = tl.arange(5, device=device)
    assert counted.dtype == np.int64 and counted.device == device
    np.testing.assert_array_equal(counted.numpy(), np.arange(5))
    assert tl.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(tl.arange(1, 7, 2).numpy(), [1, 3, 5])


def test_zeros_like_and_ones_like_follow_the_tensor(device):
    x = tl.randn(2, 3, dtype=np.float64, device=device)
    for made, value in ((tl.zeros_like(x), 0.0), (tl.ones_like(x), 1.0)):
        assert made.shape == x.shape and made.dtype == np.float64 and made.device == device
        assert float(made.numpy().mean()) == value


def test_randn_needs_a_floating_dtype():
    with pytest.raises(TypeError, match="randn needs a floating dtype, got int64"):
        tl.randn(3, dtype=np.int64)


def test_set_default_dtype_changes_every_creation_function():
    tl.set_default_dtype(np.float64)
    for x in (tl.tensor([1.0]), tl.zeros(1), tl.ones(1), tl.full((1,), 2.0), tl.randn(1), tl.rand(1)):
        assert x.dtype == np.float64
    assert tl.tensor([1]).dtype == np.int64  # integers stay integers


# ---------------------------------------------------------------- dtype rules


DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64]


@pytest.mark.parametrize("left", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("right", DTYPES, ids=lambda d: np.dtype(d).name)
def test_mixed_dtypes_promote_as_numpy(left, right):
    a, b = np.ones(2, dtype=left), np.full(2, 2, dtype=right)
    assert (tl.tensor(a) * tl.tensor(b)).dtype == (a * b).dtype
    assert (tl.tensor(a) + tl.tensor(b)).dtype == (a + b).dtype


@pytest.mark.parametrize("operation", [
    lambda x: x * 2.0, lambda x: 2.0 * x, lambda x: x + 1, lambda x: 1 - x, lambda x: x / 3.0,
    lambda x: 3.0 / x, lambda x: x**2, lambda x: x**0.5, lambda x: 2.0**x, lambda x: tl.where(x > 0, x, 0.0),
], ids=["mul", "rmul", "add_int", "rsub_int", "div", "rdiv", "pow_int", "pow_float", "rpow", "where"])
def test_python_numbers_keep_float32_tensors_float32(operation):
    x = tl.tensor([0.5, 1.5], requires_grad=True)
    y = operation(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_python_numbers_with_integer_tensors():
    ints = tl.tensor([1, 2])
    assert (ints + 1).dtype == np.int64
    assert (ints * 0.5).dtype.kind == "f"


# ---------------------------------------------------------------- conversions


def test_to_dtype_casts_and_gradients_flow_back_in_the_original_dtype():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    assert x.to(np.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    y = (x * 1.0).to(np.float64) * 3.0  # a non-leaf: the cast is recorded in the graph
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_to_keeps_a_leaf_a_leaf_with_its_grad():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    y = x.to(np.float64)
    assert y.is_leaf and y.requires_grad and y.grad.dtype == np.float64
    np.testing.assert_array_equal(y.grad.numpy(), [2.0, 4.0])


def test_numpy_item_and_detach(device):
    x = tl.tensor([[1.5, 2.0]], device=device, requires_grad=True)
    host = x.numpy()
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    assert x[0, 1].item() == 2.0 and isinstance(x.sum().item(), float)
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element, got shape \(1, 2\)"):
        x.item()
    detached = (x * 2).detach()
    assert not detached.requires_grad and detached.is_leaf
    np.testing.assert_array_equal(detached.numpy(), [[3.0, 4.0]])
    (detached * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 4.0]])  # no gradient flowed through detached


def test_truth_value_of_many_elements_is_an_error():
    with pytest.raises(ValueError, match="truth value of a tensor with 3 elements is ambiguous"):
        bool(tl.ones(3))


# ---------------------------------------------------------------- backward


def test_backward_of_a_scalar_and_of_a_non_scalar_with_grad(device):
    x = tl.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    assert_close(x.grad, [2.0, -4.0, 6.0], name="d(sum x²)/dx")
    x.grad = None
    (x * x).backward(tl.tensor([1.0, 0.5, -1.0], device=device))
    assert_close(x.grad, [2.0, -2.0, -6.0], name="d(x²)/dx · upstream")


def test_backward_of_a_non_scalar_needs_grad():
    x = tl.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"needs a one-element tensor \(a loss\), but this tensor has shape \(2, 3\)"):
        (x * 2).backward()


def test_backward_grad_must_match_the_shape():
    x = tl.ones(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_requires_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require grad: no input of the computation had requires_grad=True"):
        (tl.ones(2) * 2).sum().backward()


def test_gradients_of_a_reused_node_add_up():
    x = tl.tensor([2.0, 3.0], requires_grad=True)
    h = x * x                      # used three times below
    (h + h * x + h.exp()).sum().backward()
    expected = 2 * x.numpy() + 3 * x.numpy() ** 2 + 2 * x.numpy() * np.exp(x.numpy() ** 2)
    assert_close(x.grad, expected, rtol=1e-5, name="d/dx (x² + x³ + exp x²)")


def test_leaf_gradients_accumulate_across_backward_calls():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])


def test_retain_graph_allows_a_second_backward_then_the_graph_is_freed():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    freed = r"backward through a graph that was already freed \(at the Sum node\).*retain_graph=True"
    with pytest.raises(RuntimeError, match=freed):
        loss.backward()


def test_retain_grad_keeps_an_intermediate_gradient():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * h.numpy())
    assert (x * 2).grad is None


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, but this one has dtype int64"):
        tl.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="has dtype int32"):
        tl.zeros(2, dtype=np.int32, requires_grad=True)
    with pytest.raises(TypeError, match="has dtype int64"):
        tl.ones(2, requires_grad=True).to(np.int64)


def test_no_grad_records_nothing_and_restores_recording():
    x = tl.ones(3, requires_grad=True)
    with tl.no_grad():
        y = (x * 2).exp().sum()
    assert not y.requires_grad and y.is_leaf
    assert (x * 2).requires_grad

    @tl.no_grad()
    def evaluate(t):
        return t * 2

    assert evaluate(x).is_leaf
    with pytest.raises(KeyError):
        with tl.no_grad():
            raise KeyError("inside")
    assert (x * 2).requires_grad, "recording must resume after an exception inside no_grad"


def test_a_100000_op_chain_backpropagates_without_recursion():
    x = tl.tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert_close(x.grad, [1.00001**100_000], rtol=1e-9, name="d(x·c^100000)/dx")


class SumForgettingTheShape(Function):
    """A buggy op: its backward returns dL/dz (one number) instead of broadcasting it to x."""

    def forward(self, x):
        return x.sum()

    def backward(self, grad):
        return grad


def test_backward_names_an_op_that_returns_the_wrong_gradient_shape():
    x = tl.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"SumForgettingTheShape.backward returned a gradient of shape \(\) for "
                                           r"input 0, whose shape is \(2, 3\)"):
        SumForgettingTheShape.apply(x).backward()


# ---------------------------------------------------------------- versions: stale graphs are refused

STALE = (r"needs its input {position}, {what}, as the forward pass saw it \(version {saved}\), but its memory has "
         r"been written in place since \(version now {now}\).*call loss.backward\(\) before optimizer.step\(\), "
         r"or compute the loss again after the update")


def _linear_loss(layer, x):
    return (layer(x) ** 2).mean()


def test_backward_after_optimizer_step_is_refused(device):
    """The weight reaches the matmul through weight.T, a view: the view shares the weight's version."""
    layer = nn.Linear(3, 2, device=device)
    optimizer = optim.SGD(layer.parameters(), lr=0.1)
    loss = _linear_loss(layer, tl.randn(4, 3, device=device))
    layer.weight.grad = tl.zeros(2, 3, device=device)
    optimizer.step()
    what = r"a tensor of shape \(3, 2\), float32"
    with pytest.raises(RuntimeError, match=r"backward through MatMul \(op 4 of 5, counting back from the output\) "
                                           + STALE.format(position=1, what=what, saved=0, now=1)):
        loss.backward()


def test_backward_before_the_step_then_a_fresh_forward_is_fine():
    layer = nn.Linear(3, 2)
    optimizer = optim.Adam(layer.parameters(), lr=0.1)
    x = tl.randn(4, 3)
    for _ in range(3):
        optimizer.zero_grad()
        loss = _linear_loss(layer, x)
        loss.backward()
        optimizer.step()
    assert layer.weight.version == 3 and layer.bias.version == 3


def test_a_second_backward_after_a_step_is_refused():
    w = tl.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True, name="w")
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    optim.SGD([w], lr=0.1).step()
    what = r"'w' \(shape \(2,\), float32\)"
    with pytest.raises(RuntimeError, match=r"backward through Mul \(op 2 of 2.*" + STALE.format(position=0, what=what, saved=0, now=1)):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_is_refused():
    layer = nn.Linear(3, 2)
    loss = _linear_loss(layer, tl.randn(4, 3))
    layer.load_state_dict(nn.Linear(3, 2).state_dict())
    with pytest.raises(RuntimeError, match="written in place since"):
        loss.backward()


def test_ops_whose_backward_reads_no_input_let_it_change():
    """As in PyTorch: Add saves only shapes, Exp its output, so writing w afterwards is harmless."""
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    loss = (w + 1.0).exp().sum()
    w.bump_version()
    loss.backward()
    assert_close(w.grad, np.exp([2.0, 3.0]), name="d Σ exp(w + 1) / dw")


def test_views_share_the_version_of_the_tensor_whose_memory_they_read(device):
    w = tl.randn(2, 3, device=device, requires_grad=True)
    views = {"w.T": w.T, "w.reshape(6)": w.reshape(6), "w[0]": w[0], "w[:, 1:]": w[:, 1:],
             "w.detach()": w.detach(), f"w.to({device!r})": w.to(device), "Tensor(w)": tl.Tensor(w),
             "Parameter(w)": nn.Parameter(w),
             "w.T.T": w.T.T, "w.detach()[1]": w.detach()[1]}
    copies = {"w[[0, 0]]": w[[0, 0]], "w.T.reshape(6)": w.T.reshape(6), "w * 1": w * 1,
              "w.to(float64)": w.to(np.float64)}
    w.bump_version()
    for name, view in views.items():
        assert view.version == 1, f"{name} reads w's memory: it must share its version"
    for name, copy in copies.items():
        assert copy.version == 0, f"{name} is a copy: it has a version of its own"
    views["w.T"].bump_version()
    assert w.version == 2, "a write through a view is a write into its base"


def test_writing_data_directly_is_the_untracked_escape_hatch():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.data[...] = 5.0  # outside autograd: not counted, so this backward uses the new values
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad.numpy(), [10.0, 10.0])
    w.bump_version()  # saying so after such a write makes the graph refuse
    with pytest.raises(RuntimeError, match=r"\(version 0\).*\(version now 1\)"):
        loss.backward()


# ---------------------------------------------------------------- memory


def test_detach_shares_the_version_but_not_the_graph():
    """h = f(h).detach() in a loop without backward must not chain the graphs together."""
    w = tl.randn(3, requires_grad=True)
    h = (tl.randn(3) * w).tanh()
    node = weakref.ref(h._ctx)
    detached = h.detach()
    del h
    assert node() is None, "the detached tensor kept the graph it came from alive"
    assert detached.version == 0


def test_a_graph_is_freed_as_soon_as_its_output_is_dropped():
    """Reference counting alone must free it (no cycles waiting for the garbage collector)."""
    w = tl.randn(4, 4, requires_grad=True)
    for retain_graph in (False, True):
        loss = ((tl.randn(2, 4) @ w).tanh() ** 2).mean()
        mean_node, squares = weakref.ref(loss._ctx), weakref.ref(loss._ctx.inputs[0])
        loss.backward(retain_graph=retain_graph)
        gc.disable()
        try:
            del loss
            assert mean_node() is None and squares() is None, f"graph kept alive (retain_graph={retain_graph})"
        finally:
            gc.enable()


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak resident size also grows when graphs leak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_training_loop_keeps_resident_memory_flat():
    """1,000 steps on one graph shape. A leaked graph would keep ~50 KB of activations per
    step (~25 MB over the second half); the allowance is a fifth of that."""
    tl.manual_seed(0)
    w = tl.randn(128, 128, requires_grad=True)
    x = tl.randn(32, 128)
    resident = {}
    for step in range(1, 1001):
        h = (x @ w).tanh()
        loss = (h * h).mean() + (w * w).sum() * 1e-4
        loss.backward()
        with tl.no_grad():
            w.data -= 0.01 * w.grad.data
        w.grad = None
        if step in (500, 1000):
            resident[step] = _resident_bytes()
    growth = resident[1000] - resident[500]
    assert growth < 5 * 2**20, f"resident memory grew {growth / 2**20:.1f} MiB over the last 500 steps"
