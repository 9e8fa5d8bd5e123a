"""Scaled dot-product attention (fused and composed), MultiheadAttention, positional
encodings and additive attention: against PyTorch, against each other, and gradient-checked."""
from __future__ import annotations

import math

import numpy as np
import pytest
from assertions import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import tinylm as tl
import tinylm.functional as F
from tinylm import nn
from tinylm.nn.attention import sinusoidal_table

ATTENTIONS = {"fused": F.scaled_dot_product_attention, "composed": F.scaled_dot_product_attention_composed}


def _random(shape, rng, device="cpu", dtype=np.float32) -> tl.Tensor:
    return tl.tensor(rng.standard_normal(shape).astype(dtype), device=device, requires_grad=True)


def _qkv(rng, lead=(2, 3), L=4, S=5, E=6, Ev=3, device="cpu", dtype=np.float32):
    return [_random(lead + shape, rng, device, dtype) for shape in ((L, E), (S, E), (S, Ev))]


# Each case: leading axes of q, k, v; L; S; and the keyword arguments (mask built from L, S).
CASES = {
    "plain": dict(lead=(2, 3), L=4, S=5, make=lambda L, S, rng: {}),
    "no leading axes": dict(lead=(), L=4, S=5, make=lambda L, S, rng: {}),
    "scale": dict(lead=(2,), L=4, S=5, make=lambda L, S, rng: {"scale": 0.3}),
    "bool mask (L, S)": dict(lead=(2, 3), L=4, S=5, make=lambda L, S, rng: {"attn_mask": rng.random((L, S)) > 0.3}),
    "bool mask per batch (2, 1, L, S)": dict(lead=(2, 3), L=4, S=5, make=lambda L, S, rng: {"attn_mask": rng.random((2, 1, L, S)) > 0.4}),
    "float mask": dict(lead=(2, 3), L=4, S=5, make=lambda L, S, rng: {"attn_mask": rng.standard_normal((L, S)).astype(np.float32)}),
    "causal L < S": dict(lead=(2, 3), L=3, S=6, make=lambda L, S, rng: {"is_causal": True}),
    "causal L > S": dict(lead=(2,), L=6, S=3, make=lambda L, S, rng: {"is_causal": True}),
    "causal L == S": dict(lead=(2, 3), L=5, S=5, make=lambda L, S, rng: {"is_causal": True}),
}


def _torch_kwargs(torch, kwargs: dict) -> dict:
    return {key: torch.tensor(value) if isinstance(value, np.ndarray) else value for key, value in kwargs.items()}


@pytest.mark.parametrize("kind", list(ATTENTIONS))
@pytest.mark.parametrize("case", list(CASES))
def test_attention_matches_torch_outputs_and_gradients(torch, kind, case):
    spec = CASES[case]
    rng = np.random.default_rng(0)
    q, k, v = _qkv(rng, spec["lead"], spec["L"], spec["S"])
    kwargs = spec["make"](spec["L"], spec["S"], rng)
    grad = rng.standard_normal(spec["lead"] + (spec["L"], 3)).astype(np.float32)
    out = ATTENTIONS[kind](q, k, v, **kwargs)
    out.backward(tl.tensor(grad))

    tq, tk, tv = (torch.tensor(t.numpy(), requires_grad=True) for t in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **_torch_kwargs(torch, kwargs))
    expected.backward(torch.tensor(grad))
    assert_close(out, expected, rtol=1e-5, atol=1e-5, name=f"{kind} output ({case})")
    for name, ours, theirs in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5, name=f"{kind} grad of {name} ({case})")


@pytest.mark.parametrize("kind", list(ATTENTIONS))
@pytest.mark.parametrize("case", ["plain", "bool mask per batch (2, 1, L, S)", "float mask", "causal L < S", "causal L > S"])
def test_attention_gradcheck(float64, device, kind, case):
    spec = CASES[case]
    rng = np.random.default_rng(1)
    q, k, v = _qkv(rng, spec["lead"], spec["L"], spec["S"], device=device, dtype=np.float64)
    kwargs = spec["make"](spec["L"], spec["S"], rng)
    assert tl.gradcheck(lambda q, k, v: ATTENTIONS[kind](q, k, v, **kwargs), (q, k, v))


