"""Linear, Embedding, LayerNorm, Dropout and the activation modules (and F.linear,
F.embedding, F.dropout): gradient checks, float32 forwards, PyTorch, initialisation, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn

from assertions import assert_close, assert_matches_torch, check_module_gradients


def away_from_zero(*shape: int, seed: int = 0) -> np.ndarray:
    """Standard normal values pushed at least 0.1 away from 0 (ReLU's kink)."""
    values = np.random.default_rng(seed).standard_normal(shape)
    return values + 0.1 * np.sign(values)


# ---------------------------------------------------------------- Linear


def test_linear_forward_float32():
    layer = nn.Linear(5, 3)
    x = tl.randn(2, 4, 5)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    assert_close(out, expected, name="Linear output")
    no_bias = nn.Linear(5, 3, bias=False)
    assert no_bias.bias is None and len(no_bias.parameters()) == 1
    assert_close(no_bias(x), x.numpy() @ no_bias.weight.numpy().T, name="Linear output without bias")


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(device, float64, bias):
    layer = nn.Linear(5, 3, bias=bias).to(device)
    check_module_gradients(layer, tl.randn(2, 4, 5, device=device, requires_grad=True))


def test_functional_linear_on_a_vector(float64):
    x, weight, bias = (tl.randn(*shape, requires_grad=True) for shape in [(5,), (3, 5), (3,)])
    assert F.linear(x, weight, bias).shape == (3,)
    tl.gradcheck(F.linear, [x, weight, bias])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_pytorch(torch, dtype):
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    assert_matches_torch(torch, nn.Linear(5, 3), torch.nn.Linear(5, 3), x, dtype)


def test_linear_rejects_a_wrong_feature_size():
    message = r"input has 5 features \(shape \(3, 5\)\), but the weight \(2, 4\) expects 4"
    with pytest.raises(tl.ShapeError, match=message):
        nn.Linear(4, 2)(tl.randn(3, 5))
    with pytest.raises(tl.ShapeError, match=r"input has no features \(shape \(\)\)"):
        nn.Linear(4, 2)(tl.tensor(1.0))
    with pytest.raises(tl.ShapeError, match=r"the weight must be 2-D \(out_features, in_features\), got shape \(4,\)"):
        F.linear(tl.randn(3, 4), tl.randn(4))


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for name, values in (("weight", layer.weight.numpy()), ("bias", layer.bias.numpy())):
        assert np.abs(values).max() <= bound, name
        assert np.abs(values).max() > 0.95 * bound, name  # the whole interval is used
        assert abs(values.mean()) < 0.1 * bound, name
    assert layer.weight.numpy().var() == pytest.approx(bound**2 / 3, rel=0.05)  # U(-a, a) has variance a²/3


# ---------------------------------------------------------------- Embedding


@pytest.mark.parametrize(
    "make_ids", [lambda ids, device: ids.tolist(), lambda ids, device: ids, tl.tensor], ids=["list", "array", "tensor"]
)
def test_embedding_forward_float32(device, make_ids):
    layer = nn.Embedding(10, 4).to(device)
    ids = np.array([[0, 9, 3], [3, 3, 1]])
    out = layer(make_ids(ids, device=device))
    assert out.dtype == np.float32 and out.shape == (2, 3, 4) and out.device == device
    assert_close(out, layer.weight.numpy()[ids], rtol=0, atol=0, name="looked-up rows")


def test_embedding_repeated_ids_accumulate_in_the_gradient():
    layer = nn.Embedding(5, 3)
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    upstream = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    layer(ids).backward(upstream)
    expected = np.zeros((5, 3), dtype=np.float32)
    for position in np.ndindex(ids.shape):
        expected[ids[position]] += upstream[position]
    assert_close(layer.weight.grad, expected, name="embedding gradient")
    row_1 = upstream[0, 0] + upstream[0, 2] + upstream[1, 0]
    assert_close(layer.weight.grad.numpy()[1], row_1, name="row 1, used 3 times")
    assert not layer.weight.grad.numpy()[[2, 4]].any()  # unused rows get no gradient


def test_embedding_gradcheck(device, float64):
    layer = nn.Embedding(6, 3).to(device)
    ids = tl.tensor([[5, 0, 5, 5], [2, 0, 1, 2]], device=device)
    tl.gradcheck(lambda weight: layer(ids), [layer.weight])
    tl.gradcheck(lambda weight: F.embedding(3, weight), [layer.weight])  # a single id


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_matches_pytorch(torch, dtype):
    ids = np.array([[5, 0, 5, 5], [2, 0, 1, 2]])
    assert_matches_torch(torch, nn.Embedding(6, 3), torch.nn.Embedding(6, 3), ids, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_padding_row_gets_no_gradient_as_pytorch(torch, dtype):
    ids = np.array([[5, 0, 5, 5], [2, 0, 1, 2]])
    ours, theirs = nn.Embedding(6, 3, padding_idx=0), torch.nn.Embedding(6, 3, padding_idx=0)
    assert not ours.weight.numpy()[0].any()  # the padding row starts at zero, as PyTorch's
    assert_matches_torch(torch, ours, theirs, ids, dtype)
    assert not ours.weight.grad.numpy()[0].any()


def test_embedding_padding_gradcheck(device, float64):
    layer = nn.Embedding(6, 3, padding_idx=2).to(device)
    ids = tl.tensor([[5, 0, 2, 5], [2, 0, 1, 2]], device=device)
    tl.gradcheck(lambda weight: layer(ids) * (ids.data != 2)[..., None], [layer.weight])


def test_embedding_rejects_a_padding_idx_outside_the_table():
    with pytest.raises(IndexError, match=r"padding_idx must lie in \[0, 4\], got 5"):
        F.embedding([1, 2], nn.Embedding(5, 3).weight, padding_idx=5)


def test_embedding_init_is_standard_normal():
    values = nn.Embedding(1000, 64).weight.numpy()
    assert abs(values.mean()) < 0.02 and values.std() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    "ids, error, message",
    [
        ([0, 5], IndexError, r"ids must lie in \[0, 4\] \(num_embeddings=5\), got values from 0 to 5"),
        ([-1, 2], IndexError, r"ids must lie in \[0, 4\] \(num_embeddings=5\), got values from -1 to 2"),
        (np.array([1.0, 2.0], dtype=np.float32), TypeError, "ids must be integers, got dtype float32"),
        ([True, False], TypeError, "ids must be integers, got dtype bool"),
    ],
)
def test_embedding_rejects_bad_ids(ids, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding(5, 3)(ids)


@pytest.mark.parametrize("device", ["cuda"], indirect=True)
def test_embedding_ids_must_be_on_the_weights_device(device):
    with pytest.raises(tl.DeviceError, match=r"ids are on 'cpu' but the weight is on 'cuda'.*ids.to\('cuda'\)"):
        nn.Embedding(5, 3).to(device)(tl.tensor([1, 2]))


# ---------------------------------------------------------------- LayerNorm


def layer_norm_reference(x: np.ndarray, n_axes: int, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over the last n_axes, in NumPy (no affine part)."""
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


SHAPES = [6, (6,), [4, 6]]


@pytest.mark.parametrize("normalized_shape", SHAPES)
def test_layer_norm_forward_float32(normalized_shape):
    layer = nn.LayerNorm(normalized_shape)
    n_axes = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    x = tl.randn(2, 3, 4, 6) * 3.0 + 1.0
    layer.weight.data = np.random.default_rng(0).standard_normal(layer.weight.shape).astype(np.float32)
    layer.bias.data = np.random.default_rng(1).standard_normal(layer.bias.shape).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    expected = layer_norm_reference(x.numpy(), n_axes, 1e-5) * layer.weight.numpy() + layer.bias.numpy()
    assert_close(out, expected, rtol=1e-5, atol=1e-5, name="LayerNorm output")


def test_layer_norm_uses_eps_and_can_drop_the_affine_part():
    x = tl.randn(3, 5) * 0.5
    plain = nn.LayerNorm(5, eps=0.25, elementwise_affine=False)
    assert plain.parameters() == [] and plain.weight is None and plain.bias is None
    assert_close(plain(x), layer_norm_reference(x.numpy(), 1, 0.25), name="LayerNorm with eps=0.25")
    assert not np.allclose(plain(x).numpy(), layer_norm_reference(x.numpy(), 1, 1e-5), atol=1e-3)
    scale_only = nn.LayerNorm(5, bias=False)
    assert [name for name, _ in scale_only.named_parameters()] == ["weight"]


@pytest.mark.parametrize("normalized_shape", SHAPES)
def test_layer_norm_gradcheck(device, float64, normalized_shape):
    layer = nn.LayerNorm(normalized_shape).to(device)
    for parameter in layer.parameters():  # away from 1 and 0, so every product matters
        parameter.data = parameter.data + tl.randn(*parameter.shape, device=device).data
    check_module_gradients(layer, tl.randn(2, 4, 6, device=device, requires_grad=True))


def test_layer_norm_gradcheck_without_affine(device, float64):
    layer = nn.LayerNorm(6, elementwise_affine=False).to(device)
    tl.gradcheck(layer, [tl.randn(3, 6, device=device, requires_grad=True)])


@pytest.mark.parametrize(
    "options",
    [{}, {"eps": 0.5}, {"elementwise_affine": False}, {"bias": False}],
    ids=["default", "eps", "no-affine", "no-bias"],
)
@pytest.mark.parametrize("normalized_shape", SHAPES)
def test_layer_norm_matches_pytorch(torch, normalized_shape, options):
    theirs = torch.nn.LayerNorm(normalized_shape, **options)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.add_(torch.randn(parameter.shape))
    x = np.random.default_rng(0).standard_normal((2, 4, 6)) * 2.0 + 0.5
    assert_matches_torch(torch, nn.LayerNorm(normalized_shape, **options), theirs, x, rtol=1e-4, atol=1e-5)


def test_layer_norm_init_is_one_and_zero():
    layer = nn.LayerNorm((2, 3))
    assert np.array_equal(layer.weight.numpy(), np.ones((2, 3)))
    assert np.array_equal(layer.bias.numpy(), np.zeros((2, 3)))


def test_layer_norm_rejects_a_mismatched_input():
    with pytest.raises(tl.ShapeError, match=r"normalized_shape is \(6,\), so the input must be \(\.\.\., 6\), got \(2, 5\)"):
        nn.LayerNorm(6)(tl.randn(2, 5))
    message = r"normalized_shape is \(4, 6\), so the input must be \(\.\.\., 4, 6\), got \(6,\)"
    with pytest.raises(tl.ShapeError, match=message):
        nn.LayerNorm((4, 6))(tl.randn(6))


@pytest.mark.parametrize("normalized_shape", [0, (), (3, -1), 2.5])
def test_layer_norm_rejects_a_bad_normalized_shape(normalized_shape):
    with pytest.raises(ValueError, match="normalized_shape must be a positive int or a tuple of them"):
        nn.LayerNorm(normalized_shape)


# ---------------------------------------------------------------- Dropout


def test_dropout_preserves_the_mean():
    p, n = 0.3, 200_000
    out = F.dropout(tl.ones(n), p).numpy()
    assert (out == 0).mean() == pytest.approx(p, abs=0.01)
    assert np.allclose(out[out != 0], 1 / (1 - p))  # the survivors are scaled by 1/(1-p)
    assert out.mean() == pytest.approx(1.0, abs=0.01)  # standard error here ≈ 0.0015


def test_dropout_is_the_identity_in_eval_and_for_p_zero():
    x = tl.randn(4, 5)
    layer = nn.Dropout(0.5).eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_with_p_one_zeroes_values_and_gradients():
    x = tl.randn(4, 5, requires_grad=True)
    out = nn.Dropout(1.0)(x)
    assert not out.numpy().any()
    out.sum().backward()
    assert not x.grad.numpy().any()


def test_dropout_gradient_is_the_mask_scaled():
    x = tl.tensor(away_from_zero(50, 40), requires_grad=True)
    out = F.dropout(x, 0.25)
    out.sum().backward()
    assert_close(x.grad, out.numpy() / x.numpy(), name="dropout gradient")  # m / (1 - p)


def test_dropout_gradcheck(device, float64):
    def dropout_with_a_fixed_mask(x):
        tl.manual_seed(0)  # the same mask at every evaluation
        return F.dropout(x, 0.4)

    tl.gradcheck(dropout_with_a_fixed_mask, [tl.randn(6, 7, device=device, requires_grad=True)])


def test_dropout_draws_the_same_mask_in_float32_and_float64():
    x = tl.randn(30, 30)
    tl.manual_seed(3)
    single = F.dropout(x, 0.5).numpy()
    tl.manual_seed(3)
    double = F.dropout(x.to(np.float64), 0.5).numpy()
    assert single.dtype == np.float32 and double.dtype == np.float64
    assert np.array_equal(single == 0, double == 0)


def test_dropout_scales_like_pytorch(torch):
    p = 0.6
    ours = F.dropout(tl.ones(10_000), p).numpy()
    theirs = torch.nn.functional.dropout(torch.ones(10_000), p).numpy()
    assert np.allclose(ours[ours != 0], theirs[theirs != 0][0])
    assert np.array_equal(torch.nn.functional.dropout(torch.ones(3), p, training=False).numpy(), np.ones(3))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_rejects_a_bad_probability(p):
    with pytest.raises(ValueError, match=rf"dropout probability must be in \[0, 1\], got {p}"):
        F.dropout(tl.ones(3), p)
    with pytest.raises(ValueError, match=rf"dropout probability must be in \[0, 1\], got {p}"):
        nn.Dropout(p)


# ---------------------------------------------------------------- activations

# (tinylm module, PyTorch module name, PyTorch options)
ACTIVATIONS = [
    (nn.ReLU, "ReLU", {}),
    (nn.Tanh, "Tanh", {}),
    (nn.Sigmoid, "Sigmoid", {}),
    (nn.GELU, "GELU", {"approximate": "tanh"}),
    (nn.GELU, "GELU", {"approximate": "none"}),
]
NAMES = [name + "".join(f"-{value}" for value in options.values()) for _, name, options in ACTIVATIONS]


@pytest.mark.parametrize("module, torch_name, options", ACTIVATIONS, ids=NAMES)
def test_activation_gradcheck(device, float64, module, torch_name, options):
    tl.gradcheck(module(**options), [tl.tensor(away_from_zero(3, 4), device=device, requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("module, torch_name, options", ACTIVATIONS, ids=NAMES)
def test_activation_matches_pytorch(torch, module, torch_name, options, dtype):
    x = away_from_zero(3, 4) * 3.0
    assert_matches_torch(torch, module(**options), getattr(torch.nn, torch_name)(**options), x, dtype)


def test_gelu_is_close_to_the_exact_erf_form():
    x = np.linspace(-6, 6, 1001)
    exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert_close(nn.GELU()(tl.tensor(x)), exact, rtol=0, atol=1e-3, name="GELU vs the erf form")


def test_exact_gelu_is_the_erf_form(float64):
    x = np.linspace(-10, 10, 2001)
    exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert_close(nn.GELU("none")(tl.tensor(x)), exact, rtol=1e-15, atol=1e-15, name="exact GELU vs math.erf")
    assert F.gelu(tl.tensor(0.5), "none").item() == pytest.approx(0.5 * (1 + math.erf(0.5 / math.sqrt(2))) * 0.5, rel=1e-15)


APPROXIMATE = pytest.mark.parametrize("approximate", ["tanh", "none"])


@APPROXIMATE
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
def test_gelu_equals_its_composed_twin(dtype, tolerance, approximate):
    x = tl.tensor(np.linspace(-6, 6, 240).reshape(3, 80), dtype=dtype, requires_grad=True)
    fused, composed = F.gelu(x, approximate), F.gelu_composed(x, approximate)
    assert fused.dtype == dtype
    assert_close(fused, composed, tolerance, tolerance, name="output")
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    fused.backward(upstream)
    fused_grad, x.grad = x.grad, None
    composed.backward(upstream)
    assert fused_grad.dtype == dtype
    assert_close(fused_grad, x.grad, tolerance, tolerance, name="gradient")


@APPROXIMATE
@pytest.mark.parametrize("gelu", [F.gelu, F.gelu_composed], ids=["fused", "composed"])
def test_gelu_gradcheck(device, float64, gelu, approximate):
    tl.gradcheck(lambda x: gelu(x, approximate), [tl.tensor(away_from_zero(4, 5) * 2.0, device=device, requires_grad=True)])


@APPROXIMATE
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_gelu_matches_pytorch(torch, dtype, approximate):
    x = (away_from_zero(3, 40) * 3.0).astype(dtype)
    ours, theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = F.gelu(ours, approximate), torch.nn.functional.gelu(theirs, approximate=approximate)
    assert_close(out_ours, out_theirs, 1e-5, 1e-6, name="output")
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    assert_close(ours.grad, theirs.grad, 1e-5, 1e-6, name="gradient")


@pytest.mark.parametrize("gelu", [F.gelu, F.gelu_composed], ids=["fused", "composed"])
def test_gelu_rejects_bad_inputs(gelu):
    with pytest.raises(ValueError, match="approximate must be 'tanh' .* or 'none' .*got approximate='exact'"):
        gelu(tl.randn(3), approximate="exact")
    with pytest.raises(TypeError, match="gelu needs a floating-point input, got dtype int64"):
        gelu(tl.tensor(np.arange(3)))


def test_gelu_module_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'tanh' .*got approximate='erf'"):
        nn.GELU("erf")


# ---------------------------------------------------------------- the layers together


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_model_matches_pytorch(torch, dtype):
    """Embedding -> LayerNorm -> Linear -> GELU -> Dropout (eval) -> Linear, weights from PyTorch."""
    ours = nn.Sequential(
        nn.Embedding(7, 6), nn.LayerNorm(6), nn.Linear(6, 10), nn.GELU(), nn.Dropout(0.2), nn.Linear(10, 7)
    ).eval()
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Embedding(7, 6),
        torch.nn.LayerNorm(6),
        torch.nn.Linear(6, 10),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(10, 7),
    ).eval()
    ids = np.array([[0, 6, 6, 2], [1, 2, 3, 6]])
    assert_matches_torch(torch, ours, theirs, ids, dtype, rtol=1e-4, atol=1e-5)
