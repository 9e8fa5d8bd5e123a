"""F.layer_norm and F.rms_norm: each fused Function against its composed twin (outputs and
every gradient), gradient checks of both, PyTorch, errors; nn.RMSNorm. (nn.LayerNorm:
tests/test_layers.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn

from assertions import assert_close, assert_matches_torch, assert_twins_agree, check_module_gradients

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


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("normalized_shape, with_weight, with_bias", CASES, ids=IDS)
def test_layer_norm_equals_its_composed_twin(normalized_shape, with_weight, with_bias, dtype, tolerance):
    x, weight, bias = _inputs(normalized_shape, with_weight, with_bias, dtype)
    given = {name: t for name, t in (("x", x), ("weight", weight), ("bias", bias)) if t is not None}

    def twin(layer_norm):
        def fn(x, *affine):
            affine = list(affine)
            w = affine.pop(0) if with_weight else None
            b = affine.pop(0) if with_bias else None
            return layer_norm(x, normalized_shape, w, b, eps=1e-3)

        return fn

    assert_twins_agree(twin(F.layer_norm), twin(F.layer_norm_composed), list(given.values()), tolerance, tolerance, list(given))


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


# ---------------------------------------------------------------- RMSNorm

# (normalized_shape, use weight)
RMS_CASES = [(6, True), ((4, 6), True), (6, False)]
RMS_IDS = ["1-axis", "2-axes", "no-weight"]


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("normalized_shape, with_weight", RMS_CASES, ids=RMS_IDS)
def test_rms_norm_equals_its_composed_twin(normalized_shape, with_weight, dtype, tolerance):
    x, weight, _ = _inputs(normalized_shape, with_weight, False, dtype)
    inputs = [x, weight] if with_weight else [x]

    def twin(rms_norm):
        return lambda x, *weight: rms_norm(x, normalized_shape, *weight, eps=1e-3)

    assert_twins_agree(twin(F.rms_norm), twin(F.rms_norm_composed), inputs, tolerance, tolerance, ["x", "weight"])


@pytest.mark.parametrize("rms_norm", [F.rms_norm, F.rms_norm_composed], ids=["fused", "composed"])
@pytest.mark.parametrize("normalized_shape, with_weight", RMS_CASES, ids=RMS_IDS)
def test_rms_norm_gradcheck(device, float64, rms_norm, normalized_shape, with_weight):
    x, weight, _ = _inputs(normalized_shape, with_weight, False, device=device)
    if with_weight:
        tl.gradcheck(lambda x, weight: rms_norm(x, normalized_shape, weight), [x, weight])
    else:
        tl.gradcheck(lambda x: rms_norm(x, normalized_shape), [x])


def test_rms_norm_rescales_each_row_to_root_mean_square_one_without_centring(device):
    x = tl.randn(3, 5, 8, device=device) * 4.0 - 2.0
    out = F.rms_norm(x, 8, eps=0.0).numpy()
    assert_close(np.sqrt((out**2).mean(axis=-1)), np.ones((3, 5)), rtol=1e-5, name="row RMS")
    rms = np.sqrt((x.numpy() ** 2).mean(axis=-1, keepdims=True))
    assert_close(out, x.numpy() / rms, rtol=1e-5, atol=1e-6, name="x / rms(x)")


@pytest.mark.parametrize("eps", [1e-5, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalized_shape, with_weight", RMS_CASES, ids=RMS_IDS)
def test_rms_norm_matches_pytorch(torch, normalized_shape, with_weight, dtype, eps):
    x, weight, _ = _inputs(normalized_shape, with_weight, False, dtype)
    theirs = [None if t is None else torch.tensor(t.numpy(), requires_grad=True) for t in (x, weight)]
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    out_ours = F.rms_norm(x, normalized_shape, weight, eps=eps)
    out_theirs = torch.nn.functional.rms_norm(theirs[0], shape, theirs[1], eps=eps)
    assert_close(out_ours, out_theirs, 1e-5, 1e-6, name="output")
    upstream = np.random.default_rng(1).standard_normal(out_ours.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    for name, mine, their in zip(["x", "weight"], (x, weight), theirs):
        if mine is not None:
            assert_close(mine.grad, their.grad, 1e-5, 1e-5, name=f"gradient of {name}")


def test_rms_norm_default_eps_is_1e_5_where_pytorchs_is_the_machine_epsilon(torch):
    """On a tiny input eps matters: ours (1e-5) equals PyTorch given eps=1e-5, not PyTorch's default."""
    x = np.random.default_rng(0).standard_normal((3, 8)) * 1e-3
    ours = F.rms_norm(tl.tensor(x), 8)
    assert_close(ours, torch.nn.functional.rms_norm(torch.tensor(x), [8], eps=1e-5), 1e-10, 1e-12, name="eps=1e-5")
    machine_epsilon = torch.nn.functional.rms_norm(torch.tensor(x), [8]).numpy()
    assert np.abs(ours.numpy() - machine_epsilon).max() > 0.1