def test_gradcheck_with_broadcast_leading_axes(float64, device):
    """q (2, 1, L, E) against k, v (3, S, E): the scores are (2, 3, L, S); grads sum back."""
    rng = np.random.default_rng(2)
    q = _random((2, 1, 4, 5), rng, device, np.float64)
    k = _random((3, 6, 5), rng, device, np.float64)
    v = _random((3, 6, 2), rng, device, np.float64)
    for attention in ATTENTIONS.values():
        assert attention(q, k, v).shape == (2, 3, 4, 2)
        assert tl.gradcheck(attention, (q, k, v))


@pytest.mark.parametrize("case", list(CASES))
def test_fused_equals_composed_float32(device, case):
    spec = CASES[case]
    rng = np.random.default_rng(3)
    inputs = {kind: _qkv(np.random.default_rng(3), spec["lead"], spec["L"], spec["S"], device=device) for kind in ATTENTIONS}
    kwargs = spec["make"](spec["L"], spec["S"], rng)
    grad = tl.tensor(rng.standard_normal(spec["lead"] + (spec["L"], 3)).astype(np.float32), device=device)
    results = {}
    for kind, attention in ATTENTIONS.items():
        out, weights = attention(*inputs[kind], **kwargs, return_weights=True)
        out.backward(grad)
        results[kind] = (out, weights)
        assert out.dtype == np.float32 and weights.dtype == np.float32
        assert all(t.grad.dtype == np.float32 for t in inputs[kind])
    assert_close(results["fused"][0], results["composed"][0], rtol=1e-5, atol=1e-6, name=f"output ({case})")
    assert_close(results["fused"][1], results["composed"][1], rtol=1e-5, atol=1e-6, name=f"weights ({case})")
    for name, fused, composed in zip("qkv", inputs["fused"], inputs["composed"]):
        assert_close(fused.grad, composed.grad, rtol=1e-4, atol=1e-5, name=f"grad of {name} ({case})")


@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    sizes=st.tuples(*[st.integers(1, 5)] * 4),
    mask_kind=st.sampled_from(["none", "causal", "bool", "float"]),
    seed=st.integers(0, 2**16),
)
def test_fused_equals_composed_on_awkward_shapes(lead, sizes, mask_kind, seed):
    """Size-1 axes, L != S, no leading axes, masks with fully masked rows: the twins agree."""
    L, S, E, Ev = sizes
    rng = np.random.default_rng(seed)
    kwargs = {
        "none": {},
        "causal": {"is_causal": True},
        "bool": {"attn_mask": rng.random((L, S)) > 0.5},
        "float": {"attn_mask": rng.standard_normal((L, S))},
    }[mask_kind]
    grad = tl.tensor(rng.standard_normal(tuple(lead) + (L, Ev)))
    results = []
    for attention in ATTENTIONS.values():
        inputs = _qkv(np.random.default_rng(seed), tuple(lead), L, S, E, Ev, dtype=np.float64)
        out = attention(*inputs, **kwargs)
        out.backward(grad)
        results.append([out] + [t.grad for t in inputs])
    for name, fused, composed in zip(["output", "grad q", "grad k", "grad v"], *results):
        assert_close(fused, composed, rtol=1e-9, atol=1e-12, name=name)


def test_returned_weights_are_the_softmax_of_the_scores(torch):
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng, (2,), 3, 4, E=8)
    out, weights = F.scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    scores = q.numpy() @ k.numpy().swapaxes(-1, -2) / math.sqrt(8) + np.where(np.tri(3, 4, dtype=bool), 0, -np.inf)
    expected = torch.softmax(torch.tensor(scores), dim=-1)
    assert_close(weights, expected, rtol=1e-5, atol=1e-6, name="weights")
    assert not weights.requires_grad  # the fused op hands them out for plotting only
    assert_close(out, weights.numpy() @ v.numpy(), rtol=1e-5, atol=1e-6, name="output = weights @ v")


