"""F.silu and nn.SiLU: the fused Function against its composed twin (output and gradient),
gradient checks of both, PyTorch, large inputs, errors. (GELU: tests/test_layers.py.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn

from assertions import assert_close, assert_matches_torch, assert_twins_agree

SILU_TWINS = [F.silu, F.silu_composed]


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
def test_silu_equals_its_composed_twin(dtype, tolerance):
    x = tl.tensor(np.linspace(-12, 12, 240).reshape(3, 80), dtype=dtype, requires_grad=True)
    assert_twins_agree(F.silu, F.silu_composed, [x], tolerance, tolerance, ["x"])


@pytest.mark.parametrize("silu", SILU_TWINS, ids=["fused", "composed"])
def test_silu_gradcheck(device, float64, silu):
    x = np.random.default_rng(0).standard_normal((4, 5)) * 3.0
    tl.gradcheck(silu, [tl.tensor(x, device=device, requires_grad=True)])


def test_silu_is_x_times_sigmoid_with_the_derivative_in_the_docstring():
    x = np.linspace(-5, 5, 41)
    sigmoid = 1 / (1 + np.exp(-x))
    ours = tl.tensor(x, requires_grad=True)
    out = F.silu(ours)
    out.backward(np.ones_like(x))
    assert_close(out, x * sigmoid, 1e-12, 1e-12, name="x·σ(x)")
    assert_close(ours.grad, sigmoid * (1 + x * (1 - sigmoid)), 1e-12, 1e-12, name="σ(x)(1 + x(1 - σ(x)))")


@pytest.mark.parametrize("silu", SILU_TWINS, ids=["fused", "composed"])
def test_silu_is_finite_far_from_zero(silu):
    x = tl.tensor(np.array([-1e4, -100.0, 100.0, 1e4], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in exp
        out = silu(x)
        out.backward(np.ones(4, dtype=np.float32))
    assert_close(out, [0.0, 0.0, 100.0, 1e4], 0, 1e-30, name="output")
    assert_close(x.grad, [0.0, 0.0, 1.0, 1.0], 0, 1e-30, name="gradient")


# σ = ½tanh(x/2) + ½ carries the dtype's absolute, not relative, precision where σ is tiny
# (x ≪ 0), hence the atol; PyTorch divides by 1 + e⁻ˣ.
@pytest.mark.parametrize("dtype, atol", [(np.float32, 1e-6), (np.float64, 1e-14)], ids=["float32", "float64"])
def test_functional_silu_matches_pytorch(torch, dtype, atol):
    x = (np.random.default_rng(0).standard_normal((3, 40)) * 4.0).astype(dtype)
    ours, theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = F.silu(ours), torch.nn.functional.silu(theirs)
    assert_close(out_ours, out_theirs, 1e-6, atol, name="output")
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(ours.grad, theirs.grad, 1e-6, atol, name="gradient")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_module_matches_pytorch(torch, dtype):
    x = np.random.default_rng(0).standard_normal((3, 4)) * 3.0
    assert_matches_torch(torch, nn.SiLU(), torch.nn.SiLU(), x, dtype)
    assert repr(nn.SiLU()) == repr(torch.nn.SiLU())


@pytest.mark.parametrize("silu", SILU_TWINS, ids=["fused", "composed"])
def test_silu_rejects_an_integer_input(silu):
    with pytest.raises(TypeError, match="silu needs a floating-point input, got dtype int64"):
        silu(tl.tensor(np.arange(3)))