@pytest.mark.parametrize("rms_norm", [F.rms_norm, F.rms_norm_composed], ids=["fused", "composed"])
def test_rms_norm_rejects_bad_inputs(rms_norm):
    x = tl.randn(2, 5)
    message = r"rms_norm: normalized_shape is \(4, 5\), so the input must be \(\.\.\., 4, 5\), got \(2, 5\)"
    with pytest.raises(tl.ShapeError, match=message):
        rms_norm(x, (4, 5))
    with pytest.raises(tl.ShapeError, match=r"rms_norm: weight must have the normalized_shape \(5,\), got \(4,\)"):
        rms_norm(x, 5, weight=tl.ones(4))
    with pytest.raises(TypeError, match="rms_norm: weight has dtype float64 but the input has float32"):
        rms_norm(x, 5, weight=tl.ones(5, dtype=np.float64))
    with pytest.raises(TypeError, match="rms_norm needs a floating-point input, got dtype int64"):
        rms_norm(tl.tensor(np.arange(10).reshape(2, 5)), 5)
    with pytest.raises(ValueError, match=r"rms_norm: normalized_shape must be a positive int or a tuple of them, got 0"):
        rms_norm(x, 0)


def test_rms_norm_module_init_and_parameters():
    layer = nn.RMSNorm(6)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer.weight.dtype == np.float32 and np.array_equal(layer.weight.numpy(), np.ones(6))
    assert layer.normalized_shape == (6,) and layer.eps == 1e-5
    assert nn.RMSNorm((4, 6)).weight.shape == (4, 6)
    plain = nn.RMSNorm(6, elementwise_affine=False)
    assert plain.parameters() == [] and plain.weight is None
    assert repr(plain) == "RMSNorm((6,), eps=1e-05, elementwise_affine=False)"


@pytest.mark.parametrize("normalized_shape", [6, (4, 6)])
def test_rms_norm_module_gradcheck(device, float64, normalized_shape):
    layer = nn.RMSNorm(normalized_shape).to(device)
    layer.weight.data = layer.weight.data + tl.randn(*layer.weight.shape, device=device).data  # away from 1
    check_module_gradients(layer, tl.randn(2, 4, 6, device=device, requires_grad=True))


def test_rms_norm_module_follows_to_float64(float64):
    layer = nn.RMSNorm(6, dtype=np.float32).to("float64")
    assert layer.weight.dtype == np.float64 and layer(tl.randn(2, 6)).dtype == np.float64


@pytest.mark.parametrize("options", [{}, {"eps": 0.5}, {"elementwise_affine": False}], ids=["default", "eps", "no-weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalized_shape", [6, (4, 6)])
def test_rms_norm_module_matches_pytorch(torch, normalized_shape, dtype, options):
    """PyTorch's eps is given explicitly: its default (None) is the dtype's machine epsilon."""
    ours = nn.RMSNorm(normalized_shape, **options)
    theirs = torch.nn.RMSNorm(normalized_shape, **{"eps": ours.eps, **options})
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.add_(torch.randn(parameter.shape))
    assert repr(ours).split("  #")[0] == repr(theirs)
    x = np.random.default_rng(0).standard_normal((2, 4, 6)) * 2.0 + 0.5
    assert_matches_torch(torch, ours, theirs, x, dtype, rtol=1e-5, atol=1e-5)


def test_rms_norm_module_rejects_a_mismatched_input():
    with pytest.raises(tl.ShapeError, match=r"normalized_shape is \(6,\), so the input must be \(\.\.\., 6\), got \(2, 5\)"):
        nn.RMSNorm(6)(tl.randn(2, 5))
    with pytest.raises(ValueError, match="rms_norm: normalized_shape must be a positive int or a tuple of them"):
        nn.RMSNorm((3, -1))