@pytest.mark.parametrize("kind", list(ATTENTIONS))
@pytest.mark.parametrize("mask_kind", ["bool", "float -inf"])
def test_fully_masked_row_gives_zero_output_and_zero_gradient(torch, kind, mask_kind):
    """Row 1 may attend to nothing: its weights and output are 0, no NaN anywhere (as PyTorch)."""
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, (2,), 3, 4)
    allowed = np.ones((3, 4), dtype=bool)
    allowed[1] = False
    mask = allowed if mask_kind == "bool" else np.where(allowed, 0.0, -np.inf).astype(np.float32)
    out, weights = ATTENTIONS[kind](q, k, v, attn_mask=mask, return_weights=True)
    (out * out).sum().backward()
    assert np.all(out.numpy()[:, 1] == 0) and np.all(weights.numpy()[:, 1] == 0)
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    assert np.all(q.grad.numpy()[:, 1] == 0)
    tq, tk, tv = (torch.tensor(t.numpy()) for t in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(mask))
    assert_close(out, expected, rtol=1e-5, atol=1e-6, name="output with a fully masked row")


@pytest.mark.parametrize("kind", list(ATTENTIONS))
def test_fully_masked_row_gradcheck(float64, kind):
    rng = np.random.default_rng(6)
    q, k, v = _qkv(rng, (2,), 3, 4, dtype=np.float64)
    allowed = rng.random((3, 4)) > 0.3
    allowed[0] = False
    assert tl.gradcheck(lambda q, k, v: ATTENTIONS[kind](q, k, v, attn_mask=allowed), (q, k, v))


@pytest.mark.parametrize("kind", list(ATTENTIONS))
@pytest.mark.parametrize(
    "shapes, kwargs, error, match",
    [
        (((2, 4, 6), (2, 5, 7), (2, 5, 3)), {}, tl.ShapeError, r"q \(2, 4, 6\) and k \(2, 5, 7\) must have the same feature size E"),
        (((2, 4, 6), (2, 5, 6), (2, 4, 3)), {}, tl.ShapeError, r"k \(2, 5, 6\) and v \(2, 4, 3\) must have the same number of keys S"),
        (((2, 4, 6), (3, 5, 6), (3, 5, 3)), {}, tl.ShapeError, r"leading axes of q \(2, 4, 6\) and k \(3, 5, 6\) do not broadcast"),
        (((6,), (5, 6), (5, 3)), {}, tl.ShapeError, r"q must have at least 2 axes .* got shape \(6,\)"),
        (((2, 4, 6), (2, 5, 6), (2, 5, 3)), {"attn_mask": np.ones((4, 4), bool)}, tl.ShapeError, r"attn_mask of shape \(4, 4\) does not broadcast to .* \(2, 4, 5\)"),
        (((2, 4, 6), (2, 5, 6), (2, 5, 3)), {"attn_mask": np.ones((4, 5), bool), "is_causal": True}, ValueError, "either attn_mask or is_causal"),
        (((2, 4, 6), (2, 5, 6), (2, 5, 3)), {"attn_mask": np.ones((4, 5), np.int64)}, TypeError, "attn_mask must be bool .* or float .* got dtype int64"),
    ],
)
def test_bad_inputs_raise_errors_naming_the_shapes(kind, shapes, kwargs, error, match):
    rng = np.random.default_rng(7)
    q, k, v = (_random(shape, rng) for shape in shapes)
    with pytest.raises(error, match=match):
        ATTENTIONS[kind](q, k, v, **kwargs)


def test_mixed_dtypes_are_refused():
    rng = np.random.default_rng(8)
    q, k = _random((4, 6), rng), _random((5, 6), rng)
    v = _random((5, 3), rng, dtype=np.float64)
    with pytest.raises(TypeError, match="must share one dtype, got float32, float32, float64"):
        F.scaled_dot_product_attention(q, k, v)


# ---------------------------------------------------------------- MultiheadAttention


