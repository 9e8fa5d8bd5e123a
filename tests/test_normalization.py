"""F.layer_norm: the fused Function against its composed twin (outputs and every gradient),
gradient checks of both, PyTorch's F.layer_norm, errors. (nn.LayerNorm: tests/test_layers.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F

from assertions import assert_close

# (normalized_shape, use weight, use bias)
CASES = [(6, True, True), ((4, 6), True, True), (6, False, False), (6, True, False), (6, False, True)]
IDS = ["1-axis", "2-axes", "no-affine", "weight-only", "bias-only"]


def _inputs(normalized_shape, with_weight: bool, with_bias: bool, dtype=None, device: str = "cpu"):
    """x (2, 4, 6) away from mean 0 / variance 1, and weight/bias away from 1/0 (or None)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    values = np.random.default_rng(0).standard_normal((2, 4, 6)) * 2.0 + 0.5
    x = tl.tensor(values, dtype=dtype, device=device, requires_grad=True)
    weight = tl.randn(*shape, dtype=dtype, device=device, requires_grad=True) if with_weight else None
    bias = tl.randn(*shape, dtype=dtype, device=device, requires_grad=True) if with_bias else None
    return x, weight, bias


def _grads(out: tl.Tensor, upstream: np.ndarray, inputs: list[tl.Tensor]) -> list[tl.Tensor]:
    for t in inputs:
        t.grad = None
    out.backward(upstream)
    return [t.grad for t in inputs]


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("normalized_shape, with_weight, with_bias", CASES, ids=IDS)
def test_layer_norm_equals_its_composed_twin(normalized_shape, with_weight, with_bias, dtype, tolerance):
    x, weight, bias = _inputs(normalized_shape, with_weight, with_bias, dtype)
    inputs = [t for t in (x, weight, bias) if t is not None]
    fused = F.layer_norm(x, normalized_shape, weight, bias, eps=1e-3)
    composed = F.layer_norm_composed(x, normalized_shape, weight, bias, eps=1e-3)
    assert fused.dtype == dtype and composed.dtype == dtype
    assert_close(fused, composed, tolerance, tolerance, name="output")
    upstream = np.random.default_rng(1).standard_normal(fused.shape).astype(dtype)
    fused_grads = _grads(fused, upstream, inputs)
    composed_grads = _grads(composed, upstream, inputs)
    for name, fused_grad, composed_grad in zip(["x", "weight", "bias"], fused_grads, composed_grads):
        assert fused_grad.dtype == dtype
        assert_close(fused_grad, composed_grad, tolerance, tolerance, name=f"gradient of {name}")


@pytest.mark.parametrize("layer_norm", [F.layer_norm, F.layer_norm_composed], ids=["fused", "composed"])
@pytest.mark.parametrize("normalized_shape, with_weight, with_bias", CASES, ids=IDS)
def test_layer_norm_gradcheck(device, float64, layer_norm, normalized_shape, with_weight, with_bias):
    x, weight, bias = _inputs(normalized_shape, with_weight, with_bias, device=device)
    inputs = [t for t in (x, weight, bias) if t is not None]

    def fn(x, *affine):
        affine = list(affine)
        w = affine.pop(0) if with_weight else None
        b = affine.pop(0) if with_bias else None
        return layer_norm(x, normalized_shape, w, b)

    tl.gradcheck(fn, inputs)


def test_layer_norm_output_has_mean_zero_and_variance_one_per_row(device):
    out = F.layer_norm(tl.randn(3, 5, 8, device=device) * 4.0 - 2.0, 8).numpy()
    assert_close(out.mean(axis=-1), np.zeros((3, 5)), atol=1e-5, name="row means")
    assert_close(out.var(axis=-1), np.ones((3, 5)), rtol=1e-4, name="row variances")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalized_shape, with_weight, with_bias", CASES, ids=IDS)
def test_layer_norm_matches_pytorch(torch, normalized_shape, with_weight, with_bias, dtype):
    ours = _inputs(normalized_shape, with_weight, with_bias, dtype)
    theirs = [None if t is None else torch.tensor(t.numpy(), requires_grad=True) for t in ours]
    out_ours = F.layer_norm(*ours[:1], normalized_shape, *ours[1:], eps=0.1)
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    out_theirs = torch.nn.functional.layer_norm(theirs[0], shape, theirs[1], theirs[2], eps=0.1)
    assert_close(out_ours, out_theirs, 1e-5, 1e-5, name="output")
    upstream = np.random.default_rng(1).standard_normal(out_ours.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    for name, mine, their in zip(["x", "weight", "bias"], ours, theirs):
        if mine is not None:
            assert_close(mine.grad, their.grad, 1e-4, 1e-5, name=f"gradient of {name}")


@pytest.mark.parametrize("layer_norm", [F.layer_norm, F.layer_norm_composed], ids=["fused", "composed"])
def test_layer_norm_rejects_bad_inputs(layer_norm):
    x = tl.randn(2, 5)
    with pytest.raises(tl.ShapeError, match=r"normalized_shape is \(4, 5\), so the input must be \(\.\.\., 4, 5\), got \(2, 5\)"):
        layer_norm(x, (4, 5))
    with pytest.raises(tl.ShapeError, match=r"normalized_shape is \(3, 2, 5\), so the input must be \(\.\.\., 3, 2, 5\), got \(2, 5\)"):
        layer_norm(x, (3, 2, 5))
    with pytest.raises(tl.ShapeError, match=r"weight must have the normalized_shape \(5,\), got \(4,\)"):
        layer_norm(x, 5, weight=tl.ones(4))
    with pytest.raises(tl.ShapeError, match=r"bias must have the normalized_shape \(5,\), got \(1, 5\)"):
        layer_norm(x, 5, bias=tl.zeros(1, 5))
    with pytest.raises(TypeError, match="weight has dtype float64 but the input has float32"):
        layer_norm(x, 5, weight=tl.ones(5, dtype=np.float64))
    with pytest.raises(TypeError, match="layer_norm needs a floating-point input, got dtype int64"):
        layer_norm(tl.tensor(np.arange(10).reshape(2, 5)), 5)
    with pytest.raises(ValueError, match=r"normalized_shape must be a positive int or a tuple of them, got \(\)"):
        layer_norm(x, ())
