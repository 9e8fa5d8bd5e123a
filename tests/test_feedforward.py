"""nn.SwiGLU: the formula, a gradient check of the whole block, PyTorch, parameters and init."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm as tl
from tinylm import nn

from assertions import assert_close, assert_matches_torch, check_module_gradients


def silu(u: np.ndarray) -> np.ndarray:
    return u / (1 + np.exp(-u))


def test_swiglu_computes_w2_of_silu_w1x_times_w3x():
    block = nn.SwiGLU(6, 10)
    x = tl.randn(2, 3, 6)
    w1, w2, w3 = (layer.weight.numpy() for layer in (block.w1, block.w2, block.w3))
    out = block(x)
    assert out.shape == (2, 3, 6) and out.dtype == np.float32
    expected = (silu(x.numpy() @ w1.T) * (x.numpy() @ w3.T)) @ w2.T
    assert_close(out, expected, 1e-5, 1e-6, name="SwiGLU output")


def test_swiglu_parameters_are_three_matrices_without_bias():
    block = nn.SwiGLU(6, 10)
    shapes = {name: parameter.shape for name, parameter in block.named_parameters()}
    assert shapes == {"w1.weight": (10, 6), "w2.weight": (6, 10), "w3.weight": (10, 6)}
    assert block.num_parameters() == 3 * 6 * 10


def test_swiglu_init_is_pytorchs_linear_init():
    block = nn.SwiGLU(64, 256)
    for layer, fan_in in ((block.w1, 64), (block.w2, 256), (block.w3, 64)):
        weight = layer.weight.numpy()
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.95 * bound  # U(-bound, bound), not something narrower
        assert abs(weight.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert not np.array_equal(block.w1.weight.numpy(), block.w3.weight.numpy())


def test_swiglu_gradcheck(device, float64):
    block = nn.SwiGLU(4, 6).to(device)
    check_module_gradients(block, tl.randn(2, 3, 4, device=device, requires_grad=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_swiglu_matches_pytorch(torch, dtype):
    class TorchSwiGLU(torch.nn.Module):
        """The block as Meta's LLaMA code writes it: w2(silu(w1(x)) * w3(x))."""

        def __init__(self, d_model: int, d_ff: int):
            super().__init__()
            self.w1 = torch.nn.Linear(d_model, d_ff, bias=False)
            self.w2 = torch.nn.Linear(d_ff, d_model, bias=False)
            self.w3 = torch.nn.Linear(d_model, d_ff, bias=False)

        def forward(self, x):
            return self.w2(torch.nn.functional.silu(self.w1(x)) * self.w3(x))

    x = np.random.default_rng(0).standard_normal((2, 5, 8))
    assert_matches_torch(torch, nn.SwiGLU(8, 12), TorchSwiGLU(8, 12), x, dtype, rtol=1e-5, atol=1e-6)


def test_swiglu_rejects_a_wrong_feature_size():
    message = r"linear: input has 5 features \(shape \(2, 5\)\), but the weight \(10, 6\) expects 6"
    with pytest.raises(tl.ShapeError, match=message):
        nn.SwiGLU(6, 10)(tl.randn(2, 5))