def _twin_mha(torch, embed_dim=8, num_heads=2, bias=True):
    """A tinylm MHA with the weights of a fresh PyTorch one (batch_first=True), both float64."""
    theirs = torch.nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True).double()
    ours = nn.MultiheadAttention(embed_dim, num_heads, bias=bias).to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def test_mha_parameters_match_torch_layout(torch):
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    ours = nn.MultiheadAttention(8, 2)
    assert {n: tuple(p.shape) for n, p in ours.named_parameters()} == {n: tuple(p.shape) for n, p in theirs.named_parameters()}
    assert np.all(ours.in_proj_bias.numpy() == 0) and np.all(ours.out_proj.bias.numpy() == 0)
    bound = math.sqrt(6 / (8 + 24))  # Xavier-uniform, as PyTorch
    assert np.abs(ours.in_proj_weight.numpy()).max() <= bound


@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_causal_matches_torch(torch, average, bias):
    ours, theirs = _twin_mha(torch, bias=bias)
    rng = np.random.default_rng(9)
    x = tl.tensor(rng.standard_normal((2, 5, 8)), requires_grad=True)
    out, weights = ours(x, x, x, is_causal=True, average_attn_weights=average)
    out.backward(tl.tensor(np.cos(out.numpy())))

    tx = torch.tensor(x.numpy(), requires_grad=True)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    t_out, t_weights = theirs(tx, tx, tx, attn_mask=causal, is_causal=True, average_attn_weights=average)
    t_out.backward(torch.cos(t_out.detach()))
    assert_close(out, t_out, rtol=1e-10, atol=1e-12, name="output")
    assert_close(weights, t_weights, rtol=1e-10, atol=1e-12, name="weights")
    assert_close(x.grad, tx.grad, rtol=1e-9, atol=1e-12, name="grad of x")
    for name, parameter in theirs.named_parameters():
        assert_close(dict(ours.named_parameters())[name].grad, parameter.grad, rtol=1e-9, atol=1e-12, name=f"grad of {name}")


@pytest.mark.parametrize("mask_dtype", ["bool", "float"])
def test_mha_cross_attention_with_masks_matches_torch(torch, mask_dtype):
    ours, theirs = _twin_mha(torch, embed_dim=12, num_heads=3)
    rng = np.random.default_rng(10)
    query, key, value = (rng.standard_normal(shape) for shape in ((2, 4, 12), (2, 6, 12), (2, 6, 12)))
    blocked = rng.random((4, 6)) > 0.7  # PyTorch MHA: True = may NOT attend
    blocked[:, 0] = False
    padding = np.zeros((2, 6), dtype=bool)
    padding[1, 4:] = True
    attn_mask = blocked if mask_dtype == "bool" else np.where(blocked, -np.inf, rng.standard_normal((4, 6)))
    out, weights = ours(tl.tensor(query), tl.tensor(key), tl.tensor(value), key_padding_mask=padding, attn_mask=attn_mask)
    # tinylm takes a boolean padding mask beside a float attn_mask; PyTorch wants both of one kind
    torch_padding = padding if mask_dtype == "bool" else np.where(padding, -np.inf, 0.0)
    t_out, t_weights = theirs(*(torch.tensor(a) for a in (query, key, value)), key_padding_mask=torch.tensor(torch_padding), attn_mask=torch.tensor(attn_mask))
    assert_close(out, t_out, rtol=1e-10, atol=1e-12, name="output")
    assert_close(weights, t_weights, rtol=1e-10, atol=1e-12, name="weights")
    assert np.all(weights.numpy()[1, :, 4:] == 0)


def test_mha_per_head_3d_mask_matches_torch(torch):
    ours, theirs = _twin_mha(torch)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 8))
    blocked = rng.random((4, 5, 5)) > 0.6  # (batch·heads, L, S)
    blocked[..., 0] = False
    out, _ = ours(tl.tensor(x), attn_mask=blocked, need_weights=False)
    t_out, _ = theirs(torch.tensor(x), torch.tensor(x), torch.tensor(x), attn_mask=torch.tensor(blocked), need_weights=False)
    assert_close(out, t_out, rtol=1e-10, atol=1e-12, name="output")


