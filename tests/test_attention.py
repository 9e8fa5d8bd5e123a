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
    t_out, t_weights = theirs(*(torch.tensor(a) for a in (query, key, value)), key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(attn_mask))
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
