"""F.rotary_embedding and nn.RotaryEmbedding: a NumPy reference written from the complex-number
formula, the fused Function against its composed twin (output and gradient), gradient checks,
explicit positions (offsets, as a key cache needs), the half-split convention, errors."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn

from assertions import assert_close, assert_twins_agree

TWINS = [F.rotary_embedding, F.rotary_embedding_composed]
TWIN_IDS = ["fused", "composed"]


def rope_reference(x: np.ndarray, positions: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Pair (x[2i], x[2i+1]) as the complex number x₂ᵢ + i·x₂ᵢ₊₁ and multiply it by e^{i·p·θ^(-2i/D)}."""
    dim = x.shape[-1]
    pairs = x[..., 0::2] + 1j * x[..., 1::2]
    angles = np.asarray(positions)[..., None] * theta ** (-np.arange(0, dim, 2) / dim)
    turned = pairs * np.exp(1j * angles)
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = turned.real, turned.imag
    return out


def half_split_reference(x: np.ndarray, positions: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """The "rotate_half" convention (Hugging Face's LLaMA): pair (x[i], x[i + D/2]), same angles."""
    dim = x.shape[-1]
    angles = np.asarray(positions)[..., None] * theta ** (-np.arange(0, dim, 2) / dim)
    cos, sin = np.cos(np.concatenate([angles, angles], -1)), np.sin(np.concatenate([angles, angles], -1))
    rotate_half = np.concatenate([-x[..., dim // 2 :], x[..., : dim // 2]], axis=-1)
    return x * cos + rotate_half * sin


def _x(*shape: int, dtype=np.float64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (x shape, positions): one position per token, then offsets, then per-sequence positions
POSITION_CASES = [
    ((5, 8), np.arange(5)),
    ((2, 5, 8), np.array([3, 7, 0, 100, 2047])),
    ((2, 3, 4, 8), np.array([[[0, 1, 2, 3]], [[10, 11, 12, 13]]])),  # (B, 1, T) for x (B, H, T, D)
    ((2, 4, 6), np.array([[0, 1, 2, 3], [5, 6, 7, 8]])),  # (B, T) for x (B, T, D)
    ((3, 1, 8), np.array([41])),  # one new token at position 41
]
POSITION_IDS = ["0..T-1", "offsets", "per-sequence", "per-row", "one-token"]


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("rotary", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("shape, positions", POSITION_CASES, ids=POSITION_IDS)
def test_rotary_embedding_matches_the_complex_number_reference(device, rotary, shape, positions, dtype, tolerance):
    x = _x(*shape, dtype=dtype)
    out = rotary(tl.tensor(x, device=device), positions)
    assert out.dtype == dtype and out.shape == shape
    assert_close(out, rope_reference(x.astype(np.float64), positions), tolerance, tolerance, name="rotated x")


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("shape, positions", POSITION_CASES, ids=POSITION_IDS)
def test_rotary_embedding_equals_its_composed_twin(shape, positions, dtype, tolerance):
    x = tl.tensor(_x(*shape, dtype=dtype), requires_grad=True)
    fused, composed = (partial(rotary, positions=positions) for rotary in TWINS)
    assert_twins_agree(fused, composed, [x], tolerance, tolerance, ["x"])


@pytest.mark.parametrize("rotary", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("shape, positions", POSITION_CASES, ids=POSITION_IDS)
def test_rotary_embedding_gradcheck(device, float64, rotary, shape, positions):
    x = tl.tensor(_x(*shape), device=device, requires_grad=True)
    tl.gradcheck(lambda x: rotary(x, positions, theta=100.0), [x])


def test_rotary_backward_turns_the_gradient_back_by_the_same_angle():
    """R(a) is orthogonal, so dL/dx = R(-a) dL/dy: the reference rotation with negated positions."""
    positions = np.array([2, 9, 30])
    x = tl.tensor(_x(2, 3, 8), requires_grad=True)
    upstream = _x(2, 3, 8, seed=1)
    F.rotary_embedding(x, positions).backward(upstream)
    assert_close(x.grad, rope_reference(upstream, -positions), 1e-12, 1e-12, name="gradient of x")


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    q, k = _x(1, 8), _x(1, 8, seed=1)

    def score(query_position: int, key_position: int) -> float:
        rotated_q = F.rotary_embedding(tl.tensor(q), [query_position]).numpy()
        rotated_k = F.rotary_embedding(tl.tensor(k), [key_position]).numpy()
        return float((rotated_q * rotated_k).sum())

    assert score(7, 3) == pytest.approx(score(104, 100), abs=1e-10)
    assert score(0, 0) == pytest.approx(float((q * k).sum()), abs=1e-12)
    assert score(7, 3) != pytest.approx(score(7, 4), abs=1e-3)


def test_interleaved_and_half_split_conventions_differ_by_a_permutation_of_the_features():
    dim, positions = 8, np.arange(6)
    perm = np.concatenate([np.arange(0, dim, 2), np.arange(1, dim, 2)])  # [0, 2, 4, 6, 1, 3, 5, 7]
    q, k = _x(6, dim), _x(6, dim, seed=1)
    ours_q = F.rotary_embedding(tl.tensor(q), positions).numpy()
    ours_k = F.rotary_embedding(tl.tensor(k), positions).numpy()
    half_q, half_k = half_split_reference(q[:, perm], positions), half_split_reference(k[:, perm], positions)
    assert_close(half_q, ours_q[:, perm], 1e-12, 1e-12, name="half-split of the permuted q")
    assert_close(half_q @ half_k.T, ours_q @ ours_k.T, 1e-12, 1e-12, name="attention scores q·k")
    assert not np.allclose(half_split_reference(q, positions), ours_q, atol=1e-3)  # unpermuted, they differ


def test_rotary_positions_may_be_a_tensor(device):
    x = tl.tensor(_x(4, 6), device=device)
    positions = tl.tensor(np.array([4, 5, 6, 7]), device=device)
    assert_close(F.rotary_embedding(x, positions), rope_reference(_x(4, 6), np.arange(4, 8)), 1e-6, 1e-6)


def test_rotary_theta_sets_the_frequencies():
    x, positions = _x(3, 4), np.array([1, 2, 3])
    assert_close(F.rotary_embedding(tl.tensor(x), positions, theta=500.0), rope_reference(x, positions, 500.0), 1e-12, 1e-12)
    assert not np.allclose(F.rotary_embedding(tl.tensor(x), positions).numpy(), rope_reference(x, positions, 500.0))


@pytest.mark.parametrize("rotary", TWINS, ids=TWIN_IDS)
def test_rotary_embedding_rejects_bad_inputs(rotary):
    x = tl.randn(2, 4, 6)
    even = r"rotary_embedding: expected x \(\.\.\., T, D\) with an even number of features D .*got shape"
    with pytest.raises(tl.ShapeError, match=even + r" \(2, 4, 5\)"):
        rotary(tl.randn(2, 4, 5), np.arange(4))
    with pytest.raises(tl.ShapeError, match=even + r" \(6,\)"):
        rotary(tl.randn(6), np.arange(1))
    with pytest.raises(TypeError, match="rotary_embedding needs a floating-point input, got dtype int64"):
        rotary(tl.tensor(np.zeros((4, 6), dtype=np.int64)), np.arange(4))
    with pytest.raises(TypeError, match="rotary_embedding: positions must be integers, got dtype float64"):
        rotary(x, np.arange(4.0))
    message = r"positions must be \(T,\) = \(4,\) or broadcastable to x's \(\.\.\., T\) = \(2, 4\) .*got shape {}"
    with pytest.raises(tl.ShapeError, match=message.format(r"\(5,\)")):
        rotary(x, np.arange(5))
    with pytest.raises(tl.ShapeError, match=message.format(r"\(3, 4\)")):
        rotary(x, np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(tl.ShapeError, match=message.format(r"\(2, 1\)")):
        rotary(x, np.zeros((2, 1), dtype=np.int64))
    with pytest.raises(tl.ShapeError, match=message.format(r"\(\)")):
        rotary(x, 3)
    with pytest.raises(ValueError, match="rotary_embedding: positions must be >= 0, got -1"):
        rotary(x, [0, 1, -1, 2])
    with pytest.raises(ValueError, match=r"rotary_embedding: theta must be a positive number .*got 0"):
        rotary(x, np.arange(4), theta=0)


@pytest.mark.parametrize("device", ["cuda"], indirect=True)
def test_rotary_positions_must_be_on_the_inputs_device(device):
    with pytest.raises(tl.DeviceError, match=r"positions are on 'cpu' but x is on 'cuda'.*positions.to\('cuda'\)"):
        F.rotary_embedding(tl.randn(4, 6, device=device), tl.tensor(np.arange(4)))


# ---------------------------------------------------------------- nn.RotaryEmbedding


def test_rotary_module_defaults_to_positions_zero_to_t_minus_one(device):
    layer = nn.RotaryEmbedding(8, max_positions=16).to(device)
    x = tl.tensor(_x(2, 3, 5, 8), dtype=np.float32, device=device)
    assert layer.parameters() == [] and layer.cos.shape == layer.sin.shape == (16, 4)
    assert_close(layer(x), F.rotary_embedding(x, np.arange(5)), 1e-6, 1e-6, name="module vs functional")


def test_rotary_module_with_an_offset_equals_the_full_sequence_at_those_positions(device):
    """What a key cache relies on: rotating only the new token, at its position, gives
    the same vector as rotating the whole sequence and reading that row."""
    layer = nn.RotaryEmbedding(8, max_positions=16).to(device)
    x = tl.tensor(_x(2, 3, 7, 8), dtype=np.float32, device=device)
    full = layer(x).numpy()
    assert_close(layer(x[:, :, 6:7], positions=[6]), full[:, :, 6:7], 1e-6, 1e-6, name="one token at 6")
    assert_close(layer(x[:, :, 4:], positions=np.arange(4, 7)), full[:, :, 4:], 1e-6, 1e-6, name="tokens 4..6")
    # sequence 0 at tokens 0..2, sequence 1 at tokens 4..6: one offset per sequence, (B, 1, T)
    windows = tl.tensor(np.stack([x.numpy()[0, :, 0:3], x.numpy()[1, :, 4:7]]), device=device)
    out = layer(windows, positions=np.array([[[0, 1, 2]], [[4, 5, 6]]]))
    expected = np.stack([full[0, :, 0:3], full[1, :, 4:7]])
    assert_close(out, expected, 1e-6, 1e-6, name="per-sequence offsets")


def test_rotary_module_tables_follow_the_default_dtype_and_to_rebuilds_them_exactly(float64):
    layer = nn.RotaryEmbedding(6, max_positions=32)
    assert layer.cos.dtype == layer.sin.dtype == np.float64
    layer.to(np.float32)
    assert layer.cos.dtype == np.float32
    layer.to("float64")  # rebuilt from the formula, not cast up from float32
    angles = np.arange(32)[:, None] * 10000.0 ** (-np.arange(0, 6, 2) / 6)
    assert_close(layer.cos, np.cos(angles), 0, 1e-15, name="cos table")
    assert_close(layer.sin, np.sin(angles), 0, 1e-15, name="sin table")


def test_rotary_module_gradcheck(device, float64):
    layer = nn.RotaryEmbedding(6, max_positions=8, theta=50.0).to(device)
    x = tl.tensor(_x(2, 5, 6), device=device, requires_grad=True)
    tl.gradcheck(lambda x: layer(x, positions=[1, 2, 5, 6, 7]), [x])
    tl.gradcheck(layer, [x])


def test_rotary_module_rejects_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="RotaryEmbedding: head_dim must be even .*got 5"):
        nn.RotaryEmbedding(5)
    with pytest.raises(ValueError, match="RotaryEmbedding: max_positions must be a positive int, got 0"):
        nn.RotaryEmbedding(4, max_positions=0)
    with pytest.raises(ValueError, match="RotaryEmbedding: theta must be a positive number"):
        nn.RotaryEmbedding(4, theta=-1.0)
    layer = nn.RotaryEmbedding(4, max_positions=8)
    with pytest.raises(tl.ShapeError, match=r"RotaryEmbedding: expected x \(\.\.\., T, 4\), got shape \(3, 6\)"):
        layer(tl.randn(3, 6))
    message = r"positions must lie in \[0, 7\] \(max_positions=8\), got {}; make a RotaryEmbedding with a larger max_positions"
    with pytest.raises(IndexError, match=message.format(8)):
        layer(tl.randn(9, 4))
    with pytest.raises(IndexError, match=message.format(8)):
        layer(tl.randn(1, 4), positions=[8])
    with pytest.raises(ValueError, match="RotaryEmbedding: positions must be >= 0, got -1"):
        layer(tl.randn(1, 4), positions=[-1])
    with pytest.raises(TypeError, match=r"the tables are float32 but x is float64; .*\.to\('float64'\)"):
        layer(tl.randn(3, 4, dtype=np.float64))


@pytest.mark.parametrize("device", ["cuda"], indirect=True)
def test_rotary_module_tables_must_be_on_the_inputs_device(device):
    with pytest.raises(tl.DeviceError, match=r"the tables are on 'cpu' but x is on 'cuda'.*\.to\('cuda'\)"):
        nn.RotaryEmbedding(4)(tl.randn(3, 4, device=device))