def test_mha_gradcheck(float64, device):
    mha = nn.MultiheadAttention(6, 2).to(device)
    rng = np.random.default_rng(12)
    query = _random((2, 3, 6), rng, device, np.float64)
    memory = _random((2, 4, 6), rng, device, np.float64)
    padding = np.zeros((2, 4), dtype=bool)
    padding[0, 3] = True
    assert tl.gradcheck(lambda q, m: mha(q, m, m, key_padding_mask=padding)[0], (query, memory))
    assert tl.gradcheck(lambda *params: mha(query, is_causal=True)[0], mha.parameters())


def test_mha_float32_forward(device):
    mha = nn.MultiheadAttention(8, 4).to(device)
    x = tl.randn(3, 5, 8, device=device)
    out, weights = mha(x)
    assert out.dtype == np.float32 and out.shape == (3, 5, 8) and weights.shape == (3, 5, 5)
    assert_close(weights.numpy().sum(-1), np.ones((3, 5)), rtol=1e-5, atol=1e-5, name="weights sum to 1")


def test_mha_errors():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(3\)"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(tl.ShapeError, match=r"query must be \(batch, length, embed_dim=8\), got shape \(5, 8\)"):
        mha(tl.randn(5, 8))
    with pytest.raises(tl.ShapeError, match=r"attn_mask must be \(5, 5\) or \(4, 5, 5\)"):
        mha(tl.randn(2, 5, 8), attn_mask=np.ones((5, 4), bool))
    with pytest.raises(tl.ShapeError, match=r"key_padding_mask must be \(batch, S\) = \(2, 5\), got \(5,\)"):
        mha(tl.randn(2, 5, 8), key_padding_mask=np.ones(5, bool))


# ---------------------------------------------------------------- positional encodings


def test_sinusoidal_table_follows_the_formula():
    table = sinusoidal_table(10, 6)
    for t, i in [(0, 0), (3, 1), (9, 2)]:
        angle = t / 10000 ** (2 * i / 6)
        assert table[t, 2 * i] == pytest.approx(math.sin(angle))
        assert table[t, 2 * i + 1] == pytest.approx(math.cos(angle))
    assert sinusoidal_table(4, 5).shape == (4, 5)  # odd sizes drop the last cosine


def test_sinusoidal_encoding_adds_the_table(device):
    encoding = nn.SinusoidalPositionalEncoding(16, 6).to(device)
    x = tl.randn(2, 7, 6, device=device)
    assert_close(encoding(x), x.numpy() + sinusoidal_table(7, 6).astype(np.float32), rtol=1e-6, atol=1e-6, name="x + PE")
    assert encoding.to(np.float64)(x.to(np.float64)).dtype == np.float64
    assert encoding.parameters() == []


def test_learned_encoding_gradcheck_and_length_error(float64, device):
    encoding = nn.LearnedPositionalEncoding(8, 4).to(device)
    x = _random((2, 5, 4), np.random.default_rng(13), device, np.float64)
    assert tl.gradcheck(lambda x, w: encoding(x), (x, encoding.weight))
    with pytest.raises(tl.ShapeError, match="sequence of length 9 is longer than max_length 8"):
        encoding(tl.randn(1, 9, 4, device=device))


# ---------------------------------------------------------------- additive attention


def test_additive_attention_follows_its_formula(device):
    attention = nn.AdditiveAttention(query_size=3, key_size=4, hidden_size=5).to(device)
    rng = np.random.default_rng(14)
    query, keys, values = (tl.tensor(rng.standard_normal(s).astype(np.float32), device=device) for s in ((2, 1, 3), (2, 6, 4), (2, 6, 2)))
    allowed = np.ones((2, 1, 6), dtype=bool)
    allowed[1, 0, 3:] = False
    context, weights = attention(query, keys, values, mask=allowed)

    Wq, Wk, v = (p.numpy() for p in (attention.query_proj.weight, attention.key_proj.weight, attention.score.weight))
    hidden = np.tanh((query.numpy() @ Wq.T)[:, :, None, :] + (keys.numpy() @ Wk.T)[:, None, :, :])  # (B, L, S, hidden)
    scores = np.where(allowed, hidden @ v[0], -np.inf)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    assert_close(weights, expected, rtol=1e-5, atol=1e-6, name="weights")
    assert_close(context, expected @ values.numpy(), rtol=1e-5, atol=1e-6, name="context")


