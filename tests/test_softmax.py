"""F.softmax and F.log_softmax: values, stability, gradients, PyTorch, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from assertions import assert_close

SHAPE = (2, 3, 4)


def reference_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log-softmax in float64 with NumPy, the log-sum-exp way."""
    x = x.astype(np.float64)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# (our function, its float64 NumPy reference, the PyTorch function's name)
FUNCTIONS = [
    pytest.param(F.softmax, lambda x, axis: np.exp(reference_log_softmax(x, axis)), "softmax", id="softmax"),
    pytest.param(F.log_softmax, reference_log_softmax, "log_softmax", id="log_softmax"),
]


def random_scores(shape, scale: float = 3.0) -> np.ndarray:
    return scale * np.random.default_rng(1).standard_normal(shape)


@pytest.mark.parametrize("fn, reference, torch_name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_forward_float32(fn, reference, torch_name, axis, device):
    x = random_scores(SHAPE).astype(np.float32)
    y = fn(tl.tensor(x, device=device), axis=axis)
    assert y.dtype == np.float32 and y.device == device
    assert_close(y, reference(x, axis), rtol=1e-5, atol=1e-6, name=f"{torch_name} along axis {axis}")


def test_softmax_slices_sum_to_one(device):
    y = F.softmax(tl.tensor(random_scores(SHAPE), device=device), axis=1)
    assert_close(y.sum(axis=1), np.ones((2, 4)), rtol=1e-6, name="sum of probabilities")


@pytest.mark.parametrize("fn, reference, torch_name", FUNCTIONS)
def test_equal_scores_give_uniform_distribution(fn, reference, torch_name, device):
    classes = 7
    y = fn(tl.full((3, classes), 2.5, device=device))
    uniform = np.full((3, classes), 1.0 / classes)
    assert_close(y, uniform if torch_name == "softmax" else np.log(uniform), rtol=1e-6, name=torch_name)


@pytest.mark.parametrize("fn, reference, torch_name", FUNCTIONS)
def test_huge_scores_stay_finite(fn, reference, torch_name, device):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=np.float32)
    scores = tl.tensor(x, device=device, requires_grad=True)
    y = fn(scores)
    y.backward(np.random.default_rng(2).standard_normal(x.shape).astype(np.float32))
    assert np.isfinite(y.numpy()).all(), f"{torch_name} of ±1e4 is not finite: {y.numpy()}"
    assert np.isfinite(scores.grad.numpy()).all(), f"gradient of {torch_name} at ±1e4 is not finite"
    assert_close(y, reference(x, -1), rtol=1e-6, atol=1e-6, name=f"{torch_name} of ±1e4")


@pytest.mark.parametrize("fn, reference, torch_name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_gradcheck(fn, reference, torch_name, axis, device, float64):
    x = tl.tensor(random_scores(SHAPE), device=device, requires_grad=True)
    assert tl.gradcheck(lambda t: fn(t, axis=axis), [x])


@pytest.mark.parametrize("fn, reference, torch_name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_matches_pytorch(fn, reference, torch_name, axis, device, torch):
    x = random_scores(SHAPE)
    upstream = np.random.default_rng(3).standard_normal(SHAPE)
    ours = tl.tensor(x, dtype=np.float64, device=device, requires_grad=True)
    y = fn(ours, axis=axis)
    y.backward(upstream)
    theirs = torch.tensor(x, requires_grad=True)
    expected = getattr(torch, torch_name)(theirs, dim=axis)
    expected.backward(torch.tensor(upstream))
    assert_close(y, expected, rtol=1e-12, atol=1e-12, name=f"{torch_name} forward")
    assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-12, name=f"{torch_name} gradient")


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_integer_scores_are_rejected(fn):
    with pytest.raises(TypeError, match="needs floating-point scores, got a tensor of dtype int64"):
        fn(tl.arange(5))


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_axis_out_of_range_is_rejected(fn):
    with pytest.raises(ValueError, match="axis 3 is out of range for a tensor with 3 dimensions"):
        fn(tl.zeros(SHAPE), axis=3)
