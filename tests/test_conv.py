"""F.conv1d / nn.Conv1d and F.max_pool1d / nn.MaxPool1d: gradient checks on every device,
the im2col Function against its composed twin, PyTorch's forward and gradients, init, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn
from tinylm.functional.conv import conv1d_output_length

from assertions import assert_close

# (stride, padding, dilation): plain, strided, padded, dilated, and all three at once
SETTINGS = [(1, 0, 1), (2, 0, 1), (1, 2, 1), (1, 0, 3), (3, 2, 2)]


@pytest.mark.parametrize("stride, padding, dilation", SETTINGS)
def test_conv1d_gradcheck(device, float64, stride, padding, dilation):
    layer = nn.Conv1d(3, 4, 3, stride, padding, dilation).to(device)
    x = tl.randn(2, 3, 11, device=device, requires_grad=True)
    tl.gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation), [x, layer.weight, layer.bias])


def test_conv1d_gradcheck_without_bias_and_single_sequence(float64):
    x, weight = tl.randn(3, 9, requires_grad=True), tl.randn(2, 3, 4, requires_grad=True)
    assert F.conv1d(x, weight, padding=1).shape == (2, 8)
    tl.gradcheck(lambda x, w: F.conv1d(x, w, padding=1), [x, weight])


@pytest.mark.parametrize("stride, padding, dilation", SETTINGS)
def test_conv1d_equals_its_composed_twin(float64, stride, padding, dilation):
    inputs = [tl.randn(*shape, requires_grad=True) for shape in [(2, 3, 12), (5, 3, 3), (5,)]]
    fused = F.conv1d(*inputs, stride=stride, padding=padding, dilation=dilation)
    composed = F.conv1d_composed(*inputs, stride=stride, padding=padding, dilation=dilation)
    assert_close(fused, composed, 1e-12, 1e-12, name="output")
    upstream = np.random.default_rng(1).standard_normal(fused.shape)
    fused_grads = [g.numpy() for g in _grads(fused, upstream, inputs)]
    composed_grads = _grads(composed, upstream, inputs)
    for name, fused_grad, composed_grad in zip(["x", "weight", "bias"], fused_grads, composed_grads):
        assert_close(fused_grad, composed_grad, 1e-12, 1e-12, name=f"gradient of {name}")
    tl.gradcheck(lambda *a: F.conv1d_composed(*a, stride=stride, padding=padding, dilation=dilation), inputs)


def _grads(out: tl.Tensor, upstream: np.ndarray, inputs: list[tl.Tensor]) -> list[tl.Tensor]:
    for t in inputs:
        t.grad = None
    out.backward(upstream)
    return [t.grad for t in inputs]


def test_conv1d_forward_float32(device):
    layer = nn.Conv1d(4, 6, 5, padding=2).to(device)
    x = tl.randn(3, 4, 16, device=device)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == (3, 6, 16) and out.device == device
    # by the definition: y[b, o, t] = bias[o] + Σ_c Σ_k W[o, c, k] x_pad[b, c, t + k]
    x_pad = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2)))
    windows = np.stack([x_pad[:, :, t : t + 5] for t in range(16)], axis=1)  # (B, L_out, C, K)
    expected = np.einsum("blck,ock->bol", windows, layer.weight.numpy()) + layer.bias.numpy()[:, None]
    assert_close(out, expected, 1e-5, 1e-5, name="Conv1d output")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, padding, dilation", SETTINGS)
def test_conv1d_matches_pytorch(torch, dtype, stride, padding, dilation):
    theirs = torch.nn.Conv1d(3, 5, 4, stride=stride, padding=padding, dilation=dilation)
    theirs = theirs.to(getattr(torch, np.dtype(dtype).name))
    ours = nn.Conv1d(3, 5, 4, stride, padding, dilation).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 17)).astype(dtype)
    x_ours, x_theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert out_ours.dtype == dtype
    assert_close(out_ours, out_theirs, tolerance, tolerance, name="output")
    upstream = np.random.default_rng(1).standard_normal(out_ours.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(x_ours.grad, x_theirs.grad, tolerance, tolerance, name="gradient of the input")
    assert_close(ours.weight.grad, theirs.weight.grad, tolerance, tolerance, name="gradient of the weight")
    assert_close(ours.bias.grad, theirs.bias.grad, tolerance, tolerance, name="gradient of the bias")


def test_conv1d_initialisation_and_layout():
    layer = nn.Conv1d(8, 16, 5)
    bound = 1 / math.sqrt(8 * 5)  # PyTorch: U(-1/√fan_in, 1/√fan_in), fan_in = in_channels · kernel_size
    assert layer.weight.shape == (16, 8, 5) and layer.bias.shape == (16,)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.9 * bound
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Conv1d(8, 16, 5, bias=False).bias is None
    assert "kernel_size=5" in repr(layer)


def test_conv1d_output_length_formula():
    # PyTorch's documentation: L_out = ⌊(L + 2p - d(K-1) - 1)/s⌋ + 1
    assert conv1d_output_length(10, 3, 1, 0, 1) == 8
    assert conv1d_output_length(10, 3, 2, 1, 1) == 5
    assert conv1d_output_length(10, 3, 1, 0, 4) == 2


def test_conv1d_save_and_load(tmp_path):
    layer = nn.Conv1d(2, 3, 3, padding=1)
    tl.save(layer.state_dict(), tmp_path / "conv.npz")
    other = nn.Conv1d(2, 3, 3, padding=1)
    other.load_state_dict(tl.load(tmp_path / "conv.npz"))
    x = tl.randn(1, 2, 7)
    assert_close(other(x), layer(x), name="output after loading")


def test_conv1d_errors():
    weight = tl.randn(4, 3, 5)
    with pytest.raises(tl.ShapeError, match=r"input has 2 channels .* expects 3"):
        F.conv1d(tl.randn(1, 2, 10), weight)
    with pytest.raises(tl.ShapeError, match=r"expected input of shape \(batch, channels, length\)"):
        F.conv1d(tl.randn(3), weight)
    with pytest.raises(tl.ShapeError, match=r"the weight must be 3-D"):
        F.conv1d(tl.randn(1, 3, 10), tl.randn(4, 15))
    with pytest.raises(tl.ShapeError, match=r"the bias must have shape \(4,\), got \(3,\)"):
        F.conv1d(tl.randn(1, 3, 10), weight, tl.randn(3))
    with pytest.raises(tl.ShapeError, match=r"too short: length 4 .* the kernel spans 5 positions"):
        F.conv1d(tl.randn(1, 3, 4), weight)
    with pytest.raises(ValueError, match=r"stride must be an integer >= 1, got 0"):
        F.conv1d(tl.randn(1, 3, 10), weight, stride=0)
    with pytest.raises(ValueError, match=r"padding must be an integer >= 0, got -1"):
        F.conv1d(tl.randn(1, 3, 10), weight, padding=-1)


# ---------------------------------------------------------------- max-pooling


@pytest.mark.parametrize("kernel_size, stride, padding, dilation", [(2, None, 0, 1), (3, 1, 1, 1), (3, 2, 0, 2)])
def test_max_pool1d_gradcheck_and_pytorch(device, float64, torch, kernel_size, stride, padding, dilation):
    x_host = np.random.default_rng(0).permutation(2 * 3 * 10).reshape(2, 3, 10) / 10.0  # no ties: no kinks
    x = tl.tensor(x_host, device=device, requires_grad=True)
    tl.gradcheck(lambda x: F.max_pool1d(x, kernel_size, stride, padding, dilation), [x])
    out = nn.MaxPool1d(kernel_size, stride, padding, dilation)(x)
    x_theirs = torch.tensor(x_host, requires_grad=True)
    out_theirs = torch.nn.functional.max_pool1d(x_theirs, kernel_size, stride, padding, dilation)
    assert_close(out, out_theirs, name="max-pool output")
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(x.grad, x_theirs.grad, name="max-pool gradient")


def test_max_pool_over_time_is_the_max_of_each_channel():
    x = tl.randn(4, 6, 9)
    assert_close(F.max_pool1d(x, 9), x.numpy().max(axis=-1, keepdims=True), name="pool over time")


def test_max_pool1d_errors():
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size \(1\), got 2"):
        F.max_pool1d(tl.randn(1, 2, 8), 3, padding=2)
    with pytest.raises(tl.ShapeError, match=r"too short: length 2"):
        F.max_pool1d(tl.randn(1, 2, 2), 3)