def test_additive_attention_gradcheck(float64, device):
    attention = nn.AdditiveAttention(3, 4, 5).to(device)
    rng = np.random.default_rng(15)
    query, keys, values = (_random(s, rng, device, np.float64) for s in ((2, 2, 3), (2, 4, 4), (2, 4, 2)))
    allowed = np.array([True, True, True, False])
    assert tl.gradcheck(lambda q, k, v: attention(q, k, v, mask=allowed)[0], (query, keys, values))
    assert tl.gradcheck(lambda *params: attention(query, keys, values)[0], attention.parameters())


def test_additive_attention_shape_error():
    attention = nn.AdditiveAttention(3, 4, 5)
    with pytest.raises(tl.ShapeError, match=r"expected query \(B, L, Q\).* got query \(2, 3\)"):
        attention(tl.randn(2, 3), tl.randn(2, 6, 4), tl.randn(2, 6, 2))


# ---------------------------------------------------------------- grouped-query and rotary attention

# (num_heads, num_kv_heads, rotary, bias): every option alone and together; 4 heads share 4, 2 or 1 key-value heads
OPTIONS = [(4, 4, False, True), (4, 2, False, True), (4, 1, False, False), (4, 4, True, True), (4, 2, True, False), (2, 1, True, True)]
OPTION_IDS = ["plain", "gqa", "mqa no bias", "rotary", "gqa rotary no bias", "mqa rotary"]


def _modern_mha(num_heads, num_kv_heads, rotary, bias, embed_dim=8, theta=100.0, device="cpu"):
    """A MultiheadAttention with the options and random biases (they start at zero)."""
    mha = nn.MultiheadAttention(embed_dim, num_heads, bias, num_kv_heads, rotary, rotary_theta=theta, max_positions=32).to(device)
    rng = np.random.default_rng(20)
    for parameter in mha.parameters():
        if parameter.ndim == 1:
            parameter.data[...] = tl.tensor(rng.standard_normal(parameter.shape), dtype=parameter.dtype, device=device).data
    return mha


def attention_reference(x, mha, positions, causal=True):
    """The layer from its formula in NumPy (float64): project, split the heads, turn each
    interleaved pair of q and k as a complex number by e^{i·p·θᵢ}, give each key-value head
    to its G query heads by copying it (np.repeat), softmax(QKᵀ/√D) V, out-project."""
    W, b = mha.in_proj_weight.numpy().astype(np.float64), mha.in_proj_bias
    b = np.zeros(W.shape[0]) if b is None else b.numpy().astype(np.float64)
    H, K, D = mha.num_heads, mha.num_kv_heads, mha.head_dim
    B, T, E = x.shape
    projected = x @ W.T + b
    q = projected[..., :E].reshape(B, T, H, D).transpose(0, 2, 1, 3)
    k, v = (projected[..., E + i * K * D : E + (i + 1) * K * D].reshape(B, T, K, D).transpose(0, 2, 1, 3) for i in range(2))
    if mha.rotary is not None:
        angles = np.asarray(positions)[:, None] * mha.rotary.theta ** (-np.arange(0, D, 2) / D)

        def turn(t):
            turned = (t[..., 0::2] + 1j * t[..., 1::2]) * np.exp(1j * angles)
            return np.stack([turned.real, turned.imag], axis=-1).reshape(t.shape)

        q, k = turn(q), turn(k)
    k, v = np.repeat(k, H // K, axis=1), np.repeat(v, H // K, axis=1)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(D)
    if causal:
        scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = (weights @ v).transpose(0, 2, 1, 3).reshape(B, T, E)
    out_b = mha.out_proj.bias
    return heads @ mha.out_proj.weight.numpy().T + (0 if out_b is None else out_b.numpy()), weights


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("num_heads, num_kv_heads, rotary, bias", OPTIONS, ids=OPTION_IDS)
def test_modern_attention_matches_its_formula(device, num_heads, num_kv_heads, rotary, bias, dtype, tolerance):
    mha = _modern_mha(num_heads, num_kv_heads, rotary, bias, device=device).to(dtype)
    x = np.random.default_rng(21).standard_normal((2, 6, 8))
    out, weights = mha(tl.tensor(x, dtype=dtype, device=device), is_causal=True, average_attn_weights=False)
    expected, expected_weights = attention_reference(x, mha, np.arange(6))
    assert out.dtype == dtype and weights.shape == (2, num_heads, 6, 6)
    assert_close(out, expected, tolerance, tolerance, name="output")
    assert_close(weights, expected_weights, tolerance, tolerance, name="weights per head")


def test_modern_attention_layout_and_init():
    gqa = nn.MultiheadAttention(8, 4, num_kv_heads=2)
    shapes = {name: p.shape for name, p in gqa.named_parameters()}
    assert shapes == {"in_proj_weight": (16, 8), "in_proj_bias": (16,), "out_proj.weight": (8, 8), "out_proj.bias": (8,)}
    assert np.abs(gqa.in_proj_weight.numpy()).max() <= math.sqrt(6 / (16 + 8))  # Xavier-uniform of its own shape
    plain = nn.MultiheadAttention(8, 4, bias=False, rotary=True)
    assert [name for name, _ in plain.named_parameters()] == ["in_proj_weight", "out_proj.weight"]  # no bias in any projection
    assert plain.in_proj_weight.shape == (24, 8)  # PyTorch's (3E, E) when every head has its keys and values
    assert "num_kv_heads=2" in repr(gqa) and "rotary=True, max_positions=2048" in repr(plain)


@pytest.mark.parametrize("num_heads, num_kv_heads, rotary, bias", OPTIONS, ids=OPTION_IDS)
def test_modern_attention_matches_torch_sdpa_with_gqa(torch, num_heads, num_kv_heads, rotary, bias):
    """PyTorch's F.scaled_dot_product_attention(enable_gqa=True), with rotary turns written as
    Meta's LLaMA code writes them (complex multiplication): output and every gradient."""
    if "enable_gqa" not in torch.nn.functional.scaled_dot_product_attention.__doc__:
        pytest.skip("this PyTorch has no enable_gqa")
    mha = _modern_mha(num_heads, num_kv_heads, rotary, bias).to(np.float64)
    x = np.random.default_rng(22).standard_normal((2, 5, 8))
    ours_x = tl.tensor(x, requires_grad=True)
    out, _ = mha(ours_x, is_causal=True)
    upstream = np.cos(out.numpy())
    out.backward(tl.tensor(upstream))

    params = {name: torch.tensor(p.numpy(), requires_grad=True) for name, p in mha.named_parameters()}
    theirs_x = torch.tensor(x, requires_grad=True)
    E, K, D = 8, num_kv_heads, mha.head_dim
    projected = torch.nn.functional.linear(theirs_x, params["in_proj_weight"], params.get("in_proj_bias"))
    q, k, v = projected.split([E, K * D, K * D], dim=-1)
    q, k, v = (t.reshape(2, 5, -1, D).transpose(1, 2) for t in (q, k, v))
    if rotary:
        angles = torch.arange(5, dtype=torch.float64)[:, None] * 100.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
        turn = torch.polar(torch.ones_like(angles), angles)
        q, k = (torch.view_as_real(torch.view_as_complex(t.reshape(*t.shape[:-1], D // 2, 2)) * turn).flatten(-2) for t in (q, k))
    heads = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = torch.nn.functional.linear(heads.transpose(1, 2).reshape(2, 5, E), params["out_proj.weight"], params.get("out_proj.bias"))
    expected.backward(torch.tensor(upstream))
    assert_close(out, expected, 1e-12, 1e-12, name="output")
    assert_close(ours_x.grad, theirs_x.grad, 1e-10, 1e-12, name="grad of x")
    for name, parameter in mha.named_parameters():
        assert_close(parameter.grad, params[name].grad, 1e-10, 1e-12, name=f"grad of {name}")


@pytest.mark.parametrize("num_heads, num_kv_heads, rotary, bias", OPTIONS, ids=OPTION_IDS)
def test_modern_attention_gradcheck(float64, device, num_heads, num_kv_heads, rotary, bias):
    mha = _modern_mha(num_heads, num_kv_heads, rotary, bias, device=device)
    x = _random((2, 4, 8), np.random.default_rng(23), device, np.float64)
    assert tl.gradcheck(lambda x: mha(x, is_causal=True)[0], (x,))
    assert tl.gradcheck(lambda *params: mha(x, is_causal=True)[0], mha.parameters())


@pytest.mark.parametrize("pieces", [[7], [1] * 7, [3, 1, 3]], ids=["whole", "one by one", "3+1+3"])
@pytest.mark.parametrize("num_heads, num_kv_heads, rotary, bias", OPTIONS, ids=OPTION_IDS)
def test_modern_attention_through_a_cache_equals_one_pass(float64, device, num_heads, num_kv_heads, rotary, bias, pieces):
    """The cache holds H_kv heads of rotated keys; each new query is turned by its own position."""
    mha = _modern_mha(num_heads, num_kv_heads, rotary, bias, device=device)
    x = tl.tensor(np.random.default_rng(24).standard_normal((2, 7, 8)), device=device)
    with tl.no_grad():
        expected, _ = mha(x, is_causal=True)
        cache, outputs, start = nn.LayerCache(capacity=2), [], 0
        for size in pieces:
            outputs.append(mha(x[:, start : start + size], is_causal=True, cache=cache, need_weights=False)[0])
            start += size
    assert cache.keys.shape[:2] == (2, num_kv_heads) and cache.length == 7
    assert_close(tl.concat(outputs, axis=1), expected, 0, 1e-12, name="outputs through the cache")


def test_rotary_attention_depends_only_on_relative_positions(float64):
    """Shifting every position by the same amount turns q and k alike: the scores, and so
    the output, stay the same; explicit positions are those of the formula."""
    mha = _modern_mha(4, 2, True, True)
    x = tl.tensor(np.random.default_rng(25).standard_normal((2, 5, 8)))
    at_zero, _ = mha(x, is_causal=True)
    shifted, _ = mha(x, is_causal=True, positions=np.arange(11, 16))
    assert_close(shifted, at_zero, 0, 1e-12, name="output with every position shifted by 11")
    gaps = np.array([0, 2, 3, 7, 8])
    spread, _ = mha(x, is_causal=True, positions=gaps)
    assert_close(spread, attention_reference(x.numpy(), mha, gaps)[0], 1e-12, 1e-12, name="output at positions 0, 2, 3, 7, 8")
    assert not np.allclose(spread.numpy(), at_zero.numpy())
    per_sequence, _ = mha(x, is_causal=True, positions=np.array([[[0, 1, 2, 3, 4]], [[0, 2, 3, 7, 8]]]))  # (B, 1, L)
    assert_close(per_sequence[1], spread[1], 0, 1e-12, name="the second sequence at its own positions")


def test_modern_attention_errors():
    with pytest.raises(ValueError, match=r"num_kv_heads must divide num_heads \(4\), each key-value head serving a group of query heads; got num_kv_heads=3"):
        nn.MultiheadAttention(8, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="got num_kv_heads=0"):
        nn.MultiheadAttention(8, 4, num_kv_heads=0)
    with pytest.raises(ValueError, match="RotaryEmbedding: head_dim must be even"):
        nn.MultiheadAttention(6, 2, rotary=True)
    x = tl.randn(2, 5, 8)
    with pytest.raises(ValueError, match="positions turn rotary queries and keys; this attention has rotary=False"):
        nn.MultiheadAttention(8, 2)(x, positions=np.arange(5))
    rotary = nn.MultiheadAttention(8, 2, rotary=True, max_positions=8)
    with pytest.raises(ValueError, match="rotary positions are for self-attention: give the query only"):
        rotary(x, tl.randn(2, 3, 8))
    with pytest.raises(IndexError, match=r"positions must lie in \[0, 7\] \(max_positions=8\), got 9"):
        rotary(x, positions=np.arange(5, 10))
